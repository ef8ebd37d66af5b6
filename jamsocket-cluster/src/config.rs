use std::fmt;
use std::time::Duration;

use jamsocket_store::redact_url as redact;

/// How a node joins a cluster: see [`Cluster::join`](crate::Cluster::join).
#[derive(Clone)]
pub struct ClusterConfig {
    pub(crate) url: String,
    pub(crate) advertise: String,
    pub(crate) node_ttl: Duration,
    pub(crate) node_name: String,
}

impl ClusterConfig {
    /// How long a node's lease lasts without renewal, unless set otherwise.
    pub const DEFAULT_NODE_TTL: Duration = Duration::from_secs(10);
    /// The shortest lease allowed: heartbeats go out every third of it and may take a sixth.
    pub const MIN_NODE_TTL: Duration = Duration::from_secs(1);

    /// The cluster whose directory is the Redis at `url` (`redis://[:PASSWORD@]HOST:PORT/DB`),
    /// for a node that other nodes reach at `advertise` (`host:port`).
    pub fn new(url: impl Into<String>, advertise: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            url: url.into(),
            advertise: advertise.into(),
            node_ttl: Self::DEFAULT_NODE_TTL,
            node_name: "node".into(),
        }
    }

    /// How long this node's lease lasts without renewal (default 10 s, at least 1 s). It is
    /// renewed every third of it; a node that dies loses its rooms after this long.
    #[must_use]
    pub fn with_node_ttl(mut self, ttl: Duration) -> ClusterConfig {
        self.node_ttl = ttl;
        self
    }

    /// What this node's ids start with (default `node`): an id is `<name>-<8 random hex>`,
    /// new with every registration. No spaces or control characters.
    #[must_use]
    pub fn with_node_name(mut self, name: impl Into<String>) -> ClusterConfig {
        self.node_name = name.into();
        self
    }

    /// The lease's length.
    pub fn node_ttl(&self) -> Duration {
        self.node_ttl
    }
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("url", &redact(&self.url))
            .field("advertise", &self.advertise)
            .field("node_ttl", &self.node_ttl)
            .field("node_name", &self.node_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let config = ClusterConfig::new("redis://:secret@h:1/0", "h:9101");
        let shown = format!("{config:?}");
        assert!(shown.contains("redis://:***@h:1/0"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn defaults_and_builders() {
        let config = ClusterConfig::new("redis://h:1/0", "h:9101");
        assert_eq!(config.node_ttl(), Duration::from_secs(10));
        assert_eq!(config.node_name, "node");
        let config = config
            .with_node_ttl(Duration::from_secs(3))
            .with_node_name("edge");
        assert_eq!(config.node_ttl(), Duration::from_secs(3));
        assert_eq!(config.node_name, "edge");
    }
}
