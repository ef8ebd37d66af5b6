//! Small helpers for shared state.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning: what the server keeps behind mutexes (tables, counters,
/// queues of plain data) stays consistent even if a thread panicked while holding one.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
