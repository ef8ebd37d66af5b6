//! Snapshots in Redis: `jamsocket:room:<room>` holds a room's snapshot (GET, SET, DEL), and
//! `jamsocket:corrupt:<room>:<unix_ms>` a quarantined copy. One multiplexed connection that
//! reconnects by itself; a batch of writes goes out as one pipeline.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::backend::Write;
use crate::StoreError;

/// The key of a room's snapshot.
pub(crate) fn room_key(room: &str) -> String {
    format!("jamsocket:room:{room}")
}

/// The key of a quarantined copy.
pub(crate) fn corrupt_key(room: &str, unix_ms: u64) -> String {
    format!("jamsocket:corrupt:{room}:{unix_ms}")
}

/// A cheap-to-clone connection to one Redis database.
#[derive(Clone)]
pub(crate) struct RedisStore {
    connection: ConnectionManager,
    /// The url as shown in errors (password hidden).
    shown_url: Arc<str>,
}

impl RedisStore {
    /// Connects to `url` and checks that the server answers PING. Must run inside the store
    /// thread's runtime (the connection's reconnecting task is spawned there).
    pub(crate) async fn open(url: &str, shown_url: &str) -> Result<RedisStore, StoreError> {
        if url.starts_with("rediss://") {
            return Err(StoreError::BadUrl {
                url: shown_url.to_owned(),
                reason: "rediss:// (TLS) is not built into jamsocket-store: use redis:// on a \
                         private network or through a TLS tunnel"
                    .into(),
            });
        }
        let client = redis::Client::open(url).map_err(|e| StoreError::BadUrl {
            url: shown_url.to_owned(),
            reason: e.to_string(),
        })?;
        let error = |action: &str| {
            let (url, action) = (shown_url.to_owned(), action.to_owned());
            move |source| StoreError::Redis {
                url,
                action,
                source,
            }
        };
        // A request to a server that is down fails within seconds instead of waiting out many
        // reconnection attempts: the store thread retries writes itself, with its own backoff.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let mut connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(error("connecting"))?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map_err(error("PING"))?;
        Ok(RedisStore {
            connection,
            shown_url: shown_url.into(),
        })
    }

    /// The stored bytes of `room`.
    pub(crate) async fn load(&self, room: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("GET")
            .arg(room_key(room))
            .query_async(&mut connection)
            .await
            .map_err(|source| StoreError::Redis {
                url: self.shown_url.to_string(),
                action: format!("loading room `{room}`"),
                source,
            })
    }

    /// Sends `writes` as one pipeline. Not atomic, but every write is idempotent, so a batch
    /// that failed halfway is simply sent again.
    pub(crate) async fn write(&self, writes: &[Write<'_>]) -> Result<(), StoreError> {
        let mut pipeline = redis::pipe();
        for write in writes {
            match *write {
                Write::Put { room, bytes } => pipeline.set(room_key(room), bytes).ignore(),
                Write::Delete { room } => pipeline.del(room_key(room)).ignore(),
                Write::Quarantine {
                    room,
                    unix_ms,
                    bytes,
                } => pipeline.set(corrupt_key(room, unix_ms), bytes).ignore(),
            };
        }
        let mut connection = self.connection.clone();
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(|source| StoreError::Redis {
                url: self.shown_url.to_string(),
                action: match writes {
                    [one] => format!("writing room `{}`", one.room()),
                    _ => format!("writing a batch of {} writes", writes.len()),
                },
                source,
            })
    }
}
