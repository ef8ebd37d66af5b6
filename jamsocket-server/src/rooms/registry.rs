use super::room_event::RoomEvent;
use super::RoomError;
use crate::close_frame::CloseFrame;
use crate::sync::lock;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Capacity of a room's event queue. Connections wait (and so stop reading their socket) while
/// it is full, which keeps a flooding client from growing the server's memory.
const ROOM_QUEUE: usize = 256;

/// The next room's generation. Counted over the process, not per table, so that a generation
/// names one room among every server's (a thread's local rooms are keyed by it).
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// The rooms of one server, by id.
pub(crate) struct RoomRegistry {
    rooms: Mutex<Rooms>,
    max_rooms: usize,
    locate: Locate,
}

#[derive(Default)]
struct Rooms {
    by_id: HashMap<Arc<str>, Entry>,
    /// Empty rooms waiting out their grace period, oldest first: the ones to close when the
    /// table is full. Keyed by a sequence number stored in their entry.
    idle: BTreeMap<u64, Arc<str>>,
    next_idle: u64,
    /// Set by [`RoomRegistry::shut_down`]: no room is created after it.
    shut_down: bool,
}

struct Entry {
    handle: RoomHandle,
    idle: Option<u64>,
}

impl Rooms {
    /// The room, no longer counted as idle: someone is joining it.
    fn claim(&mut self, id: &str) -> Option<RoomHandle> {
        let entry = self.by_id.get_mut(id)?;
        if let Some(seq) = entry.idle.take() {
            self.idle.remove(&seq);
        }
        Some(entry.handle.clone())
    }
}

/// A way to reach a room actor.
#[derive(Debug, Clone)]
pub(crate) struct RoomHandle {
    pub events: mpsc::Sender<RoomEvent>,
    /// Tells apart a room from a later room with the same id (and from every other room of the
    /// process).
    pub generation: u64,
    /// The worker thread the room runs on (the one that created it).
    pub worker: Option<Worker>,
}

/// Work to run on a room's thread.
pub(crate) type Task = Box<dyn FnOnce() + Send>;

/// The thread a room runs on, and a way to run work there, so that its connections can run
/// there too. The server supplies it (see [`Locate`]); the rooms layer only keeps it.
#[derive(Clone)]
pub(crate) struct Worker {
    pub thread: std::thread::ThreadId,
    /// Runs a task on that thread; `false` if the thread no longer takes tasks.
    pub run: Arc<dyn Fn(Task) -> bool + Send + Sync>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// Finds the calling thread's [`Worker`], if it is one.
pub(crate) type Locate = fn() -> Option<Worker>;

/// What a cluster's directory gave this node for a room: the fencing token its saves carry,
/// under the node id (lease) that claimed it. A room whose lease ended before it started is
/// refused (the node's rooms were closed meanwhile).
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub fence: u64,
    pub node: String,
}

/// A room that a caller of [`RoomRegistry::create`] must start.
pub(crate) struct NewRoom {
    pub id: Arc<str>,
    pub generation: u64,
    pub events: mpsc::Receiver<RoomEvent>,
    /// The cluster's lease on the room, when a cluster gave this node the room.
    pub lease: Option<Lease>,
    /// The idle room whose place this one takes (the table was full): it must be closed, and
    /// have ended, before this one starts.
    pub evicted: Option<RoomHandle>,
}

impl RoomRegistry {
    /// A table of at most `max_rooms`; each room records the worker `locate` finds for the
    /// thread that creates it.
    pub(super) fn new(max_rooms: usize, locate: Locate) -> Self {
        RoomRegistry {
            rooms: Mutex::new(Rooms::default()),
            max_rooms,
            locate,
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<RoomHandle> {
        lock(&self.rooms)
            .by_id
            .get(id)
            .map(|entry| entry.handle.clone())
    }

    /// The room with this id, for a client about to join it: it is no longer a candidate for
    /// [`evict_idle`](RoomRegistry::evict_idle).
    pub(super) fn claim(&self, id: &str) -> Option<RoomHandle> {
        lock(&self.rooms).claim(id)
    }

    /// Registers a new room; `start` runs under the registry lock and must only spawn.
    pub(super) fn create(
        &self,
        id: &str,
        lease: Option<Lease>,
        start: impl FnOnce(NewRoom),
    ) -> Result<RoomHandle, RoomError> {
        let mut rooms = lock(&self.rooms);
        if rooms.by_id.contains_key(id) {
            return Err(RoomError::Exists {
                room: id.to_string(),
            });
        }
        self.insert(&mut rooms, id, lease, start)
    }

    /// The room with this id, created (and started with `start`) if there is none, for a
    /// client about to join it (see [`claim`](RoomRegistry::claim)).
    pub(super) fn get_or_create(
        &self,
        id: &str,
        lease: Option<Lease>,
        start: impl FnOnce(NewRoom),
    ) -> Result<RoomHandle, RoomError> {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.claim(id) {
            return Ok(room);
        }
        self.insert(&mut rooms, id, lease, start)
    }

    fn insert(
        &self,
        rooms: &mut Rooms,
        id: &str,
        lease: Option<Lease>,
        start: impl FnOnce(NewRoom),
    ) -> Result<RoomHandle, RoomError> {
        if rooms.shut_down {
            return Err(RoomError::ShuttingDown);
        }
        let mut evicted = None;
        if rooms.by_id.len() >= self.max_rooms {
            // The empty room that has waited longest in its grace period makes way.
            let Some((_, oldest)) = rooms.idle.pop_first() else {
                return Err(RoomError::TooManyRooms {
                    max: self.max_rooms,
                });
            };
            evicted = rooms.by_id.remove(&oldest).map(|entry| entry.handle);
        }
        let id: Arc<str> = Arc::from(id);
        let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
        let (events, receiver) = mpsc::channel(ROOM_QUEUE);
        let handle = RoomHandle {
            events,
            generation,
            worker: (self.locate)(),
        };
        let entry = Entry {
            handle: handle.clone(),
            idle: None,
        };
        rooms.by_id.insert(id.clone(), entry);
        start(NewRoom {
            id,
            generation,
            events: receiver,
            lease,
            evicted,
        });
        Ok(handle)
    }

    /// Forgets the room, if the entry for `id` is still this generation.
    pub(super) fn remove(&self, id: &str, generation: u64) {
        let mut rooms = lock(&self.rooms);
        let Some(entry) = rooms.by_id.get(id) else {
            return;
        };
        if entry.handle.generation != generation {
            return;
        }
        if let Some(seq) = entry.idle {
            rooms.idle.remove(&seq);
        }
        rooms.by_id.remove(id);
    }

    /// Notes that the room is empty and waiting out its grace period.
    pub(super) fn mark_idle(&self, id: &str, generation: u64) {
        let rooms = &mut *lock(&self.rooms);
        let seq = rooms.next_idle;
        let Some((key, entry)) = rooms.by_id.get_key_value(id) else {
            return;
        };
        if entry.handle.generation != generation || entry.idle.is_some() {
            return;
        }
        rooms.idle.insert(seq, key.clone());
        rooms.next_idle += 1;
        if let Some(entry) = rooms.by_id.get_mut(id) {
            entry.idle = Some(seq);
        }
    }

    /// Notes that the room has a client again.
    pub(super) fn mark_busy(&self, id: &str, generation: u64) {
        let mut rooms = lock(&self.rooms);
        if rooms
            .by_id
            .get(id)
            .is_some_and(|entry| entry.handle.generation == generation)
        {
            rooms.claim(id);
        }
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.rooms).by_id.len()
    }

    /// Every room open now.
    pub(super) fn all(&self) -> Vec<RoomHandle> {
        lock(&self.rooms)
            .by_id
            .values()
            .map(|entry| entry.handle.clone())
            .collect()
    }

    /// Up to `limit` rooms whose ids start with `prefix` and sort after `after`, in id order.
    pub(super) fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<(Arc<str>, RoomHandle)> {
        let rooms = lock(&self.rooms);
        let mut page: Vec<(&Arc<str>, &Entry)> = rooms
            .by_id
            .iter()
            .filter(|(id, _)| id.starts_with(prefix) && after.is_none_or(|after| &***id > after))
            .collect();
        // Only the first `limit` need sorting; a server may hold many rooms.
        if page.len() > limit {
            page.select_nth_unstable_by(limit, |a, b| a.0.cmp(b.0));
            page.truncate(limit);
        }
        page.sort_unstable_by(|a, b| a.0.cmp(b.0));
        page.into_iter()
            .map(|(id, entry)| (id.clone(), entry.handle.clone()))
            .collect()
    }

    /// Whether the table holds the room `id` of this generation.
    pub(super) fn holds(&self, id: &str, generation: u64) -> bool {
        let rooms = lock(&self.rooms);
        let entry = rooms.by_id.get(id);
        entry.is_some_and(|entry| entry.handle.generation == generation)
    }

    /// Whether [`shut_down`](RoomRegistry::shut_down) was called.
    pub(super) fn is_shut_down(&self) -> bool {
        lock(&self.rooms).shut_down
    }

    /// Refuses to create rooms from now on, and returns every room open at this moment.
    pub(super) fn shut_down(&self) -> Vec<RoomHandle> {
        lock(&self.rooms).shut_down = true;
        self.all()
    }
}

impl RoomHandle {
    /// Asks the room to close its clients with `frame` and end. A room that already ended has
    /// nothing to close.
    pub(crate) async fn close(&self, frame: CloseFrame) {
        let _ = self.events.send(RoomEvent::Close { reason: frame }).await;
    }
}
