//! The handle callers hold: it queues changes in the pending map and asks the store thread for
//! what the map does not have.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, Notify};

use crate::backend::{unix_ms, Request, RoomsQuery};
use crate::pending::{Change, Pending};
use crate::stats::Counters;
use crate::store_url::{redact, StoreUrl};
use crate::writer;
use crate::{compression, StoreConfig, StoreError, StoreLatency, StoreStats};

/// How many distinct corrupt snapshots a store remembers having quarantined (so that loading a
/// corrupt room again does not keep another copy each time).
const QUARANTINE_MEMORY: usize = 4096;

/// What the handles and the store thread share.
pub(crate) struct Shared {
    /// The url with its password hidden.
    pub(crate) url: String,
    pub(crate) config: StoreConfig,
    pub(crate) pending: Pending,
    pub(crate) counters: Counters,
    /// Wakes the writer when there is something to write.
    pub(crate) wake: Notify,
}

struct Handle {
    shared: Arc<Shared>,
    requests: mpsc::UnboundedSender<Request>,
    /// Hashes of the corrupt snapshots quarantined by `load`.
    quarantined: Mutex<HashSet<u64>>,
}

/// A handle to one snapshot store; cheap to clone.
///
/// Saves, deletes and quarantines are queued and return at once; a background thread compresses
/// and writes them. The store closes when the last handle is dropped, after writing what is
/// pending (retrying for up to 10 s if the store is unreachable): call [`flush`](Self::flush)
/// first to know that it is written.
#[derive(Clone)]
pub struct Snapshots(Arc<Handle>);

impl Snapshots {
    /// Opens the store at `url` and starts its background thread (named `jamsocket-store`):
    /// - `sqlite:PATH` (relative or absolute; `sqlite://PATH` works too): creates the file and
    ///   its tables if needed, but not its folder;
    /// - `sqlite::memory:`: a database in memory, gone with the store (for tests);
    /// - `redis://HOST:PORT/DB` (with `user:password@` if needed): checks that Redis answers.
    ///   `rediss://` (TLS) is recognized, but this build has no TLS support and refuses it.
    ///
    /// Blocks until the store is open (for Redis at most a few seconds).
    pub fn open(url: &str, config: StoreConfig) -> Result<Snapshots, StoreError> {
        let target = StoreUrl::parse(url)?;
        let shared = Arc::new(Shared {
            url: redact(url),
            config,
            pending: Pending::default(),
            counters: Counters::default(),
            wake: Notify::new(),
        });
        let requests = writer::start(target, shared.clone())?;
        tracing::info!(url = %shared.url, "snapshot store opened");
        Ok(Snapshots(Arc::new(Handle {
            shared,
            requests,
            quarantined: Mutex::default(),
        })))
    }

    /// The url as given, with any password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.0.shared.url
    }

    /// The latest snapshot of `room`, decompressed, or `None` if it has none (or its deletion
    /// is pending). A save not written yet is answered from memory.
    ///
    /// Stored bytes that do not decompress are kept aside (see [`quarantine`](Self::quarantine)),
    /// logged as an error naming the room and returned as [`StoreError::Corrupt`]; they stay
    /// in place until the room is saved or deleted.
    ///
    /// Works from any async runtime (or none): the store thread does the reading. How long it
    /// took is recorded in [`latency`](Self::latency).
    pub async fn load(&self, room: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let started = Instant::now();
        let loaded = self.read(room).await;
        (self.0.shared.counters.load_latency).record(started.elapsed());
        loaded
    }

    async fn read(&self, room: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.0.shared.pending.get(room) {
            Some(Change::Save { snapshot, .. }) => return Ok(Some(snapshot.to_vec())),
            Some(Change::Delete) => return Ok(None),
            None => {}
        }
        let room_owned = room.to_owned();
        let request = |reply| Request::Load {
            room: room_owned,
            reply,
        };
        let Some(stored) = self.ask(request).await? else {
            return Ok(None);
        };
        compression::decompress(&stored)
            .map(Some)
            .map_err(|reason| {
                tracing::error!(
                    room,
                    url = %self.url(),
                    "stored snapshot of room `{room}` is corrupt ({reason}): kept aside, not loaded"
                );
                self.quarantine_once(room, stored);
                StoreError::Corrupt {
                    room: room.to_owned(),
                    reason,
                }
            })
    }

    /// The ids of the saved rooms that start with `prefix` and sort after `after`: the first
    /// `limit` of them, in id order (the byte order of their UTF-8, as `str` sorts). Like
    /// [`load`](Self::load), it counts a save not written yet as saved and a delete not written
    /// yet as done.
    ///
    /// SQLite answers from its index, reading at most `limit` ids (plus pending deletes). Redis
    /// has no order: it SCANs every key name of a room starting with `prefix`, so its cost
    /// grows with the number of saved rooms, whatever the limit.
    ///
    /// ```
    /// # use jamsocket_store::{Snapshots, StoreConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Snapshots::open("sqlite::memory:", StoreConfig::new())?;
    /// for room in ["game-2", "game-1", "lobby", "game-3"] {
    ///     store.save(room, b"state".to_vec());
    /// }
    /// assert_eq!(store.rooms("game-", None, 2).await?, ["game-1", "game-2"]);
    /// assert_eq!(store.rooms("game-", Some("game-2"), 2).await?, ["game-3"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn rooms(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let query = RoomsQuery {
            prefix: prefix.to_owned(),
            after: after.map(str::to_owned),
            limit,
        };
        // Read before asking the store: a change written meanwhile is then seen in the store.
        let pending = self.0.shared.pending.rooms(|room| query.contains(room));
        let (saved, deleted): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, s)| *s);
        let deleted: HashSet<String> = deleted.into_iter().map(|(room, _)| room).collect();
        // Enough that the first `limit` stay after the pending deletes are taken out.
        let query = RoomsQuery {
            limit: limit.saturating_add(deleted.len()),
            ..query
        };
        let stored = self.ask(|reply| Request::Rooms { query, reply }).await?;
        let rooms: BTreeSet<String> = (stored.into_iter())
            .filter(|room| !deleted.contains(room))
            .chain(saved.into_iter().map(|(room, _)| room))
            .collect();
        Ok(rooms.into_iter().take(limit).collect())
    }

    /// Sends a request to the store thread and waits for its answer.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let unavailable = || StoreError::Unavailable {
            url: self.url().to_owned(),
            reason: "its thread has stopped".into(),
        };
        (self.0.requests)
            .send(request(reply))
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }

    /// Queues `snapshot` as the latest snapshot of `room` and returns at once. A newer save or
    /// delete of the room replaces it if it is not written yet.
    ///
    /// It is compressed (zstd) and written on the store thread. A snapshot over
    /// [`StoreConfig::max_snapshot_bytes`] compressed is not written (an error is logged and
    /// the previous snapshot stays). While the store is unreachable, writes are retried with a
    /// growing delay (100 ms to 5 s) until they succeed.
    pub fn save(&self, room: &str, snapshot: Vec<u8>) {
        let (snapshot, fence) = (Arc::new(snapshot), None);
        self.push(room, Change::Save { snapshot, fence });
    }

    /// Like [`save`](Self::save), for the holder of fencing token `fence`: the node that owns
    /// `room` in a cluster, where every change of owner comes with a higher fence. The store
    /// refuses the write of an owner that has lost the room, so that it can never overwrite
    /// the new owner's snapshot (after a network partition, say).
    ///
    /// The snapshot is written only if
    /// - (Redis) key `jamsocket:owner:<room>`, if it exists in the store's database, names
    ///   exactly this fence: the last space-separated field of its value (`"<node_id> <fence>"`)
    ///   is this number in decimal (leading zeros allowed);
    /// - (both) no higher fence has been written for the room. The highest one is recorded with
    ///   the snapshot: Redis key `jamsocket:fence:<room>`, SQLite column `snapshots.fence`.
    ///
    /// Redis checks and writes in one Lua script (atomic); SQLite in one statement.
    ///
    /// A refused write is final: it is dropped, not retried (as an oversized snapshot is),
    /// counted in [`StoreStats::fenced_out`] and logged as a warning naming the room, this
    /// fence and the current one. The previous snapshot stays, and a later save with a good
    /// fence is written. Until the store has refused it, [`load`](Self::load) returns the
    /// snapshot from memory, like any pending save; a newer save of the room replaces it,
    /// fence and all.
    ///
    /// Unfenced [`save`](Self::save)s and [`delete`](Self::delete)s are never refused and
    /// keep the recorded fence, except that a SQLite delete removes the room's row, fence
    /// included (the Redis key `jamsocket:fence:<room>` stays). Fences above `i64::MAX` (more
    /// than a Redis counter holds) count as `i64::MAX` in SQLite.
    pub fn save_fenced(&self, room: &str, snapshot: Vec<u8>, fence: u64) {
        let (snapshot, fence) = (Arc::new(snapshot), Some(fence));
        self.push(room, Change::Save { snapshot, fence });
    }

    /// Queues the deletion of `room`'s snapshot, like [`save`](Self::save): whichever of the
    /// two was called last wins.
    pub fn delete(&self, room: &str) {
        self.push(room, Change::Delete);
    }

    /// Queues `bytes` to be kept aside for inspection, like [`save`](Self::save) but never
    /// coalesced: for a snapshot that the caller cannot decode. SQLite keeps them in table
    /// `corrupt_snapshots(room, saved_at, bytes)`, Redis under `jamsocket:corrupt:<room>:<unix_ms>`.
    pub fn quarantine(&self, room: &str, bytes: Vec<u8>) {
        (self.0.shared.pending).push_quarantined(room, bytes, unix_ms());
        self.0.shared.wake.notify_one();
    }

    /// Resolves once everything queued before this call is written (or refused: for its size,
    /// or fenced out).
    /// While the store is unreachable it keeps waiting: put a timeout around it.
    pub async fn flush(&self) {
        if let Some(done) = self.0.shared.pending.wait_for_all() {
            if !self.0.requests.is_closed() {
                let _ = done.await;
            }
        }
    }

    /// Counters since the store was opened.
    pub fn stats(&self) -> StoreStats {
        (self.0.shared.counters).read(self.0.shared.pending.len())
    }

    /// How long writes and loads have taken since the store was opened.
    ///
    /// ```
    /// # use jamsocket_store::{Snapshots, StoreConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Snapshots::open("sqlite::memory:", StoreConfig::new())?;
    /// store.save("lobby", b"state".to_vec());
    /// store.flush().await;
    /// store.load("lobby").await?;
    /// let latency = store.latency();
    /// assert_eq!((latency.write.count, latency.load.count), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn latency(&self) -> StoreLatency {
        self.0.shared.counters.latency()
    }

    fn push(&self, room: &str, change: Change) {
        self.0.shared.pending.push(room, change);
        self.0.shared.wake.notify_one();
    }

    /// Quarantines `bytes` unless this store already did for the same room and bytes.
    fn quarantine_once(&self, room: &str, bytes: Vec<u8>) {
        let mut hasher = DefaultHasher::new();
        (room, &bytes).hash(&mut hasher);
        let hash = hasher.finish();
        {
            let mut seen = self
                .0
                .quarantined
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if seen.len() >= QUARANTINE_MEMORY {
                seen.clear();
            }
            if !seen.insert(hash) {
                return;
            }
        }
        self.quarantine(room, bytes);
    }
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("url", &self.url())
            .field(
                "max_snapshot_bytes",
                &self.0.shared.config.max_snapshot_bytes(),
            )
            .finish_non_exhaustive()
    }
}
