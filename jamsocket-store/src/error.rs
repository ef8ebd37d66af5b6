use std::path::PathBuf;

/// What went wrong in a snapshot store. Urls in messages have their password replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The url names no store this crate knows, or cannot be parsed.
    #[error("unsupported store `{url}`: {reason}")]
    BadUrl {
        /// The url as given (password hidden).
        url: String,
        /// What is wrong with it and what would work.
        reason: String,
    },
    /// The folder of a SQLite file does not exist (the store does not create folders).
    #[error("cannot open SQLite store `{}`: folder `{}` does not exist", path.display(), folder.display())]
    MissingFolder {
        /// The database file.
        path: PathBuf,
        /// Its folder.
        folder: PathBuf,
    },
    /// SQLite failed.
    #[error("SQLite store `{path}`: {action} failed")]
    Sqlite {
        /// The database file (or `:memory:`).
        path: String,
        /// What the store was doing, naming the room where there is one.
        action: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Redis failed or could not be reached.
    #[error("Redis store `{url}`: {action} failed")]
    Redis {
        /// The url (password hidden).
        url: String,
        /// What the store was doing, naming the room where there is one.
        action: String,
        /// The Redis client's error.
        #[source]
        source: redis::RedisError,
    },
    /// The stored bytes of a room are not a snapshot this crate wrote. They were kept aside (see
    /// [`Snapshots::quarantine`](crate::Snapshots::quarantine)).
    #[error("stored snapshot of room `{room}` is corrupt: {reason}")]
    Corrupt {
        /// The room.
        room: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The store's background thread could not be started.
    #[error("snapshot store `{url}`: cannot start the store thread")]
    Thread {
        /// The url (password hidden).
        url: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The store's background thread has stopped, so nothing can be read.
    #[error("snapshot store `{url}` is unavailable: {reason}")]
    Unavailable {
        /// The url (password hidden).
        url: String,
        /// Why.
        reason: String,
    },
}

/// Formats an error with its chain of sources: `outer: inner: innermost`.
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_value_and_chain_the_source() {
        let error = StoreError::Sqlite {
            path: "data/rooms.db".into(),
            action: "loading room `lobby`".into(),
            source: rusqlite::Error::InvalidQuery,
        };
        let text = ErrorChain(&error).to_string();
        assert!(text.starts_with("SQLite store `data/rooms.db`: loading room `lobby` failed: "));
        assert!(text.len() > "SQLite store `data/rooms.db`: loading room `lobby` failed: ".len());
    }
}
