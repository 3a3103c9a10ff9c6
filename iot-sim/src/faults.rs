//! Fault injection decisions.

use rand::Rng;

use crate::config::FaultKind;

/// Rolls the configured faults for one request, in the configured order; the
/// first that fires wins. `lost-reply` and `duplicate` are considered only for
/// mutating calls.
pub fn roll(faults: &[(FaultKind, f64)], mutating: bool) -> Option<FaultKind> {
    let mut rng = rand::rng();
    faults.iter().find_map(|(kind, p)| {
        if kind.mutating_only() && !mutating {
            return None;
        }
        (*p > 0.0 && (*p >= 1.0 || rng.random::<f64>() < *p)).then_some(*kind)
    })
}

/// For a `lost-reply` fault: true = reset the connection, false = answer 500.
pub fn lost_reply_resets() -> bool {
    rand::rng().random_bool(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certain_and_never() {
        let f = vec![(FaultKind::Http503, 0.0), (FaultKind::Http500, 1.0)];
        assert_eq!(roll(&f, false), Some(FaultKind::Http500));
        let lost = vec![(FaultKind::LostReply, 1.0)];
        assert_eq!(roll(&lost, false), None);
        assert_eq!(roll(&lost, true), Some(FaultKind::LostReply));
        assert_eq!(roll(&[], true), None);
    }

    #[test]
    fn probability_roughly_right() {
        let f = vec![(FaultKind::Reset, 0.3)];
        let n = (0..10_000).filter(|_| roll(&f, false).is_some()).count();
        assert!((2_500..3_500).contains(&n), "{n}");
    }
}
