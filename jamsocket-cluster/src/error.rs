use std::time::Duration;

/// What went wrong in a cluster's directory. Urls in messages have their password replaced by
/// `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The url is not a Redis url this crate can use.
    #[error("unsupported cluster directory `{url}`: {reason}")]
    BadUrl {
        /// The url as given (password hidden).
        url: String,
        /// What is wrong with it and what would work.
        reason: String,
    },
    /// A setting of [`ClusterConfig`](crate::ClusterConfig) is out of range.
    #[error("invalid cluster setting: {reason}")]
    BadConfig {
        /// Which setting, its value, and what is allowed.
        reason: String,
    },
    /// Redis failed or could not be reached.
    #[error("cluster directory `{url}`: {action} failed")]
    Redis {
        /// The url (password hidden).
        url: String,
        /// What the node was doing, naming the room or node.
        action: String,
        /// The Redis client's error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis did not answer in time.
    #[error("cluster directory `{url}`: {action} timed out after {after:?}")]
    Timeout {
        /// The url (password hidden).
        url: String,
        /// What the node was doing, naming the room or node.
        action: String,
        /// How long it waited.
        after: Duration,
    },
    /// This node does not hold a lease (its node key is gone, or its heartbeats failed), so it
    /// may not claim rooms. It registers again by itself: see [`Health`](crate::Health).
    #[error("node `{node}` is not live in cluster `{url}` (its lease is lost): room `{room}` was not claimed")]
    NotLive {
        /// The url (password hidden).
        url: String,
        /// This node's id.
        node: String,
        /// The room it tried to claim.
        room: String,
    },
    /// This node has [left](crate::Cluster::leave) the cluster.
    #[error("node `{node}` has left cluster `{url}`")]
    Left {
        /// The url (password hidden).
        url: String,
        /// This node's last id.
        node: String,
    },
    /// A node's registration holds something this crate did not write.
    #[error("cluster directory `{url}`: node key `{key}` is unreadable: {reason}")]
    Corrupt {
        /// The url (password hidden).
        url: String,
        /// The Redis key.
        key: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The cluster's background thread could not be started.
    #[error("cluster directory `{url}`: cannot start the cluster thread")]
    Thread {
        /// The url (password hidden).
        url: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The cluster's background thread stopped.
    #[error("cluster directory `{url}` is unavailable: {reason}")]
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
        let mut shown = self.0.to_string();
        write!(f, "{shown}")?;
        let mut source = self.0.source();
        while let Some(error) = source {
            // The Redis client's errors repeat their source's message: show it once.
            let text = error.to_string();
            if !shown.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_url_and_the_room() {
        let error = ClusterError::NotLive {
            url: "redis://:***@h:1/0".into(),
            node: "a-0000abcd".into(),
            room: "lobby".into(),
        };
        assert_eq!(
            error.to_string(),
            "node `a-0000abcd` is not live in cluster `redis://:***@h:1/0` (its lease is lost): \
             room `lobby` was not claimed"
        );
        let error = ClusterError::Redis {
            url: "redis://h:1/0".into(),
            action: "claiming room `lobby`".into(),
            source: redis::RedisError::from((redis::ErrorKind::Io, "connection refused")),
        };
        let text = ErrorChain(&error).to_string();
        assert!(
            text.starts_with("cluster directory `redis://h:1/0`: claiming room `lobby` failed: "),
            "{text}"
        );
    }
}
