//! What has been asked of the store and is not written yet: the latest save or delete of each
//! room (coalesced), quarantined copies (queued), and who waits in `flush`.
//!
//! Every request gets a sequence number. A room's entry stays in the map while it is written,
//! so `load` keeps answering from memory until the store has it; a newer save replaces the entry
//! and survives the older write's completion (which only removes the entry it wrote).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// A change to a room's snapshot.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A snapshot, with the fencing token of its writer if it has one.
    Save {
        snapshot: Arc<Vec<u8>>,
        fence: Option<u64>,
    },
    Delete,
}

struct Entry {
    change: Change,
    seq: u64,
    /// The first request this entry stands for (coalesced ones keep it): what `flush` waits on.
    since: u64,
    in_flight: bool,
    /// The compressed snapshot, kept when a write failed so a retry does not compress again.
    compressed: Option<Arc<Vec<u8>>>,
}

/// A room's change taken for writing.
#[derive(Debug)]
pub(crate) struct RoomWrite {
    pub(crate) room: String,
    pub(crate) seq: u64,
    pub(crate) change: Change,
    pub(crate) compressed: Option<Arc<Vec<u8>>>,
}

/// Bytes kept aside for inspection.
#[derive(Debug, Clone)]
pub(crate) struct Quarantined {
    pub(crate) room: String,
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) unix_ms: u64,
    seq: u64,
}

/// What the writer takes in one go.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) rooms: Vec<RoomWrite>,
    pub(crate) quarantined: Vec<Quarantined>,
}

/// How the write of one room's change ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Written,
    /// Will never be written (oversized, or fenced out): dropped like a written one.
    Refused,
    /// To be retried; the compressed bytes are kept for that.
    Failed(Option<Arc<Vec<u8>>>),
}

#[derive(Default)]
struct State {
    next_seq: u64,
    rooms: HashMap<String, Entry>,
    quarantined: VecDeque<Quarantined>,
    /// The lowest `since` of the batch being written.
    batch_since: Option<u64>,
    waiters: Vec<(u64, oneshot::Sender<()>)>,
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Every request numbered below this is written (or refused).
    fn done_below(&self) -> u64 {
        let rooms = self.rooms.values().map(|entry| entry.since);
        let quarantined = self.quarantined.iter().map(|q| q.seq);
        rooms
            .chain(quarantined)
            .chain(self.batch_since)
            .min()
            .unwrap_or(u64::MAX)
    }

    fn wake_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let done_below = self.done_below();
        self.waiters.retain(|(target, _)| *target >= done_below);
        // Dropped senders wake their `flush`; so do senders whose flush went away.
    }
}

/// The shared pending state (one lock, held briefly).
#[derive(Default)]
pub(crate) struct Pending(Mutex<State>);

impl Pending {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under this lock cannot leave the map half-changed: keep going.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `change` for `room`, replacing an unwritten older one.
    pub(crate) fn push(&self, room: &str, change: Change) {
        let mut state = self.lock();
        let seq = state.next_seq();
        match state.rooms.get_mut(room) {
            Some(entry) => {
                // An entry being written stands for requests that write covers; this one is new.
                if entry.in_flight {
                    entry.since = seq;
                }
                entry.change = change;
                entry.seq = seq;
                entry.in_flight = false;
                entry.compressed = None;
            }
            None => {
                let entry = Entry {
                    change,
                    seq,
                    since: seq,
                    in_flight: false,
                    compressed: None,
                };
                state.rooms.insert(room.to_owned(), entry);
            }
        }
    }

    /// Queues a copy of `bytes` to be kept aside.
    pub(crate) fn push_quarantined(&self, room: &str, bytes: Vec<u8>, unix_ms: u64) {
        let mut state = self.lock();
        let seq = state.next_seq();
        state.quarantined.push_back(Quarantined {
            room: room.to_owned(),
            bytes: Arc::new(bytes),
            unix_ms,
            seq,
        });
    }

    /// `Some(change)` if a change of `room` is not written yet.
    pub(crate) fn get(&self, room: &str) -> Option<Change> {
        self.lock()
            .rooms
            .get(room)
            .map(|entry| entry.change.clone())
    }

    /// The rooms for which `keep` is true that have a change not written yet, each with whether
    /// that change is a save (else a delete).
    pub(crate) fn rooms(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, bool)> {
        let state = self.lock();
        let rooms = state.rooms.iter().filter(|(room, _)| keep(room));
        let saved = |entry: &Entry| matches!(entry.change, Change::Save { .. });
        rooms
            .map(|(room, entry)| (room.clone(), saved(entry)))
            .collect()
    }

    /// Rooms and quarantined copies not written yet.
    pub(crate) fn len(&self) -> usize {
        let state = self.lock();
        state.rooms.len() + state.quarantined.len()
    }

    /// Takes the oldest changes not being written, up to `max_items` and (past the first)
    /// `max_raw_bytes` of uncompressed snapshots, plus every queued quarantined copy. `None` if
    /// there is nothing to write.
    pub(crate) fn take_batch(&self, max_items: usize, max_raw_bytes: usize) -> Option<Batch> {
        let mut state = self.lock();
        let mut waiting: Vec<(u64, &String)> = (state.rooms.iter())
            .filter(|(_, entry)| !entry.in_flight)
            .map(|(room, entry)| (entry.since, room))
            .collect();
        if waiting.is_empty() && state.quarantined.is_empty() {
            return None;
        }
        if waiting.len() > max_items {
            waiting.select_nth_unstable(max_items);
            waiting.truncate(max_items);
        }
        waiting.sort_unstable();
        let mut chosen = Vec::with_capacity(waiting.len());
        let mut raw_bytes = 0;
        for (_, room) in waiting {
            let size = match &state.rooms[room].change {
                Change::Save { snapshot, .. } => snapshot.len(),
                Change::Delete => 0,
            };
            if !chosen.is_empty() && raw_bytes + size > max_raw_bytes {
                break;
            }
            raw_bytes += size;
            chosen.push(room.clone());
        }
        let mut batch = Batch::default();
        let mut batch_since = u64::MAX;
        for room in chosen {
            let Some(entry) = state.rooms.get_mut(&room) else {
                continue;
            };
            entry.in_flight = true;
            batch_since = batch_since.min(entry.since);
            batch.rooms.push(RoomWrite {
                seq: entry.seq,
                change: entry.change.clone(),
                compressed: entry.compressed.clone(),
                room,
            });
        }
        batch.quarantined = state.quarantined.drain(..).collect();
        batch_since = (batch.quarantined.iter().map(|q| q.seq)).fold(batch_since, u64::min);
        state.batch_since = Some(batch_since);
        Some(batch)
    }

    /// Records how a batch from [`take_batch`](Self::take_batch) ended; wakes `flush`es it
    /// completes.
    pub(crate) fn finish_batch(
        &self,
        rooms: Vec<(RoomWrite, Outcome)>,
        quarantined: Option<Vec<Quarantined>>,
    ) {
        let mut state = self.lock();
        for (write, outcome) in rooms {
            let Some(entry) = state.rooms.get_mut(&write.room) else {
                continue;
            };
            if entry.seq != write.seq {
                // Replaced while being written: the newer change stays pending.
                continue;
            }
            match outcome {
                Outcome::Written | Outcome::Refused => {
                    state.rooms.remove(&write.room);
                }
                Outcome::Failed(compressed) => {
                    entry.in_flight = false;
                    entry.compressed = compressed;
                }
            }
        }
        if let Some(failed) = quarantined {
            for q in failed.into_iter().rev() {
                state.quarantined.push_front(q);
            }
        }
        state.batch_since = None;
        state.wake_waiters();
    }

    /// `None` if everything queued so far is written; otherwise a receiver that completes
    /// (with `Ok` or `Err`) once it is.
    pub(crate) fn wait_for_all(&self) -> Option<oneshot::Receiver<()>> {
        let mut state = self.lock();
        let target = state.next_seq;
        if state.done_below() > target {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        state.waiters.push((target, sender));
        Some(receiver)
    }

    /// Forgets everything unwritten (the store is shutting down without reaching its backend);
    /// wakes every `flush`. Returns how many rooms and quarantined copies were dropped.
    pub(crate) fn abandon(&self) -> usize {
        let mut state = self.lock();
        let dropped = state.rooms.len() + state.quarantined.len();
        state.rooms.clear();
        state.quarantined.clear();
        state.batch_since = None;
        state.waiters.clear();
        dropped
    }
}

#[cfg(test)]
#[path = "pending_tests.rs"]
mod tests;
