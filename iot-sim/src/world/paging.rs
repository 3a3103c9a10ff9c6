//! The paging every listing shares. Each listed item carries a sort key; a
//! page starts at the marker (the key of its first item, inclusive) and the
//! next marker is the key of the item after the page, absent on the last
//! page. Keys are opaque to clients: the hex of a name ([`hex_key`]), or a
//! certificate's creation sequence and id.

/// Pagination input of a list call.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// Page size (already checked to be 1..=250).
    pub size: usize,
    /// Marker / nextToken from the previous page.
    pub marker: Option<String>,
    /// Ascending order (only where the API has `isAscendingOrder`).
    pub ascending: bool,
}

impl Page {
    /// This page of `items` in the order the caller asked for, and the
    /// marker of the next page.
    pub(crate) fn of<T>(&self, items: Vec<(String, T)>) -> (Vec<T>, Option<String>) {
        paginate(items, self.ascending, self.marker.as_deref(), self.size)
    }

    /// This page of `items` in ascending key order whatever was asked (the
    /// listings whose order the API does not let the caller choose).
    pub(crate) fn ascending_of<T>(&self, items: Vec<(String, T)>) -> (Vec<T>, Option<String>) {
        paginate(items, true, self.marker.as_deref(), self.size)
    }
}

/// The sort key of a name: its bytes in hex, so that markers are opaque.
pub(crate) fn hex_key(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Sorts `items` by key (descending unless `ascending`), starts at `marker`
/// (the key of the first item of the page, inclusive), and returns the page and
/// the marker of the next page.
pub(crate) fn paginate<T>(
    mut items: Vec<(String, T)>,
    ascending: bool,
    marker: Option<&str>,
    size: usize,
) -> (Vec<T>, Option<String>) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if !ascending {
        items.reverse();
    }
    let start = match marker {
        None => 0,
        Some(m) => items
            .iter()
            .position(|(k, _)| {
                if ascending {
                    k.as_str() >= m
                } else {
                    k.as_str() <= m
                }
            })
            .unwrap_or(items.len()),
    };
    let next = items.get(start + size).map(|(k, _)| k.clone());
    let page = items.into_iter().skip(start).take(size).map(|(_, v)| v);
    (page.collect(), next)
}

/// The same page as [`paginate`] over `keys` (the items' sort keys, as they compare), but
/// found by selection rather than by sorting the whole list: a page of a long list costs
/// one pass over it, as a listing that AWS serves from an index costs nothing per item
/// skipped. `from` is the marker's key. Returns the page's items in order and the key of
/// the item after the page.
pub(crate) fn select_page<K: Ord + Clone, T>(
    items: Vec<(K, T)>,
    ascending: bool,
    from: Option<&K>,
    size: usize,
) -> (Vec<T>, Option<K>) {
    let in_range = |k: &K| match from {
        None => true,
        Some(m) if ascending => k >= m,
        Some(m) => k <= m,
    };
    let mut rest: Vec<(K, T)> = items.into_iter().filter(|(k, _)| in_range(k)).collect();
    let order = |a: &(K, T), b: &(K, T)| {
        if ascending {
            a.0.cmp(&b.0)
        } else {
            b.0.cmp(&a.0)
        }
    };
    // the page and the item after it: the first size + 1 in order
    if rest.len() > size + 1 {
        rest.select_nth_unstable_by(size + 1, order);
        rest.truncate(size + 1);
    }
    rest.sort_unstable_by(order);
    let next = (rest.len() > size).then(|| rest[size].0.clone());
    rest.truncate(size);
    (rest.into_iter().map(|(_, v)| v).collect(), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paginate_both_orders() {
        let items: Vec<(String, u32)> = (0..7).map(|i| (format!("{i:02}"), i)).collect();
        let (p, n) = paginate(items.clone(), true, None, 3);
        assert_eq!(p, vec![0, 1, 2]);
        let (p, n) = paginate(items.clone(), true, n.as_deref(), 3);
        assert_eq!(p, vec![3, 4, 5]);
        let (p, n) = paginate(items.clone(), true, n.as_deref(), 3);
        assert_eq!((p, n), (vec![6], None));
        let (p, n) = paginate(items.clone(), false, None, 4);
        assert_eq!(p, vec![6, 5, 4, 3]);
        let (p, n) = paginate(items, false, n.as_deref(), 4);
        assert_eq!((p, n), (vec![2, 1, 0], None));
    }

    #[test]
    fn select_page_gives_the_pages_paginate_gives() {
        let items: Vec<(String, u32)> = (0..23)
            .map(|i| (format!("{:02}", (i * 7) % 23), i))
            .collect();
        for ascending in [true, false] {
            for size in [1, 4, 22, 23, 30] {
                let (mut marker, mut sel_marker) = (None::<String>, None::<String>);
                loop {
                    let (p, n) = paginate(items.clone(), ascending, marker.as_deref(), size);
                    let (q, m) = select_page(items.clone(), ascending, sel_marker.as_ref(), size);
                    assert_eq!((&p, &n), (&q, &m), "ascending {ascending}, size {size}");
                    match n {
                        None => break,
                        Some(_) => (marker, sel_marker) = (n, m),
                    }
                }
            }
        }
    }
}
