//! Snapshots in Redis: `jamsocket:room:<room>` holds a room's snapshot (GET, SET, DEL), and
//! `jamsocket:corrupt:<room>:<unix_ms>` a quarantined copy. Fenced saves also read the room's
//! owner, `jamsocket:owner:<room>` (`"<node_id> <fence>"`, written by the cluster), and record
//! their fence in `jamsocket:fence:<room>`, all in one Lua script. One multiplexed connection
//! that reconnects by itself; a batch of writes goes out as one pipeline.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use crate::backend::{FencedOut, RoomsQuery, Write};
use crate::StoreError;

/// A fenced save, atomic: KEYS = snapshot, recorded fence, owner; ARGV = bytes, fence (decimal).
/// Writes and returns nil if the owner key is absent or names this fence, and no higher fence
/// is recorded; otherwise returns the fence that beat it ("" if the owner's does not parse).
/// Fences are compared as decimal strings: Lua numbers are exact only up to 2^53.
static PUT_FENCED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function digits(s)
    if type(s) ~= 'string' or not string.match(s, '^%d+$') then return nil end
    local n = string.gsub(s, '^0+', '')
    if n == '' then return '0' end
    return n
end
local fence = ARGV[2]
local owner = redis.call('GET', KEYS[3])
if owner then
    local named = digits(string.match(owner, '([^ ]*)$'))
    if named ~= fence then return named or '' end
end
local recorded = digits(redis.call('GET', KEYS[2]))
if recorded and (#recorded > #fence or (#recorded == #fence and recorded > fence)) then
    return recorded
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], fence)
return false
",
    )
});

/// What the key of every room's snapshot starts with.
const ROOM_KEY_PREFIX: &str = "jamsocket:room:";

/// Key names a SCAN asks for at a time (a hint to Redis).
const SCAN_COUNT: usize = 1000;

/// The key of a room's snapshot.
pub(crate) fn room_key(room: &str) -> String {
    format!("{ROOM_KEY_PREFIX}{room}")
}

/// The SCAN pattern of the snapshot keys of rooms starting with `prefix`: its glob characters
/// escaped, then `*`.
fn room_key_pattern(prefix: &str) -> String {
    let mut pattern = String::from(ROOM_KEY_PREFIX);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// The key of the highest fence written for a room.
pub(crate) fn fence_key(room: &str) -> String {
    format!("jamsocket:fence:{room}")
}

/// The key of a room's owner in a cluster: `"<node_id> <fence>"`.
pub(crate) fn owner_key(room: &str) -> String {
    format!("jamsocket:owner:{room}")
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

    /// The ids of stored rooms in `query`'s range. Redis keeps no order, so this SCANs every
    /// snapshot key that matches the prefix, then filters, sorts and cuts: its cost grows with
    /// the number of rooms saved under the prefix, whatever the limit.
    pub(crate) async fn rooms(&self, query: &RoomsQuery) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        let pattern = room_key_pattern(&query.prefix);
        let mut rooms = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut connection)
                .await
                .map_err(|source| StoreError::Redis {
                    url: self.shown_url.to_string(),
                    action: format!("listing rooms starting with `{}`", query.prefix),
                    source,
                })?;
            let ids = (keys.into_iter())
                .filter_map(|key| String::from_utf8(key).ok())
                .filter_map(|key| key.strip_prefix(ROOM_KEY_PREFIX).map(str::to_owned))
                .filter(|room| query.contains(room));
            rooms.extend(ids);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key more than once.
        rooms.sort_unstable();
        rooms.dedup();
        rooms.truncate(query.limit);
        Ok(rooms)
    }

    /// Sends `writes` as one pipeline. Not atomic, but every write is idempotent, so a batch
    /// that failed halfway is simply sent again. Returns the fenced puts the script refused.
    pub(crate) async fn write(&self, writes: &[Write<'_>]) -> Result<Vec<FencedOut>, StoreError> {
        let mut pipeline = redis::pipe();
        // The indices of the fenced puts, whose answers are the pipeline's (the rest are ignored).
        let mut fenced = Vec::new();
        let fenced_put = |w: &Write<'_>| matches!(w, Write::Put { fence: Some(_), .. });
        if writes.iter().any(fenced_put) {
            // A restarted Redis has forgotten it.
            pipeline.load_script(&PUT_FENCED).ignore();
        }
        for (index, write) in writes.iter().enumerate() {
            match *write {
                Write::Put {
                    room,
                    bytes,
                    fence: Some(fence),
                } => {
                    fenced.push(index);
                    let mut invocation = PUT_FENCED.prepare_invoke();
                    invocation
                        .key(room_key(room))
                        .key(fence_key(room))
                        .key(owner_key(room))
                        .arg(bytes)
                        .arg(fence.to_string());
                    pipeline.invoke_script(&invocation)
                }
                Write::Put {
                    room,
                    bytes,
                    fence: None,
                } => pipeline.set(room_key(room), bytes).ignore(),
                Write::Delete { room } => pipeline.del(room_key(room)).ignore(),
                Write::Quarantine {
                    room,
                    unix_ms,
                    bytes,
                } => pipeline.set(corrupt_key(room, unix_ms), bytes).ignore(),
            };
        }
        let mut connection = self.connection.clone();
        let answers = pipeline
            .query_async::<Vec<Option<String>>>(&mut connection)
            .await
            .map_err(|source| StoreError::Redis {
                url: self.shown_url.to_string(),
                action: match writes {
                    [one] => format!("writing room `{}`", one.room()),
                    _ => format!("writing a batch of {} writes", writes.len()),
                },
                source,
            })?;
        let refusals = fenced.into_iter().zip(answers);
        let fenced_out = refusals.filter_map(|(index, answer)| {
            let current = answer?.parse().ok();
            Some(FencedOut { index, current })
        });
        Ok(fenced_out.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::room_key_pattern;

    #[test]
    fn the_pattern_escapes_glob_characters() {
        assert_eq!(room_key_pattern(""), "jamsocket:room:*");
        assert_eq!(room_key_pattern("a_b.c"), "jamsocket:room:a_b.c*");
        assert_eq!(room_key_pattern(r"*?[x]\"), r"jamsocket:room:\*\?\[x\]\\*");
    }
}
