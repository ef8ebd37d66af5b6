//! The connection task: one per WebSocket. It owns the client's TCP stream once the handshake
//! is done: it reads frames and hands messages to the room. What the room sends is written by
//! the thread's [outlet](super::outlet) while the connection has nothing of its own to write,
//! and by the connection itself otherwise: everything queued at that moment in one write,
//! either way.
//!
//! Its buffers are dropped while the connection is idle, so an idle client costs little more
//! than its socket and its queue.

use super::frame_header::MAX_HEADER_BYTES;
use super::frames::{FrameError, Frames, Incoming};
use super::heartbeat::Heartbeat;
use super::link::LinkStream;
use super::outlet::Handover;
use super::stream::{Reader, Stream, Writer};
use crate::admission::ConnectionPermit;
use crate::close_frame::{code, CloseFrame};
use crate::log_throttle::warn_throttled;
use crate::rate_limit::{FrameBudget, OverBudget, RateLimit};
use crate::rooms::{
    CountError, Delivery, Held, LocalRoom, Outbound, QueueReceiver, RoomEvent, RoomHandle,
    ACK_EVERY,
};
use crate::settings::Settings;
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use bytestring::ByteString;
use jamsocket::ClientId;
use std::borrow::Cow;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;
use tokio::time::{sleep, timeout, Instant};

/// How long the close frame, and what is queued before it, may take to be written before the
/// connection is simply dropped.
const CLOSE_FRAME_TIMEOUT: Duration = Duration::from_secs(1);
/// Stop taking messages from the room while this much waits to be written: the room's queue
/// fills up instead, and a full queue is what closes a client that does not read.
pub(super) const WRITE_HIGH_WATER: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Connection {
    pub room_id: Arc<str>,
    pub room: RoomHandle,
    pub client: ClientId,
    /// What the room sends the client, and (`jamsocket.v1`) what it has not acknowledged.
    pub delivery: Delivery,
    pub close: oneshot::Receiver<CloseFrame>,
    /// The `jamsocket.v1` protocol's greeting, if the client speaks it: numbered messages,
    /// acknowledgements, a welcome frame first.
    pub sequenced: Option<Welcome>,
    pub settings: Arc<Settings>,
    /// The client's message rate, if [`Limits::max_messages_per_sec`](crate::Limits) is set.
    pub rate: Option<RateLimit>,
    /// Every frame and byte the client sends.
    pub budget: FrameBudget,
    /// Holds the connection's place in the server's connection count; handed to the room
    /// with the client's delivery when the client is away.
    pub permit: Option<ConnectionPermit>,
    /// The next message of the session to write again after a resume (`jamsocket.v1`): the
    /// client had not seen it. Past `delivery.sent`, nothing is left to write again.
    pub replay_next: u64,
}

/// What a `jamsocket.v1` connection says first, and where it picks up.
#[derive(Debug)]
pub(crate) struct Welcome {
    pub resumed: bool,
    /// Messages from the client the room has handled in this session, as the client was
    /// last told: an acknowledgement queued for an earlier connection, and no higher, is
    /// not sent.
    pub received: u64,
    /// Messages of the session the client says it has seen.
    pub seen: u64,
}

/// A connection's socket: registered with this thread's reactor, or coming from another
/// worker thread's (and registered here when the connection starts), or a stream on a node
/// link (a client another node forwards).
#[derive(Debug)]
pub(crate) enum Socket {
    Here(TcpStream),
    Moved(std::net::TcpStream),
    Link(LinkStream),
}

/// What ended a connection: the reason logged, the close frame to send (if any), and
/// whether the client may come back to its session (its connection was lost, rather than
/// closed by either side).
struct End {
    reason: Cow<'static, str>,
    close: Option<CloseFrame>,
    lost: bool,
}

impl End {
    fn dropped() -> End {
        End {
            reason: Cow::Borrowed("connection dropped"),
            close: None,
            lost: true,
        }
    }

    /// Closes with `frame`, logging its reason.
    fn closing(frame: CloseFrame) -> End {
        End {
            reason: frame.reason.clone(),
            close: Some(frame),
            lost: false,
        }
    }

    fn room_ended() -> End {
        End {
            reason: Cow::Borrowed("room ended"),
            close: Some(CloseFrame::new(
                code::INTERNAL_ERROR,
                "the room ended unexpectedly",
            )),
            lost: false,
        }
    }
}

impl Connection {
    /// Runs until the client or the room ends the connection, then tells the room.
    ///
    /// `read_buf` holds what the client sent after its handshake request, if anything.
    ///
    /// The future is written as an `async move` block rather than an `async fn`: an `async fn`
    /// keeps a second copy of its arguments in its state, and this state is most of what an
    /// idle connection costs (the task took 2,048 bytes as an `async fn`, 1,536 now).
    #[allow(clippy::manual_async_fn)]
    pub(super) fn run(mut self, socket: Socket, read_buf: BytesMut) -> impl Future<Output = ()> {
        async move {
            let _connected = self.settings.metrics.as_ref().map(|m| m.client_connected());
            let socket = match socket {
                Socket::Here(socket) => Stream::Tcp(socket),
                Socket::Link(stream) => Stream::Link(stream),
                Socket::Moved(socket) => match TcpStream::from_std(socket) {
                    Ok(socket) => Stream::Tcp(socket),
                    Err(err) => {
                        let park = Some(self.park());
                        drop(self.leave(format!("connection dropped: {err}"), park).await);
                        return;
                    }
                },
            };
            let (mut reader, writer) = socket.split();
            let mut frames = Frames::new(self.settings.limits.max_message_bytes, read_buf);
            // The connection hands its writing to the thread's outlet while it has nothing of
            // its own to write.
            let task = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
            let queue = self.delivery.outbound.handle();
            let numbered = self.sequenced.is_some();
            let mut handover = Handover::new(writer.clone(), queue, task, numbered);
            let end = match self.greet(&mut frames) {
                Ok(()) => {
                    self.pump(&mut reader, &writer, &mut frames, &mut handover)
                        .await
                }
                Err(end) => end,
            };
            self.take_back(&mut handover, &mut frames);
            // The room hears of the departure before the client sees its close frame, so a
            // client that reconnects right after closing finds the room already updated. A
            // lost client's session keeps what was on its way to it.
            let park = end.lost.then(|| self.park());
            let handled = self.leave(end.reason, park).await;
            let Some(frame) = end.close else {
                return;
            };
            // What the room sent in answer to the messages it had before the departure goes
            // out ahead of the close frame (a valid message followed at once by a bad frame
            // still gets its reply).
            let _ = timeout(CLOSE_FRAME_TIMEOUT, handled).await;
            self.take_outbound(&mut frames);
            tracing::debug!(room = %self.room_id, client = %self.client, ?frame, "closing connection");
            if let Some(metrics) = &self.settings.metrics {
                metrics.close_sent(frame.code);
            }
            frames.encode_close(frame);
            // A client that does not read gets its connection dropped instead.
            if timeout(CLOSE_FRAME_TIMEOUT, frames.finish(&mut reader, &writer))
                .await
                .is_err()
            {
                tracing::debug!(room = %self.room_id, client = %self.client, "close frame not taken; dropping the connection");
            }
        }
    }

    /// Tells the room the client left (it may have ended already), handing back the
    /// client's delivery if it may come back. The receiver returned resolves once the room has
    /// handled the departure.
    pub(super) async fn leave(
        &self,
        reason: impl Into<Cow<'static, str>>,
        park: Option<(Delivery, Held)>,
    ) -> oneshot::Receiver<()> {
        let (handled, receiver) = oneshot::channel();
        let leave = RoomEvent::Leave {
            client: self.client,
            reason: reason.into(),
            handled,
            park,
        };
        let _ = self.room.events.send(leave).await;
        receiver
    }

    /// Takes the client's delivery, to hand it back to the room (the connection has no use
    /// for it any more: what is queued is the session's, not this connection's).
    /// The connection's place in the connection limits goes with it: a client that is away
    /// counts as connected.
    pub(super) fn park(&mut self) -> (Delivery, Held) {
        let closed = Delivery::new(QueueReceiver::closed());
        let delivery = std::mem::replace(&mut self.delivery, closed);
        let held: Held = match self.permit.take() {
            Some(mut permit) => {
                // The partly received message, if any, is gone with the connection.
                let _ = permit.hold(0);
                Box::new(permit)
            }
            None => Box::new(()),
        };
        (delivery, held)
    }

    /// A `jamsocket.v1` connection starts with its welcome, then what the client has not
    /// seen of its session.
    fn greet(&mut self, frames: &mut Frames) -> Result<(), End> {
        let Some(welcome) = &self.sequenced else {
            // The plain protocol numbers nothing; what an earlier connection left
            // unacknowledged is not sent again.
            self.delivery.unacked.clear();
            self.replay_next = self.delivery.sent + 1;
            return Ok(());
        };
        // A new session starts from nothing, whatever the client saw of an older one.
        if welcome.resumed {
            if let Err(err) = self.delivery.resume(welcome.seen) {
                return Err(self.bad_count("seen", err));
            }
        }
        let text = format!(
            r#"{{"client":{},"resumed":{},"received":{},"ack_every":{ACK_EVERY}}}"#,
            self.client, welcome.resumed, welcome.received
        );
        frames.encode_tagged(b'w', text.as_bytes());
        // What the client has not seen is written again, before anything new, as the write
        // buffer takes it.
        self.replay_next = self.delivery.acked() + 1;
        self.take_outbound(frames);
        Ok(())
    }

    /// Whether messages the client has not seen are still to be written again.
    fn replaying(&self) -> bool {
        self.replay_next <= self.delivery.sent
    }

    /// Whether the connection takes another message from the room now: not while its write
    /// buffer is full, nor (`jamsocket.v1`) while the client has not acknowledged a queue's
    /// worth.
    fn can_take(&self, frames: &Frames) -> bool {
        frames.write_buf.len() < WRITE_HIGH_WATER
            && !self.replaying()
            && self.delivery.unacked.len() < self.settings.limits.outbound_queue_messages
    }

    /// Takes the writing back from the outlet, with what it wrote for the session.
    fn take_back(&mut self, handover: &mut Handover, frames: &mut Frames) {
        self.sync(handover);
        handover.take_back(&mut frames.write_buf);
    }

    /// A `jamsocket.v1` connection takes what the outlet numbered and wrote into the client's
    /// session, and tells the outlet how much more it may write.
    fn sync(&mut self, handover: &Handover) {
        let Some(welcome) = &mut self.sequenced else {
            return;
        };
        if let Some((written, received)) = handover.take_written(&mut self.delivery.unacked) {
            // The greater of the two: either may have written the latest acknowledgement.
            welcome.received = welcome.received.max(received);
            if written > 0 {
                self.delivery.sent += written as u64;
                self.replay_next = self.delivery.sent + 1;
            }
        }
        let max = self.settings.limits.outbound_queue_messages;
        handover.allow(
            max.saturating_sub(self.delivery.unacked.len()),
            welcome.received,
        );
    }

    /// Encodes one message from the room.
    fn send(&mut self, message: Outbound, frames: &mut Frames) {
        let Some(welcome) = &mut self.sequenced else {
            return frames.encode_outbound(message);
        };
        if let Outbound::Ack(count) = message {
            // An older connection's acknowledgement, superseded by this one's welcome.
            if count <= welcome.received {
                return;
            }
            welcome.received = count;
            frames.encode_sequenced(&message);
            return;
        }
        frames.encode_sequenced(&message);
        self.delivery.sent += 1;
        self.replay_next = self.delivery.sent + 1;
        self.delivery.unacked.push_back(message);
    }

    /// Encodes what the client is to see again, then what the room has queued for it, while
    /// the write buffer takes it (and [`Connection::can_take`]).
    fn take_outbound(&mut self, frames: &mut Frames) {
        while self.replaying() && frames.write_buf.len() < WRITE_HIGH_WATER {
            let acked = self.delivery.acked();
            // An acknowledgement may have covered part of the replay (a client acks only what it
            // saw, but nothing stops a wrong one).
            self.replay_next = self.replay_next.max(acked + 1);
            let index = (self.replay_next - acked - 1) as usize;
            let Some(message) = self.delivery.unacked.get(index) else {
                break;
            };
            frames.encode_sequenced(message);
            self.replay_next += 1;
        }
        while self.can_take(frames) {
            let Some(message) = self.delivery.outbound.try_recv() else {
                break;
            };
            self.send(message, frames);
        }
    }

    fn bad_count(&self, what: &str, err: CountError) -> End {
        warn_throttled!(room = %self.room_id, client = %self.client, "closing client: bad jamsocket.v1 {what}: {err}");
        End::closing(CloseFrame::new(
            code::PROTOCOL,
            format!("bad {what}: {err}"),
        ))
    }

    /// Reads and writes until the connection ends. While `handover` is handed over, the outlet
    /// writes what the room queues.
    async fn pump(
        &mut self,
        reader: &mut Reader,
        socket: &Writer,
        frames: &mut Frames,
        handover: &mut Handover,
    ) -> End {
        let mut heartbeat = Heartbeat::join(self.settings.heartbeat_interval);
        // When the client was last heard from, to within a heartbeat: reading the clock on
        // every frame would cost more than the check is worth.
        let mut last_heard = Instant::now();
        let mut heard = false;
        // A message the room had no room for yet; reading waits until it is taken.
        let mut pending: Option<RoomEvent> = None;
        let mut room_listening = true;
        // Owned here so that a permit to send to the room does not borrow `self`.
        let events = self.room.events.clone();
        // A native room on this thread handles messages right here when it is free.
        let local = LocalRoom::find(&self.room);
        let limits = self.settings.limits;
        let read_limit = limits.max_message_bytes.saturating_add(MAX_HEADER_BYTES);
        // Armed while a message is partly received: it must be complete by then.
        let deadline = sleep(Duration::ZERO);
        tokio::pin!(deadline);
        let mut message_started = false;
        let mut read_bytes = 0;
        // Set when this task ran the room's handler: its own frames wait until the tasks woken
        // with it have run (`yielded` once), so that what they send this client goes out with
        // them in one `send`.
        let mut deferred = false;
        let mut yielded = false;
        loop {
            super::outlet::busy();
            // The outlet gave the writing back: what it left goes first.
            if handover.poll_given_back().is_ready() {
                self.take_back(handover, frames);
            }
            let handed = handover.handed();
            // What the outlet wrote is the session's before the client's acknowledgements
            // below are taken.
            if handed {
                self.sync(handover);
            }
            let mut decoded = 0;
            let mut pongs = 0;
            while pending.is_none() {
                let incoming = match frames.decode() {
                    Ok(Some(incoming)) => incoming,
                    Ok(None) => break,
                    Err(err) => return self.bad_frame(err),
                };
                decoded += 1;
                if matches!(incoming, Incoming::Pong) {
                    pongs += 1;
                }
                let event = match self.incoming(incoming, frames) {
                    Ok(Some(event)) => event,
                    Ok(None) => continue,
                    Err(end) => return end,
                };
                // What the room sends this client meanwhile wakes this task while it runs, which
                // asks for the same one poll more as the yield below.
                let event = match &local {
                    Some(room) => match room.handle(&self.room, event) {
                        Ok(()) => {
                            deferred = !handed;
                            continue;
                        }
                        Err(event) => event,
                    },
                    None => event,
                };
                match self.room.events.try_send(event) {
                    Ok(()) => {}
                    Err(TrySendError::Full(event)) => pending = Some(event),
                    Err(TrySendError::Closed(_)) => return self.room_gone(),
                }
            }
            // The client's acknowledgements let the outlet write more.
            if handed && decoded > 0 {
                self.sync(handover);
            }
            // A client that only answered our ping is idle: its buffers go now, not at the
            // next heartbeat (which would find them allocated again by this pong).
            if pongs > 0 && pongs == decoded && !frames.message_under_way() {
                frames.shrink();
            }
            let got_input = decoded > 0 || read_bytes > 0;
            if got_input {
                let spent = self.budget.spend(decoded, read_bytes, Instant::now());
                if let Err(over) = spent {
                    return self.over_budget(over);
                }
                read_bytes = 0;
            }
            // A message is under way if part of it has arrived and the room is not the one
            // keeping us from reading the rest.
            let under_way = pending.is_none() && frames.message_under_way();
            if under_way != message_started {
                message_started = under_way;
                if under_way {
                    deadline
                        .as_mut()
                        .reset(Instant::now() + limits.message_deadline);
                } else {
                    frames.message_done();
                }
            }
            // What a message under way holds counts against the server's budget for them.
            let held = if message_started {
                frames.held_bytes()
            } else {
                0
            };
            if let Some(Err(max)) = self.permit.as_mut().map(|permit| permit.hold(held)) {
                return self.server_busy(max);
            }
            // What the room queued goes out with this flush, after every read, so that reading
            // (first, below) never starves the queue; after the yield, if this task ran the
            // room's handler.
            if !deferred {
                if !handed && (got_input || self.replaying()) {
                    self.take_outbound(frames);
                }
                if frames.flush(socket).is_err() {
                    return End::dropped();
                }
                // The outlet writes only whole frames after whole frames, and only what the
                // connection would take itself.
                if !frames.write_buf.is_empty() {
                    self.take_back(handover, frames);
                } else if room_listening && !handed && self.can_take(frames) {
                    self.sync(handover);
                    handover.hand_over();
                }
            }
            let handed = handover.handed();
            // In this order, without drawing a random start. Reading comes before the room's
            // queue: a client woken by a message for it that has sent one of its own (players
            // on the same tick) reads and handles its own first, then writes both frames with
            // one `send`. The queue is drained after every read and whenever it is taken from,
            // so neither starves the other.
            tokio::select! {
                biased;
                frame = &mut self.close => return self.closed_by_room(frame.ok()),
                () = poll_fn(|_| handover.poll_given_back()), if handed => {}
                () = poll_fn(|cx| yield_once(cx, &mut yielded)), if deferred => {
                    deferred = false;
                    self.take_outbound(frames);
                }
                permit = events.reserve(), if pending.is_some() => {
                    let (Ok(permit), Some(event)) = (permit, pending.take()) else {
                        return self.room_gone();
                    };
                    permit.send(event);
                }
                read = poll_fn(|cx| frames.poll_read(cx, reader, read_limit)), if pending.is_none() => {
                    match read {
                        Ok(0) | Err(_) => return End::dropped(),
                        Ok(n) => {
                            heard = true;
                            read_bytes = n;
                        }
                    }
                }
                message = poll_fn(|cx| self.delivery.outbound.poll_recv(cx)), if !deferred && !handed && room_listening && self.can_take(frames) => {
                    let Some(message) = message else {
                        // The room dropped us; its close frame follows on `close`.
                        room_listening = false;
                        continue;
                    };
                    self.send(message, frames);
                    self.take_outbound(frames);
                }
                () = &mut deadline, if message_started => {
                    let secs = limits.message_deadline.as_secs_f64();
                    warn_throttled!(room = %self.room_id, client = %self.client, secs, "closing client: message not completed in time");
                    return End::closing(CloseFrame::new(code::POLICY, format!("message not completed within {secs} s")));
                }
                ready = socket.writable(), if !deferred && !frames.write_buf.is_empty() => {
                    if ready.is_err() {
                        return End::dropped();
                    }
                }
                () = poll_fn(|cx| heartbeat.poll_tick(cx)) => {
                    let now = Instant::now();
                    if std::mem::take(&mut heard) {
                        last_heard = now;
                    }
                    if now.saturating_duration_since(last_heard) > self.settings.heartbeat_timeout {
                        // The client is gone, not leaving: its session waits for it.
                        if let Some(metrics) = &self.settings.metrics {
                            metrics.heartbeat_timeouts.inc();
                        }
                        let mut end = End::closing(CloseFrame::new(code::AWAY, "heartbeat timeout"));
                        end.lost = true;
                        return end;
                    }
                    // A client with a full write buffer gets no ping now; its silence still counts.
                    if frames.write_buf.len() < WRITE_HIGH_WATER {
                        frames.encode_ping();
                    }
                    frames.shrink();
                }
            }
        }
    }

    /// The room closed this client with `frame`, or ended without one.
    /// What the room sent before closing the client goes out first (see [`Connection::run`]),
    /// unless the session was taken over: then what is queued belongs to its new connection.
    fn closed_by_room(&self, frame: Option<CloseFrame>) -> End {
        let Some(frame) = frame else {
            return End::room_ended();
        };
        let lost = frame.code == code::TAKEN_OVER;
        End {
            reason: Cow::Owned(format!("closed by server: {}", frame.reason)),
            close: Some(frame),
            lost,
        }
    }

    /// The room stopped taking messages: it closed, and its frame is on `close` (say, 1001 at
    /// shutdown), unless it ended unexpectedly.
    fn room_gone(&mut self) -> End {
        let frame = self.close.try_recv().ok();
        self.closed_by_room(frame)
    }

    /// Handles one frame from the client: `Ok(Some(_))` is a message for the room, `Err` ends
    /// the connection.
    fn incoming(
        &mut self,
        incoming: Incoming,
        frames: &mut Frames,
    ) -> Result<Option<RoomEvent>, End> {
        let event = match incoming {
            Incoming::Text(text) if self.sequenced.is_some() => match self.sequenced_text(text)? {
                Some(text) => RoomEvent::Text {
                    client: self.client,
                    text,
                },
                None => return Ok(None),
            },
            Incoming::Text(text) => RoomEvent::Text {
                client: self.client,
                text,
            },
            Incoming::Binary(data) => RoomEvent::Binary {
                client: self.client,
                data,
            },
            Incoming::Fragment | Incoming::Pong => return Ok(None),
            Incoming::Ping(data) => {
                // Skipped if the client's write buffer is full: it is not reading anyway.
                if frames.write_buf.len() < WRITE_HIGH_WATER {
                    frames.encode_pong(data);
                }
                return Ok(None);
            }
            Incoming::Close(client_code) => {
                let reason = match client_code {
                    Some(code) => format!("closed by client ({code})"),
                    None => "closed by client".to_string(),
                };
                // Answer with the same code: the closing handshake completes.
                return Err(End {
                    reason: Cow::Owned(reason),
                    close: Some(CloseFrame::new(client_code.unwrap_or(code::NORMAL), "")),
                    lost: false,
                });
            }
        };
        if let Some(rate) = &mut self.rate {
            if !rate.take(1.0, Instant::now()) {
                let limit = rate.per_sec();
                warn_throttled!(room = %self.room_id, client = %self.client, limit, "client over its message rate: closing it");
                return Err(End::closing(CloseFrame::new(
                    code::POLICY,
                    format!("rate limit exceeded ({limit} messages/s)"),
                )));
            }
        }
        if let Some(metrics) = &self.settings.metrics {
            metrics.received(&event);
        }
        Ok(Some(event))
    }

    /// A `jamsocket.v1` text frame: `m<text>` is a message for the room, `a<n>` the client's
    /// acknowledgement.
    fn sequenced_text(&mut self, text: ByteString) -> Result<Option<ByteString>, End> {
        match text.as_bytes().first() {
            Some(b'm') => Ok(Some(text.slice_ref(&text[1..]))),
            Some(b'a') => {
                let Ok(count) = text[1..].parse::<u64>() else {
                    return Err(self.bad_frame(FrameError::Protocol(
                        "a jamsocket.v1 acknowledgement is `a<count>`".to_string(),
                    )));
                };
                match self.delivery.ack(count) {
                    Ok(()) => Ok(None),
                    Err(err) => Err(self.bad_count("acknowledgement", err)),
                }
            }
            _ => Err(self.bad_frame(FrameError::Protocol(
                "a jamsocket.v1 text frame starts with `m` (a message) or `a` (an acknowledgement)"
                    .to_string(),
            ))),
        }
    }

    fn bad_frame(&self, err: FrameError) -> End {
        match &err {
            FrameError::TooLarge { max } => {
                warn_throttled!(room = %self.room_id, client = %self.client, max, "closing client: message too large");
            }
            FrameError::ControlTooLong { len } => {
                warn_throttled!(room = %self.room_id, client = %self.client, len, "closing client: control frame too long");
            }
            FrameError::InvalidUtf8 => {
                warn_throttled!(room = %self.room_id, client = %self.client, "closing client: text message is not valid UTF-8");
            }
            FrameError::Protocol(error) => {
                warn_throttled!(room = %self.room_id, client = %self.client, error = %error, "closing client");
            }
        }
        End::closing(err.close_frame())
    }

    fn server_busy(&self, max: usize) -> End {
        warn_throttled!(room = %self.room_id, client = %self.client, max, "closing client: too many partly received messages on the server");
        End {
            reason: Cow::Borrowed("server holds too many partly received messages"),
            close: Some(CloseFrame::new(
                code::TRY_AGAIN_LATER,
                "server busy: too many partly received messages; try again later",
            )),
            lost: false,
        }
    }

    fn over_budget(&self, over: OverBudget) -> End {
        let description = over.describe();
        warn_throttled!(room = %self.room_id, client = %self.client, "closing client: {description}");
        End::closing(CloseFrame::new(code::POLICY, description))
    }
}

/// Pending once (the task is woken again at once, behind the tasks already woken), then ready.
pub(super) fn yield_once(
    cx: &mut std::task::Context<'_>,
    yielded: &mut bool,
) -> std::task::Poll<()> {
    if std::mem::take(yielded) {
        return std::task::Poll::Ready(());
    }
    *yielded = true;
    cx.waker().wake_by_ref();
    std::task::Poll::Pending
}
