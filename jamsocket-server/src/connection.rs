//! The connection actor: one task per WebSocket that carries frames between its client and its
//! room.

use crate::registry::RoomHandle;
use crate::room_context::Outbound;
use crate::room_event::RoomEvent;
use crate::settings::Settings;
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use futures_util::FutureExt;
use jamsocket::ClientId;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// How long a close frame may wait to be written before the connection is simply dropped.
const CLOSE_FRAME_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) struct Connection {
    pub room_id: Arc<str>,
    pub room: RoomHandle,
    pub client: ClientId,
    pub session: Session,
    pub incoming: AggregatedMessageStream,
    pub outbound: mpsc::Receiver<Outbound>,
    pub close: oneshot::Receiver<CloseReason>,
    pub settings: Arc<Settings>,
    pub rate: Option<RateLimit>,
}

/// A token bucket: `per_sec` tokens a second, holding at most one second's worth.
pub(crate) struct RateLimit {
    per_sec: f64,
    tokens: f64,
    refilled: Instant,
}

impl RateLimit {
    pub fn new(per_sec: u32) -> RateLimit {
        RateLimit {
            per_sec: per_sec.into(),
            tokens: per_sec.into(),
            refilled: Instant::now(),
        }
    }

    /// Takes a token for one message; `false` if the client is over its rate.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What ended a connection: the reason logged, and the close frame to send (if any).
struct End {
    reason: Cow<'static, str>,
    close: Option<CloseReason>,
}

fn close(code: CloseCode, description: impl Into<String>) -> Option<CloseReason> {
    Some(CloseReason {
        code,
        description: Some(description.into()),
    })
}

impl Connection {
    /// Runs until the client or the room ends the connection, then tells the room.
    pub async fn run(mut self) {
        let end = self.pump().await;
        if let Some(reason) = &end.close {
            tracing::debug!(room = %self.room_id, client = %self.client, ?reason, "closing connection");
        }
        let leave = RoomEvent::Leave {
            client: self.client,
            reason: end.reason,
        };
        // The room hears of the departure before the client sees its close frame, so a client
        // that reconnects right after closing finds the room already updated. It may have
        // ended already.
        let _ = self.room.events.send(leave).await;
        // The close frame waits behind what is queued for the client; a client that does not
        // read gets its connection dropped instead.
        let close = self.session.clone().close(end.close);
        if tokio::time::timeout(CLOSE_FRAME_TIMEOUT, close)
            .await
            .is_err()
        {
            tracing::debug!(room = %self.room_id, client = %self.client, "close frame not taken; dropping the connection");
        }
    }

    async fn pump(&mut self) -> End {
        let interval = self.settings.heartbeat_interval;
        let mut heartbeat = interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                biased;
                reason = &mut self.close => {
                    let reason = reason.unwrap_or(CloseReason {
                        code: CloseCode::Error,
                        description: Some("the room ended unexpectedly".to_string()),
                    });
                    let text = reason.description.clone().unwrap_or_default();
                    return End { reason: Cow::Owned(format!("closed by server: {text}")), close: Some(reason) };
                }
                message = self.outbound.recv() => {
                    let Some(message) = message else {
                        // The room dropped us; its close reason follows on `close`.
                        continue;
                    };
                    if let Err(end) = self.send(message).await {
                        return end;
                    }
                }
                frame = self.incoming.recv() => {
                    last_heard = Instant::now();
                    if let Some(end) = self.receive(frame).await {
                        return end;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > self.settings.heartbeat_timeout {
                        return End {
                            reason: Cow::Borrowed("heartbeat timeout"),
                            close: close(CloseCode::Away, "heartbeat timeout"),
                        };
                    }
                    // A client whose write queue is full gets no ping now; its silence still counts.
                    if let Some(Err(_)) = self.session.ping(b"").now_or_never() {
                        return End { reason: Cow::Borrowed("connection dropped"), close: None };
                    }
                }
            }
        }
    }

    /// Writes one message, giving up if the room closes the client meanwhile (a client that does
    /// not read would otherwise hold this task forever).
    async fn send(&mut self, message: Outbound) -> Result<(), End> {
        let dropped = || End {
            reason: Cow::Borrowed("connection dropped"),
            close: None,
        };
        let write = async {
            match message {
                Outbound::Text(text) => self.session.text(text).await,
                Outbound::Binary(data) => self.session.binary(data).await,
            }
        };
        tokio::select! {
            result = write => result.map_err(|_| dropped()),
            reason = &mut self.close => {
                let reason = reason.ok();
                let text = reason.as_ref().and_then(|r| r.description.clone()).unwrap_or_default();
                Err(End { reason: Cow::Owned(format!("closed by server: {text}")), close: reason })
            }
        }
    }

    /// Handles one frame from the client; `Some` ends the connection.
    async fn receive(
        &mut self,
        frame: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Option<End> {
        let event = match frame {
            None => {
                return Some(End {
                    reason: Cow::Borrowed("connection dropped"),
                    close: None,
                })
            }
            Some(Err(err)) => return Some(self.protocol_error(err)),
            Some(Ok(AggregatedMessage::Text(text))) => RoomEvent::Text {
                client: self.client,
                text,
            },
            Some(Ok(AggregatedMessage::Binary(data))) => RoomEvent::Binary {
                client: self.client,
                data,
            },
            Some(Ok(AggregatedMessage::Ping(data))) => {
                // Skipped if the client's write queue is full: it is not reading anyway.
                return match self.session.pong(&data).now_or_never() {
                    Some(Err(_)) => Some(End {
                        reason: Cow::Borrowed("connection dropped"),
                        close: None,
                    }),
                    _ => None,
                };
            }
            Some(Ok(AggregatedMessage::Pong(_))) => return None,
            Some(Ok(AggregatedMessage::Close(reason))) => {
                let code = reason.as_ref().map(|r| u16::from(r.code));
                let text = match code {
                    Some(code) => format!("closed by client ({code})"),
                    None => "closed by client".to_string(),
                };
                // Answer with the same code: the closing handshake completes.
                let echo = reason.map(|r| CloseReason {
                    code: r.code,
                    description: None,
                });
                return Some(End {
                    reason: Cow::Owned(text),
                    close: echo.or(Some(CloseReason {
                        code: CloseCode::Normal,
                        description: None,
                    })),
                });
            }
        };
        if let Some(rate) = &mut self.rate {
            if !rate.take(Instant::now()) {
                let limit = rate.per_sec;
                tracing::warn!(room = %self.room_id, client = %self.client, limit, "client over its message rate: closing it");
                let description = format!("rate limit exceeded ({limit} messages/s)");
                return Some(End {
                    reason: Cow::Owned(description.clone()),
                    close: close(CloseCode::Policy, description),
                });
            }
        }
        // Waits while the room is busy: a flooding client slows itself down, nobody else.
        match self.room.events.send(event).await {
            Ok(()) => None,
            Err(_) => Some(End {
                reason: Cow::Borrowed("room ended"),
                close: close(CloseCode::Error, "the room ended unexpectedly"),
            }),
        }
    }

    fn protocol_error(&self, err: ProtocolError) -> End {
        let max = self.settings.limits.max_message_bytes;
        let (code, description) = match &err {
            ProtocolError::Overflow => {
                (CloseCode::Size, format!("message larger than {max} bytes"))
            }
            ProtocolError::Io(io) if io.to_string().contains("continuation size") => {
                (CloseCode::Size, format!("message larger than {max} bytes"))
            }
            ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => (
                CloseCode::Invalid,
                "text message is not valid UTF-8".to_string(),
            ),
            ProtocolError::Io(_) => {
                return End {
                    reason: Cow::Borrowed("connection dropped"),
                    close: None,
                }
            }
            other => (CloseCode::Protocol, format!("protocol error: {other}")),
        };
        tracing::warn!(room = %self.room_id, client = %self.client, error = %err, "closing client");
        End {
            reason: Cow::Owned(description.clone()),
            close: close(code, description),
        }
    }
}
