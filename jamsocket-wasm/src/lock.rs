//! Locking the runtime's mutexes.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, even if a handler panicked while holding it. A panic traps the instance, so
/// on `wasm32` nothing runs after it; natively (in tests) the next test must not fail because
/// an earlier one panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
