//! Snapshots in a SQLite file: table `snapshots(room, saved_at, bytes, fence)`, quarantined
//! copies in `corrupt_snapshots(room, saved_at, bytes)`; `saved_at` is milliseconds since the
//! Unix epoch, `fence` the highest fencing token written for the room (NULL if none). Files
//! from before fencing get the column when they are opened.
//! WAL mode with `synchronous=NORMAL`: a commit appends to the log without waiting for the disk
//! (a power cut may lose the last commits, never corrupt the file).

use std::path::Path;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::backend::{unix_ms, FencedOut, RoomsQuery, Write};
use crate::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    room TEXT PRIMARY KEY NOT NULL,
    saved_at INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    fence INTEGER
);
CREATE TABLE IF NOT EXISTS corrupt_snapshots (
    room TEXT NOT NULL,
    saved_at INTEGER NOT NULL,
    bytes BLOB NOT NULL
);
";

/// One connection, used by the store thread only.
pub(crate) struct SqliteStore {
    connection: Connection,
    /// The file as shown in errors.
    path: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, or one in memory for `None`.
    pub(crate) fn open(path: Option<&Path>) -> Result<SqliteStore, StoreError> {
        let shown = path.map_or(":memory:".to_owned(), |p| p.display().to_string());
        if let Some(path) = path {
            let folder = path.parent().filter(|f| !f.as_os_str().is_empty());
            if let Some(folder) = folder.filter(|f| !f.is_dir()) {
                return Err(StoreError::MissingFolder {
                    path: path.to_owned(),
                    folder: folder.to_owned(),
                });
            }
        }
        let error = |action: &str| {
            let (path, action) = (shown.clone(), action.to_owned());
            move |source| StoreError::Sqlite {
                path,
                action,
                source,
            }
        };
        let connection = match path {
            Some(path) => Connection::open(path).map_err(error("opening the file"))?,
            None => Connection::open_in_memory().map_err(error("opening"))?,
        };
        // Another process (an inspecting `sqlite3`) may hold the lock for a moment.
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(error("setting busy_timeout"))?;
        connection
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0))
            .map_err(error("switching to WAL mode"))?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(error("setting synchronous=NORMAL"))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(error("creating the tables"))?;
        let has_fence = connection
            .query_row(
                "SELECT count(*) FROM pragma_table_info('snapshots') WHERE name = 'fence'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(error("reading the columns of table `snapshots`"))?;
        if has_fence == 0 {
            connection
                .execute_batch("ALTER TABLE snapshots ADD COLUMN fence INTEGER")
                .map_err(error("adding column `fence` to table `snapshots`"))?;
        }
        Ok(SqliteStore {
            connection,
            path: shown,
        })
    }

    /// The stored bytes of `room`.
    pub(crate) fn load(&self, room: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let load = || {
            self.connection
                .prepare_cached("SELECT bytes FROM snapshots WHERE room = ?1")?
                .query_row([room], |row| row.get(0))
                .optional()
        };
        load().map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            action: format!("loading room `{room}`"),
            source,
        })
    }

    /// The ids of stored rooms in `query`'s range, in one query that walks the primary key's
    /// index from the first id in range to the first past the prefix (or to `limit` ids).
    pub(crate) fn rooms(&self, query: &RoomsQuery) -> Result<Vec<String>, StoreError> {
        let prefix = query.prefix.as_str();
        // TEXT compares as bytes (collation BINARY), which is the order of Rust's `str`.
        let (lower_op, lower) = match query.after.as_deref() {
            Some(after) if after >= prefix => (">", after),
            _ => (">=", prefix),
        };
        let mut sql = format!("SELECT room FROM snapshots WHERE room {lower_op} ?1");
        let mut values = vec![Value::Text(lower.to_owned())];
        if let Some(upper) = prefix_end(prefix) {
            sql.push_str(" AND room < ?2");
            values.push(Value::Text(upper));
        }
        sql.push_str(&format!(" ORDER BY room LIMIT ?{}", values.len() + 1));
        values.push(Value::Integer(
            i64::try_from(query.limit).unwrap_or(i64::MAX),
        ));
        let list = || {
            let mut statement = self.connection.prepare_cached(&sql)?;
            let rooms = statement.query_map(params_from_iter(values), |row| row.get(0))?;
            rooms.collect::<rusqlite::Result<Vec<String>>>()
        };
        list().map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            action: format!("listing rooms starting with `{prefix}`"),
            source,
        })
    }

    /// Applies `writes` in one transaction: all or nothing. A fenced put is written only if no
    /// higher fence is recorded for its room; the others are returned.
    pub(crate) fn write(&self, writes: &[Write<'_>]) -> Result<Vec<FencedOut>, StoreError> {
        let now = sql_ms(unix_ms());
        let mut room = None;
        let mut write = || -> rusqlite::Result<Vec<FencedOut>> {
            let transaction = self.connection.unchecked_transaction()?;
            let mut fenced_out = Vec::new();
            for (index, write) in writes.iter().enumerate() {
                room = Some(write.room());
                match *write {
                    Write::Put {
                        room,
                        bytes,
                        fence: Some(fence),
                    } => {
                        // Fences come from a Redis counter (at most i64::MAX).
                        let fence = i64::try_from(fence).unwrap_or(i64::MAX);
                        let written = transaction
                            .prepare_cached(
                                "INSERT INTO snapshots (room, saved_at, bytes, fence)
                                 VALUES (?1, ?2, ?3, ?4)
                                 ON CONFLICT (room) DO UPDATE
                                 SET saved_at = excluded.saved_at, bytes = excluded.bytes,
                                     fence = excluded.fence
                                 WHERE snapshots.fence IS NULL OR snapshots.fence <= excluded.fence",
                            )?
                            .execute(params![room, now, bytes, fence])?;
                        if written == 0 {
                            let current: Option<i64> = transaction
                                .prepare_cached("SELECT fence FROM snapshots WHERE room = ?1")?
                                .query_row([room], |row| row.get(0))?;
                            let current = current.and_then(|c| u64::try_from(c).ok());
                            fenced_out.push(FencedOut { index, current });
                        }
                    }
                    Write::Put {
                        room,
                        bytes,
                        fence: None,
                    } => {
                        transaction
                            .prepare_cached(
                                "INSERT INTO snapshots (room, saved_at, bytes) VALUES (?1, ?2, ?3)
                                 ON CONFLICT (room) DO UPDATE
                                 SET saved_at = excluded.saved_at, bytes = excluded.bytes",
                            )?
                            .execute(params![room, now, bytes])?;
                    }
                    Write::Delete { room } => {
                        transaction
                            .prepare_cached("DELETE FROM snapshots WHERE room = ?1")?
                            .execute([room])?;
                    }
                    Write::Quarantine {
                        room,
                        unix_ms,
                        bytes,
                    } => {
                        transaction
                            .prepare_cached(
                                "INSERT INTO corrupt_snapshots (room, saved_at, bytes)
                                 VALUES (?1, ?2, ?3)",
                            )?
                            .execute(params![room, sql_ms(unix_ms), bytes])?;
                    }
                }
            }
            room = None;
            transaction.commit()?;
            Ok(fenced_out)
        };
        write().map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            action: match room {
                Some(room) => format!("writing room `{room}` (in a batch of {})", writes.len()),
                None => format!("committing a batch of {} writes", writes.len()),
            },
            source,
        })
    }
}

/// The least string above every string that starts with `prefix` (`None` if there is none, as
/// for ""): `prefix` with its last character incremented, dropping trailing `char::MAX`es.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut end = prefix.to_owned();
    while let Some(last) = end.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            last => char::from_u32(u32::from(last) + 1),
        };
        if let Some(next) = next {
            end.push(next);
            return Some(end);
        }
    }
    None
}

/// SQLite integers are signed.
fn sql_ms(unix_ms: u64) -> i64 {
    i64::try_from(unix_ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_string_past_the_prefix() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("ab"), Some("ac".into()));
        assert_eq!(prefix_end("a_"), Some("a`".into()));
        assert_eq!(prefix_end("a\u{D7FF}"), Some("a\u{E000}".into()));
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }
}
