//! Handling a client's message on the connection task that read it.
//!
//! Every message used to take two task switches before its recipients' connections were woken:
//! the reading connection queued it for the room's task, and that task woke up to run the
//! service. A room and its connections share a worker thread, so the connection can run the
//! service itself, when the room is free and nothing is queued for it ahead of the message (so
//! a client's messages, and everyone's joins and departures, are still handled in the order
//! they came). Otherwise the message goes through the room's queue as before.
//!
//! A native service's handlers are ready at once. A WebAssembly guest's may yield (a long
//! call gives the thread up every time slice): such a handler starts on the connection's task,
//! and if it yields, the room's task finishes it before it takes anything else, while the
//! connection goes on reading.
//!
//! A room registers itself here, on its thread, for as long as it runs; a connection on the
//! same thread finds it by its generation.

use super::registry::RoomHandle;
use super::room_event::RoomEvent;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

/// A room that can handle a client's message on the caller's task.
pub(super) trait Inline {
    /// Handles `event` (a client's message) now, or gives it back if the room is busy (its
    /// task is in the middle of a step) or not running. A handler that has to wait is
    /// finished by the room's task.
    fn handle_now(self: Rc<Self>, event: RoomEvent) -> Result<(), RoomEvent>;
}

thread_local! {
    /// The rooms running on this thread that handle messages inline, by generation.
    static ROOMS: RefCell<HashMap<u64, Weak<dyn Inline>>> = RefCell::new(HashMap::new());
}

/// Makes `room` findable on this thread until the returned guard is dropped.
pub(super) fn register(generation: u64, room: Weak<dyn Inline>) -> Registration {
    ROOMS.with(|rooms| rooms.borrow_mut().insert(generation, room));
    Registration { generation }
}

/// A room's entry in this thread's table; removed when dropped.
pub(super) struct Registration {
    generation: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The table is gone already if the thread is ending.
        let _ = ROOMS.try_with(|rooms| rooms.borrow_mut().remove(&self.generation));
    }
}

/// A connection's way to its room when both run on this thread.
pub(crate) struct LocalRoom {
    room: Weak<dyn Inline>,
}

impl std::fmt::Debug for LocalRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRoom").finish_non_exhaustive()
    }
}

impl LocalRoom {
    /// The room `handle` reaches, if it runs on this thread and handles messages inline.
    pub(crate) fn find(handle: &RoomHandle) -> Option<LocalRoom> {
        let room = ROOMS.with(|rooms| rooms.borrow().get(&handle.generation).cloned())?;
        Some(LocalRoom { room })
    }

    /// Has the room handle `event` (a client's message) now, unless something is queued for
    /// the room ahead of it or the room is busy: then `event` comes back, to be queued.
    pub(crate) fn handle(&self, handle: &RoomHandle, event: RoomEvent) -> Result<(), RoomEvent> {
        // Free permits are given back as the room takes events: all of them free means
        // nothing is queued, nor about to be (a connection waiting for space holds one).
        if handle.events.capacity() != handle.events.max_capacity() {
            return Err(event);
        }
        match self.room.upgrade() {
            Some(room) => room.handle_now(event),
            None => Err(event),
        }
    }
}
