//! Locking the host's mutexes.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, even if a thread panicked while holding it. The host's mutexes guard plain
/// accounting (when a guest call last resumed, a room's output rate limit) that a panic cannot
/// leave unusable, and one failure must not become a panic on every later call.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
