//! The directory's Redis keys and values (described in the crate docs), and node ids.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Node keys start with this; the scripts build an owner's node key from it.
pub(crate) const NODE_PREFIX: &str = "jamsocket:node:";
/// The set of registered node ids.
pub(crate) const NODES_KEY: &str = "jamsocket:nodes";
/// The counter that gives fencing tokens.
pub(crate) const FENCE_KEY: &str = "jamsocket:fence";
/// The secret a node shows to open a link to another (set once, by the first node to register).
pub(crate) const LINK_SECRET_KEY: &str = "jamsocket:link-secret";

/// A candidate link secret: 32 random hex digits.
pub(crate) fn new_link_secret() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `jamsocket:node:<node_id>`: the node's [`NodeInfo`], with a TTL.
pub(crate) fn node_key(node: &str) -> String {
    format!("{NODE_PREFIX}{node}")
}

/// `jamsocket:owner:<room>`: `"<node_id> <fence>"`, without TTL.
pub(crate) fn owner_key(room: &str) -> String {
    format!("jamsocket:owner:{room}")
}

/// `jamsocket:fence:<room>`: the highest fence the room's snapshots were written with, which
/// the snapshot store (`jamsocket-store`) records. A claim's new fence exceeds it, so that fences
/// never go backwards, even after Redis lost the counter.
pub(crate) fn written_fence_key(room: &str) -> String {
    format!("jamsocket:fence:{room}")
}

/// A new node id: `<name>-<8 random hex digits>`.
pub(crate) fn new_node_id(name: &str) -> String {
    format!("{name}-{:08x}", rand::random::<u32>())
}

/// Why `name` cannot start node ids, if it cannot: ids end up in owner values, which a space
/// separates from the fence, and in logs.
pub(crate) fn check_node_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the node name is empty".into());
    }
    if name.len() > MAX_NODE_NAME_BYTES {
        return Err(format!(
            "the node name `{name}` is {} bytes long; at most {MAX_NODE_NAME_BYTES} are allowed",
            name.len()
        ));
    }
    if let Some(bad) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the node name `{name}` contains {bad:?}: spaces and control characters are not \
             allowed"
        ));
    }
    Ok(())
}

/// The longest node name accepted.
const MAX_NODE_NAME_BYTES: usize = 200;

/// What a node key holds, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeInfo {
    /// The address other nodes reach it at (`host:port`).
    pub(crate) advertise: String,
    /// How many rooms it runs.
    pub(crate) rooms: u64,
    /// When this node id was registered (Unix ms).
    pub(crate) started_ms: u64,
    /// When this value was written (Unix ms).
    pub(crate) heartbeat_ms: u64,
}

impl NodeInfo {
    pub(crate) fn to_json(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn from_json(json: &str) -> Result<NodeInfo, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values() {
        assert_eq!(node_key("a-0000000f"), "jamsocket:node:a-0000000f");
        assert_eq!(owner_key("lobby"), "jamsocket:owner:lobby");
    }

    #[test]
    fn node_ids_are_the_name_and_eight_hex_digits() {
        let id = new_node_id("127.0.0.1:9101");
        let (name, suffix) = id.rsplit_once('-').unwrap();
        assert_eq!(name, "127.0.0.1:9101");
        assert_eq!(suffix.len(), 8);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_ne!(new_node_id("n"), new_node_id("n"));
    }

    #[test]
    fn node_names_without_spaces() {
        assert!(check_node_name("node").is_ok());
        assert!(check_node_name("10.0.0.1:9101").is_ok());
        assert!(check_node_name("").unwrap_err().contains("empty"));
        assert!(check_node_name("a b").unwrap_err().contains("' '"));
        assert!(check_node_name("a\nb").is_err());
        assert!(check_node_name(&"x".repeat(201))
            .unwrap_err()
            .contains("201 bytes"));
    }

    #[test]
    fn node_info_json() {
        let info = NodeInfo {
            advertise: "127.0.0.1:9101".into(),
            rooms: 12,
            started_ms: 1,
            heartbeat_ms: 2,
        };
        assert_eq!(
            info.to_json(),
            r#"{"advertise":"127.0.0.1:9101","rooms":12,"started_ms":1,"heartbeat_ms":2}"#
        );
        assert_eq!(NodeInfo::from_json(&info.to_json()), Ok(info));
        assert!(NodeInfo::from_json("{}").is_err());
    }
}
