//! Snapshots in a SQLite file: table `snapshots(room, saved_at, bytes)`, quarantined copies in
//! `corrupt_snapshots(room, saved_at, bytes)`; `saved_at` is milliseconds since the Unix epoch.
//! WAL mode with `synchronous=NORMAL`: a commit appends to the log without waiting for the disk
//! (a power cut may lose the last commits, never corrupt the file).

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::backend::{unix_ms, Write};
use crate::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    room TEXT PRIMARY KEY NOT NULL,
    saved_at INTEGER NOT NULL,
    bytes BLOB NOT NULL
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

    /// Applies `writes` in one transaction: all or nothing.
    pub(crate) fn write(&self, writes: &[Write<'_>]) -> Result<(), StoreError> {
        let now = sql_ms(unix_ms());
        let mut room = None;
        let mut write = || {
            let transaction = self.connection.unchecked_transaction()?;
            for write in writes {
                room = Some(write.room());
                match *write {
                    Write::Put { room, bytes } => {
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
            transaction.commit()
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

/// SQLite integers are signed.
fn sql_ms(unix_ms: u64) -> i64 {
    i64::try_from(unix_ms).unwrap_or(i64::MAX)
}
