//! A client's outbound queue: the room pushes messages, the client's connection takes them.
//!
//! One sender (the room's slot for the client) and one receiver (the client's [`Delivery`],
//! which moves between the connections of a session), both on the room's worker thread in
//! practice. It replaces a Tokio `mpsc` channel, which is built for many producers on many
//! threads: its semaphore, block list and atomic waker cost about a quarter of the server's
//! user time per delivery at a moderate message rate (perf, 1,000 rooms of 2 clients at 10,000
//! messages/s). Here a push is one uncontended lock and, only when the connection is waiting
//! and not yet woken, one wake.
//!
//! [`Delivery`]: super::Delivery

use super::room_context::Outbound;
use crate::sync::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// A queue whose capacity stays above this many messages after it empties is shrunk, so a
/// burst does not leave an idle client holding its peak.
const KEEP_CAPACITY: usize = 16;

/// Creates a queue holding at most `capacity` messages.
pub(crate) fn outbound_queue(capacity: usize) -> (QueueSender, QueueReceiver) {
    let shared = Arc::new(Mutex::new(State {
        messages: VecDeque::new(),
        capacity: capacity.max(1),
        waker: None,
        woken: false,
        sender_gone: false,
        receiver_gone: false,
    }));
    (
        QueueSender {
            shared: shared.clone(),
        },
        QueueReceiver { shared },
    )
}

#[derive(Debug)]
struct State {
    messages: VecDeque<Outbound>,
    capacity: usize,
    /// The receiving task, once it waited for a message.
    waker: Option<Waker>,
    /// Whether the receiving task was woken and has not looked at the queue since: further
    /// pushes need not wake it again.
    woken: bool,
    sender_gone: bool,
    receiver_gone: bool,
}

impl State {
    fn wake(&mut self) {
        if !self.woken {
            if let Some(waker) = &self.waker {
                self.woken = true;
                waker.wake_by_ref();
            }
        }
    }
}

/// Why a message was not queued (it is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue holds its capacity: the client is not reading.
    Full,
    /// The receiver is gone.
    Closed,
}

/// The room's end of a client's queue.
#[derive(Debug)]
pub(crate) struct QueueSender {
    shared: Arc<Mutex<State>>,
}

impl QueueSender {
    pub(crate) fn try_send(&self, message: Outbound) -> Result<(), PushError> {
        let mut state = lock(&self.shared);
        if state.receiver_gone {
            return Err(PushError::Closed);
        }
        if state.messages.len() >= state.capacity {
            return Err(PushError::Full);
        }
        state.messages.push_back(message);
        state.wake();
        Ok(())
    }
}

impl Drop for QueueSender {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.sender_gone = true;
        state.wake();
    }
}

/// The client's end of its queue.
#[derive(Debug)]
pub(crate) struct QueueReceiver {
    shared: Arc<Mutex<State>>,
}

impl QueueReceiver {
    /// A receiver with no sender: it yields nothing.
    pub(crate) fn closed() -> QueueReceiver {
        outbound_queue(1).1
    }

    /// The next message, if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<Outbound> {
        let mut state = lock(&self.shared);
        let message = state.messages.pop_front();
        if message.is_none() && state.messages.capacity() > KEEP_CAPACITY {
            state.messages.shrink_to(KEEP_CAPACITY);
        }
        message
    }

    /// The next message; `Ready(None)` once the sender is gone and the queue is empty.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        poll_recv(&self.shared, cx)
    }

    /// A second way to take from the queue, for whoever writes for the connection while its
    /// task sleeps. Its drop does not close the queue.
    pub(crate) fn handle(&self) -> QueueHandle {
        QueueHandle {
            shared: self.shared.clone(),
        }
    }

    /// A copy of what is queued (the payloads are shared, not copied).
    pub(crate) fn queued(&self) -> Vec<Outbound> {
        lock(&self.shared).messages.iter().cloned().collect()
    }

    /// How many messages are queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.shared).messages.len()
    }
}

/// Takes from a client's queue on behalf of its [`QueueReceiver`].
#[derive(Debug)]
pub(crate) struct QueueHandle {
    shared: Arc<Mutex<State>>,
}

impl QueueHandle {
    /// As [`QueueReceiver::poll_recv`]: `cx`'s waker is woken when a message is pushed.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        poll_recv(&self.shared, cx)
    }
}

fn poll_recv(shared: &Mutex<State>, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
    let mut state = lock(shared);
    if let Some(message) = state.messages.pop_front() {
        return Poll::Ready(Some(message));
    }
    if state.sender_gone {
        return Poll::Ready(None);
    }
    if state.messages.capacity() > KEEP_CAPACITY {
        state.messages.shrink_to(KEEP_CAPACITY);
    }
    match &state.waker {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => state.waker = Some(cx.waker().clone()),
    }
    state.woken = false;
    Poll::Pending
}

impl Drop for QueueReceiver {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.receiver_gone = true;
        // What was queued goes with the receiver, not with the sender's copy of the state.
        state.messages = VecDeque::new();
        state.waker = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    fn text(s: &'static str) -> Outbound {
        Outbound::Text(s.into())
    }

    #[tokio::test]
    async fn messages_arrive_in_order_until_the_sender_is_gone() {
        let (sender, mut receiver) = outbound_queue(2);
        sender.try_send(text("a")).unwrap();
        sender.try_send(text("b")).unwrap();
        assert_eq!(sender.try_send(text("c")), Err(PushError::Full));
        let receive = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(Outbound::Text(t)) = poll_fn(|cx| receiver.poll_recv(cx)).await {
                got.push(t.to_string());
            }
            got
        });
        tokio::task::yield_now().await;
        sender.try_send(text("d")).unwrap();
        drop(sender);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), receive)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, ["a", "b", "d"]);
    }

    #[test]
    fn a_gone_receiver_refuses_messages_and_frees_what_was_queued() {
        let (sender, mut receiver) = outbound_queue(4);
        sender.try_send(text("a")).unwrap();
        assert_eq!(receiver.len(), 1);
        assert!(receiver.try_recv().is_some());
        assert!(receiver.try_recv().is_none());
        sender.try_send(text("b")).unwrap();
        drop(receiver);
        assert_eq!(sender.try_send(text("c")), Err(PushError::Closed));
        assert_eq!(lock(&sender.shared).messages.len(), 0);
        let mut closed = QueueReceiver::closed();
        assert!(closed.try_recv().is_none());
    }
}
