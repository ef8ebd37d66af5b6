use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::keys::check_node_name;
use crate::node_thread::{self, NodeSettings, Request, Shared};
use crate::{ClusterConfig, ClusterError, NodeStatus};
use jamsocket_store::redact_url as redact;

/// Whether a room may run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node owns the room, with this fencing token: the room's saves carry it.
    Mine {
        /// The fencing token, larger than that of every earlier owner.
        fence: u64,
    },
    /// Another live node owns it.
    Elsewhere(Owner),
}

/// The node that owns a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its node id.
    pub node: String,
    /// The address other nodes reach it at (`host:port`).
    pub advertise: String,
    /// The fencing token it got for the room.
    pub fence: u64,
}

/// Whether this node holds a lease on the cluster.
///
/// A node turns [`Lost`](Health::Lost) when its heartbeats have failed for two thirds of its
/// ttl: it must then stop every room at once, before its lease can expire and another node
/// take them. It registers again by itself, under a new node id, and turns
/// [`Live`](Health::Live). A watcher that only reads the latest value could miss a short
/// `Lost`: the node id changes with every `Lost`, so a changed [`Cluster::node_id`] means the
/// same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Registered, with heartbeats renewing the lease: rooms may run here.
    Live,
    /// The lease is lost: no room may run here.
    Lost,
}

/// A handle on this node's membership of a cluster: cheap to clone, usable from any thread and
/// any async runtime (requests go to the cluster thread and come back over oneshot channels).
///
/// Dropping every handle without [`leave`](Cluster::leave) stops the heartbeats, as if the
/// node had died: its rooms are free once its lease expires.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    requests: mpsc::UnboundedSender<Request>,
    health: watch::Receiver<Health>,
    taken: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl Cluster {
    /// Connects to Redis, registers this node (a node id `<name>-<8 random hex>`), and starts
    /// its heartbeats on a thread named "jamsocket-cluster". Blocks until the node is
    /// registered; fails within a few seconds if Redis is unreachable.
    pub fn join(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        let shown_url = redact(&config.url);
        if !config.url.starts_with("redis://") && !config.url.starts_with("rediss://") {
            return Err(ClusterError::BadUrl {
                url: shown_url,
                reason: "use redis://[:PASSWORD@]HOST:PORT/DB".into(),
            });
        }
        let bad = |reason| ClusterError::BadConfig { reason };
        if config.node_ttl < ClusterConfig::MIN_NODE_TTL {
            return Err(bad(format!(
                "the node ttl {:?} is shorter than the minimum of {:?}",
                config.node_ttl,
                ClusterConfig::MIN_NODE_TTL
            )));
        }
        check_node_name(&config.node_name).map_err(bad)?;
        if config.advertise.is_empty() || config.advertise.contains(char::is_whitespace) {
            return Err(bad(format!(
                "the advertised address `{}` must be a `host:port` without spaces",
                config.advertise
            )));
        }
        let started = node_thread::start(NodeSettings {
            url: config.url,
            shown_url,
            advertise: config.advertise,
            ttl: config.node_ttl,
            name: config.node_name,
        })?;
        Ok(Cluster {
            inner: Arc::new(Inner {
                shared: started.shared,
                requests: started.requests,
                health: started.health,
                taken: Mutex::new(Some(started.taken)),
            }),
        })
    }

    /// This node's current id (a new one after every [`Health::Lost`]).
    pub fn node_id(&self) -> String {
        self.inner.shared.node_id()
    }

    /// The address other nodes reach this one at.
    pub fn advertise(&self) -> &str {
        &self.inner.shared.advertise
    }

    /// The secret this node shows to open a link to another node of the cluster, and asks of
    /// links to it: whoever can read the directory is a member. Set by the first node to
    /// register (and again if Redis loses it).
    pub fn link_secret(&self) -> String {
        self.inner.shared.link_secret()
    }

    /// How long this node's lease lasts without renewal.
    pub fn node_ttl(&self) -> Duration {
        self.inner.shared.ttl
    }

    /// Claims `room` for this node, atomically: if this node owns it, [`Claim::Mine`] with its
    /// fence; if another live node owns it, [`Claim::Elsewhere`]; otherwise (no owner, or its
    /// owner's lease expired) this node takes it with a new, larger fence.
    ///
    /// Refused with [`ClusterError::NotLive`] while this node holds no lease. A room claimed
    /// [`Mine`](Claim::Mine) stays this node's until [`forget`](Cluster::forget),
    /// [`leave`](Cluster::leave), a lost lease, or a report on
    /// [`taken_rooms`](Cluster::taken_rooms).
    pub async fn claim(&self, room: &str) -> Result<Claim, ClusterError> {
        let shared = &self.inner.shared;
        if shared.left.load(Ordering::SeqCst) {
            return Err(self.left());
        }
        if !shared.live.load(Ordering::SeqCst) {
            return Err(shared.not_live(room));
        }
        let (reply, answer) = oneshot::channel();
        self.request(Request::Claim {
            room: room.to_owned(),
            reply,
        })?;
        answer.await.map_err(|_| self.stopped())?
    }

    /// The owner of `room` as recorded, if its node is alive. Writes nothing; works whatever
    /// this node's health.
    pub async fn owner(&self, room: &str) -> Result<Option<Owner>, ClusterError> {
        let (reply, answer) = oneshot::channel();
        self.request(Request::Owner {
            room: room.to_owned(),
            reply,
        })?;
        answer.await.map_err(|_| self.stopped())?
    }

    /// The room no longer runs here (hibernated or closed): forgets it locally, so it is not
    /// re-asserted after Redis loses its keys. Writes nothing: its owner key stays, and this
    /// node gets the room back with the same fence if it claims it again.
    pub fn forget(&self, room: &str) {
        self.inner.shared.forget(room);
    }

    /// How many rooms this node runs, reported in the next heartbeat.
    pub fn set_room_count(&self, rooms: usize) {
        self.inner.shared.room_count.store(rooms, Ordering::Relaxed);
    }

    /// This node's health, as a watch channel whose current value counts as seen. Its
    /// [`changed`](watch::Receiver::changed) fails once the cluster thread has stopped (after
    /// [`leave`](Cluster::leave)).
    pub fn health(&self) -> watch::Receiver<Health> {
        let mut health = self.inner.health.clone();
        health.mark_unchanged();
        health
    }

    /// Whether this node holds a lease now (and has not left).
    pub fn is_live(&self) -> bool {
        let shared = &self.inner.shared;
        shared.live.load(Ordering::SeqCst) && !shared.left.load(Ordering::SeqCst)
    }

    /// The rooms another node took while Redis had lost this node's keys (it restarted without
    /// its data): each must close here. Only the first call gets the receiver; later ones get
    /// `None`.
    pub fn taken_rooms(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        let mut taken = self.inner.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.take()
    }

    /// Deregisters this node (deletes its node key and its entry in the set of nodes): every
    /// room it owned is free at once. Heartbeats stop, whether or not Redis answered. Call it
    /// after the rooms' last snapshots are written. Leaving twice is fine.
    pub async fn leave(&self) -> Result<(), ClusterError> {
        if self.inner.shared.left.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.request(Request::Leave { reply })?;
        answer.await.map_err(|_| self.stopped())?
    }

    /// The nodes registered in the cluster at `url`, sorted by id, for `jamsocket
    /// cluster-status`. Blocking (plain synchronous Redis; fine inside an async runtime for a
    /// one-off command, it needs none). Prunes ids whose node key is gone from the set of nodes.
    pub fn status(url: &str) -> Result<Vec<NodeStatus>, ClusterError> {
        crate::status::list(url)
    }

    fn request(&self, request: Request) -> Result<(), ClusterError> {
        (self.inner.requests)
            .send(request)
            .map_err(|_| self.stopped())
    }

    /// The cluster thread is gone.
    fn stopped(&self) -> ClusterError {
        if self.inner.shared.left.load(Ordering::SeqCst) {
            return self.left();
        }
        ClusterError::Unavailable {
            url: self.inner.shared.url.clone(),
            reason: "the cluster thread stopped".into(),
        }
    }

    fn left(&self) -> ClusterError {
        ClusterError::Left {
            url: self.inner.shared.url.clone(),
            node: self.node_id(),
        }
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.inner.shared;
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id())
            .field("advertise", &shared.advertise)
            .field("url", &shared.url)
            .field("node_ttl", &shared.ttl)
            .field("health", &*self.inner.health.borrow())
            .finish_non_exhaustive()
    }
}
