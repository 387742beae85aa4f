//! The node's one policy for a poisoned lock.
//!
//! A `std::sync::Mutex` is poisoned when a thread panicked while holding it. Every state
//! these locks guard (the chain head, the mempool) is changed only after the step that
//! could fail (a synced write, a check), so a panic leaves it consistent, and a node
//! that refused to go on would turn one bug into an outage of the member. So the lock
//! is taken anyway, everywhere, in the same way: no caller skips its update (a skipped
//! `Mempool::committed` would let committed transactions be proposed again) or reads a
//! default instead.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the guard of a poisoned lock as it is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
