/// Options for a store ([`Snapshots::open`](crate::Snapshots::open)).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    max_snapshot_bytes: usize,
}

impl StoreConfig {
    /// The default limit on a stored (compressed) snapshot: 16 MiB.
    pub const DEFAULT_MAX_SNAPSHOT_BYTES: usize = 16 * 1024 * 1024;

    /// The defaults.
    pub fn new() -> Self {
        StoreConfig {
            max_snapshot_bytes: Self::DEFAULT_MAX_SNAPSHOT_BYTES,
        }
    }

    /// Refuses snapshots whose compressed size is over `bytes` (default 16 MiB): they are not
    /// written, an error is logged and the room's previous snapshot stays.
    #[must_use]
    pub fn with_max_snapshot_bytes(mut self, bytes: usize) -> Self {
        self.max_snapshot_bytes = bytes;
        self
    }

    /// The largest stored (compressed) snapshot, in bytes.
    pub fn max_snapshot_bytes(&self) -> usize {
        self.max_snapshot_bytes
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::new()
    }
}
