//! Writing what rooms send to clients whose connection tasks are asleep.
//!
//! A message for a client used to wake the client's connection task, which took it from its
//! queue, encoded it and wrote it: a task switch and a poll of the connection's `select!` per
//! delivery, the largest share of the server's user time at a moderate message rate. Now a
//! connection with nothing of its own to write hands its socket's writing side and its queue
//! to its thread's outlet (a [`Handover`]). A push to the queue then marks the client instead
//! of waking its task, and the outlet's one task per thread, which runs after the tasks woken
//! before it, encodes and writes what every marked client has queued: one `send` per client
//! per turn of the event loop, as before, and no connection task woken.
//!
//! What the outlet cannot write at once (the client is not reading fast enough), or cannot
//! write at all, goes back to the connection with its task woken: the connection takes its
//! writing back, with what is left of the outlet's bytes ahead of anything of its own, and
//! waits for the socket as it always did.
//!
//! A `jamsocket.v1` connection is handed over too: the outlet numbers what it writes and
//! keeps it, in order, for the connection, which takes it into the client's session each time
//! it runs (it keeps what the client has not acknowledged). The outlet writes no more than the
//! client may have unacknowledged, and gives the writing back when it reaches that.

use super::connection::{yield_once, WRITE_HIGH_WATER};
use super::frames::{encode_outbound, encode_sequenced};
use super::stream::Writer;
use crate::rooms::{Outbound, QueueHandle, KEEP_UNACKED};
use bytes::{Buf, BytesMut};
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

thread_local! {
    static OUTLET: RefCell<Outlet> = RefCell::new(Outlet::default());
    /// Counts the turns of this thread's connection tasks.
    static BUSY: Cell<u64> = const { Cell::new(0) };
}

/// How many times at most the outlet lets other tasks go first before it writes.
const MAX_YIELDS: usize = 4;

/// Says a connection task runs (and may queue more for the outlet to write).
pub(super) fn busy() {
    BUSY.set(BUSY.get().wrapping_add(1));
}

/// Keys of handovers, unique across threads: a wake that reaches another thread finds nothing
/// there and wakes the connection's task instead.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A thread's outlet: the clients handed over to it and those with something queued.
#[derive(Default)]
struct Outlet {
    handed: FxHashMap<u64, Rc<Sink>>,
    /// Handed-over clients with something queued, in the order they were marked.
    marked: Vec<Rc<Sink>>,
    /// The outlet's task, once it waited.
    task: Option<Waker>,
    /// Whether the task was woken and has not looked at `marked` since.
    woken: bool,
    /// Whether the task runs (it ends with the thread's task set).
    running: bool,
}

impl Outlet {
    /// Marks the client handed over as `key`; `false` if no client is handed over as `key` here.
    fn mark(&mut self, key: u64) -> bool {
        let Some(sink) = self.handed.get(&key) else {
            return false;
        };
        if !sink.marked.replace(true) {
            self.marked.push(sink.clone());
        }
        if !self.woken {
            self.woken = true;
            if let Some(task) = &self.task {
                task.wake_by_ref();
            }
        }
        true
    }
}

/// What the outlet needs of one connection.
struct Sink {
    writer: Rc<Writer>,
    queue: QueueHandle,
    /// Registered with the queue while handed over (as `waker`): it marks the client, and
    /// holds the connection's task.
    marks: Arc<Marks>,
    waker: Waker,
    /// Whether the client is handed over (the outlet writes for it).
    handed: Cell<bool>,
    marked: Cell<bool>,
    /// Set when the outlet could not write everything, or the room let the client go: it
    /// writes no more for the client, and the connection, woken, takes its writing back,
    /// starting with `leftover`.
    stalled: Cell<bool>,
    leftover: RefCell<BytesMut>,
    /// Set once the room let the client go: nothing more comes to hand over.
    gone: Cell<bool>,
    /// For a `jamsocket.v1` client: what numbering its messages needs.
    numbering: Option<Numbering>,
}

/// What the outlet writes for a `jamsocket.v1` client, and may write.
#[derive(Default)]
struct Numbering {
    /// The room's acknowledgements up to this count are not written: the client was told
    /// already.
    received: Cell<u64>,
    /// How many more messages the client may have unacknowledged.
    allowance: Cell<usize>,
    /// The messages written since the connection last took them, in order.
    written: RefCell<VecDeque<Outbound>>,
}

impl Numbering {
    /// Appends `message` to `buf`, numbered, and keeps it (an acknowledgement the client was
    /// given already is left out).
    fn encode(&self, buf: &mut BytesMut, message: Outbound) {
        if let Outbound::Ack(count) = message {
            if count > self.received.get() {
                self.received.set(count);
                encode_sequenced(buf, &message);
            }
            return;
        }
        encode_sequenced(buf, &message);
        self.allowance.set(self.allowance.get().saturating_sub(1));
        self.written.borrow_mut().push_back(message);
    }
}

/// The queue's waker while a client is handed over.
struct Marks {
    key: u64,
    /// The connection's task.
    task: Waker,
    /// Set when a wake found no outlet that knows `key` (the client was taken back, or the
    /// wake came from another thread): the connection must look at its queue itself.
    stray: AtomicBool,
}

impl Wake for Marks {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let marked = OUTLET
            .try_with(|outlet| match outlet.try_borrow_mut() {
                Ok(mut outlet) => outlet.mark(self.key),
                Err(_) => false,
            })
            .unwrap_or(false);
        // Taken back, on another thread, or the thread is ending: the task looks itself.
        if !marked {
            self.stray.store(true, Ordering::Relaxed);
            self.task.wake_by_ref();
        }
    }
}

/// A connection's way to hand its writing to the outlet and take it back. Dropping it takes
/// it back (bytes the outlet left are dropped with it).
pub(super) struct Handover {
    sink: Rc<Sink>,
}

impl Handover {
    /// A handover of `writer`, fed from `queue`, for the connection whose task is `task`
    /// (`numbered` for a `jamsocket.v1` connection). Not handed over yet.
    pub(super) fn new(
        writer: Rc<Writer>,
        queue: QueueHandle,
        task: Waker,
        numbered: bool,
    ) -> Handover {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let marks = Arc::new(Marks {
            key,
            task,
            stray: AtomicBool::new(false),
        });
        let sink = Rc::new(Sink {
            writer,
            queue,
            waker: Waker::from(marks.clone()),
            marks,
            handed: Cell::new(false),
            marked: Cell::new(false),
            stalled: Cell::new(false),
            leftover: RefCell::new(BytesMut::new()),
            gone: Cell::new(false),
            numbering: numbered.then(Numbering::default),
        });
        Handover { sink }
    }

    pub(super) fn handed(&self) -> bool {
        self.sink.handed.get()
    }

    /// Ready once the outlet gave the writing back (or a wake missed it): the connection must
    /// take it. The connection's task is woken then (its waker, given to [`Handover::new`],
    /// is the same for the task's life).
    pub(super) fn poll_given_back(&self) -> Poll<()> {
        if self.sink.stalled.get() || self.sink.marks.stray.load(Ordering::Relaxed) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Hands the writing over: from now on the outlet writes what is queued, starting with
    /// what is queued already. The connection must have nothing unwritten of its own, and (a
    /// `jamsocket.v1` connection) must have set what the outlet may write with
    /// [`Handover::allow`].
    pub(super) fn hand_over(&mut self) {
        if self.handed() || self.sink.gone.get() {
            return;
        }
        // Wakes that missed the outlet while the connection wrote for itself are its own past.
        self.sink.marks.stray.store(false, Ordering::Relaxed);
        self.sink.handed.set(true);
        OUTLET.with(|outlet| {
            let mut outlet = outlet.borrow_mut();
            outlet.handed.insert(self.sink.marks.key, self.sink.clone());
            if !outlet.running {
                outlet.running = true;
                tokio::task::spawn_local(run());
            }
            outlet.mark(self.sink.marks.key);
        });
    }

    /// For a `jamsocket.v1` connection: the outlet may write `allowance` messages more than it
    /// wrote since [`Handover::take_written`], and skips the room's acknowledgements up to
    /// `received`.
    pub(super) fn allow(&self, allowance: usize, received: u64) {
        if let Some(numbering) = &self.sink.numbering {
            numbering.allowance.set(allowance);
            numbering.received.set(received);
        }
    }

    /// For a `jamsocket.v1` connection: moves the messages the outlet wrote since the last call
    /// to the end of `log`, in order, and returns how many, and the highest acknowledgement
    /// count the outlet wrote or was told of with [`Handover::allow`] (0 before either).
    pub(super) fn take_written(&self, log: &mut VecDeque<Outbound>) -> Option<(usize, u64)> {
        let numbering = self.sink.numbering.as_ref()?;
        let mut written = numbering.written.borrow_mut();
        let count = written.len();
        log.extend(written.drain(..));
        if written.capacity() > KEEP_UNACKED {
            written.shrink_to(KEEP_UNACKED);
        }
        Some((count, numbering.received.get()))
    }

    /// Takes the writing back. What the outlet had left unwritten goes into `write_buf` ahead
    /// of what is there: the connection wrote that since, while the outlet's bytes came first.
    /// (A `jamsocket.v1` connection takes what the outlet wrote first, with
    /// [`Handover::take_written`].)
    pub(super) fn take_back(&mut self, write_buf: &mut BytesMut) {
        if !self.handed() {
            return;
        }
        self.withdraw();
        self.sink.stalled.set(false);
        let mut left = std::mem::take(&mut *self.sink.leftover.borrow_mut());
        if !left.is_empty() {
            left.extend_from_slice(write_buf);
            *write_buf = left;
        }
    }

    fn withdraw(&self) {
        self.sink.handed.set(false);
        let _ = OUTLET.try_with(|outlet| outlet.borrow_mut().handed.remove(&self.sink.marks.key));
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        if self.handed() {
            self.withdraw();
        }
    }
}

/// The outlet's task: writes for the marked clients, each time some are.
async fn run() {
    /// Lets a later task start if this one is dropped with its thread's task set.
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = OUTLET.try_with(|outlet| {
                let mut outlet = outlet.borrow_mut();
                outlet.running = false;
                outlet.task = None;
                outlet.woken = false;
            });
        }
    }
    let _running = Running;
    let mut marked = Vec::new();
    let mut scratch = BytesMut::new();
    loop {
        poll_fn(|cx| {
            OUTLET.with(|outlet| {
                let mut outlet = outlet.borrow_mut();
                if outlet.marked.is_empty() {
                    outlet.woken = false;
                    match &outlet.task {
                        Some(task) if task.will_wake(cx.waker()) => {}
                        _ => outlet.task = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
                Poll::Ready(())
            })
        })
        .await;
        // Behind the tasks woken meanwhile, again while connections keep running (a few times
        // at most): what they send goes out with this, in fewer `send`s when the server is
        // busy. (Tokio's `yield_now` would wait for the reactor too: an `epoll_wait` more.)
        for _ in 0..MAX_YIELDS {
            let before = BUSY.get();
            let mut yielded = false;
            poll_fn(|cx| yield_once(cx, &mut yielded)).await;
            if BUSY.get() == before {
                break;
            }
        }
        OUTLET.with(|outlet| std::mem::swap(&mut marked, &mut outlet.borrow_mut().marked));
        for sink in marked.drain(..) {
            sink.marked.set(false);
            if sink.handed.get() && !sink.stalled.get() {
                write(&sink, &mut scratch);
            }
        }
        if scratch.capacity() > WRITE_HIGH_WATER {
            scratch = BytesMut::new();
        }
    }
}

/// Encodes and writes what `sink`'s client has queued, in turns of at most the high-water
/// mark, while the socket takes it. `scratch` is empty before and after.
fn write(sink: &Sink, scratch: &mut BytesMut) {
    let mut cx = Context::from_waker(&sink.waker);
    loop {
        // Whether the queue may hold more than this turn took.
        let mut more = true;
        let mut sender_gone = false;
        // A `jamsocket.v1` client has all it may have unacknowledged.
        let mut unacked_full = false;
        while more && scratch.len() < WRITE_HIGH_WATER {
            if sink
                .numbering
                .as_ref()
                .is_some_and(|n| n.allowance.get() == 0)
            {
                unacked_full = true;
                break;
            }
            match sink.queue.poll_recv(&mut cx) {
                Poll::Ready(Some(message)) => match &sink.numbering {
                    None => encode_outbound(scratch, message),
                    Some(numbering) => numbering.encode(scratch, message),
                },
                Poll::Ready(None) => {
                    sender_gone = true;
                    more = false;
                }
                Poll::Pending => more = false,
            }
        }
        while !scratch.is_empty() {
            match sink.writer.try_write(scratch) {
                Ok(written) if written > 0 => scratch.advance(written),
                // The socket is full, or failed (the connection meets the error itself).
                _ => {
                    *sink.leftover.borrow_mut() = scratch.split();
                    sink.stalled.set(true);
                    sink.marks.task.wake_by_ref();
                    return;
                }
            }
        }
        scratch.clear();
        // The room let the client go: the connection takes over, and writes its close frame.
        // Or the client must acknowledge first: the connection takes over, and waits for it.
        if sender_gone || unacked_full {
            if sender_gone {
                sink.gone.set(true);
            }
            sink.stalled.set(true);
            sink.marks.task.wake_by_ref();
            return;
        }
        if !more {
            return;
        }
    }
}
