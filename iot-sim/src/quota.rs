//! Per (account, region, operation) token buckets.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ops::Operation;

/// A token bucket refilled at `rate` tokens per second, holding at most `burst`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket holding `burst_secs` seconds' worth of calls (at least 1).
    pub fn new(rate: f64, burst_secs: f64, now: Instant) -> Self {
        let burst = (rate * burst_secs).max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The TPS limits of every operation and the buckets of every caller.
#[derive(Debug)]
pub struct Quotas {
    /// TPS per operation index; `None` = unlimited.
    limits: Vec<Option<f64>>,
    /// Seconds of calls a full bucket holds.
    burst_secs: f64,
    buckets: Mutex<HashMap<(String, String, Operation), TokenBucket>>,
}

impl Quotas {
    /// Limits: the documented TPS times `scale` (0 = unlimited), then the
    /// absolute `overrides` by operation name (0 = unlimited); each bucket holds `burst`
    /// worth of calls.
    pub fn new(scale: f64, overrides: &HashMap<String, f64>, burst: Duration) -> Self {
        let limits = Operation::ALL
            .iter()
            .map(|op| {
                let limit = match overrides.get(op.name()) {
                    Some(tps) => Some(*tps),
                    None if scale > 0.0 => op.documented_tps().map(|t| t * scale),
                    None => None,
                };
                limit.filter(|t| *t > 0.0)
            })
            .collect();
        Quotas {
            limits,
            burst_secs: burst.as_secs_f64(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The TPS limit of an operation (`None` = unlimited).
    pub fn limit(&self, op: Operation) -> Option<f64> {
        self.limits[op.index()]
    }

    /// Whether a call may proceed now (takes a token if so).
    pub fn admit(&self, account: &str, region: &str, op: Operation) -> bool {
        let Some(rate) = self.limit(op) else {
            return true;
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .entry((account.to_string(), region.to_string(), op))
            .or_insert_with(|| TokenBucket::new(rate, self.burst_secs, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_burst_and_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 1.0, t0);
        for _ in 0..10 {
            assert!(b.try_take(t0));
        }
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(101)));
        assert!(!b.try_take(t0 + Duration::from_millis(102)));
        let mut slow = TokenBucket::new(0.5, 1.0, t0);
        assert!(slow.try_take(t0));
        assert!(!slow.try_take(t0 + Duration::from_secs(1)));
        assert!(slow.try_take(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn a_smaller_burst_throttles_sooner() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 0.1, t0);
        for _ in 0..10 {
            assert!(b.try_take(t0));
        }
        assert!(!b.try_take(t0));
        // Never less than one call, whatever the rate.
        let mut one = TokenBucket::new(2.0, 0.1, t0);
        assert!(one.try_take(t0));
        assert!(!one.try_take(t0));
    }

    #[test]
    fn limits() {
        let mut o = HashMap::new();
        o.insert("TransferCertificate".to_string(), 3.0);
        let q = Quotas::new(2.0, &o, Duration::from_secs(1));
        assert_eq!(q.limit(Operation::TransferCertificate), Some(3.0));
        assert_eq!(q.limit(Operation::DescribeCertificate), Some(20.0));
        assert_eq!(q.limit(Operation::DetachPolicy), Some(30.0));
        assert_eq!(q.limit(Operation::AttachThingPrincipal), Some(200.0));
        assert_eq!(q.limit(Operation::ListThings), Some(20.0));
        assert_eq!(q.limit(Operation::GetCallerIdentity), None);
        let q = Quotas::new(0.0, &o, Duration::from_secs(1));
        assert_eq!(q.limit(Operation::DescribeCertificate), None);
        assert_eq!(q.limit(Operation::TransferCertificate), Some(3.0));
    }
}
