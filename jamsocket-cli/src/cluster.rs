//! `jamsocket serve --cluster`: this server as one node of several sharing a Redis directory;
//! and `jamsocket cluster-status`, which lists the nodes.

use crate::server_args::parse_duration;
use crate::user_error::UserError;
use anyhow::Result;
use jamsocket_server::{Cluster, ClusterConfig};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The cluster flags of `jamsocket serve`.
#[derive(clap::Args, Debug, Default)]
pub struct ClusterArgs {
    /// Join the cluster whose room directory is this Redis (redis://HOST:PORT/DB): each room
    /// lives on one node, other nodes forward its clients there. Rooms are saved in the same
    /// Redis unless --store names another store
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// With --cluster: the address other nodes reach this one at [default: --host and the
    /// port listened on, if --host is one address]
    #[arg(long, value_name = "HOST:PORT", requires = "cluster")]
    pub advertise: Option<String>,
    /// With --cluster: how long this node's lease lasts without renewal (renewed every third
    /// of it); a node that dies loses its rooms to other nodes after this long [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "cluster")]
    pub node_ttl: Option<Duration>,
    /// With --cluster: the name this node's id starts with [default: its advertised address]
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub node_name: Option<String>,
}

impl ClusterArgs {
    /// A room moves between nodes through the store: they must share it. A SQLite file is
    /// each node's own, and no store at all loses a room's state whenever it moves.
    pub fn check_store(&self, store: Option<&str>) -> Result<()> {
        match (&self.cluster, store) {
            (Some(_), Some(store)) if !store.starts_with("redis") => {
                Err(UserError::ClusterStoreNotShared(store.to_string()).into())
            }
            _ => Ok(()),
        }
    }

    /// Joins the cluster, if `--cluster` names one, advertising `addr` (the address listened
    /// on) unless `--advertise` says otherwise.
    pub fn join(&self, addr: SocketAddr) -> Result<Option<Cluster>> {
        let Some(url) = &self.cluster else {
            return Ok(None);
        };
        let advertise = match &self.advertise {
            Some(advertise) => advertise.clone(),
            None if addr.ip().is_unspecified() => {
                return Err(UserError::NoAdvertiseAddress(addr).into())
            }
            None => addr.to_string(),
        };
        let name = self.node_name.clone().unwrap_or_else(|| advertise.clone());
        let mut config = ClusterConfig::new(url.clone(), advertise).with_node_name(name);
        if let Some(ttl) = self.node_ttl {
            config = config.with_node_ttl(ttl);
        }
        let cluster = Cluster::join(config).map_err(|err| {
            anyhow::Error::new(err).context(UserError::BadCluster { url: url.clone() })
        })?;
        Ok(Some(cluster))
    }
}

/// `jamsocket cluster-status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The cluster's Redis (redis://HOST:PORT/DB), as given to `serve --cluster`
    #[arg(long, value_name = "URL")]
    pub cluster: String,
}

/// Prints the nodes registered in the cluster, their addresses, rooms and leases.
pub fn status(args: StatusArgs) -> Result<()> {
    let nodes = Cluster::status(&args.cluster).map_err(|err| {
        anyhow::Error::new(err).context(UserError::BadCluster {
            url: args.cluster.clone(),
        })
    })?;
    if nodes.is_empty() {
        say!("no nodes in the cluster at {}", args.cluster);
        return Ok(());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    say!(
        "{:<32} {:<24} {:>7} {:>10} {:>14} {:>10}",
        "NODE",
        "ADVERTISE",
        "ROOMS",
        "UP",
        "HEARTBEAT",
        "LEASE"
    );
    for node in &nodes {
        say!(
            "{:<32} {:<24} {:>7} {:>10} {:>14} {:>10}",
            node.node,
            node.advertise,
            node.rooms,
            ago(now.saturating_sub(node.started_ms)).trim_end_matches(" ago"),
            ago(now.saturating_sub(node.heartbeat_ms)),
            format!("{:.1}s left", node.expires_in_ms as f64 / 1000.0),
        );
    }
    let rooms: u64 = nodes.iter().map(|node| node.rooms).sum();
    say!("{} nodes, {rooms} rooms", nodes.len());
    Ok(())
}

/// `1.2s ago`, `3m ago`, `2h ago`.
fn ago(ms: u64) -> String {
    match ms {
        0..=59_999 => format!("{:.1}s ago", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m ago", ms / 60_000),
        _ => format!("{}h ago", ms / 3_600_000),
    }
}
