//! The connection task: one per WebSocket. It owns the client's TCP stream once the handshake
//! is done: it reads frames and hands messages to the room, and writes what the room sends
//! straight to the socket, everything queued at that moment in one write.
//!
//! Its buffers are dropped while the connection is idle, so an idle client costs little more
//! than its socket and its queue.

use super::frame_header::MAX_HEADER_BYTES;
use super::frames::{FrameError, Frames, Incoming};
use crate::admission::ConnectionPermit;
use crate::close_frame::{code, CloseFrame};
use crate::log_throttle::warn_throttled;
use crate::rate_limit::{FrameBudget, OverBudget, RateLimit};
use crate::rooms::{Outbound, RoomEvent, RoomHandle};
use crate::settings::Settings;
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use jamsocket::ClientId;
use std::borrow::Cow;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, sleep, timeout, Instant, MissedTickBehavior};

/// How long the close frame, and what is queued before it, may take to be written before the
/// connection is simply dropped.
const CLOSE_FRAME_TIMEOUT: Duration = Duration::from_secs(1);
/// Stop taking messages from the room while this much waits to be written: the room's queue
/// fills up instead, and a full queue is what closes a client that does not read.
const WRITE_HIGH_WATER: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Connection {
    pub room_id: Arc<str>,
    pub room: RoomHandle,
    pub client: ClientId,
    pub outbound: mpsc::Receiver<Outbound>,
    pub close: oneshot::Receiver<CloseFrame>,
    pub settings: Arc<Settings>,
    /// The client's message rate, if [`Limits::max_messages_per_sec`](crate::Limits) is set.
    pub rate: Option<RateLimit>,
    /// Every frame and byte the client sends.
    pub budget: FrameBudget,
    /// Holds the connection's place in the server's connection count.
    pub permit: ConnectionPermit,
}

/// A connection's socket: registered with this thread's reactor, or coming from another
/// worker thread's (and registered here when the connection starts).
#[derive(Debug)]
pub(crate) enum Socket {
    Here(TcpStream),
    Moved(std::net::TcpStream),
}

/// What ended a connection: the reason logged, and the close frame to send (if any).
struct End {
    reason: Cow<'static, str>,
    close: Option<CloseFrame>,
}

impl End {
    fn dropped() -> End {
        End {
            reason: Cow::Borrowed("connection dropped"),
            close: None,
        }
    }

    /// Closes with `frame`, logging its reason.
    fn closing(frame: CloseFrame) -> End {
        End {
            reason: frame.reason.clone(),
            close: Some(frame),
        }
    }

    fn room_ended() -> End {
        End {
            reason: Cow::Borrowed("room ended"),
            close: Some(CloseFrame::new(
                code::INTERNAL_ERROR,
                "the room ended unexpectedly",
            )),
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
            let mut socket = match socket {
                Socket::Here(socket) => socket,
                Socket::Moved(socket) => match TcpStream::from_std(socket) {
                    Ok(socket) => socket,
                    Err(err) => {
                        drop(self.leave(format!("connection dropped: {err}")).await);
                        return;
                    }
                },
            };
            let mut frames = Frames::new(self.settings.limits.max_message_bytes, read_buf);
            let end = self.pump(&mut socket, &mut frames).await;
            // The room hears of the departure before the client sees its close frame, so a
            // client that reconnects right after closing finds the room already updated.
            let handled = self.leave(end.reason).await;
            let Some(frame) = end.close else {
                return;
            };
            // What the room sent in answer to the messages it had before the departure goes
            // out ahead of the close frame (a valid message followed at once by a bad frame
            // still gets its reply).
            let _ = timeout(CLOSE_FRAME_TIMEOUT, handled).await;
            self.take_outbound(&mut frames);
            tracing::debug!(room = %self.room_id, client = %self.client, ?frame, "closing connection");
            frames.encode_close(frame);
            // A client that does not read gets its connection dropped instead.
            if timeout(CLOSE_FRAME_TIMEOUT, frames.finish(&mut socket))
                .await
                .is_err()
            {
                tracing::debug!(room = %self.room_id, client = %self.client, "close frame not taken; dropping the connection");
            }
        }
    }

    /// Tells the room the client left (it may have ended already). The receiver returned
    /// resolves once the room has handled the departure.
    pub(super) async fn leave(
        &self,
        reason: impl Into<Cow<'static, str>>,
    ) -> oneshot::Receiver<()> {
        let (handled, receiver) = oneshot::channel();
        let leave = RoomEvent::Leave {
            client: self.client,
            reason: reason.into(),
            handled,
        };
        let _ = self.room.events.send(leave).await;
        receiver
    }

    /// Encodes what the room has queued for the client, up to the write buffer's high water.
    fn take_outbound(&mut self, frames: &mut Frames) {
        while frames.write_buf.len() < WRITE_HIGH_WATER {
            let Ok(message) = self.outbound.try_recv() else {
                break;
            };
            frames.encode_outbound(message);
        }
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
                let incoming = match frames.decode() {
                    Ok(Some(incoming)) => incoming,
                    Ok(None) => break,
                    Err(err) => return self.bad_frame(err),
                };
                decoded += 1;
                match self.incoming(incoming, frames) {
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
            if let Err(max) = self.permit.hold(held) {
                return self.server_busy(max);
            }
            if frames.flush(socket).is_err() {
                return End::dropped();
            }
            tokio::select! {
                frame = &mut self.close => return self.closed_by_room(frame.ok(), frames),
                message = self.outbound.recv(), if room_listening && frames.write_buf.len() < WRITE_HIGH_WATER => {
                    let Some(message) = message else {
                        // The room dropped us; its close frame follows on `close`.
                        room_listening = false;
                        continue;
                    };
                    frames.encode_outbound(message);
                    self.take_outbound(frames);
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
                    return End::closing(CloseFrame::new(code::POLICY, format!("message not completed within {secs} s")));
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
                        return End::closing(CloseFrame::new(code::AWAY, "heartbeat timeout"));
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
    fn closed_by_room(&mut self, frame: Option<CloseFrame>, frames: &mut Frames) -> End {
        let Some(frame) = frame else {
            return End::room_ended();
        };
        // What the room sent before closing the client goes out first.
        self.take_outbound(frames);
        End {
            reason: Cow::Owned(format!("closed by server: {}", frame.reason)),
            close: Some(frame),
        }
    }

    /// The room stopped taking messages: it closed, and its frame is on `close` (say, 1001 at
    /// shutdown), unless it ended unexpectedly.
    fn room_gone(&mut self, frames: &mut Frames) -> End {
        let frame = self.close.try_recv().ok();
        self.closed_by_room(frame, frames)
    }

    /// Handles one frame from the client: `Ok(Some(_))` is a message for the room, `Err` ends
    /// the connection.
    fn incoming(
        &mut self,
        incoming: Incoming,
        frames: &mut Frames,
    ) -> Result<Option<RoomEvent>, End> {
        let event = match incoming {
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
        Ok(Some(event))
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
        }
    }

    fn over_budget(&self, over: OverBudget) -> End {
        let description = over.describe();
        warn_throttled!(room = %self.room_id, client = %self.client, "closing client: {description}");
        End::closing(CloseFrame::new(code::POLICY, description))
    }
}
