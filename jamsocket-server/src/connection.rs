//! The connection task: one per WebSocket. It owns the client's TCP stream once the handshake
//! is done: it reads frames and hands messages to the room, and writes what the room sends
//! straight to the socket, everything queued at that moment in one write.
//!
//! Its buffers are dropped while the connection is idle, so an idle client costs little more
//! than its socket and its queue.

use crate::admission::ConnectionPermit;
use crate::frame_header::{self, HeaderError, MAX_HEADER_BYTES};
use crate::log_throttle::warn_throttled;
use crate::rate_limit::{FrameBudget, OverBudget, RateLimit};
use crate::registry::RoomHandle;
use crate::room_context::Outbound;
use crate::room_event::RoomEvent;
use crate::settings::Settings;
use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, Message, ProtocolError};
use actix_web::rt::net::TcpStream;
use bytes::{Buf, BytesMut};
use bytestring::ByteString;
use jamsocket::ClientId;
use std::borrow::Cow;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::ReadHalf;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, sleep, timeout, Instant, MissedTickBehavior};
use tokio_util::io::poll_read_buf;

/// How long the close frame, and what is queued before it, may take to be written before the
/// connection is simply dropped.
const CLOSE_FRAME_TIMEOUT: Duration = Duration::from_secs(1);
/// After our close frame, how long we read (and discard) what the client still sends, so that
/// closing the socket does not reset the connection before the client has read our frame.
const LINGER: Duration = Duration::from_millis(100);
/// Stop taking messages from the room while this much waits to be written: the room's queue
/// fills up instead, and a full queue is what closes a client that does not read.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// Space reserved for each read from the socket.
const READ_CHUNK: usize = 4 * 1024;
/// A read buffer larger than this is dropped once the message that needed it is complete.
const LARGE_READ_BUF: usize = 16 * READ_CHUNK;

/// Most bytes of a close reason: a control frame carries at most 125 bytes, two of them the code.
const MAX_CLOSE_REASON_BYTES: usize = 123;

pub(crate) struct Connection {
    pub room_id: Arc<str>,
    pub room: RoomHandle,
    pub client: ClientId,
    pub outbound: mpsc::Receiver<Outbound>,
    pub close: oneshot::Receiver<CloseReason>,
    pub settings: Arc<Settings>,
    /// The client's message rate, if [`Limits::max_messages_per_sec`](crate::Limits) is set.
    pub rate: Option<RateLimit>,
    /// Every frame and byte the client sends.
    pub budget: FrameBudget,
    /// Holds the connection's place in the server's connection count.
    pub permit: ConnectionPermit,
}

/// What ended a connection: the reason logged, and the close frame to send (if any).
struct End {
    reason: Cow<'static, str>,
    close: Option<CloseReason>,
}

impl End {
    fn dropped() -> End {
        End {
            reason: Cow::Borrowed("connection dropped"),
            close: None,
        }
    }

    fn closing(reason: impl Into<Cow<'static, str>>, code: CloseCode, description: String) -> End {
        End {
            reason: reason.into(),
            close: Some(CloseReason {
                code,
                description: Some(description),
            }),
        }
    }

    fn room_ended() -> End {
        End::closing(
            "room ended",
            CloseCode::Error,
            "the room ended unexpectedly".to_string(),
        )
    }
}

/// The frame codec and the socket's two buffers.
struct Frames {
    codec: Codec,
    read_buf: BytesMut,
    write_buf: BytesMut,
}

impl Frames {
    /// Queues a frame for writing. Encoding the frames we send cannot fail.
    fn encode(&mut self, message: Message) {
        if let Err(err) = self.codec.encode(message, &mut self.write_buf) {
            tracing::error!(error = %err, "could not encode a WebSocket frame");
        }
    }

    fn encode_outbound(&mut self, message: Outbound) {
        self.encode(match message {
            Outbound::Text(text) => Message::Text(text),
            Outbound::Binary(data) => Message::Binary(data),
        });
    }

    fn encode_close(&mut self, mut reason: CloseReason) {
        if let Some(description) = reason.description.as_mut() {
            if description.len() > MAX_CLOSE_REASON_BYTES {
                let mut end = MAX_CLOSE_REASON_BYTES;
                while !description.is_char_boundary(end) {
                    end -= 1;
                }
                description.truncate(end);
            }
        }
        self.encode(Message::Close(Some(reason)));
    }

    /// Writes as much of the write buffer as the socket takes without waiting.
    fn flush(&mut self, socket: &TcpStream) -> io::Result<()> {
        while !self.write_buf.is_empty() {
            match socket.try_write(&self.write_buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.write_buf.advance(written),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Reads what the socket has, once it has something: a buffer is only reserved then, so
    /// an idle connection holds none. `Ok(0)` means the client closed the connection.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        socket: &TcpStream,
        reader: &mut ReadHalf<'_>,
        limit: usize,
    ) -> Poll<io::Result<usize>> {
        ready!(socket.poll_read_ready(cx))?;
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
            self.read_buf.reserve(READ_CHUNK);
        }
        // Never more than one frame of the largest size: the header of what is already here
        // has been checked against the limits.
        let wanted = limit.saturating_sub(self.read_buf.len()).max(1);
        let mut reader = reader.take(wanted as u64);
        // Unlike `try_read`, a short read here marks the socket drained: no extra `recv` that
        // would only say "would block".
        poll_read_buf(Pin::new(&mut reader), cx, &mut self.read_buf)
    }

    /// Frees the buffers of a connection with nothing in flight.
    fn shrink(&mut self) {
        if self.read_buf.is_empty() {
            self.read_buf = BytesMut::new();
        }
        if self.write_buf.is_empty() {
            self.write_buf = BytesMut::new();
        }
    }

    /// Writes the rest of the write buffer, then closes the connection gracefully.
    async fn finish(&mut self, socket: &mut TcpStream) -> io::Result<()> {
        loop {
            self.flush(socket)?;
            if self.write_buf.is_empty() {
                break;
            }
            socket.writable().await?;
        }
        socket.shutdown().await?;
        let mut sink = [0u8; 512];
        let _ = timeout(LINGER, async {
            while socket.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        })
        .await;
        Ok(())
    }
}

/// A text or binary message arriving in fragments.
struct Fragments {
    text: bool,
    data: BytesMut,
}

impl Connection {
    /// Runs until the client or the room ends the connection, then tells the room.
    ///
    /// `read_buf` holds what the client sent after its handshake request, if anything.
    pub async fn run(mut self, mut socket: TcpStream, read_buf: BytesMut) {
        let mut frames = Frames {
            codec: Codec::new().max_size(self.settings.limits.max_message_bytes),
            read_buf,
            write_buf: BytesMut::new(),
        };
        let end = self.pump(&mut socket, &mut frames).await;
        // The room hears of the departure before the client sees its close frame, so a client
        // that reconnects right after closing finds the room already updated.
        let handled = self.leave(end.reason).await;
        let Some(reason) = end.close else {
            return;
        };
        // What the room sent in answer to the messages it had before the departure goes out
        // ahead of the close frame (a valid message followed at once by a bad frame still gets
        // its reply).
        let _ = timeout(CLOSE_FRAME_TIMEOUT, handled).await;
        while frames.write_buf.len() < WRITE_HIGH_WATER {
            let Ok(message) = self.outbound.try_recv() else {
                break;
            };
            frames.encode_outbound(message);
        }
        tracing::debug!(room = %self.room_id, client = %self.client, ?reason, "closing connection");
        frames.encode_close(reason);
        // A client that does not read gets its connection dropped instead.
        if timeout(CLOSE_FRAME_TIMEOUT, frames.finish(&mut socket))
            .await
            .is_err()
        {
            tracing::debug!(room = %self.room_id, client = %self.client, "close frame not taken; dropping the connection");
        }
    }

    /// Like [`run`](Connection::run), with a socket from another worker thread.
    pub async fn run_std(self, socket: std::net::TcpStream, read_buf: BytesMut) {
        match TcpStream::from_std(socket) {
            Ok(socket) => self.run(socket, read_buf).await,
            Err(err) => drop(self.leave(format!("connection dropped: {err}")).await),
        }
    }

    /// Tells the room the client left (it may have ended already). The receiver returned
    /// resolves once the room has handled the departure.
    pub async fn leave(&self, reason: impl Into<Cow<'static, str>>) -> oneshot::Receiver<()> {
        let (handled, receiver) = oneshot::channel();
        let leave = RoomEvent::Leave {
            client: self.client,
            reason: reason.into(),
            handled,
        };
        let _ = self.room.events.send(leave).await;
        receiver
    }

    async fn pump(&mut self, socket: &mut TcpStream, frames: &mut Frames) -> End {
        let (mut reader, writer) = socket.split();
        let socket = writer.as_ref();
        let interval = self.settings.heartbeat_interval;
        let mut heartbeat = interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // When the client was last heard from, to within a heartbeat: reading the clock on
        // every frame would cost more than the check is worth.
        let mut last_heard = Instant::now();
        let mut heard = false;
        let mut fragments = None;
        // A message the room had no room for yet; reading waits until it is taken.
        let mut pending: Option<RoomEvent> = None;
        let mut room_listening = true;
        // Owned here so that a permit to send to the room does not borrow `self`.
        let events = self.room.events.clone();
        let limits = self.settings.limits;
        let read_limit = limits.max_message_bytes.saturating_add(MAX_HEADER_BYTES);
        // Armed while a message is partly received: it must be complete by then.
        let deadline = sleep(Duration::ZERO);
        tokio::pin!(deadline);
        let mut message_started = false;
        let mut read_bytes = 0;
        loop {
            let mut decoded = 0;
            while pending.is_none() {
                if let Err(end) = self.check_header(&frames.read_buf, fragments.as_ref()) {
                    return end;
                }
                let frame = match frames.codec.decode(&mut frames.read_buf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(err) => return self.protocol_error(err),
                };
                decoded += 1;
                match self.frame(frame, frames, &mut fragments) {
                    Ok(Some(event)) => match self.room.events.try_send(event) {
                        Ok(()) => {}
                        Err(TrySendError::Full(event)) => pending = Some(event),
                        Err(TrySendError::Closed(_)) => return self.room_gone(frames),
                    },
                    Ok(None) => {}
                    Err(end) => return end,
                }
            }
            if decoded > 0 || read_bytes > 0 {
                let spent = self.budget.spend(decoded, read_bytes, Instant::now());
                if let Err(over) = spent {
                    return self.over_budget(over);
                }
                read_bytes = 0;
            }
            // A message is under way if part of it has arrived and the room is not the one
            // keeping us from reading the rest.
            let under_way =
                pending.is_none() && (!frames.read_buf.is_empty() || fragments.is_some());
            if under_way != message_started {
                message_started = under_way;
                if under_way {
                    deadline
                        .as_mut()
                        .reset(Instant::now() + limits.message_deadline);
                } else if frames.read_buf.capacity() > LARGE_READ_BUF {
                    // A large message is done: its buffer goes now, not at the next heartbeat.
                    frames.read_buf = BytesMut::new();
                }
            }
            // What a message under way holds counts against the server's budget for them.
            let held = if message_started {
                frames.read_buf.capacity()
                    + fragments
                        .as_ref()
                        .map_or(0, |f: &Fragments| f.data.capacity())
            } else {
                0
            };
            if let Err(max) = self.permit.hold(held) {
                return self.server_busy(max);
            }
            if frames.flush(socket).is_err() {
                return End::dropped();
            }
            tokio::select! {
                reason = &mut self.close => return self.closed_by_room(reason.ok(), frames),
                message = self.outbound.recv(), if room_listening && frames.write_buf.len() < WRITE_HIGH_WATER => {
                    let Some(message) = message else {
                        // The room dropped us; its close reason follows on `close`.
                        room_listening = false;
                        continue;
                    };
                    frames.encode_outbound(message);
                    while frames.write_buf.len() < WRITE_HIGH_WATER {
                        let Ok(message) = self.outbound.try_recv() else { break };
                        frames.encode_outbound(message);
                    }
                }
                permit = events.reserve(), if pending.is_some() => {
                    let (Ok(permit), Some(event)) = (permit, pending.take()) else {
                        return self.room_gone(frames);
                    };
                    permit.send(event);
                }
                read = poll_fn(|cx| frames.poll_read(cx, socket, &mut reader, read_limit)), if pending.is_none() => {
                    match read {
                        Ok(0) | Err(_) => return End::dropped(),
                        Ok(n) => {
                            heard = true;
                            read_bytes = n;
                        }
                    }
                }
                () = &mut deadline, if message_started => {
                    let secs = limits.message_deadline.as_secs_f64();
                    warn_throttled!(room = %self.room_id, client = %self.client, secs, "closing client: message not completed in time");
                    let description = format!("message not completed within {secs} s");
                    return End::closing(description.clone(), CloseCode::Policy, description);
                }
                ready = socket.writable(), if !frames.write_buf.is_empty() => {
                    if ready.is_err() {
                        return End::dropped();
                    }
                }
                now = heartbeat.tick() => {
                    if std::mem::take(&mut heard) {
                        last_heard = now;
                    }
                    if now.saturating_duration_since(last_heard) > self.settings.heartbeat_timeout {
                        return End::closing("heartbeat timeout", CloseCode::Away, "heartbeat timeout".to_string());
                    }
                    // A client with a full write buffer gets no ping now; its silence still counts.
                    if frames.write_buf.len() < WRITE_HIGH_WATER {
                        frames.encode(Message::Ping(Default::default()));
                    }
                    frames.shrink();
                }
            }
        }
    }

    /// The room closed this client with `reason`, or ended without one.
    fn closed_by_room(&mut self, reason: Option<CloseReason>, frames: &mut Frames) -> End {
        let Some(reason) = reason else {
            return End::room_ended();
        };
        // What the room sent before closing the client goes out first.
        while frames.write_buf.len() < WRITE_HIGH_WATER {
            let Ok(message) = self.outbound.try_recv() else {
                break;
            };
            frames.encode_outbound(message);
        }
        let text = reason.description.clone().unwrap_or_default();
        End {
            reason: Cow::Owned(format!("closed by server: {text}")),
            close: Some(reason),
        }
    }

    /// The room stopped taking messages: it closed, and its reason is on `close` (say, 1001 at
    /// shutdown), unless it ended unexpectedly.
    fn room_gone(&mut self, frames: &mut Frames) -> End {
        let reason = self.close.try_recv().ok();
        self.closed_by_room(reason, frames)
    }

    /// Handles one frame from the client: `Ok(Some(_))` is a message for the room, `Err` ends
    /// the connection.
    fn frame(
        &mut self,
        frame: Frame,
        frames: &mut Frames,
        fragments: &mut Option<Fragments>,
    ) -> Result<Option<RoomEvent>, End> {
        let (text, data) = match frame {
            Frame::Text(data) => (true, data),
            Frame::Binary(data) => (false, data),
            Frame::Continuation(item) => {
                let (first, last, chunk) = match item {
                    Item::FirstText(chunk) => (Some(true), false, chunk),
                    Item::FirstBinary(chunk) => (Some(false), false, chunk),
                    Item::Continue(chunk) => (None, false, chunk),
                    Item::Last(chunk) => (None, true, chunk),
                };
                // The codec checks that fragments come in order.
                let message = fragments.get_or_insert_with(|| Fragments {
                    text: first.unwrap_or(false),
                    data: BytesMut::new(),
                });
                let max = self.settings.limits.max_message_bytes;
                if message.data.len() + chunk.len() > max {
                    return Err(self.too_large());
                }
                message.data.extend_from_slice(&chunk);
                if !last {
                    return Ok(None);
                }
                let Some(message) = fragments.take() else {
                    return Ok(None);
                };
                (message.text, message.data.freeze())
            }
            Frame::Ping(data) => {
                // Skipped if the client's write buffer is full: it is not reading anyway.
                if frames.write_buf.len() < WRITE_HIGH_WATER {
                    frames.encode(Message::Pong(data));
                }
                return Ok(None);
            }
            Frame::Pong(_) => return Ok(None),
            Frame::Close(reason) => {
                let code = reason.as_ref().map(|r| u16::from(r.code));
                let text = match code {
                    Some(code) => format!("closed by client ({code})"),
                    None => "closed by client".to_string(),
                };
                // Answer with the same code: the closing handshake completes.
                let code = reason.map_or(CloseCode::Normal, |r| r.code);
                return Err(End {
                    reason: Cow::Owned(text),
                    close: Some(CloseReason {
                        code,
                        description: None,
                    }),
                });
            }
        };
        let event = if text {
            let Ok(text) = ByteString::try_from(data) else {
                warn_throttled!(room = %self.room_id, client = %self.client, "closing client: text message is not valid UTF-8");
                return Err(End::closing(
                    "text message is not valid UTF-8",
                    CloseCode::Invalid,
                    "text message is not valid UTF-8".to_string(),
                ));
            };
            RoomEvent::Text {
                client: self.client,
                text,
            }
        } else {
            RoomEvent::Binary {
                client: self.client,
                data,
            }
        };
        if let Some(rate) = &mut self.rate {
            if !rate.take(1.0, Instant::now()) {
                let limit = rate.per_sec();
                warn_throttled!(room = %self.room_id, client = %self.client, limit, "client over its message rate: closing it");
                let description = format!("rate limit exceeded ({limit} messages/s)");
                return Err(End::closing(
                    description.clone(),
                    CloseCode::Policy,
                    description,
                ));
            }
        }
        Ok(Some(event))
    }

    /// Refuses a frame from its header alone: a control frame longer than 125 bytes, or a
    /// data frame that would make its message larger than the limit.
    fn check_header(&self, buf: &[u8], fragments: Option<&Fragments>) -> Result<(), End> {
        match frame_header::peek(buf) {
            Ok(None) => Ok(()),
            Ok(Some(header)) => {
                let collected = match (header.opcode, fragments) {
                    (0, Some(fragments)) => fragments.data.len() as u64,
                    _ => 0,
                };
                let max = self.settings.limits.max_message_bytes as u64;
                if collected.saturating_add(header.payload_len) > max {
                    return Err(self.too_large());
                }
                Ok(())
            }
            Err(HeaderError::ControlTooLong(len)) => {
                warn_throttled!(room = %self.room_id, client = %self.client, len, "closing client: control frame too long");
                let description = format!("control frame of {len} bytes (at most 125)");
                Err(End::closing(
                    description.clone(),
                    CloseCode::Protocol,
                    description,
                ))
            }
        }
    }

    fn server_busy(&self, max: usize) -> End {
        warn_throttled!(room = %self.room_id, client = %self.client, max, "closing client: too many partly received messages on the server");
        End::closing(
            "server holds too many partly received messages",
            CloseCode::Again,
            "server busy: too many partly received messages; try again later".to_string(),
        )
    }

    fn over_budget(&self, over: OverBudget) -> End {
        let description = over.describe();
        warn_throttled!(room = %self.room_id, client = %self.client, "closing client: {description}");
        End::closing(description.clone(), CloseCode::Policy, description)
    }

    fn too_large(&self) -> End {
        let max = self.settings.limits.max_message_bytes;
        warn_throttled!(room = %self.room_id, client = %self.client, max, "closing client: message too large");
        let description = format!("message larger than {max} bytes");
        End::closing(description.clone(), CloseCode::Size, description)
    }

    fn protocol_error(&self, err: ProtocolError) -> End {
        if let ProtocolError::Overflow = err {
            return self.too_large();
        }
        warn_throttled!(room = %self.room_id, client = %self.client, error = %err, "closing client");
        let description = format!("protocol error: {err}");
        End::closing(description.clone(), CloseCode::Protocol, description)
    }
}
