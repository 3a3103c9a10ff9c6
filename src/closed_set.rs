//! `closed_set!`: an enum whose values have one spelling each, used by the ledger, the
//! reports and the command line alike (serde, `Display` and `as_str` all read the same table).

/// What every `closed_set!` enum offers, for code written once for all of them (the
/// command line's parser of such values, the verdict engine's counts per category).
pub trait ClosedSet: Copy + Ord + Send + Sync + std::fmt::Debug + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The value's one spelling.
    fn as_str(self) -> &'static str;
    /// The value spelled `s`.
    fn from_name(s: &str) -> Option<Self>;
}

/// Declares a fieldless enum with one name per value, and derives from that one table:
/// `as_str`, `from_name`, `ALL`, [`ClosedSet`], `Display`, `Serialize` and `Deserialize`.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's name, as the ledger, the reports and the flags spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value spelled `s`.
            pub fn from_name(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl $crate::closed_set::ClosedSet for $name {
            const ALL: &'static [$name] = $name::ALL;
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn from_name(s: &str) -> Option<$name> {
                $name::from_name(s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $name::from_name(&s).ok_or_else(|| {
                    <D::Error as serde::de::Error>::unknown_variant(&s, &[$($text),+])
                })
            }
        }
    };
}
