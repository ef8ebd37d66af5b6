//! The room actor: one task per room that owns the service and its clients.

use super::inline::{self, Inline};
use super::opening;
use super::outbound_queue::{outbound_queue, PushError, QueueSender};
use super::registry::{NewRoom, RoomRegistry};
use super::room_context::{Outbound, Outbox, RoomContext};
use super::room_event::{Admitted, Arrival, RoomEvent};
use super::room_info::{MemberInfo, RoomInfo};
use super::room_snapshot::{RoomSnapshot, SavedClient, SavedDelivery, SavedSession};
use super::session::{Delivery, Held, ResumeKey, ACK_EVERY};
use super::RoomError;
use crate::close_frame::{code, CloseFrame};
use crate::log_throttle::warn_throttled;
use crate::metrics::{Metrics, RoomEnd};
use crate::settings::Settings;
use crate::sync::lock;
use crate::ShutdownPolicy;
use jamsocket::{
    ClientId, JamsocketService, JamsocketServiceFactory, MessageRecipient, ServiceError, User,
};
use jamsocket_store::Snapshots;
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, Instant, Sleep};

/// How long a new room waits for the idle room it replaces to end.
const EVICTION_WAIT: Duration = Duration::from_secs(2);

/// How long a room created by `POST` waits for its first client under the `immediate` policy.
pub(crate) const FIRST_JOIN_WINDOW: Duration = Duration::from_secs(60);

/// A client as the room sees it.
struct ClientSlot {
    /// `None` once the room gave up on the client (its queue filled up).
    outbound: Option<QueueSender>,
    /// Closes the client's connection; `None` while it has none.
    close: Option<oneshot::Sender<CloseFrame>>,
    /// Messages from the client the room has handled, over every connection of its session.
    received: u64,
    /// Whether the client's connection speaks `jamsocket.v1` (and gets acknowledgements).
    sequenced: bool,
    /// The client's session, if it presented a resume key.
    session: Option<Session>,
    /// When the client joined (its session began, for a resumed one).
    since: Instant,
}

/// What lets a client come back as itself.
struct Session {
    key: ResumeKey,
    /// While the client is away: its delivery, and when the session ends if it does not
    /// come back.
    away: Option<Away>,
    /// A connection waiting for the session's current one to let go of it.
    takeover: Option<Takeover>,
}

/// A client that lost its connection, as the room keeps it until it comes back.
struct Away {
    delivery: Delivery,
    /// What the lost connection held (its place in the connection limits), so that clients
    /// that are away count against those limits as if connected.
    _held: Held,
    until: Instant,
}

/// A join that takes over a connected session.
struct Takeover {
    user: Option<User>,
    close: oneshot::Sender<CloseFrame>,
    reply: oneshot::Sender<Result<Admitted, RoomError>>,
}

impl ClientSlot {
    fn close(&mut self, reason: CloseFrame) {
        self.outbound = None;
        if let Some(close) = self.close.take() {
            // The connection may be gone already; then there is nobody to tell.
            let _ = close.send(reason);
        }
    }
}

struct Room<S> {
    id: Arc<str>,
    generation: u64,
    registry: Arc<RoomRegistry>,
    service: S,
    outbox: Arc<Mutex<Outbox>>,
    /// Reused between flushes so delivering messages allocates nothing.
    scratch: Vec<(MessageRecipient, Outbound)>,
    /// By id: ids are the room's own, so a fast hash is safe.
    clients: FxHashMap<ClientId, ClientSlot>,
    next_client: u32,
    settings: Arc<Settings>,
    timer: Pin<Box<Sleep>>,
    timer_armed: bool,
    empty_deadline: Pin<Box<Sleep>>,
    empty_armed: bool,
    /// Whether the registry counts the room as idle (empty, so it may be evicted).
    marked_idle: bool,
    /// Where the room is saved; `None` without a store, or once the service said it keeps no
    /// snapshots.
    store: Option<Snapshots>,
    /// The fencing token its saves carry, when a cluster gave this node the room.
    fence: Option<u64>,
    /// When the room is next saved, if it is `unsaved`.
    save_deadline: Pin<Box<Sleep>>,
    /// Whether the service handled an event since the room was last saved.
    unsaved: bool,
    /// Sessions whose clients are away, by when they end (the grace is the same for all, so
    /// this is in order). An entry whose client came back in the meantime is skipped.
    away: VecDeque<(Instant, ClientId)>,
    away_deadline: Pin<Box<Sleep>>,
    /// Away clients whose queue filled up: their sessions end after this flush.
    overflowed: Vec<ClientId>,
    /// What the room API reports: when the room opened and last handled something, and how
    /// many messages it received and delivered.
    opened_at: Instant,
    last_active: Instant,
    messages_in: u64,
    messages_out: u64,
    /// Whether the room's loop runs (so a connection may have a message handled inline).
    running: bool,
    /// The room's task, to wake when a message handled inline needs it.
    task: Option<Waker>,
    /// What a message handled inline left for the room's task to finish (an error, sessions
    /// to end); no message is handled inline meanwhile.
    deferred: Option<Result<Option<Ending>, ServiceError>>,
    /// Whether a deadline was armed or moved since the task last looked at them.
    reselect: bool,
}

/// A room as its task and the connections on its thread share it.
struct Hosted<S> {
    room: RefCell<Room<S>>,
    /// A message handler started inline that had to wait: the room's task finishes it before
    /// anything else. It holds the room borrowed meanwhile.
    in_flight: RefCell<Option<InFlight>>,
}

type InFlight = Pin<Box<dyn Future<Output = Result<Option<Ending>, ServiceError>>>>;

/// Why a room ended, as told to its clients.
enum Ending {
    Empty,
    Closed(CloseFrame),
    Failed(ServiceError),
}

/// Builds the room's service, then runs the room until it ends.
pub(crate) async fn run_room<F: JamsocketServiceFactory<RoomContext>>(
    factory: Arc<F>,
    new_room: NewRoom,
    registry: Arc<RoomRegistry>,
    settings: Arc<Settings>,
) {
    let NewRoom {
        id,
        generation,
        mut events,
        lease,
        evicted,
    } = new_room;
    // Leaves the table when the room ends, also if the service panics.
    let _registered = Registered {
        registry: registry.clone(),
        id: id.clone(),
        generation,
    };
    if let Some(evicted) = evicted {
        tracing::info!(room = %id, "room limit reached: closing the longest-idle empty room for this one");
        let close = RoomEvent::Close {
            reason: CloseFrame::new(code::AWAY, "room closed to make space for another"),
        };
        // A full queue means the room is being joined or is ending; it has left the table
        // either way, and `closed` says when it is gone (and its resources with it).
        let _ = evicted.events.try_send(close);
        let _ = tokio::time::timeout(EVICTION_WAIT, evicted.events.closed()).await;
    }
    // Registered after this node lost the lease it claimed the room under: its rooms were
    // closed then, and so is this one, before it opens.
    if let (Some(lease), Some(cluster)) = (&lease, &settings.cluster) {
        if !cluster.is_live() || cluster.node_id() != lease.node {
            registry.remove(&id, generation);
            let moved = RoomError::Moved {
                room: id.to_string(),
            };
            return refuse_pending(&mut events, moved).await;
        }
    }
    let opened = match opening::open(&*factory, &id, settings.store.as_ref()).await {
        Ok(opened) => opened,
        Err(refusal) => {
            registry.remove(&id, generation);
            if let Some(cluster) = &settings.cluster {
                cluster.forget(&id);
            }
            refuse_pending(&mut events, refusal).await;
            return;
        }
    };
    let live = settings.metrics.as_ref().map(Metrics::room_opened);
    let node = lease.as_ref().map(|lease| lease.node.clone());
    if opened.restored.is_none() {
        tracing::info!(room = %id, "room created");
    }
    if let Some(cluster) = &settings.cluster {
        cluster.set_room_count(registry.len());
    }

    let room = Room {
        id: id.clone(),
        generation,
        registry: registry.clone(),
        service: opened.service,
        outbox: opened.outbox,
        scratch: Vec::new(),
        clients: FxHashMap::default(),
        next_client: opened.next_client,
        timer: Box::pin(sleep(Duration::ZERO)),
        timer_armed: false,
        empty_deadline: Box::pin(sleep(Duration::ZERO)),
        empty_armed: false,
        marked_idle: false,
        store: settings.store.clone(),
        fence: lease.map(|lease| lease.fence),
        save_deadline: Box::pin(sleep(Duration::ZERO)),
        unsaved: false,
        away: VecDeque::new(),
        away_deadline: Box::pin(sleep(Duration::ZERO)),
        overflowed: Vec::new(),
        opened_at: Instant::now(),
        last_active: Instant::now(),
        messages_in: 0,
        messages_out: 0,
        running: false,
        task: None,
        deferred: None,
        reselect: false,
        settings,
    };
    let hosted = Rc::new(Hosted {
        room: RefCell::new(room),
        in_flight: RefCell::new(None),
    });
    let registration = inline::register(generation, Rc::downgrade(&hosted) as Weak<dyn Inline>);
    let ending = Room::run(&hosted, &mut events, opened.restored).await;
    drop(registration);
    let Ok(hosted) = Rc::try_unwrap(hosted) else {
        unreachable!("a connection holds its room only while it handles a message")
    };
    let mut room = hosted.room.into_inner();
    let ending = match ending {
        Ending::Failed(err) => Ending::Failed(err),
        // Saved before the room leaves the table: a room opened in its place loads this.
        ending => room.save().await.map_or_else(Ending::Failed, |()| ending),
    };
    if let Some(live) = live {
        let end = room_end(&ending, &registry, &id, generation, &room.settings, node);
        let saved = room.store.is_some() && matches!(end, RoomEnd::Empty | RoomEnd::Evicted);
        live.end(end, saved);
    }
    registry.remove(&id, generation);
    if let Some(cluster) = &room.settings.cluster {
        // The room stays this node's in the directory (a hibernated room comes back here).
        cluster.forget(&id);
        cluster.set_room_count(registry.len());
    }
    let reason = match ending {
        Ending::Empty => {
            if room.store.is_some() {
                tracing::info!(room = %id, "room hibernated: empty, saved and evicted");
            } else {
                tracing::info!(room = %id, "room closed: empty");
            }
            // The service goes first (a WebAssembly room frees its instance), so that whoever
            // waits for this room to end can create another in its place.
            drop(room);
            return refuse_pending(
                &mut events,
                RoomError::Closed {
                    room: id.to_string(),
                },
            )
            .await;
        }
        Ending::Closed(reason) => {
            tracing::info!(room = %id, reason = %reason.reason, "room closed");
            reason
        }
        Ending::Failed(err) => {
            tracing::error!(room = %id, error = %err, "room closed: service failed");
            CloseFrame::new(code::INTERNAL_ERROR, "the room's service failed")
        }
    };
    for slot in room.clients.values_mut() {
        slot.close(reason.clone());
    }
    drop(room);
    refuse_pending(
        &mut events,
        RoomError::Closed {
            room: id.to_string(),
        },
    )
    .await;
}

/// How a room ended, for the metrics; asked before it leaves the table. `node` is the node
/// (lease) that claimed it, in a cluster.
fn room_end(
    ending: &Ending,
    registry: &RoomRegistry,
    id: &str,
    generation: u64,
    settings: &Settings,
    node: Option<String>,
) -> RoomEnd {
    // Only a full table takes a room out before the room has ended: to make space.
    let evicted = !registry.holds(id, generation);
    let lease_lost = settings.cluster.as_ref().is_some_and(|cluster| {
        !cluster.is_live() || node.is_some_and(|node| node != cluster.node_id())
    });
    match ending {
        Ending::Failed(_) => RoomEnd::Failed,
        _ if evicted => RoomEnd::Evicted,
        Ending::Empty => RoomEnd::Empty,
        Ending::Closed(_) if registry.is_shut_down() => RoomEnd::Shutdown,
        Ending::Closed(_) if lease_lost => RoomEnd::LeaseLost,
        Ending::Closed(_) => RoomEnd::Closed,
    }
}

/// A room's place in the registry, given up when the room's task ends, however it ends.
struct Registered {
    registry: Arc<RoomRegistry>,
    id: Arc<str>,
    generation: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(room = %self.id, "room panicked; its clients were disconnected");
        }
        self.registry.remove(&self.id, self.generation);
    }
}

/// Answers what is still queued for a room that will not run (any more).
async fn refuse_pending(events: &mut mpsc::Receiver<RoomEvent>, refusal: RoomError) {
    events.close();
    while let Some(event) = events.recv().await {
        match event {
            RoomEvent::Join { reply, .. } => {
                let _ = reply.send(Err(refusal.clone()));
            }
            RoomEvent::Ready { reply } => {
                let _ = reply.send(Err(refusal.clone()));
            }
            _ => {}
        }
    }
}

enum Step {
    Event(RoomEvent),
    /// The registry dropped the room.
    Dropped,
    /// What a message handled inline left to do.
    Deferred(Result<Option<Ending>, ServiceError>),
    Timer,
    EmptyTooLong,
    Save,
    AwayTooLong,
}

impl<S: JamsocketService> Room<S> {
    /// Runs the room until it ends. The room is borrowed for each step, including while a
    /// handler's future waits (a WebAssembly guest yielding), and is free in between: then a
    /// connection on this thread may have a message handled inline ([`Inline`]).
    #[allow(clippy::await_holding_refcell_ref)] // Others only `try_borrow_mut` it.
    async fn run(
        hosted: &Hosted<S>,
        events: &mut mpsc::Receiver<RoomEvent>,
        restored: Option<RoomSnapshot>,
    ) -> Ending {
        /// A handler left waiting when the task is dropped (its thread ending) goes with it:
        /// it holds the room.
        struct DropInFlight<'a>(&'a RefCell<Option<InFlight>>);
        impl Drop for DropInFlight<'_> {
            fn drop(&mut self) {
                drop(self.0.take());
            }
        }
        let _in_flight = DropInFlight(&hosted.in_flight);
        let cell = &hosted.room;
        {
            let mut room = cell.borrow_mut();
            if let Some(saved) = restored {
                if let Err(err) = room.resume(saved).await {
                    return Ending::Failed(err);
                }
            }
            if room.settings.shutdown_policy != ShutdownPolicy::Never {
                // A room nobody joins (created by `POST`) ends like a room everyone left.
                let window = match room.settings.shutdown_policy {
                    ShutdownPolicy::After(grace) => grace,
                    _ => FIRST_JOIN_WINDOW,
                };
                room.arm_empty_deadline(window);
            }
            room.running = true;
        }
        let ending = loop {
            let step = poll_fn(|cx| hosted.poll_step(cx, events)).await;
            let mut room = cell.borrow_mut();
            if let Some(ending) = room.step(step).await {
                break ending;
            }
        };
        cell.borrow_mut().running = false;
        ending
    }

    /// The room's next step: a deadline that passed (first, so that a busy room still keeps
    /// its timers), or the next event.
    fn poll_step(
        &mut self,
        cx: &mut Context<'_>,
        events: &mut mpsc::Receiver<RoomEvent>,
    ) -> Poll<Step> {
        if !self
            .task
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()))
        {
            self.task = Some(cx.waker().clone());
        }
        self.reselect = false;
        if let Some(result) = self.deferred.take() {
            return Poll::Ready(Step::Deferred(result));
        }
        let due = |deadline: &mut Pin<Box<Sleep>>, cx: &mut Context<'_>| {
            deadline.as_mut().poll(cx).is_ready()
        };
        if self.timer_armed && due(&mut self.timer, cx) {
            return Poll::Ready(Step::Timer);
        }
        if self.empty_armed && due(&mut self.empty_deadline, cx) {
            return Poll::Ready(Step::EmptyTooLong);
        }
        if self.unsaved && due(&mut self.save_deadline, cx) {
            return Poll::Ready(Step::Save);
        }
        if !self.away.is_empty() && due(&mut self.away_deadline, cx) {
            return Poll::Ready(Step::AwayTooLong);
        }
        events
            .poll_recv(cx)
            .map(|event| event.map_or(Step::Dropped, Step::Event))
    }

    /// Takes one step; `Some` once the room ends.
    async fn step(&mut self, step: Step) -> Option<Ending> {
        let result = match step {
            Step::Event(event) => self.handle(event).await,
            Step::Dropped => return Some(Ending::Empty),
            Step::Deferred(result) => result,
            Step::Timer => {
                self.timer_armed = false;
                self.changed();
                self.service.timer().await.map(|()| None)
            }
            Step::Save => self.save().await.map(|()| None),
            Step::AwayTooLong => self.end_expired_sessions().await,
            Step::EmptyTooLong => {
                if self.clients.is_empty() {
                    return Some(Ending::Empty);
                }
                self.empty_armed = false;
                Ok(None)
            }
        };
        self.flush();
        let result = match result {
            Ok(None) if !self.overflowed.is_empty() => self.end_overflowed_sessions().await,
            result => result,
        };
        match result {
            Ok(None) => None,
            Ok(Some(ending)) => Some(ending),
            Err(err) => Some(Ending::Failed(err)),
        }
    }

    /// After a message handled inline: what is left for the room's task (an error, sessions
    /// whose queues filled up, a deadline to watch) wakes it.
    fn handled_inline(&mut self, result: Result<Option<Ending>, ServiceError>) {
        let wake = match result {
            Ok(None) if self.overflowed.is_empty() => std::mem::take(&mut self.reselect),
            result => {
                self.deferred = Some(result);
                true
            }
        };
        if wake {
            if let Some(task) = &self.task {
                task.wake_by_ref();
            }
        }
    }

    async fn handle(&mut self, event: RoomEvent) -> Result<Option<Ending>, ServiceError> {
        if !matches!(event, RoomEvent::Inspect { .. }) {
            self.last_active = Instant::now();
        }
        match event {
            RoomEvent::Join {
                arrival,
                close,
                reply,
            } => return self.join(arrival, close, reply).await.map(|()| None),
            RoomEvent::Ready { reply } => {
                let _ = reply.send(Ok(()));
            }
            RoomEvent::Text { client, text } => {
                if self.clients.contains_key(&client) {
                    self.changed();
                    self.messages_in += 1;
                    self.service.message(client, &text).await?;
                    self.received(client);
                }
            }
            RoomEvent::Binary { client, data } => {
                if self.clients.contains_key(&client) {
                    self.changed();
                    self.messages_in += 1;
                    self.service.binary(client, &data).await?;
                    self.received(client);
                }
            }
            // `_handled` is dropped at the end of this arm, once the service has heard of it.
            RoomEvent::Leave {
                client,
                reason,
                handled: _handled,
                park,
            } => return self.leave(client, &reason, park).await,
            RoomEvent::Close { reason } => return Ok(Some(Ending::Closed(reason))),
            RoomEvent::Inspect { members, reply } => {
                let _ = reply.send(self.info(members));
            }
            RoomEvent::Request { body, reply } => {
                self.changed();
                let response = self.service.request(&body).await?;
                let _ = reply.send(response);
            }
        }
        Ok(None)
    }

    /// The room as the room API describes it.
    fn info(&self, members: bool) -> RoomInfo {
        let now = Instant::now();
        let members = members.then(|| {
            let users = lock(&self.outbox);
            let mut members: Vec<MemberInfo> = self
                .clients
                .iter()
                .map(|(client, slot)| MemberInfo {
                    client: (*client).into(),
                    user: users.users.get(client).map(|user| user.id.clone()),
                    connected_secs: (now - slot.since).as_secs_f64(),
                    away: slot.session.as_ref().is_some_and(|s| s.away.is_some()),
                })
                .collect();
            members.sort_by_key(|member| member.client);
            members
        });
        RoomInfo {
            id: self.id.to_string(),
            clients: self.clients.len(),
            age_secs: (now - self.opened_at).as_secs_f64(),
            idle_secs: (now - self.last_active).as_secs_f64(),
            messages_in: self.messages_in,
            messages_out: self.messages_out,
            memory_bytes: self.service.memory_bytes(),
            state: "live",
            members,
        }
    }

    /// Takes a client in: back into its session if its resume key names one, else as a new
    /// client.
    async fn join(
        &mut self,
        arrival: Arrival,
        close: oneshot::Sender<CloseFrame>,
        reply: oneshot::Sender<Result<Admitted, RoomError>>,
    ) -> Result<(), ServiceError> {
        if let Some(key) = &arrival.resume {
            if let Some(client) = self.session_of(key) {
                self.rejoin(client, arrival, close, reply);
                return Ok(());
            }
        }
        let max = self.settings.limits.max_clients_per_room;
        if self.clients.len() >= max || self.next_client == u32::MAX {
            warn_throttled!(room = %self.id, max, "room full: refused a client");
            let _ = reply.send(Err(RoomError::Full {
                room: self.id.to_string(),
                max,
            }));
            return Ok(());
        }
        let client = ClientId::from(self.next_client);
        self.next_client += 1;
        let (outbound, queue) = outbound_queue(self.settings.limits.outbound_queue_messages);
        let admitted = Admitted {
            client,
            delivery: Delivery::new(queue),
            resumed: false,
            received: 0,
        };
        if reply.send(Ok(admitted)).is_err() {
            // The request went away before it was answered.
            return Ok(());
        }
        let session = arrival
            .resume
            .filter(|_| !self.settings.reconnect_grace.is_zero())
            .map(|key| Session {
                key,
                away: None,
                takeover: None,
            });
        let slot = ClientSlot {
            outbound: Some(outbound),
            close: Some(close),
            received: 0,
            sequenced: arrival.sequenced,
            session,
            since: Instant::now(),
        };
        self.clients.insert(client, slot);
        let user = arrival.user.as_ref().map(|user| user.id.clone());
        if let Some(user) = arrival.user {
            lock(&self.outbox).users.insert(client, user);
        }
        self.empty_armed = false;
        if std::mem::take(&mut self.marked_idle) {
            self.registry.mark_busy(&self.id, self.generation);
        }
        // `user` is left out of the event when there is none.
        tracing::info!(room = %self.id, %client, user, "client connected");
        self.changed();
        self.service.connect(client).await
    }

    /// The client whose session `key` opened, if it is in the room.
    fn session_of(&self, key: &ResumeKey) -> Option<ClientId> {
        self.clients.iter().find_map(|(client, slot)| {
            let session = slot.session.as_ref()?;
            session.key.matches(key).then_some(*client)
        })
    }

    /// A connection presents the key of `client`'s session: it resumes the session if the
    /// client is away, or takes it over from the client's current connection.
    fn rejoin(
        &mut self,
        client: ClientId,
        arrival: Arrival,
        close: oneshot::Sender<CloseFrame>,
        reply: oneshot::Sender<Result<Admitted, RoomError>>,
    ) {
        let same_user = {
            let users = &lock(&self.outbox).users;
            users.get(&client).map(|user| &user.id) == arrival.user.as_ref().map(|user| &user.id)
        };
        if !same_user {
            warn_throttled!(room = %self.id, %client, "refused a resume: the key belongs to another user's session");
            let _ = reply.send(Err(RoomError::NotYourSession {
                room: self.id.to_string(),
            }));
            return;
        }
        let Some(slot) = self.clients.get_mut(&client) else {
            return;
        };
        slot.sequenced = arrival.sequenced;
        let Some(session) = &mut slot.session else {
            return;
        };
        if let Some(away) = session.away.take() {
            self.attach(client, away.delivery, arrival.user, close, reply);
            return;
        }
        let takeover = Takeover {
            user: arrival.user,
            close,
            reply,
        };
        if let Some(earlier) = session.takeover.replace(takeover) {
            let _ = earlier.reply.send(Err(RoomError::TakenOver {
                room: self.id.to_string(),
            }));
        }
        // The session's queue carries on; only its connection goes.
        if let Some(close) = slot.close.take() {
            let _ = close.send(CloseFrame::new(
                code::TAKEN_OVER,
                "session taken over by another connection",
            ));
        }
        tracing::info!(room = %self.id, %client, "another connection takes over the client's session");
    }

    /// Hands `client`'s session to a new connection.
    fn attach(
        &mut self,
        client: ClientId,
        delivery: Delivery,
        user: Option<User>,
        close: oneshot::Sender<CloseFrame>,
        reply: oneshot::Sender<Result<Admitted, RoomError>>,
    ) {
        let Some(slot) = self.clients.get_mut(&client) else {
            return;
        };
        if slot.session.is_none() {
            return;
        }
        let admitted = Admitted {
            client,
            delivery,
            resumed: true,
            received: slot.received,
        };
        match reply.send(Ok(admitted)) {
            Ok(()) => {
                slot.close = Some(close);
                if let Some(user) = user {
                    lock(&self.outbox).users.insert(client, user);
                }
                tracing::info!(room = %self.id, %client, "client resumed its session");
            }
            // The request went away before it was answered: the client is still away.
            Err(Ok(admitted)) => self.set_away(client, admitted.delivery, Box::new(())),
            Err(Err(_)) => {}
        }
    }

    /// `client`'s connection ended. A client with a session whose connection dropped is away
    /// until it comes back or the reconnect grace passes; any other client is gone.
    async fn leave(
        &mut self,
        client: ClientId,
        reason: &str,
        park: Option<(Delivery, Held)>,
    ) -> Result<Option<Ending>, ServiceError> {
        let Some(slot) = self.clients.get_mut(&client) else {
            return Ok(None);
        };
        if let (Some(session), Some((delivery, held))) = (&mut slot.session, park) {
            if slot.outbound.is_some() {
                slot.close = None;
                if let Some(Takeover { user, close, reply }) = session.takeover.take() {
                    self.attach(client, delivery, user, close, reply);
                } else {
                    tracing::info!(room = %self.id, %client, %reason, "client away: its session waits for it to reconnect");
                    self.set_away(client, delivery, held);
                }
                return Ok(None);
            }
        }
        let slot = self.clients.remove(&client);
        if let Some(takeover) = slot.and_then(|slot| slot.session?.takeover) {
            // The session ended as it was being taken over: the join starts a new one.
            let _ = takeover.reply.send(Err(RoomError::Closed {
                room: self.id.to_string(),
            }));
        }
        tracing::info!(room = %self.id, %client, %reason, "client disconnected");
        self.end_session(client).await
    }

    /// Keeps `client`'s session, with its queue, until the reconnect grace has passed.
    fn set_away(&mut self, client: ClientId, delivery: Delivery, held: Held) {
        let Some(session) = self
            .clients
            .get_mut(&client)
            .and_then(|slot| slot.session.as_mut())
        else {
            return;
        };
        let until = Instant::now() + self.settings.reconnect_grace;
        session.away = Some(Away {
            delivery,
            _held: held,
            until,
        });
        if self.away.is_empty() {
            self.away_deadline.as_mut().reset(until);
            self.reselect = true;
        }
        self.away.push_back((until, client));
    }

    /// The service hears that `client` left, for good. An emptied room ends as its shutdown
    /// policy says.
    async fn end_session(&mut self, client: ClientId) -> Result<Option<Ending>, ServiceError> {
        self.changed();
        self.service.disconnect(client).await?;
        lock(&self.outbox).users.remove(&client);
        if self.clients.is_empty() {
            match self.settings.shutdown_policy {
                ShutdownPolicy::Never => {}
                ShutdownPolicy::Immediate => return Ok(Some(Ending::Empty)),
                ShutdownPolicy::After(grace) => self.arm_empty_deadline(grace),
            }
        }
        Ok(None)
    }

    /// Ends the sessions of clients away for longer than the reconnect grace.
    async fn end_expired_sessions(&mut self) -> Result<Option<Ending>, ServiceError> {
        let now = Instant::now();
        while let Some(&(until, client)) = self.away.front() {
            if until > now {
                self.away_deadline.as_mut().reset(until);
                break;
            }
            self.away.pop_front();
            let expired = self
                .clients
                .get(&client)
                .and_then(|slot| slot.session.as_ref()?.away.as_ref())
                .is_some_and(|away| away.until == until);
            if expired {
                self.clients.remove(&client);
                tracing::info!(room = %self.id, %client, "client disconnected: did not reconnect within the grace");
                if let Some(ending) = self.end_session(client).await? {
                    return Ok(Some(ending));
                }
            }
        }
        Ok(None)
    }

    /// Ends the sessions of away clients whose queue filled up.
    async fn end_overflowed_sessions(&mut self) -> Result<Option<Ending>, ServiceError> {
        for client in std::mem::take(&mut self.overflowed) {
            if self.clients.remove(&client).is_some() {
                if let Some(ending) = self.end_session(client).await? {
                    return Ok(Some(ending));
                }
            }
        }
        Ok(None)
    }

    /// Counts a message from `client` as handled, and tells a `jamsocket.v1` client every
    /// [`ACK_EVERY`] messages (whether it has a session or not).
    fn received(&mut self, client: ClientId) {
        let Some(slot) = self.clients.get_mut(&client) else {
            return;
        };
        slot.received += 1;
        if slot.sequenced && slot.received % ACK_EVERY == 0 {
            if let Some(outbound) = &slot.outbound {
                // A full queue closes the client at the next message; this ack can wait.
                let _ = outbound.try_send(Outbound::Ack(slot.received));
            }
        }
    }

    /// A session saved with the room: its client is away, and may resume it.
    fn restore_session(&mut self, client: ClientId, saved: SavedSession) {
        let (outbound, queue) = outbound_queue(self.settings.limits.outbound_queue_messages);
        let mut delivery = Delivery::new(queue);
        match saved.delivery {
            // What was on its way to the client when the room was saved still is.
            Some(saved) => {
                delivery.sent = saved.sent;
                delivery.unacked = saved.unacked.into();
                for message in saved.queued {
                    let _ = outbound.try_send(message);
                }
            }
            // The client's own count is taken as it is when it comes back.
            None => delivery.known = false,
        }
        let session = Session {
            key: saved.key,
            away: None,
            takeover: None,
        };
        let slot = ClientSlot {
            outbound: Some(outbound),
            close: None,
            received: saved.received,
            sequenced: false,
            session: Some(session),
            since: Instant::now(),
        };
        self.clients.insert(client, slot);
        if let Some(user) = saved.user {
            lock(&self.outbox).users.insert(client, user);
        }
        self.set_away(client, delivery, Box::new(()));
    }

    /// Picks up where a saved room left off: its pending timer, its clients' sessions (they
    /// may resume within the reconnect grace), and a `disconnect` for each client it had
    /// without one.
    async fn resume(&mut self, saved: RoomSnapshot) -> Result<(), ServiceError> {
        if let Some(ms) = saved.timer_ms {
            self.set_timer(ms);
        }
        let grace = self.settings.reconnect_grace;
        // Sessions first, so that every client that may come back hears of those that will
        // not, whatever order they were saved in.
        let mut gone = Vec::new();
        for SavedClient { id, session } in saved.clients {
            match session {
                Some(session) if !grace.is_zero() => self.restore_session(id, session),
                _ => gone.push(id),
            }
        }
        for id in gone {
            self.changed();
            self.service.disconnect(id).await?;
        }
        // What the service sent goes to the clients that may come back, not to the room's
        // first new clients.
        self.flush();
        Ok(())
    }

    /// Notes that the service is about to change the room's state: the room is saved within
    /// the snapshot interval.
    fn changed(&mut self) {
        if self.store.is_none() || self.unsaved {
            return;
        }
        self.unsaved = true;
        self.reselect = true;
        let at = Instant::now() + self.settings.snapshot_interval;
        self.save_deadline.as_mut().reset(at);
    }

    /// Hands the room's snapshot to the store, if the room changed since it was last saved.
    /// The store writes it on a thread of its own.
    async fn save(&mut self) -> Result<(), ServiceError> {
        if !std::mem::take(&mut self.unsaved) {
            return Ok(());
        }
        let Some(store) = &self.store else {
            return Ok(());
        };
        let Some(service) = self.service.snapshot().await? else {
            not_durable(&self.id);
            self.store = None;
            return Ok(());
        };
        let timer_ms = self.timer_armed.then(|| {
            let left = self
                .timer
                .deadline()
                .saturating_duration_since(Instant::now());
            u32::try_from(left.as_millis()).unwrap_or(u32::MAX)
        });
        let clients = {
            let users = &lock(&self.outbox).users;
            let mut budget = SAVED_MESSAGES_BUDGET;
            self.clients
                .iter()
                .map(|(id, slot)| SavedClient {
                    id: *id,
                    session: slot.session.as_ref().map(|session| SavedSession {
                        key: session.key,
                        user: users.get(id).cloned(),
                        received: slot.received,
                        delivery: session
                            .away
                            .as_ref()
                            .and_then(|away| saved_delivery(&self.id, *id, away, &mut budget)),
                    }),
                })
                .collect()
        };
        let snapshot = RoomSnapshot {
            next_client: self.next_client,
            timer_ms,
            clients,
            service,
        };
        match self.fence {
            Some(fence) => store.save_fenced(&self.id, snapshot.encode(), fence),
            None => store.save(&self.id, snapshot.encode()),
        }
        Ok(())
    }

    fn set_timer(&mut self, ms: u32) {
        let deadline = Instant::now() + Duration::from_millis(ms.into());
        self.timer.as_mut().reset(deadline);
        self.timer_armed = true;
        self.reselect = true;
    }

    /// Starts the grace period of an empty room; until a client joins, the room may also be
    /// closed early to make space for another (see [`RoomRegistry::evict_idle`]).
    fn arm_empty_deadline(&mut self, after: Duration) {
        self.empty_deadline.as_mut().reset(Instant::now() + after);
        self.empty_armed = true;
        self.reselect = true;
        self.registry.mark_idle(&self.id, self.generation);
        self.marked_idle = true;
    }

    /// Delivers what the service sent during the last handler and applies its timer request.
    fn flush(&mut self) {
        let mut messages = std::mem::take(&mut self.scratch);
        let timer = {
            let mut outbox = lock(&self.outbox);
            std::mem::swap(&mut messages, &mut outbox.messages);
            outbox.timer_ms.take()
        };
        if let Some(ms) = timer {
            self.set_timer(ms);
        }
        for (recipient, message) in messages.drain(..) {
            match recipient {
                MessageRecipient::Broadcast => {
                    if let Some(metrics) = &self.settings.metrics {
                        metrics.sent(&message, self.clients.len() as u64);
                    }
                    self.messages_out += self.clients.len() as u64;
                    for (client, slot) in &mut self.clients {
                        if !deliver(&self.id, *client, slot, message.clone(), &self.settings) {
                            self.overflowed.push(*client);
                        }
                    }
                }
                MessageRecipient::Client(client) => {
                    if let Some(slot) = self.clients.get_mut(&client) {
                        self.messages_out += 1;
                        if let Some(metrics) = &self.settings.metrics {
                            metrics.sent(&message, 1);
                        }
                        if !deliver(&self.id, client, slot, message, &self.settings) {
                            self.overflowed.push(client);
                        }
                    }
                }
            }
        }
        self.scratch = messages;
    }
}

impl<S: JamsocketService> Hosted<S> {
    /// The room's next step: first the end of a handler started inline that had to wait.
    fn poll_step(
        &self,
        cx: &mut Context<'_>,
        events: &mut mpsc::Receiver<RoomEvent>,
    ) -> Poll<Step> {
        let mut in_flight = self.in_flight.borrow_mut();
        if let Some(handler) = in_flight.as_mut() {
            let result = std::task::ready!(handler.as_mut().poll(cx));
            // Gives the room back.
            *in_flight = None;
            return Poll::Ready(Step::Deferred(result));
        }
        drop(in_flight);
        self.room.borrow_mut().poll_step(cx, events)
    }
}

impl<S: JamsocketService> Inline for Hosted<S> {
    fn handle_now(self: Rc<Self>, event: RoomEvent) -> Result<(), RoomEvent> {
        // Busy, also while a handler is in flight: it holds the room.
        let Ok(mut room) = self.room.try_borrow_mut() else {
            return Err(event);
        };
        if !room.running || room.deferred.is_some() {
            return Err(event);
        }
        let result = if room.service.ready_at_once() {
            let poll = || pin!(room.handle(event)).poll(&mut Context::from_waker(Waker::noop()));
            match std::panic::catch_unwind(AssertUnwindSafe(poll)) {
                Ok(Poll::Ready(result)) => Ok(result),
                // The service said its handlers never wait.
                Ok(Poll::Pending) => Ok(Err(ServiceError::failed(
                    "a handler of a service that is `ready_at_once` was not ready at once",
                ))),
                Err(panic) => Err(panic),
            }
        } else {
            // The room's task finishes what waits, so it is the one woken.
            let Some(task) = room.task.clone() else {
                return Err(event);
            };
            drop(room);
            let hosted = self.clone();
            // The room's task polls this before it borrows the room; others only
            // `try_borrow_mut` it.
            #[allow(clippy::await_holding_refcell_ref)]
            let mut handler: InFlight = Box::pin(async move {
                let mut room = hosted.room.borrow_mut();
                room.handle(event).await
            });
            let poll = || handler.as_mut().poll(&mut Context::from_waker(&task));
            let polled = match std::panic::catch_unwind(AssertUnwindSafe(poll)) {
                Ok(Poll::Pending) => {
                    *self.in_flight.borrow_mut() = Some(handler);
                    return Ok(());
                }
                Ok(Poll::Ready(result)) => Ok(result),
                Err(panic) => Err(panic),
            };
            // Done (or panicked): the room is free again.
            drop(handler);
            room = self.room.borrow_mut();
            polled
        };
        // A panic fails this room, as it would have on the room's own task, and not the
        // connection that happened to run the handler.
        let result = match result {
            Ok(result) => {
                room.flush();
                result
            }
            Err(panic) => {
                let cause = panic_message(&*panic);
                tracing::error!(room = %room.id, cause, "room panicked; its clients were disconnected");
                // Nothing of the failed handler goes out.
                lock(&room.outbox).messages.clear();
                Err(ServiceError::failed(format!(
                    "the service panicked: {cause}"
                )))
            }
        };
        room.handled_inline(result);
        Ok(())
    }
}

/// What a panic said, if it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => message,
        (_, Some(message)) => message,
        _ => "(no message)",
    }
}

/// Most bytes of messages on their way to away clients that one room's snapshot carries. A
/// session whose messages do not fit is saved without them: its client, if it comes back after
/// a restore, resumes from its own count.
const SAVED_MESSAGES_BUDGET: usize = 1 << 20;

/// What is on its way to an away client, to save with its session, if it fits `budget`
/// (which it then takes from).
fn saved_delivery(
    room: &str,
    client: ClientId,
    away: &Away,
    budget: &mut usize,
) -> Option<SavedDelivery> {
    let delivery = &away.delivery;
    if !delivery.known {
        return None;
    }
    let saved = SavedDelivery {
        sent: delivery.sent,
        unacked: delivery.unacked.iter().cloned().collect(),
        queued: delivery.outbound.queued(),
    };
    let len = saved.encoded_len();
    if len > *budget {
        warn_throttled!(room, %client, len, "messages queued for an away client are too many to save with the room: if it comes back after a restore, they are lost");
        return None;
    }
    *budget -= len;
    Some(saved)
}

/// Says once per server run that the service keeps no snapshots, so a store saves nothing.
fn not_durable(room: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!(room, "a store is set but the service keeps no snapshots (its `snapshot` returns None): rooms are not saved");
    });
}

/// Queues a message for one client; a client whose queue is full is closed. `false` if the
/// client is away and its queue just filled up: its session must end.
fn deliver(
    room: &str,
    client: ClientId,
    slot: &mut ClientSlot,
    message: Outbound,
    settings: &Settings,
) -> bool {
    let Some(outbound) = &slot.outbound else {
        return true;
    };
    if let Err(PushError::Full) = outbound.try_send(message) {
        if let Some(metrics) = &settings.metrics {
            metrics.outbound_queue_drops.inc();
        }
        let limit = settings.limits.outbound_queue_messages;
        if slot.session.as_ref().is_some_and(|s| s.away.is_some()) {
            warn_throttled!(room, %client, limit, "client away too long to keep its messages: outbound queue full, ending its session");
            slot.outbound = None;
            return false;
        }
        warn_throttled!(room, %client, limit, "client not reading: outbound queue full, closing it");
        slot.close(CloseFrame::new(
            code::POLICY,
            format!("outbound queue full ({limit} messages): client is not reading"),
        ));
    }
    true
}
