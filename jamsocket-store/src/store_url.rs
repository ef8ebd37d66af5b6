//! The store url: which backend, where, and how it may be shown in logs.

use std::path::PathBuf;

use crate::StoreError;

/// Where snapshots live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreUrl {
    /// A SQLite database file.
    SqliteFile(PathBuf),
    /// A SQLite database in memory, gone with the store (tests).
    SqliteMemory,
    /// A Redis server; the url as given (with its password), for the client.
    Redis(String),
}

const USAGE: &str = "use sqlite:PATH or redis://HOST:PORT/DB";

impl StoreUrl {
    pub(crate) fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let bad = |reason: String| StoreError::BadUrl {
            url: redact(url),
            reason,
        };
        if let Some(path) = url.strip_prefix("sqlite:") {
            if path == ":memory:" {
                return Ok(StoreUrl::SqliteMemory);
            }
            // `sqlite://rel/path` and `sqlite:///abs/path` too, as other tools write them.
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(bad(format!("no path after `sqlite:`: {USAGE}")));
            }
            return Ok(StoreUrl::SqliteFile(PathBuf::from(path)));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            return Ok(StoreUrl::Redis(url.to_owned()));
        }
        Err(bad(USAGE.to_owned()))
    }
}

/// `url` with the password of its user info (`scheme://user:PASSWORD@host`) replaced by `***`:
/// how the store (and the cluster's directory, which shares its Redis) shows a url in logs and
/// errors.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    let password_start = authority_start + colon + 1;
    let password_end = authority_start + at;
    if password_start == password_end {
        return url.to_owned();
    }
    format!("{}***{}", &url[..password_start], &url[password_end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        let file = |p: &str| StoreUrl::SqliteFile(PathBuf::from(p));
        assert_eq!(
            StoreUrl::parse("sqlite:rooms.db").unwrap(),
            file("rooms.db")
        );
        assert_eq!(
            StoreUrl::parse("sqlite:/var/lib/j.db").unwrap(),
            file("/var/lib/j.db")
        );
        assert_eq!(
            StoreUrl::parse("sqlite://data/r.db").unwrap(),
            file("data/r.db")
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///abs/r.db").unwrap(),
            file("/abs/r.db")
        );
        assert_eq!(
            StoreUrl::parse("sqlite::memory:").unwrap(),
            StoreUrl::SqliteMemory
        );
    }

    #[test]
    fn redis_urls_are_kept_whole() {
        for url in ["redis://127.0.0.1:6379/0", "rediss://u:p@host:6380/2"] {
            assert_eq!(StoreUrl::parse(url).unwrap(), StoreUrl::Redis(url.into()));
        }
    }

    #[test]
    fn unknown_schemes_are_refused_with_what_works() {
        let error = StoreUrl::parse("foo:bar").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unsupported store `foo:bar`: use sqlite:PATH or redis://HOST:PORT/DB"
        );
        let error = StoreUrl::parse("sqlite:").unwrap_err().to_string();
        assert!(error.contains("no path after `sqlite:`"), "{error}");
        let error = StoreUrl::parse("postgres://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(error.contains("postgres://u:***@h/db"), "{error}");
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("rediss://u:p@ss@h/0"), "rediss://u:***@h/0");
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(redact("redis://user@h:1/0"), "redis://user@h:1/0");
        assert_eq!(redact("redis://h/0?x=a@b:c"), "redis://h/0?x=a@b:c");
        assert_eq!(redact("sqlite:a:b@c"), "sqlite:a:b@c");
    }
}
