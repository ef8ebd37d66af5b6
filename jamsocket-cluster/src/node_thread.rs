//! The cluster thread, "jamsocket-cluster": a current-thread tokio runtime that owns the
//! connections to the directory, renews this node's lease, decides its [`Health`], and serves
//! claims and lookups. Callers never run on it and it never runs on theirs: requests arrive over
//! a channel and are answered over oneshot channels, which work from any runtime (or none).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::directory::{ClaimReply, Directory};
use crate::error::ErrorChain;
use crate::keys::{new_node_id, unix_ms, NodeInfo};

mod lease;
use crate::{Claim, ClusterError, Health, Owner};

/// Joining (connecting and registering) gives up after this long.
const JOIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Claims, lookups and leaving give up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A registration with a random id that exists already is retried this many times.
const REGISTRATION_ATTEMPTS: usize = 3;
/// At most this many rooms are re-asserted per script call.
const REASSERT_BATCH: usize = 500;

/// A request to the cluster thread.
pub(crate) enum Request {
    Claim {
        room: String,
        reply: oneshot::Sender<Result<Claim, ClusterError>>,
    },
    Owner {
        room: String,
        reply: oneshot::Sender<Result<Option<Owner>, ClusterError>>,
    },
    Leave {
        reply: oneshot::Sender<Result<(), ClusterError>>,
    },
}

/// What the handles and the thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The url as shown in logs and errors (password hidden).
    pub(crate) url: String,
    pub(crate) advertise: String,
    pub(crate) ttl: Duration,
    /// The current incarnation and its rooms.
    state: Mutex<NodeState>,
    /// How many rooms the next heartbeat reports.
    pub(crate) room_count: AtomicUsize,
    /// Whether this node holds a lease (mirrors [`Health`]).
    pub(crate) live: AtomicBool,
    /// Whether [`Cluster::leave`](crate::Cluster::leave) was called.
    pub(crate) left: AtomicBool,
    /// The cluster's link secret, as of this node's last registration.
    link_secret: Mutex<String>,
}

/// The current incarnation: its id, and the rooms it claimed and has not forgotten, with their
/// fences (re-asserted if Redis loses them).
#[derive(Debug)]
struct NodeState {
    node_id: String,
    rooms: HashMap<String, u64>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, NodeState> {
        // The lock is never held across code that can panic; recover the data if it was.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn node_id(&self) -> String {
        self.state().node_id.clone()
    }

    pub(crate) fn link_secret(&self) -> String {
        self.link_secret
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the link secret a registration read (Redis may have lost and replaced it).
    pub(crate) fn set_link_secret(&self, secret: String) {
        *self.link_secret.lock().unwrap_or_else(|e| e.into_inner()) = secret;
    }

    pub(crate) fn forget(&self, room: &str) {
        self.state().rooms.remove(room);
    }

    /// Records a claim's answer: a room is this node's only if the incarnation that claimed it
    /// is still the current one and still live.
    fn record_claim(&self, node: &str, room: String, fence: u64) -> bool {
        let mut state = self.state();
        if state.node_id != node || !self.live.load(Ordering::SeqCst) {
            return false;
        }
        state.rooms.insert(room, fence);
        true
    }

    pub(crate) fn not_live(&self, room: &str) -> ClusterError {
        ClusterError::NotLive {
            url: self.url.clone(),
            node: self.node_id(),
            room: room.to_owned(),
        }
    }
}

/// What [`start`] hands to the [`Cluster`](crate::Cluster) handle.
pub(crate) struct Started {
    pub(crate) shared: Arc<Shared>,
    pub(crate) requests: mpsc::UnboundedSender<Request>,
    pub(crate) health: watch::Receiver<Health>,
    pub(crate) taken: mpsc::UnboundedReceiver<String>,
}

/// The settings [`start`] needs, checked.
pub(crate) struct NodeSettings {
    pub(crate) url: String,
    pub(crate) shown_url: String,
    pub(crate) advertise: String,
    pub(crate) ttl: Duration,
    pub(crate) name: String,
}

/// Starts the cluster thread, which connects and registers this node; returns once it is
/// registered.
pub(crate) fn start(settings: NodeSettings) -> Result<Started, ClusterError> {
    let (opened, is_open) = std::sync::mpsc::sync_channel(1);
    let shown_url = settings.shown_url.clone();
    let thread = std::thread::Builder::new().name("jamsocket-cluster".into());
    thread
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(source) => {
                    let url = settings.shown_url;
                    let _ = opened.send(Err(ClusterError::Thread { url, source }));
                    return;
                }
            };
            runtime.block_on(async move {
                let url = settings.shown_url.clone();
                let joined = tokio::time::timeout(JOIN_TIMEOUT, NodeThread::join(settings)).await;
                let joined = joined.unwrap_or_else(|_| {
                    Err(ClusterError::Timeout {
                        url,
                        action: "joining".into(),
                        after: JOIN_TIMEOUT,
                    })
                });
                match joined {
                    Ok((node, started, requests)) => {
                        if opened.send(Ok(started)).is_ok() {
                            node.run(requests).await;
                        }
                    }
                    Err(error) => {
                        let _ = opened.send(Err(error));
                    }
                }
            });
        })
        .map_err(|source| ClusterError::Thread {
            url: shown_url.clone(),
            source,
        })?;
    match is_open.recv() {
        Ok(result) => result,
        Err(_) => Err(ClusterError::Unavailable {
            url: shown_url,
            reason: "the cluster thread stopped while joining".into(),
        }),
    }
}

/// The thread's own state.
struct NodeThread {
    shared: Arc<Shared>,
    /// Registrations, heartbeats, re-assertions and leaving: in order, on one connection.
    beats: Directory,
    /// Claims and lookups, on their own connection, so that a burst of them never delays a
    /// heartbeat.
    lookups: Directory,
    health: watch::Sender<Health>,
    taken: mpsc::UnboundedSender<String>,
    /// What node ids start with.
    name: String,
    /// When the current node id was registered (Unix ms).
    started_ms: u64,
    /// While live: when the last heartbeat that succeeded was sent. The node key lives at
    /// least until then + ttl.
    lease: Option<Instant>,
    /// While live: when the next heartbeat goes out.
    next_beat: Instant,
    /// While lost: when the next registration is tried.
    next_register: Instant,
    /// Redis lost this node's keys and not every room has been re-asserted yet.
    needs_reassert: bool,
    /// Heartbeats (or, while lost, registrations) that failed in a row; only the first is
    /// logged as a warning.
    failures: u32,
}

impl NodeThread {
    /// Connects and registers a new node.
    async fn join(
        settings: NodeSettings,
    ) -> Result<(NodeThread, Started, mpsc::UnboundedReceiver<Request>), ClusterError> {
        let NodeSettings {
            url,
            shown_url,
            advertise,
            ttl,
            name,
        } = settings;
        let beats = Directory::open(&url, &shown_url, ttl / 6).await?;
        let lookups = Directory::open(&url, &shown_url, REQUEST_TIMEOUT).await?;
        let mut attempts = 0;
        let (node, sent, started_ms, secret) = loop {
            let node = new_node_id(&name);
            let started_ms = unix_ms();
            let info = NodeInfo {
                advertise: advertise.clone(),
                rooms: 0,
                started_ms,
                heartbeat_ms: started_ms,
            };
            let sent = Instant::now();
            let (written, secret) = beats.register(&node, &info, ttl, true, ttl / 6).await?;
            if written {
                break (node, sent, started_ms, secret);
            }
            attempts += 1;
            if attempts == REGISTRATION_ATTEMPTS {
                return Err(ClusterError::Unavailable {
                    url: shown_url,
                    reason: format!("{attempts} random node ids for `{name}` were all taken"),
                });
            }
        };
        tracing::info!(
            node = %node, advertise = %advertise, url = %shown_url, ?ttl,
            "registered in the cluster as node `{node}`"
        );
        let shared = Arc::new(Shared {
            url: shown_url,
            advertise,
            ttl,
            state: Mutex::new(NodeState {
                node_id: node,
                rooms: HashMap::new(),
            }),
            room_count: AtomicUsize::new(0),
            live: AtomicBool::new(true),
            left: AtomicBool::new(false),
            link_secret: Mutex::new(secret),
        });
        let (health, health_receiver) = watch::channel(Health::Live);
        let (taken, taken_receiver) = mpsc::unbounded_channel();
        let (requests, request_receiver) = mpsc::unbounded_channel();
        let node = NodeThread {
            shared: shared.clone(),
            beats,
            lookups,
            health,
            taken,
            name,
            started_ms,
            lease: Some(sent),
            next_beat: sent + ttl / 3,
            next_register: sent,
            needs_reassert: false,
            failures: 0,
        };
        let started = Started {
            shared,
            requests,
            health: health_receiver,
            taken: taken_receiver,
        };
        Ok((node, started, request_receiver))
    }

    /// Keeps the lease and serves requests until the node leaves or every handle is dropped.
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
        loop {
            let wake = self.next_wake();
            tokio::select! {
                // Timers first: a flood of requests must not delay a heartbeat.
                biased;
                () = tokio::time::sleep_until(wake) => self.tick().await,
                request = requests.recv() => match request {
                    Some(Request::Leave { reply }) => {
                        let _ = reply.send(self.leave().await);
                        return;
                    }
                    Some(request) => self.serve(request),
                    None => {
                        let node = self.shared.node_id();
                        tracing::info!(
                            node = %node,
                            "every handle of node `{node}` was dropped without leaving the \
                             cluster: heartbeats stop, its rooms are free once its lease expires"
                        );
                        return;
                    }
                },
            }
        }
    }

    /// Serves a claim or lookup on a task of its own.
    fn serve(&self, request: Request) {
        let directory = self.lookups.clone();
        let shared = self.shared.clone();
        match request {
            Request::Claim { room, reply } => {
                if self.lease.is_none() {
                    let _ = reply.send(Err(shared.not_live(&room)));
                    return;
                }
                let node = shared.node_id();
                tokio::spawn(async move {
                    let answer = directory.claim(&node, &room, REQUEST_TIMEOUT).await;
                    let answer = match answer {
                        Ok(ClaimReply::Mine(fence))
                            if shared.record_claim(&node, room.clone(), fence) =>
                        {
                            Ok(Claim::Mine { fence })
                        }
                        Ok(ClaimReply::Mine(_) | ClaimReply::NotLive) => {
                            Err(ClusterError::NotLive {
                                url: shared.url.clone(),
                                node,
                                room,
                            })
                        }
                        Ok(ClaimReply::Elsewhere(owner)) => Ok(Claim::Elsewhere(owner)),
                        Err(error) => Err(error),
                    };
                    let _ = reply.send(answer);
                });
            }
            Request::Owner { room, reply } => {
                tokio::spawn(async move {
                    let _ = reply.send(directory.owner(&room, REQUEST_TIMEOUT).await);
                });
            }
            Request::Leave { reply } => {
                // `run` handles leaving itself.
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Deregisters this node: every room it owned is free at once. Heartbeats stop.
    async fn leave(&mut self) -> Result<(), ClusterError> {
        let node = self.shared.node_id();
        self.shared.left.store(true, Ordering::SeqCst);
        self.shared.live.store(false, Ordering::SeqCst);
        self.lease = None;
        let left = self.beats.deregister(&node, REQUEST_TIMEOUT).await;
        match &left {
            Ok(()) => {
                tracing::info!(node = %node, "node `{node}` left the cluster: its rooms are free")
            }
            Err(error) => tracing::warn!(
                node = %node,
                "node `{node}` could not leave the cluster ({}): its rooms are free once its \
                 lease expires",
                ErrorChain(error)
            ),
        }
        left
    }
}
