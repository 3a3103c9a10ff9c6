//! The snapshots a run rebuilds from: loaded from a transfer ledger, or handed over in memory
//! by the transfer of the same run (`transfer --accept-profile ... --carry`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use super::snapshot::Snapshot;
use crate::ledger::{read_snapshots, LedgerError};

/// Snapshots by certificate id.
#[derive(Default)]
pub struct SnapshotStore {
    by_id: Mutex<HashMap<String, Snapshot>>,
}

impl SnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The latest snapshot of every certificate `wanted` accepts, from the transfer ledger
    /// at `path`.
    pub fn load(path: &Path, wanted: impl Fn(&str) -> bool) -> Result<Self, LedgerError> {
        Ok(SnapshotStore {
            by_id: Mutex::new(read_snapshots(path, wanted)?),
        })
    }

    /// Keeps `snapshot` as the certificate's latest.
    pub fn insert(&self, id: &str, snapshot: Snapshot) {
        self.lock().insert(id.to_string(), snapshot);
    }

    /// The certificate's snapshot, if one was recorded.
    pub fn get(&self, id: &str) -> Option<Snapshot> {
        self.lock().get(id).cloned()
    }

    /// Number of certificates with a snapshot.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no certificate has a snapshot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Snapshot>> {
        self.by_id.lock().expect("snapshot store")
    }
}
