use crate::latency::{Latency, StoreLatency};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a store since it was opened ([`Snapshots::stats`](crate::Snapshots::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Snapshots written (deletes and quarantined copies are not counted).
    pub written: u64,
    /// Their stored (compressed) bytes.
    pub bytes_written: u64,
    /// Writes that failed: each room of each failed attempt (a retry that fails counts again),
    /// plus each snapshot refused for its size.
    pub failures: u64,
    /// Fenced saves refused because a newer owner of the room had written, or owns it
    /// ([`Snapshots::save_fenced`](crate::Snapshots::save_fenced)); not counted in `failures`.
    pub fenced_out: u64,
    /// Rooms with a save or delete not written yet, plus quarantined copies not written yet.
    pub pending: usize,
}

/// The counters behind [`StoreStats`], updated by the store thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    written: AtomicU64,
    bytes_written: AtomicU64,
    failures: AtomicU64,
    fenced_out: AtomicU64,
    /// How long batches take to write, on the store thread.
    pub(crate) write_latency: Latency,
    /// How long loads take, in [`Snapshots::load`](crate::Snapshots::load).
    pub(crate) load_latency: Latency,
}

impl Counters {
    pub(crate) fn add_written(&self, snapshots: u64, bytes: u64) {
        self.written.fetch_add(snapshots, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_failures(&self, failures: u64) {
        self.failures.fetch_add(failures, Ordering::Relaxed);
    }

    pub(crate) fn add_fenced_out(&self, writes: u64) {
        self.fenced_out.fetch_add(writes, Ordering::Relaxed);
    }

    pub(crate) fn read(&self, pending: usize) -> StoreStats {
        StoreStats {
            written: self.written.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            fenced_out: self.fenced_out.load(Ordering::Relaxed),
            pending,
        }
    }

    pub(crate) fn latency(&self) -> StoreLatency {
        StoreLatency {
            write: self.write_latency.read(),
            load: self.load_latency.read(),
        }
    }
}
