use crate::room_context::lock;
use crate::room_event::RoomEvent;
use actix_http::ws::CloseReason;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Capacity of a room's event queue. Connections wait (and so stop reading their socket) while
/// it is full, which keeps a flooding client from growing the server's memory.
const ROOM_QUEUE: usize = 256;

/// The rooms of one server, by id.
pub(crate) struct RoomRegistry {
    rooms: Mutex<HashMap<Arc<str>, RoomHandle>>,
    next_generation: AtomicU64,
    max_rooms: usize,
}

/// A way to reach a room actor.
#[derive(Clone)]
pub(crate) struct RoomHandle {
    pub events: mpsc::Sender<RoomEvent>,
    /// Tells apart a room from a later room with the same id.
    pub generation: u64,
    /// The worker thread the room runs on (the one that created it).
    pub worker: Option<Worker>,
}

/// An Actix worker thread, to run a connection next to its room.
#[derive(Clone)]
pub(crate) struct Worker {
    pub thread: std::thread::ThreadId,
    pub arbiter: actix_rt::ArbiterHandle,
}

impl Worker {
    pub fn current() -> Option<Worker> {
        Some(Worker {
            thread: std::thread::current().id(),
            arbiter: actix_rt::Arbiter::try_current()?,
        })
    }
}

/// A room that a caller of [`RoomRegistry::create`] must start.
pub(crate) struct NewRoom {
    pub id: Arc<str>,
    pub generation: u64,
    pub events: mpsc::Receiver<RoomEvent>,
}

pub(crate) enum CreateError {
    Exists,
    TooManyRooms(usize),
}

impl RoomRegistry {
    pub fn new(max_rooms: usize) -> Self {
        RoomRegistry {
            rooms: Mutex::new(HashMap::new()),
            next_generation: AtomicU64::new(1),
            max_rooms,
        }
    }

    pub fn get(&self, id: &str) -> Option<RoomHandle> {
        lock(&self.rooms).get(id).cloned()
    }

    /// Registers a new room; `start` runs under the registry lock and must only spawn.
    pub fn create(&self, id: &str, start: impl FnOnce(NewRoom)) -> Result<RoomHandle, CreateError> {
        let mut rooms = lock(&self.rooms);
        if rooms.contains_key(id) {
            return Err(CreateError::Exists);
        }
        self.insert(&mut rooms, id, start)
    }

    /// The room with this id, created (and started with `start`) if there is none.
    pub fn get_or_create(
        &self,
        id: &str,
        start: impl FnOnce(NewRoom),
    ) -> Result<RoomHandle, CreateError> {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get(id) {
            return Ok(room.clone());
        }
        self.insert(&mut rooms, id, start)
    }

    fn insert(
        &self,
        rooms: &mut HashMap<Arc<str>, RoomHandle>,
        id: &str,
        start: impl FnOnce(NewRoom),
    ) -> Result<RoomHandle, CreateError> {
        if rooms.len() >= self.max_rooms {
            return Err(CreateError::TooManyRooms(self.max_rooms));
        }
        let id: Arc<str> = Arc::from(id);
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (events, receiver) = mpsc::channel(ROOM_QUEUE);
        let handle = RoomHandle {
            events,
            generation,
            worker: Worker::current(),
        };
        rooms.insert(id.clone(), handle.clone());
        start(NewRoom {
            id,
            generation,
            events: receiver,
        });
        Ok(handle)
    }

    /// Forgets the room, if the entry for `id` is still this generation.
    pub fn remove(&self, id: &str, generation: u64) {
        let mut rooms = lock(&self.rooms);
        if rooms
            .get(id)
            .is_some_and(|room| room.generation == generation)
        {
            rooms.remove(id);
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.rooms).len()
    }

    /// Asks every room to close its clients with `reason` and end.
    pub async fn close_all(&self, reason: CloseReason) {
        let rooms: Vec<RoomHandle> = lock(&self.rooms).values().cloned().collect();
        for room in rooms {
            let close = RoomEvent::Close {
                reason: reason.clone(),
            };
            // A room that already ended has nothing to close.
            let _ = room.events.send(close).await;
        }
    }
}
