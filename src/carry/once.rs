//! One value per key, computed at most once per run even by concurrent callers: what many
//! certificates share (a policy, a group) is read or created once. A failed computation is
//! not kept: the next caller tries again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// The cells, by key.
pub struct Once<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for Once<K, V> {
    fn default() -> Self {
        Once {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Once<K, V> {
    /// The value of `key`, computed by `make` if no caller has computed it yet (callers of
    /// the same key wait for the one computing it).
    pub async fn get<E, F, Fut>(&self, key: &K, make: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut cells = self.cells.lock().expect("once cells");
            cells.entry(key.clone()).or_default().clone()
        };
        cell.get_or_try_init(make).await.cloned()
    }
}
