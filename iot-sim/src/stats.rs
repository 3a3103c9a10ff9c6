//! Counters served at `GET /_sim/stats`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::FaultKind;
use crate::ops::Operation;

/// A snapshot of the simulator's counters (same JSON as `GET /_sim/stats`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Requests that reached each operation, including throttled and faulted ones.
    pub calls: BTreeMap<String, u64>,
    /// Requests refused with ThrottlingException, per operation.
    pub throttled: BTreeMap<String, u64>,
    /// Injected faults per kind (`500`, `503`, `reset`, `timeout`, `lost-reply`,
    /// `truncated`, `empty`, `duplicate`).
    pub faults: BTreeMap<String, u64>,
    /// Requests refused before quotas and faults, per reason: `expired` and
    /// `revoked` (credentials), `denied` (a deny rule), `outage` (the outage switch).
    #[serde(default)]
    pub refused: BTreeMap<String, u64>,
    /// Most operation requests in progress at once.
    pub peak_in_flight: u64,
    /// Highest number of effective TransferCertificate calls on one certificate id.
    pub max_transfers_per_certificate: u64,
    /// Total effective TransferCertificate calls.
    pub transfers_effective: u64,
}

impl Stats {
    /// Calls of an operation (0 if none).
    pub fn calls_of(&self, op: &str) -> u64 {
        self.calls.get(op).copied().unwrap_or(0)
    }

    /// Calls of every operation that changes state ([`Operation::is_mutating`]), by
    /// operation (those never called left out): what a client changed, or tried to.
    pub fn mutating_calls(&self) -> BTreeMap<String, u64> {
        self.calls
            .iter()
            .filter(|(op, _)| Operation::from_name(op).is_some_and(Operation::is_mutating))
            .map(|(op, n)| (op.clone(), *n))
            .collect()
    }

    /// Throttled calls of an operation (0 if none).
    pub fn throttled_of(&self, op: &str) -> u64 {
        self.throttled.get(op).copied().unwrap_or(0)
    }

    /// Injected faults of a kind (0 if none).
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.faults.get(kind.as_str()).copied().unwrap_or(0)
    }

    /// Requests refused for a reason (`expired`, `revoked`, `denied`, `outage`; 0 if none).
    pub fn refused_of(&self, reason: Refusal) -> u64 {
        self.refused.get(reason.as_str()).copied().unwrap_or(0)
    }

    /// Sum of all calls.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

const N_OPS: usize = Operation::ALL.len();
const N_FAULTS: usize = FaultKind::ALL.len();

/// Why a request was refused before quotas and faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its access key had expired.
    Expired,
    /// Its access key was revoked.
    Revoked,
    /// A deny rule matched.
    Denied,
    /// The outage switch was on.
    Outage,
}

impl Refusal {
    /// Every reason, in the order of the counters.
    pub const ALL: [Refusal; 4] = [
        Refusal::Expired,
        Refusal::Revoked,
        Refusal::Denied,
        Refusal::Outage,
    ];

    /// The key in [`Stats::refused`].
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
            Refusal::Denied => "denied",
            Refusal::Outage => "outage",
        }
    }
}

/// Live counters, cheap to update from many tasks.
#[derive(Debug)]
pub struct StatsCollector {
    calls: [AtomicU64; N_OPS],
    throttled: [AtomicU64; N_OPS],
    faults: [AtomicU64; N_FAULTS],
    refused: [AtomicU64; 4],
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    transfers: Mutex<HashMap<String, u64>>,
    transfers_effective: AtomicU64,
}

impl Default for StatsCollector {
    fn default() -> Self {
        StatsCollector {
            calls: std::array::from_fn(|_| AtomicU64::new(0)),
            throttled: std::array::from_fn(|_| AtomicU64::new(0)),
            faults: std::array::from_fn(|_| AtomicU64::new(0)),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            transfers: Mutex::new(HashMap::new()),
            transfers_effective: AtomicU64::new(0),
        }
    }
}

fn fault_index(kind: FaultKind) -> usize {
    FaultKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is listed")
}

impl StatsCollector {
    /// Counts a request that reached `op`.
    pub fn call(&self, op: Operation) {
        self.calls[op.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a throttled request.
    pub fn throttled(&self, op: Operation) {
        self.throttled[op.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an injected fault.
    pub fn fault(&self, kind: FaultKind) {
        self.faults[fault_index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused request.
    pub fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an effective TransferCertificate of `id`.
    pub fn transfer(&self, id: &str) {
        self.transfers_effective.fetch_add(1, Ordering::Relaxed);
        let mut t = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
        *t.entry(id.to_string()).or_insert(0) += 1;
    }

    /// Marks a request in progress until the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight { stats: self }
    }

    /// Zeroes every counter (requests in progress stay counted as in flight).
    pub fn reset(&self) {
        for c in self
            .calls
            .iter()
            .chain(&self.throttled)
            .chain(&self.faults)
            .chain(&self.refused)
        {
            c.store(0, Ordering::Relaxed);
        }
        self.transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.transfers_effective.store(0, Ordering::Relaxed);
        self.peak_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// A snapshot.
    pub fn snapshot(&self) -> Stats {
        let per_op = |arr: &[AtomicU64; N_OPS]| {
            Operation::ALL
                .iter()
                .filter_map(|op| {
                    let n = arr[op.index()].load(Ordering::Relaxed);
                    (n > 0).then(|| (op.name().to_string(), n))
                })
                .collect::<BTreeMap<_, _>>()
        };
        let faults = FaultKind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    self.faults[fault_index(*k)].load(Ordering::Relaxed),
                )
            })
            .collect();
        let max_transfers = self
            .transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .copied()
            .max()
            .unwrap_or(0);
        Stats {
            calls: per_op(&self.calls),
            throttled: per_op(&self.throttled),
            faults,
            refused: Refusal::ALL
                .iter()
                .map(|r| {
                    (
                        r.as_str().to_string(),
                        self.refused[*r as usize].load(Ordering::Relaxed),
                    )
                })
                .collect(),
            peak_in_flight: self.peak_in_flight.load(Ordering::SeqCst),
            max_transfers_per_certificate: max_transfers,
            transfers_effective: self.transfers_effective.load(Ordering::Relaxed),
        }
    }
}

/// Guard of one request in progress.
#[derive(Debug)]
pub struct InFlight<'a> {
    stats: &'a StatsCollector,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_reset() {
        let s = StatsCollector::default();
        s.call(Operation::TransferCertificate);
        s.call(Operation::TransferCertificate);
        s.call(Operation::DescribeCertificate);
        s.throttled(Operation::TransferCertificate);
        s.fault(FaultKind::LostReply);
        s.refused(Refusal::Expired);
        s.transfer("a");
        s.transfer("a");
        s.transfer("b");
        {
            let _g1 = s.enter();
            let _g2 = s.enter();
        }
        let snap = s.snapshot();
        assert_eq!(snap.calls_of("TransferCertificate"), 2);
        assert_eq!(snap.throttled_of("TransferCertificate"), 1);
        // A read is a call, not a change.
        assert_eq!(snap.calls_of("DescribeCertificate"), 1);
        assert_eq!(
            snap.mutating_calls(),
            BTreeMap::from([("TransferCertificate".to_string(), 2)])
        );
        assert_eq!(snap.faults["lost-reply"], 1);
        assert_eq!(snap.faults["500"], 0);
        assert_eq!(snap.refused_of(Refusal::Expired), 1);
        assert_eq!(snap.refused_of(Refusal::Outage), 0);
        assert_eq!(snap.peak_in_flight, 2);
        assert_eq!(snap.max_transfers_per_certificate, 2);
        assert_eq!(snap.transfers_effective, 3);
        let json = serde_json::to_string(&snap).unwrap();
        assert_eq!(serde_json::from_str::<Stats>(&json).unwrap(), snap);
        s.reset();
        let snap = s.snapshot();
        assert_eq!(snap.total_calls(), 0);
        assert_eq!(snap.peak_in_flight, 0);
        assert_eq!(snap.max_transfers_per_certificate, 0);
    }
}
