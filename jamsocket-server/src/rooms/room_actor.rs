//! The room actor: one task per room that owns the service and its clients.

use super::opening;
use super::registry::{NewRoom, RoomRegistry};
use super::room_context::{Outbound, Outbox, RoomContext};
use super::room_event::RoomEvent;
use super::room_snapshot::RoomSnapshot;
use super::RoomError;
use crate::close_frame::{code, CloseFrame};
use crate::log_throttle::warn_throttled;
use crate::settings::Settings;
use crate::sync::lock;
use crate::ShutdownPolicy;
use jamsocket::{
    ClientId, JamsocketService, JamsocketServiceFactory, MessageRecipient, ServiceError,
};
use jamsocket_store::Snapshots;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, Instant, Sleep};

/// How long a new room waits for the idle room it replaces to end.
const EVICTION_WAIT: Duration = Duration::from_secs(2);

/// How long a room created by `POST` waits for its first client under the `immediate` policy.
pub(crate) const FIRST_JOIN_WINDOW: Duration = Duration::from_secs(60);

/// A client as the room sees it.
struct ClientSlot {
    /// `None` once the room gave up on the client (its queue filled up).
    outbound: Option<mpsc::Sender<Outbound>>,
    close: Option<oneshot::Sender<CloseFrame>>,
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
    clients: HashMap<ClientId, ClientSlot>,
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
    /// When the room is next saved, if it is `unsaved`.
    save_deadline: Pin<Box<Sleep>>,
    /// Whether the service handled an event since the room was last saved.
    unsaved: bool,
}

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
    let opened = match opening::open(&*factory, &id, settings.store.as_ref()).await {
        Ok(opened) => opened,
        Err(refusal) => {
            registry.remove(&id, generation);
            refuse_pending(&mut events, refusal).await;
            return;
        }
    };
    if opened.restored.is_none() {
        tracing::info!(room = %id, "room created");
    }

    let mut room = Room {
        id: id.clone(),
        generation,
        registry: registry.clone(),
        service: opened.service,
        outbox: opened.outbox,
        scratch: Vec::new(),
        clients: HashMap::new(),
        next_client: opened.next_client,
        timer: Box::pin(sleep(Duration::ZERO)),
        timer_armed: false,
        empty_deadline: Box::pin(sleep(Duration::ZERO)),
        empty_armed: false,
        marked_idle: false,
        store: settings.store.clone(),
        save_deadline: Box::pin(sleep(Duration::ZERO)),
        unsaved: false,
        settings,
    };
    let ending = match room.run(&mut events, opened.restored).await {
        Ending::Failed(err) => Ending::Failed(err),
        // Saved before the room leaves the table: a room opened in its place loads this.
        ending => room.save().await.map_or_else(Ending::Failed, |()| ending),
    };
    registry.remove(&id, generation);
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
    Timer,
    EmptyTooLong,
    Save,
}

impl<S: JamsocketService> Room<S> {
    async fn run(
        &mut self,
        events: &mut mpsc::Receiver<RoomEvent>,
        restored: Option<RoomSnapshot>,
    ) -> Ending {
        if let Some(saved) = restored {
            if let Err(err) = self.resume(saved).await {
                return Ending::Failed(err);
            }
        }
        if self.settings.shutdown_policy != ShutdownPolicy::Never {
            // A room nobody joins (created by `POST`) ends like a room everyone left.
            let window = match self.settings.shutdown_policy {
                ShutdownPolicy::After(grace) => grace,
                _ => FIRST_JOIN_WINDOW,
            };
            self.arm_empty_deadline(window);
        }
        loop {
            let step = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => Step::Event(event),
                    // The registry dropped the room.
                    None => return Ending::Empty,
                },
                () = &mut self.timer, if self.timer_armed => Step::Timer,
                () = &mut self.empty_deadline, if self.empty_armed => Step::EmptyTooLong,
                () = &mut self.save_deadline, if self.unsaved => Step::Save,
            };
            let result = match step {
                Step::Event(event) => self.handle(event).await,
                Step::Timer => {
                    self.timer_armed = false;
                    self.changed();
                    self.service.timer().await.map(|()| None)
                }
                Step::Save => self.save().await.map(|()| None),
                Step::EmptyTooLong => {
                    if self.clients.is_empty() {
                        return Ending::Empty;
                    }
                    self.empty_armed = false;
                    Ok(None)
                }
            };
            self.flush();
            match result {
                Ok(None) => {}
                Ok(Some(ending)) => return ending,
                Err(err) => return Ending::Failed(err),
            }
        }
    }

    async fn handle(&mut self, event: RoomEvent) -> Result<Option<Ending>, ServiceError> {
        match event {
            RoomEvent::Join {
                outbound,
                close,
                reply,
            } => {
                let max = self.settings.limits.max_clients_per_room;
                if self.clients.len() >= max || self.next_client == u32::MAX {
                    warn_throttled!(room = %self.id, max, "room full: refused a client");
                    let _ = reply.send(Err(RoomError::Full {
                        room: self.id.to_string(),
                        max,
                    }));
                    return Ok(None);
                }
                let client = ClientId::from(self.next_client);
                self.next_client += 1;
                if reply.send(Ok(client)).is_err() {
                    // The request went away before it was answered.
                    return Ok(None);
                }
                let slot = ClientSlot {
                    outbound: Some(outbound),
                    close: Some(close),
                };
                self.clients.insert(client, slot);
                self.empty_armed = false;
                if std::mem::take(&mut self.marked_idle) {
                    self.registry.mark_busy(&self.id, self.generation);
                }
                tracing::info!(room = %self.id, %client, "client connected");
                self.changed();
                self.service.connect(client).await?;
            }
            RoomEvent::Ready { reply } => {
                let _ = reply.send(Ok(()));
            }
            RoomEvent::Text { client, text } => {
                if self.clients.contains_key(&client) {
                    self.changed();
                    self.service.message(client, &text).await?;
                }
            }
            RoomEvent::Binary { client, data } => {
                if self.clients.contains_key(&client) {
                    self.changed();
                    self.service.binary(client, &data).await?;
                }
            }
            // `_handled` is dropped at the end of this arm, once the service has heard of it.
            RoomEvent::Leave {
                client,
                reason,
                handled: _handled,
            } => {
                if self.clients.remove(&client).is_none() {
                    return Ok(None);
                }
                tracing::info!(room = %self.id, %client, %reason, "client disconnected");
                self.changed();
                self.service.disconnect(client).await?;
                if self.clients.is_empty() {
                    match self.settings.shutdown_policy {
                        ShutdownPolicy::Never => {}
                        ShutdownPolicy::Immediate => return Ok(Some(Ending::Empty)),
                        ShutdownPolicy::After(grace) => self.arm_empty_deadline(grace),
                    }
                }
            }
            RoomEvent::Close { reason } => return Ok(Some(Ending::Closed(reason))),
        }
        Ok(None)
    }

    /// Picks up where a saved room left off: its pending timer, and a `disconnect` for each
    /// client it had (none of them is connected to this instance).
    async fn resume(&mut self, saved: RoomSnapshot) -> Result<(), ServiceError> {
        if let Some(ms) = saved.timer_ms {
            self.set_timer(ms);
        }
        for client in saved.clients {
            self.changed();
            self.service.disconnect(client).await?;
        }
        // What the service sent them goes to nobody, not to the room's first clients.
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
        let snapshot = RoomSnapshot {
            next_client: self.next_client,
            timer_ms,
            clients: self.clients.keys().copied().collect(),
            service,
        };
        store.save(&self.id, snapshot.encode());
        Ok(())
    }

    fn set_timer(&mut self, ms: u32) {
        let deadline = Instant::now() + Duration::from_millis(ms.into());
        self.timer.as_mut().reset(deadline);
        self.timer_armed = true;
    }

    /// Starts the grace period of an empty room; until a client joins, the room may also be
    /// closed early to make space for another (see [`RoomRegistry::evict_idle`]).
    fn arm_empty_deadline(&mut self, after: Duration) {
        self.empty_deadline.as_mut().reset(Instant::now() + after);
        self.empty_armed = true;
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
                    for (client, slot) in &mut self.clients {
                        deliver(&self.id, *client, slot, message.clone(), &self.settings);
                    }
                }
                MessageRecipient::Client(client) => {
                    if let Some(slot) = self.clients.get_mut(&client) {
                        deliver(&self.id, client, slot, message, &self.settings);
                    }
                }
            }
        }
        self.scratch = messages;
    }
}

/// Says once per server run that the service keeps no snapshots, so a store saves nothing.
fn not_durable(room: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!(room, "a store is set but the service keeps no snapshots (its `snapshot` returns None): rooms are not saved");
    });
}

/// Queues a message for one client; a client whose queue is full is closed.
fn deliver(
    room: &str,
    client: ClientId,
    slot: &mut ClientSlot,
    message: Outbound,
    settings: &Settings,
) {
    let Some(outbound) = &slot.outbound else {
        return;
    };
    if let Err(TrySendError::Full(_)) = outbound.try_send(message) {
        let limit = settings.limits.outbound_queue_messages;
        warn_throttled!(room, %client, limit, "client not reading: outbound queue full, closing it");
        slot.close(CloseFrame::new(
            code::POLICY,
            format!("outbound queue full ({limit} messages): client is not reading"),
        ));
    }
}
