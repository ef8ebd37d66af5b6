//! This server as a node of a cluster ([`jamsocket_cluster`]): where a client's room lives
//! (here, or on the node that owns it, to which the connection is forwarded), and what this
//! node does when it loses its lease (closes every room before another node may take them).

use crate::close_frame::{code, CloseFrame};
use crate::rooms::{Lease, Rooms};
use crate::routes::AppState;
use crate::sync::lock;
use actix_http::Request;
use jamsocket_cluster::{Claim, Cluster, ClusterError, Health, Owner};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many rooms' owners are remembered; past it, the cache starts over.
const CACHED_OWNERS: usize = 16_384;

/// The owners of rooms that live on other nodes, as the directory last said, so that a node
/// forwarding many clients to a room asks Redis once. An entry goes when the owner answers a
/// forwarded handshake with 503 (the room moved, the owner lost it, or it is leaving), when the
/// owner cannot be reached, or after a node lease ([`Cluster::node_ttl`]). A stale entry costs
/// one refused handshake, never a second instance: the owner checks its own claim.
#[derive(Debug, Default)]
pub(crate) struct OwnerCache {
    owners: Mutex<HashMap<String, (Owner, Instant)>>,
}

impl OwnerCache {
    fn get(&self, room: &str, max_age: Duration) -> Option<Owner> {
        let mut owners = lock(&self.owners);
        match owners.get(room) {
            Some((owner, at)) if at.elapsed() < max_age => Some(owner.clone()),
            Some(_) => {
                owners.remove(room);
                None
            }
            None => None,
        }
    }

    fn insert(&self, room: &str, owner: Owner) {
        let mut owners = lock(&self.owners);
        if owners.len() >= CACHED_OWNERS {
            owners.clear();
        }
        owners.insert(room.to_string(), (owner, Instant::now()));
    }

    /// Forgets `room`'s owner: it refused a forwarded client, or did not answer.
    pub(crate) fn forget(&self, room: &str) {
        lock(&self.owners).remove(room);
    }
}

/// The header a node adds to a handshake it forwards, naming itself. A node never forwards a
/// request that carries it (so a stale directory cannot make requests loop).
pub(crate) const FORWARDED_HEADER: &str = "x-jamsocket-forwarded";

/// Where a handshake's room lives.
#[derive(Debug)]
pub(crate) enum Placement {
    /// Here: the room is open here (no lease), or this node now owns it (with the lease it
    /// opens the room under).
    Here { lease: Option<Lease> },
    /// On another node: the connection is forwarded there.
    Elsewhere(Owner),
}

/// Why this node cannot serve or forward a client's room.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterRefusal {
    #[error(
        "room `{room}` lives on node `{node}`, and this request was already forwarded once \
         (by `{by}`); try again"
    )]
    Loop {
        room: String,
        node: String,
        by: String,
    },
    #[error(
        "room `{room}` still belongs to this node's previous lease (`{node}`), which expires \
         within seconds; try again"
    )]
    EarlierLease { room: String, node: String },
    #[error("room `{room}` exists on node `{node}`")]
    OwnedElsewhere { room: String, node: String },
    #[error("this node cannot place room `{room}`: {source}; try again")]
    Directory {
        room: String,
        #[source]
        source: ClusterError,
    },
    #[error(
        "a node link must show this cluster's link secret (from its Redis): is the node on \
         another cluster's Redis?"
    )]
    LinkSecret,
    #[error("room `{room}` lives on node `{node}` at {advertise}, which did not answer ({cause}); try again")]
    OwnerUnreachable {
        room: String,
        node: String,
        advertise: String,
        cause: String,
    },
}

/// Where the room `room` of this handshake lives: always here without a cluster. Called once
/// the client passed every check this node makes (origin, limits, token, admission hook), so
/// that refused clients never reach the directory.
pub(crate) async fn place(
    state: &AppState,
    request: &Request,
    room: &str,
) -> Result<Placement, ClusterRefusal> {
    let here = Placement::Here { lease: None };
    let Some(cluster) = &state.settings.cluster else {
        return Ok(here);
    };
    if state.rooms.contains(room) {
        return Ok(here);
    }
    let forwarded = request.head().headers().get(FORWARDED_HEADER);
    if forwarded.is_none() {
        if let Some(owner) = state.owners.get(room, cluster.node_ttl()) {
            return Ok(Placement::Elsewhere(owner));
        }
    }
    let directory = |source| ClusterRefusal::Directory {
        room: room.to_string(),
        source,
    };
    let node = cluster.node_id();
    let claim = if state.settings.room_id_strategy.creates_on_connect() {
        cluster.claim(room).await.map_err(directory)?
    } else {
        // Rooms are created by `POST`: connecting only finds them.
        match cluster.owner(room).await.map_err(directory)? {
            Some(owner) if owner.node != cluster.node_id() => Claim::Elsewhere(owner),
            _ => return Ok(here),
        }
    };
    match claim {
        Claim::Mine { fence } => Ok(Placement::Here {
            lease: Some(Lease { fence, node }),
        }),
        Claim::Elsewhere(owner) => {
            // This node's previous incarnation, whose lease has not expired yet.
            let earlier_self = owner.advertise == cluster.advertise();
            if let Some(by) = forwarded {
                return Err(ClusterRefusal::Loop {
                    room: room.to_string(),
                    node: owner.node,
                    by: String::from_utf8_lossy(by.as_bytes()).into_owned(),
                });
            }
            if earlier_self {
                return Err(ClusterRefusal::EarlierLease {
                    room: room.to_string(),
                    node: owner.node,
                });
            }
            state.owners.insert(room, owner.clone());
            Ok(Placement::Elsewhere(owner))
        }
    }
}

/// The lease for a room that a `POST` creates here: `Err` names the node that owns it.
pub(crate) async fn claim_for_creation(
    cluster: Option<&Cluster>,
    room: &str,
) -> Result<Option<Lease>, ClusterRefusal> {
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    let node = cluster.node_id();
    let claim = cluster
        .claim(room)
        .await
        .map_err(|source| ClusterRefusal::Directory {
            room: room.to_string(),
            source,
        })?;
    match claim {
        Claim::Mine { fence } => Ok(Some(Lease { fence, node })),
        Claim::Elsewhere(owner) => Err(ClusterRefusal::OwnedElsewhere {
            room: room.to_string(),
            node: owner.node,
        }),
    }
}

/// Closes this node's rooms whenever it loses its lease, and each room the directory says
/// another node took, so that no room is ever live on two nodes. Runs until the cluster
/// handle's thread stops.
pub(crate) async fn watch(cluster: Cluster, rooms: Rooms) {
    let taken = cluster.taken_rooms().map(|mut taken| {
        let rooms = rooms.clone();
        actix_web::rt::spawn(async move {
            while let Some(room) = taken.recv().await {
                tracing::warn!(room = %room, "another node owns this room now: closing it here");
                let frame = CloseFrame::new(code::SERVICE_RESTART, "room moved to another node");
                rooms.close(&room, frame).await;
            }
        })
    });
    let mut health = cluster.health();
    // Every lost lease ends this node's incarnation: a new id means one was lost, even if the
    // `Lost` it went through was too short to be seen here.
    let mut incarnation = cluster.node_id();
    while health.changed().await.is_ok() {
        let now = *health.borrow_and_update();
        let id = cluster.node_id();
        if now == Health::Lost || id != incarnation {
            tracing::error!(
                rooms = rooms.len(),
                "lost the cluster lease: closing every room before another node may take them"
            );
            let frame = CloseFrame::new(code::SERVICE_RESTART, "node lost its cluster lease");
            rooms.close_all(frame).await;
        }
        if now == Health::Live && id != incarnation {
            tracing::info!(node = %id, "back in the cluster");
            incarnation = id;
        }
    }
    // The directory's thread stopped: the node left (its rooms are closed already), or it
    // can no longer renew its lease, which then expires.
    if rooms.len() > 0 {
        tracing::error!(
            rooms = rooms.len(),
            "the cluster's thread stopped: closing every room"
        );
        let frame = CloseFrame::new(code::SERVICE_RESTART, "node lost its cluster lease");
        rooms.close_all(frame).await;
    }
    if let Some(taken) = taken {
        taken.abort();
    }
}
