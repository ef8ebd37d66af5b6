//! Rooms: the server's table of rooms and what the rest of the server can ask of it (join,
//! create, close, close all, shut down). Nothing here knows about HTTP or WebSocket frames:
//! a client is a pair of queues (messages to it, and the close frame that ends it), and
//! callers translate [`RoomError`] into whatever their protocol says.
//!
//! Each room is one task on the thread that created it ([`room_actor`]), tracked so that
//! shutdown can wait for every room to end. A native room's connections, on the same thread,
//! run its message handlers themselves when the room is free ([`inline`]), so a message wakes
//! no task but its recipients'. Durable rooms (save, evict, restore) plug in where a
//! room's service is built and where an empty room ends; admission decides before
//! [`Rooms::join`] is called, and may veto a room's creation through its callback.

mod inline;
mod opening;
mod outbound_queue;
mod registry;
mod room_actor;
mod room_context;
mod room_event;
mod room_info;
mod room_snapshot;
mod session;

pub(crate) use inline::LocalRoom;
pub(crate) use outbound_queue::{QueueHandle, QueueReceiver};
pub(crate) use registry::{Lease, Locate, RoomHandle, Task, Worker};
pub(crate) use room_context::Outbound;
pub use room_context::RoomContext;
pub(crate) use room_event::{Arrival, RoomEvent};
pub(crate) use room_info::RoomInfo;
pub(crate) use session::Held;
pub(crate) use session::{
    CountError, Delivery, ResumeKey, ResumeKeyError, ACK_EVERY, KEEP_UNACKED,
};

use crate::close_frame::CloseFrame;
use crate::log_throttle::warn_throttled;
use crate::settings::Settings;
use bytes::Bytes;
use jamsocket::{ClientId, JamsocketServiceFactory, Response};
use registry::{NewRoom, RoomRegistry};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// How often a join is retried when the room closes under it (a room that just emptied under
/// the `immediate` policy).
const JOIN_ATTEMPTS: usize = 3;
/// How many generated ids are tried before giving up on finding an unused one.
const NEW_ID_ATTEMPTS: usize = 16;

/// Why a room operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RoomError {
    #[error("room `{room}` is full ({max} clients)")]
    Full { room: String, max: usize },
    #[error("room `{room}` could not be created: {cause}")]
    Unavailable { room: String, cause: String },
    #[error("room `{room}` failed to start: {cause}")]
    Failed { room: String, cause: String },
    /// The room closed while the request was on its way; the caller may retry.
    #[error("room `{room}` closed")]
    Closed { room: String },
    #[error("no room `{room}`")]
    NoSuchRoom { room: String },
    #[error("room `{room}` already exists")]
    Exists { room: String },
    #[error("the server already hosts its limit of {max} rooms")]
    TooManyRooms { max: usize },
    #[error("room `{room}` keeps closing; try again")]
    KeepsClosing { room: String },
    #[error("could not find an unused room id; use a longer `short` id")]
    NoUnusedId,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("the resume key belongs to another user's session in room `{room}`")]
    NotYourSession { room: String },
    #[error("the session in room `{room}` was taken over by another connection with the same resume key")]
    TakenOver { room: String },
    /// (Cluster) the room is no longer this node's; a new connection finds its owner.
    #[error("room `{room}` moved to another node; reconnect")]
    Moved { room: String },
}

/// A client that a room took in: its id, the messages on their way to it, and how the room
/// closes its connection.
#[derive(Debug)]
pub(crate) struct Joined {
    pub room: RoomHandle,
    pub client: ClientId,
    pub delivery: Delivery,
    pub close: oneshot::Receiver<CloseFrame>,
    /// Whether the client resumed an earlier session.
    pub resumed: bool,
    /// How many of the session's messages from the client the room has handled.
    pub received: u64,
}

/// Starts a registered room's task (the factory, type-erased).
type Start = dyn Fn(NewRoom) + Send + Sync;

/// The rooms of one server. Cloning shares them.
#[derive(Clone)]
pub(crate) struct Rooms {
    registry: Arc<RoomRegistry>,
    settings: Arc<Settings>,
    tasks: TaskTracker,
    start: Arc<Start>,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("open", &self.len())
            .field("tasks", &self.tasks)
            .finish_non_exhaustive()
    }
}

impl Rooms {
    /// An empty table whose rooms run services built by `factory`. A room runs on the thread
    /// that creates it, and `locate` says how to reach that thread (for its connections).
    pub(crate) fn new<F: JamsocketServiceFactory<RoomContext>>(
        factory: F,
        settings: Arc<Settings>,
        locate: Locate,
    ) -> Rooms {
        let registry = Arc::new(RoomRegistry::new(settings.limits.max_rooms, locate));
        let tasks = TaskTracker::new();
        let factory = Arc::new(factory);
        let start = {
            let (registry, settings, tasks) = (registry.clone(), settings.clone(), tasks.clone());
            move |new_room| {
                let room = room_actor::run_room(
                    factory.clone(),
                    new_room,
                    registry.clone(),
                    settings.clone(),
                );
                // The room stays on this thread: services need not be `Send`.
                tokio::task::spawn_local(tasks.track_future(room));
            }
        };
        Rooms {
            registry,
            settings,
            tasks,
            start: Arc::new(start),
        }
    }

    /// The settings the rooms run with.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many rooms are open.
    pub(crate) fn len(&self) -> usize {
        self.registry.len()
    }

    /// Whether a room with this id is open.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.registry.get(id).is_some()
    }

    /// Joins the room `id` as `arrival` says (resuming its session if it has one in the
    /// room), creating the room if the room-id strategy creates rooms on connect. In a
    /// cluster, only a `lease` (the directory gave this node the room) creates a room.
    /// `before_create` runs each time a room is about to be created for this client and may
    /// veto it (a per-address creation rate, say). Retries if the room closes while the
    /// request is on its way.
    pub(crate) async fn join<E: From<RoomError>>(
        &self,
        id: &str,
        arrival: Arrival,
        lease: Option<Lease>,
        mut before_create: impl FnMut() -> Result<(), E>,
    ) -> Result<Joined, E> {
        let clustered = self.settings.cluster.is_some();
        let creates =
            self.settings.room_id_strategy.creates_on_connect() && (lease.is_some() || !clustered);
        for _ in 0..JOIN_ATTEMPTS {
            let room = if creates {
                if !self.contains(id) {
                    before_create()?;
                }
                self.registry
                    .get_or_create(id, lease.clone(), &*self.start)
                    .map_err(|err| self.refused(err))?
            } else {
                self.registry.claim(id).ok_or_else(|| match clustered {
                    // It closed on this node since the directory was asked: ask again.
                    true => RoomError::Moved {
                        room: id.to_string(),
                    },
                    false => RoomError::NoSuchRoom {
                        room: id.to_string(),
                    },
                })?
            };
            let (close_tx, close) = oneshot::channel();
            let (reply_tx, reply) = oneshot::channel();
            let join = RoomEvent::Join {
                arrival: arrival.clone(),
                close: close_tx,
                reply: reply_tx,
            };
            if room.events.send(join).await.is_err() {
                // The room ended without deregistering.
                self.registry.remove(id, room.generation);
                continue;
            }
            match reply.await {
                Ok(Ok(admitted)) => {
                    return Ok(Joined {
                        room,
                        client: admitted.client,
                        delivery: admitted.delivery,
                        close,
                        resumed: admitted.resumed,
                        received: admitted.received,
                    })
                }
                Ok(Err(RoomError::Closed { .. })) => continue,
                Ok(Err(err)) => return Err(err.into()),
                Err(_) => {
                    self.registry.remove(id, room.generation);
                    continue;
                }
            }
        }
        Err(RoomError::KeepsClosing {
            room: id.to_string(),
        }
        .into())
    }

    /// Creates the room `id` (holding `lease`, see [`join`](Rooms::join)) and waits until its
    /// service exists.
    pub(crate) async fn create(&self, id: &str, lease: Option<Lease>) -> Result<(), RoomError> {
        let room = self
            .registry
            .create(id, lease, &*self.start)
            .map_err(|err| self.refused(err))?;
        wait_ready(&room, id).await
    }

    /// Creates a room with an id from the room-id strategy and returns the id; `None` if the
    /// strategy generates no ids. `claim` gives each id's lease (see [`join`](Rooms::join))
    /// or refuses it.
    pub(crate) async fn create_with_new_id<E: From<RoomError>>(
        &self,
        mut claim: impl AsyncFnMut(&str) -> Result<Option<Lease>, E>,
    ) -> Option<Result<String, E>> {
        let strategy = self.settings.room_id_strategy;
        strategy.generate()?;
        for _ in 0..NEW_ID_ATTEMPTS {
            let id = strategy.generate()?;
            let lease = match claim(&id).await {
                Ok(lease) => lease,
                Err(err) => return Some(Err(err)),
            };
            match self.create(&id, lease).await {
                Ok(()) => return Some(Ok(id)),
                Err(RoomError::Exists { .. }) => {}
                Err(err) => return Some(Err(err.into())),
            }
        }
        Some(Err(RoomError::NoUnusedId.into()))
    }

    /// Closes the room `id`: its clients get `frame` and its service is dropped. `false` if
    /// there is no such room.
    pub(crate) async fn close(&self, id: &str, frame: CloseFrame) -> bool {
        let Some(room) = self.registry.get(id) else {
            return false;
        };
        room.close(frame).await;
        true
    }

    /// One page of open rooms (ids starting with `prefix`, after `after`, in id order, at most
    /// `limit`), described by the rooms themselves, and the id the next page starts after
    /// (`None` on the last page). A room that closes meanwhile is left out.
    pub(crate) async fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<RoomInfo>, Option<String>) {
        // One more than asked tells whether there is a next page.
        let mut rooms = self.registry.page(prefix, after, limit + 1);
        let next = (rooms.len() > limit).then(|| {
            rooms.truncate(limit);
            rooms.last().map(|(id, _)| id.to_string())
        });
        let infos =
            futures_util::future::join_all(rooms.iter().map(|(_, room)| inspect(room, false)))
                .await;
        (infos.into_iter().flatten().collect(), next.flatten())
    }

    /// The room `id` described by itself, with its clients; `None` if it is not open.
    pub(crate) async fn inspect(&self, id: &str) -> Option<RoomInfo> {
        inspect(&self.registry.get(id)?, true).await
    }

    /// Hands `body` to the service of the open room `id` (its `request` handler) and returns
    /// its answer.
    pub(crate) async fn request(&self, id: &str, body: Bytes) -> Result<Response, RoomError> {
        let room = self.registry.get(id).ok_or_else(|| RoomError::NoSuchRoom {
            room: id.to_string(),
        })?;
        let (reply_tx, reply) = oneshot::channel();
        let closed = || RoomError::Closed {
            room: id.to_string(),
        };
        let request = RoomEvent::Request {
            body,
            reply: reply_tx,
        };
        room.events.send(request).await.map_err(|_| closed())?;
        reply.await.map_err(|_| closed())
    }

    /// Closes the room `id` like [`close`](Rooms::close), and waits until it has ended (its
    /// last save queued in the store) or `deadline` has passed. `false` if there is no such
    /// room.
    pub(crate) async fn close_and_wait(
        &self,
        id: &str,
        frame: CloseFrame,
        deadline: Instant,
    ) -> bool {
        let Some(room) = self.registry.get(id) else {
            return false;
        };
        room.close(frame).await;
        let _ = tokio::time::timeout_at(deadline, room.events.closed()).await;
        true
    }

    /// Closes every open room, all at once (a room with a full queue does not hold up the
    /// others); new rooms may still be created.
    pub(crate) async fn close_all(&self, frame: CloseFrame) {
        let rooms = self.registry.all();
        futures_util::future::join_all(rooms.iter().map(|room| room.close(frame.clone()))).await;
    }

    /// Closes every room with `frame`, refuses to create rooms from now on, and waits until
    /// every room's task has ended (`true`) or `deadline` has passed (`false`).
    pub(crate) async fn shut_down(&self, frame: CloseFrame, deadline: Instant) -> bool {
        for room in self.registry.shut_down() {
            room.close(frame.clone()).await;
        }
        self.tasks.close();
        if tokio::time::timeout_at(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                rooms = self.tasks.len(),
                "shutdown grace period over with rooms still closing"
            );
            return false;
        }
        true
    }

    fn refused(&self, err: RoomError) -> RoomError {
        if let RoomError::TooManyRooms { max } = err {
            warn_throttled!(max, "room limit reached: refused to create a room");
        }
        err
    }
}

/// Asks a room to describe itself; `None` if it ends first.
async fn inspect(room: &RoomHandle, members: bool) -> Option<RoomInfo> {
    let (reply_tx, reply) = oneshot::channel();
    let inspect = RoomEvent::Inspect {
        members,
        reply: reply_tx,
    };
    room.events.send(inspect).await.ok()?;
    reply.await.ok()
}

/// Waits until the room's service exists (or the room failed to start).
async fn wait_ready(room: &RoomHandle, id: &str) -> Result<(), RoomError> {
    let (reply_tx, reply) = oneshot::channel();
    let closed = || RoomError::Closed {
        room: id.to_string(),
    };
    if room
        .events
        .send(RoomEvent::Ready { reply: reply_tx })
        .await
        .is_err()
    {
        return Err(closed());
    }
    reply.await.unwrap_or_else(|_| Err(closed()))
}
