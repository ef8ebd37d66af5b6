//! The two kinds of store behind one interface: load a room's stored bytes, apply a batch of
//! writes. Every write to a store goes through [`Backend::write`], which checks fencing tokens
//! and reports the writes it refused for theirs.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use crate::redis_store::RedisStore;
use crate::sqlite_store::SqliteStore;
use crate::store_url::StoreUrl;
use crate::StoreError;

/// The answer to a load: the room's stored (compressed) bytes.
pub(crate) type LoadReply = oneshot::Sender<Result<Option<Vec<u8>>, StoreError>>;

/// What a handle asks of the store thread.
pub(crate) enum Request {
    /// A room's stored bytes.
    Load { room: String, reply: LoadReply },
    /// The ids of stored rooms: see [`RoomsQuery`].
    Rooms {
        query: RoomsQuery,
        reply: oneshot::Sender<Result<Vec<String>, StoreError>>,
    },
}

/// Stored rooms whose ids start with `prefix` and sort after `after`: the first `limit` in id
/// order (byte order of their UTF-8).
#[derive(Debug, Clone)]
pub(crate) struct RoomsQuery {
    pub(crate) prefix: String,
    pub(crate) after: Option<String>,
    pub(crate) limit: usize,
}

impl RoomsQuery {
    /// Whether `room` is in the range asked for (limit aside).
    pub(crate) fn contains(&self, room: &str) -> bool {
        room.starts_with(&self.prefix) && self.after.as_deref().is_none_or(|after| room > after)
    }
}

/// One change, borrowed from the batch being written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Write<'a> {
    /// Store `bytes` (compressed) as the room's snapshot; with a fence, only if the store
    /// accepts it (see [`Snapshots::save_fenced`](crate::Snapshots::save_fenced)).
    Put {
        room: &'a str,
        bytes: &'a [u8],
        fence: Option<u64>,
    },
    /// Remove the room's snapshot.
    Delete { room: &'a str },
    /// Keep `bytes` aside (as given) under the room and a time.
    Quarantine {
        room: &'a str,
        unix_ms: u64,
        bytes: &'a [u8],
    },
}

/// A fenced write the store refused: a newer owner of the room has written, or owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FencedOut {
    /// Its index in the batch given to [`Backend::write`].
    pub(crate) index: usize,
    /// The fence that beat it, where the store knows it.
    pub(crate) current: Option<u64>,
}

impl<'a> Write<'a> {
    pub(crate) fn room(&self) -> &'a str {
        match *self {
            Write::Put { room, .. } | Write::Delete { room } | Write::Quarantine { room, .. } => {
                room
            }
        }
    }
}

pub(crate) enum Backend {
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

impl Backend {
    /// Opens the store; for Redis, inside the store thread's runtime.
    pub(crate) async fn open(url: &StoreUrl, shown_url: &str) -> Result<Backend, StoreError> {
        match url {
            StoreUrl::SqliteFile(path) => SqliteStore::open(Some(path)).map(Backend::Sqlite),
            StoreUrl::SqliteMemory => SqliteStore::open(None).map(Backend::Sqlite),
            StoreUrl::Redis(url) => RedisStore::open(url, shown_url).await.map(Backend::Redis),
        }
    }

    /// Answers a request: SQLite at once (one indexed query), Redis from a task of its own so
    /// that it does not wait for a write under way.
    pub(crate) fn serve(&self, request: Request) {
        match (self, request) {
            (Backend::Sqlite(store), Request::Load { room, reply }) => {
                let _ = reply.send(store.load(&room));
            }
            (Backend::Sqlite(store), Request::Rooms { query, reply }) => {
                let _ = reply.send(store.rooms(&query));
            }
            (Backend::Redis(store), Request::Load { room, reply }) => {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = reply.send(store.load(&room).await);
                });
            }
            (Backend::Redis(store), Request::Rooms { query, reply }) => {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = reply.send(store.rooms(&query).await);
                });
            }
        }
    }

    /// Applies a batch: completely (SQLite: one transaction), or with an error after which the
    /// whole batch may be applied again. Fenced puts the store refused are left out and
    /// returned, in batch order; such a refusal is final.
    pub(crate) async fn write(&self, writes: &[Write<'_>]) -> Result<Vec<FencedOut>, StoreError> {
        match self {
            Backend::Sqlite(store) => store.write(writes),
            Backend::Redis(store) => store.write(writes).await,
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
