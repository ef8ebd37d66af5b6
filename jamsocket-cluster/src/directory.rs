//! The directory's operations in Redis: registering and renewing a node, claiming and looking up
//! rooms, and re-asserting owners after Redis lost them (the last three are the Lua scripts of
//! [`scripts`](crate::scripts), so each is atomic). One
//! multiplexed connection that reconnects by itself; every operation has a time limit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisResult;

use crate::keys::{
    new_link_secret, node_key, owner_key, written_fence_key, NodeInfo, FENCE_KEY, LINK_SECRET_KEY,
    NODES_KEY, NODE_PREFIX,
};
use crate::scripts::{CLAIM, OWNER, REASSERT};
use crate::{ClusterError, Owner};

/// What a claim found.
#[derive(Debug)]
pub(crate) enum ClaimReply {
    /// The room is the claiming node's, with this fence.
    Mine(u64),
    /// Another live node owns it.
    Elsewhere(Owner),
    /// The claiming node's key is gone: it may not claim.
    NotLive,
}

/// What re-asserting a batch of rooms found.
#[derive(Debug)]
pub(crate) enum Reasserted {
    /// Done; these rooms (indices into the batch) now belong to other nodes.
    Done { taken: Vec<usize> },
    /// The node's key is gone again.
    NodeGone,
}

/// A connection to a cluster's directory.
#[derive(Clone)]
pub(crate) struct Directory {
    connection: ConnectionManager,
    /// The url as shown in errors (password hidden).
    shown_url: Arc<str>,
}

impl Directory {
    /// Connects to `url` within `limit`. Requests time out after `limit` too (the callers set
    /// tighter limits where they need them). Must run inside the cluster thread's runtime (the
    /// connection's reconnecting task is spawned there).
    pub(crate) async fn open(
        url: &str,
        shown_url: &str,
        limit: Duration,
    ) -> Result<Directory, ClusterError> {
        let client = client(url, shown_url)?;
        // A request to a server that is down fails fast instead of waiting out many reconnection
        // attempts: heartbeats must fail within their time limit to be retried.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(limit))
            .set_response_timeout(Some(limit))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let directory = Directory {
            connection: ConnectionManager::new_lazy_with_config(client, config).map_err(
                |source| ClusterError::Redis {
                    url: shown_url.to_owned(),
                    action: "connecting".into(),
                    source,
                },
            )?,
            shown_url: shown_url.into(),
        };
        let mut connection = directory.connection.clone();
        let ping = async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        directory.run(|| "connecting".into(), limit, ping).await?;
        Ok(directory)
    }

    /// Registers `node` with a lease of `ttl`, and adds it to the set of nodes. With `fresh`,
    /// only if no node of that id exists (`SET NX`). Returns whether the node key was written,
    /// and the cluster's link secret (set here if Redis had none).
    pub(crate) async fn register(
        &self,
        node: &str,
        info: &NodeInfo,
        ttl: Duration,
        fresh: bool,
        limit: Duration,
    ) -> Result<(bool, String), ClusterError> {
        let mut set = redis::cmd("SET");
        set.arg(node_key(node))
            .arg(info.to_json())
            .arg("PX")
            .arg(ttl_ms(ttl));
        if fresh {
            set.arg("NX");
        }
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .add_command(set)
            .sadd(NODES_KEY, node)
            .ignore()
            .cmd("SET")
            .arg(LINK_SECRET_KEY)
            .arg(new_link_secret())
            .arg("NX")
            .ignore()
            .get(LINK_SECRET_KEY);
        let mut connection = self.connection.clone();
        let query = async move {
            let (written, secret): (Option<String>, String) =
                pipeline.query_async(&mut connection).await?;
            Ok((written.is_some(), secret))
        };
        self.run(|| format!("registering node `{node}`"), limit, query)
            .await
    }

    /// Renews the lease of `node` if its key exists (`SET XX`); returns whether it existed.
    pub(crate) async fn renew(
        &self,
        node: &str,
        info: &NodeInfo,
        ttl: Duration,
        limit: Duration,
    ) -> Result<bool, ClusterError> {
        let mut set = redis::cmd("SET");
        set.arg(node_key(node))
            .arg(info.to_json())
            .arg("PX")
            .arg(ttl_ms(ttl))
            .arg("XX");
        let mut connection = self.connection.clone();
        let query = async move {
            let written: Option<String> = set.query_async(&mut connection).await?;
            Ok(written.is_some())
        };
        self.run(
            || format!("renewing the lease of node `{node}`"),
            limit,
            query,
        )
        .await
    }

    /// Removes `node`: its key and its entry in the set of nodes.
    pub(crate) async fn deregister(&self, node: &str, limit: Duration) -> Result<(), ClusterError> {
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .del(node_key(node))
            .ignore()
            .srem(NODES_KEY, node)
            .ignore();
        let mut connection = self.connection.clone();
        let query = async move { pipeline.query_async::<()>(&mut connection).await };
        self.run(|| format!("deregistering node `{node}`"), limit, query)
            .await
    }

    /// Claims `room` for `node` (see [`CLAIM`](crate::scripts::CLAIM)).
    pub(crate) async fn claim(
        &self,
        node: &str,
        room: &str,
        limit: Duration,
    ) -> Result<ClaimReply, ClusterError> {
        let query = || {
            let mut invocation = CLAIM.prepare_invoke();
            invocation
                .key(node_key(node))
                .key(owner_key(room))
                .key(FENCE_KEY)
                .key(written_fence_key(room))
                .arg(node)
                .arg(NODE_PREFIX);
            let mut connection = self.connection.clone();
            async move { invocation.invoke_async(&mut connection).await }
        };
        // Sent again if the connection broke: a second claim of the same room by the same node
        // answers what the first did.
        let action = || format!("claiming room `{room}`");
        let answer: Vec<String> = self.run_twice(action, limit, query).await?;
        match answer.as_slice() {
            [lost] if lost == "lost" => Ok(ClaimReply::NotLive),
            [mine, fence] if mine == "mine" => Ok(ClaimReply::Mine(self.fence(room, fence)?)),
            [elsewhere, node, fence, info] if elsewhere == "elsewhere" => Ok(
                ClaimReply::Elsewhere(self.owner_of(room, node, fence, info)?),
            ),
            _ => Err(self.unexpected(room, &answer)),
        }
    }

    /// The live owner of `room`, if it has one (see [`OWNER`](crate::scripts::OWNER)).
    pub(crate) async fn owner(
        &self,
        room: &str,
        limit: Duration,
    ) -> Result<Option<Owner>, ClusterError> {
        let query = || {
            let mut invocation = OWNER.prepare_invoke();
            invocation.key(owner_key(room)).arg(NODE_PREFIX);
            let mut connection = self.connection.clone();
            async move { invocation.invoke_async(&mut connection).await }
        };
        let action = || format!("looking up the owner of room `{room}`");
        let answer: Option<Vec<String>> = self.run_twice(action, limit, query).await?;
        match answer.as_deref() {
            None => Ok(None),
            Some([node, fence, info]) => Ok(Some(self.owner_of(room, node, fence, info)?)),
            Some(other) => Err(self.unexpected(room, other)),
        }
    }

    /// Re-asserts `rooms` (room, fence) for `node` (see [`REASSERT`](crate::scripts::REASSERT)).
    pub(crate) async fn reassert(
        &self,
        node: &str,
        rooms: &[(String, u64)],
        limit: Duration,
    ) -> Result<Reasserted, ClusterError> {
        let mut invocation = REASSERT.prepare_invoke();
        invocation.key(node_key(node)).key(FENCE_KEY).arg(node);
        for (room, fence) in rooms {
            invocation.key(owner_key(room)).arg(fence.to_string());
        }
        let mut connection = self.connection.clone();
        let query = async move { invocation.invoke_async(&mut connection).await };
        let action = || format!("re-asserting {} rooms of node `{node}`", rooms.len());
        let answer: Vec<String> = self.run(action, limit, query).await?;
        match answer.split_first() {
            Some((lost, [])) if lost == "lost" => Ok(Reasserted::NodeGone),
            Some((ok, taken)) if ok == "ok" => {
                let taken = taken.iter().filter_map(|i| i.parse().ok());
                let taken = taken.filter(|&i| i < rooms.len()).collect();
                Ok(Reasserted::Done { taken })
            }
            _ => Err(ClusterError::Unavailable {
                url: self.shown_url.to_string(),
                reason: format!("re-asserting rooms got an unexpected answer {answer:?}"),
            }),
        }
    }

    /// Runs `query` within `limit`, naming `action` if it fails.
    async fn run<T>(
        &self,
        action: impl FnOnce() -> String,
        limit: Duration,
        query: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(limit, query).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(ClusterError::Redis {
                url: self.shown_url.to_string(),
                action: action(),
                source,
            }),
            Err(_) => Err(ClusterError::Timeout {
                url: self.shown_url.to_string(),
                action: action(),
                after: limit,
            }),
        }
    }

    /// Like [`run`](Directory::run), but sends an idempotent `query` a second time if the
    /// connection broke (the first request after Redis restarted fails so, and reconnects).
    async fn run_twice<T, F>(
        &self,
        action: impl FnOnce() -> String,
        limit: Duration,
        mut query: impl FnMut() -> F,
    ) -> Result<T, ClusterError>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let twice = async {
            match query().await {
                Err(error) if error.is_io_error() || error.is_connection_dropped() => query().await,
                answer => answer,
            }
        };
        self.run(action, limit, twice).await
    }

    fn fence(&self, room: &str, fence: &str) -> Result<u64, ClusterError> {
        fence.parse().map_err(|_| ClusterError::Unavailable {
            url: self.shown_url.to_string(),
            reason: format!("the fence of room `{room}` is not a number: {fence:?}"),
        })
    }

    fn owner_of(
        &self,
        room: &str,
        node: &str,
        fence: &str,
        info: &str,
    ) -> Result<Owner, ClusterError> {
        let info = NodeInfo::from_json(info).map_err(|reason| ClusterError::Corrupt {
            url: self.shown_url.to_string(),
            key: node_key(node),
            reason,
        })?;
        Ok(Owner {
            node: node.to_owned(),
            advertise: info.advertise,
            fence: self.fence(room, fence)?,
        })
    }

    fn unexpected(&self, room: &str, answer: &[String]) -> ClusterError {
        ClusterError::Unavailable {
            url: self.shown_url.to_string(),
            reason: format!("the directory's answer about room `{room}` is unexpected: {answer:?}"),
        }
    }
}

/// `ttl` in whole milliseconds, at least 1 (`PX 0` is an error).
fn ttl_ms(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

/// A client of the Redis at `url` (`shown_url` in errors); TLS urls are refused.
pub(crate) fn client(url: &str, shown_url: &str) -> Result<redis::Client, ClusterError> {
    if url.starts_with("rediss://") {
        return Err(ClusterError::BadUrl {
            url: shown_url.to_owned(),
            reason: "rediss:// (TLS) is not built into jamsocket-cluster: use redis:// on a \
                     private network or through a TLS tunnel"
                .into(),
        });
    }
    redis::Client::open(url).map_err(|e| ClusterError::BadUrl {
        url: shown_url.to_owned(),
        reason: e.to_string(),
    })
}
