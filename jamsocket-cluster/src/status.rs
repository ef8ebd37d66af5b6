//! `jamsocket cluster-status`: the registered nodes, read with a plain synchronous connection.

use std::time::Duration;

use crate::keys::{node_key, NodeInfo, NODES_KEY};
use crate::scripts::PRUNE;
use crate::ClusterError;
use jamsocket_store::redact_url as redact;

/// Connecting, and each answer, may take this long.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A registered node, as [`Cluster::status`](crate::Cluster::status) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its node id.
    pub node: String,
    /// The address other nodes reach it at.
    pub advertise: String,
    /// How many rooms it runs, as of its last heartbeat.
    pub rooms: u64,
    /// When this node id was registered (Unix ms).
    pub started_ms: u64,
    /// When its last heartbeat was written (Unix ms, its own clock).
    pub heartbeat_ms: u64,
    /// How long its lease lasts without another heartbeat (`u64::MAX` if its key has no TTL,
    /// which this crate never writes).
    pub expires_in_ms: u64,
}

/// The nodes at `url`, sorted by id; prunes the set's ids whose node key is gone.
pub(crate) fn list(url: &str) -> Result<Vec<NodeStatus>, ClusterError> {
    let shown_url = redact(url);
    let client = crate::directory::client(url, &shown_url)?;
    let failed = |action: &str| {
        let (url, action) = (shown_url.clone(), action.to_owned());
        move |source| ClusterError::Redis {
            url,
            action,
            source,
        }
    };
    let mut connection =
        (client.get_connection_with_timeout(TIMEOUT)).map_err(failed("connecting"))?;
    (connection.set_read_timeout(Some(TIMEOUT))).map_err(failed("connecting"))?;
    (connection.set_write_timeout(Some(TIMEOUT))).map_err(failed("connecting"))?;
    let mut nodes: Vec<String> = (redis::cmd("SMEMBERS").arg(NODES_KEY))
        .query(&mut connection)
        .map_err(failed("listing the nodes"))?;
    nodes.sort();
    let mut pipeline = redis::pipe();
    for node in &nodes {
        pipeline.get(node_key(node)).pttl(node_key(node));
    }
    let answers: Vec<(Option<String>, i64)> = pipeline
        .query(&mut connection)
        .map_err(failed("reading the nodes"))?;
    let mut listed = Vec::new();
    let mut gone = Vec::new();
    for (node, (info, pttl)) in nodes.into_iter().zip(answers) {
        let Some(info) = info else {
            gone.push(node);
            continue;
        };
        let info = NodeInfo::from_json(&info).map_err(|reason| ClusterError::Corrupt {
            url: shown_url.clone(),
            key: node_key(&node),
            reason,
        })?;
        listed.push(NodeStatus {
            node,
            advertise: info.advertise,
            rooms: info.rooms,
            started_ms: info.started_ms,
            heartbeat_ms: info.heartbeat_ms,
            expires_in_ms: match pttl {
                -1 => u64::MAX,
                // -2: it expired between the two reads.
                pttl => u64::try_from(pttl).unwrap_or(0),
            },
        });
    }
    if !gone.is_empty() {
        // Only ids whose key is still absent: a node may have registered again meanwhile.
        let mut prune = PRUNE.prepare_invoke();
        prune.key(NODES_KEY);
        for node in &gone {
            prune.key(node_key(node)).arg(node);
        }
        prune
            .invoke::<u64>(&mut connection)
            .map_err(failed("pruning nodes that are gone"))?;
    }
    Ok(listed)
}
