//! The server under test: a `ws://` URL on this machine, and the room URLs below it.

use anyhow::{bail, Context};
use std::fmt;
use std::net::IpAddr;

/// A `ws://` URL whose host is loopback (`localhost`, `127.x.x.x` or `[::1]`); rooms are at
/// `<url>/ws/<room>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    base: String,
}

impl ServerUrl {
    /// Checks `url`. The bench only loads servers on this machine, so other hosts are refused.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("ws://") else {
            bail!("`{url}` is not a ws:// URL (try ws://127.0.0.1:8080)");
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let host = if let Some(bracketed) = authority.strip_prefix('[') {
            bracketed
                .split_once(']')
                .map(|(host, _)| host)
                .with_context(|| format!("`{url}` has an unclosed `[`"))?
        } else {
            authority.split(':').next().unwrap_or_default()
        };
        if !is_loopback(host) {
            bail!("`{url}` is not on this machine: the bench only loads loopback servers (localhost, 127.0.0.1, [::1])");
        }
        Ok(ServerUrl {
            base: url.trim_end_matches('/').to_string(),
        })
    }

    /// The WebSocket URL of `room`.
    pub fn room(&self, room: &str) -> String {
        format!("{}/ws/{room}", self.base)
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_room_urls() {
        let url = ServerUrl::parse("ws://127.0.0.1:8080").unwrap();
        assert_eq!(url.room("a-1"), "ws://127.0.0.1:8080/ws/a-1");
        let url = ServerUrl::parse("ws://localhost:9000/").unwrap();
        assert_eq!(url.room("b"), "ws://localhost:9000/ws/b");
        let url = ServerUrl::parse("ws://[::1]:9000").unwrap();
        assert_eq!(url.room("c"), "ws://[::1]:9000/ws/c");
        assert!(ServerUrl::parse("ws://127.8.9.10").is_ok());
    }

    #[test]
    fn refuses_other_hosts_and_schemes() {
        for url in [
            "ws://10.0.0.1:8080",
            "ws://example.com:8080",
            "ws://[2001:db8::1]:80",
            "ws://[::1",
            "wss://127.0.0.1:8080",
            "http://127.0.0.1:8080",
            "127.0.0.1:8080",
            "ws://",
        ] {
            assert!(ServerUrl::parse(url).is_err(), "{url}");
        }
    }
}
