//! One client of the broadcast scenario: sends its messages one at a time, each after its
//! previous one came back (closed loop) or each when the run's [`Schedule`] says (open loop,
//! `--rate`), and tallies everything its room delivers to it.

use crate::connect::Ws;
use crate::message::{self, Stamp};
use crate::schedule::{latency_nanos, Schedule};
use crate::stats::nanos;
use crate::tally::{Delivery, Tally};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The subprotocol of `--v1`.
pub const SEQUENCED_PROTOCOL: &str = "jamsocket.v1";

/// What every client of the run sends and shares.
pub struct Shared {
    pub messages: u64,
    pub payload_bytes: usize,
    /// Put before every message (`m` first with `--v1`).
    pub prefix: String,
    /// Whether clients speak `jamsocket.v1`.
    pub v1: bool,
    /// With `--rate`: when each message is due. Without: each is sent once the previous one
    /// came back.
    pub schedule: Option<Schedule>,
    /// Time zero of the stamps: when sending began.
    pub epoch: Instant,
    pub deadline: Instant,
    /// Clients that got all their own messages back, or whose connection failed.
    pub clients_finished: AtomicU64,
    /// New deliveries so far, all clients.
    pub received: AtomicU64,
    /// Nanoseconds since `epoch` of the latest new delivery.
    pub last_delivery_nanos: AtomicU64,
}

impl Shared {
    fn now_nanos(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }
}

/// How one client's run went.
pub struct ClientOutcome {
    pub tally: Tally,
    pub sent: u64,
    /// Round trips of the client's own messages, in nanoseconds: from the send, or with a
    /// schedule from the time the message was due.
    pub round_trips: Vec<u64>,
    /// With a schedule: the latency of every new delivery to this client, from the time the
    /// message was due, in nanoseconds.
    pub latencies: Vec<u64>,
    pub error: Option<String>,
}

/// Client number `id`, in the room of clients `first_client .. first_client + clients`.
pub struct Client {
    pub id: u64,
    pub first_client: u64,
    pub clients: usize,
}

impl Client {
    /// Runs until `stop` turns true, the connection fails, or the deadline passes; then
    /// closes the connection (unless it failed).
    pub async fn run(
        self,
        mut ws: Ws,
        shared: Arc<Shared>,
        mut stop: watch::Receiver<bool>,
    ) -> ClientOutcome {
        let mut outcome = ClientOutcome {
            tally: Tally::new(self.first_client, self.clients),
            sent: 0,
            round_trips: Vec::with_capacity(usize::try_from(shared.messages).unwrap_or(0)),
            latencies: Vec::new(),
            error: None,
        };
        let mut finished = shared.messages == 0;
        if finished {
            shared.clients_finished.fetch_add(1, Ordering::Relaxed);
        } else if shared.schedule.is_none() {
            outcome.send(&self, &mut ws, &shared).await;
        }
        // Made once: a timer per received message would cost more than the rest of the loop.
        let deadline = tokio::time::sleep_until(shared.deadline);
        let stopped = stop.wait_for(|stop| *stop);
        let first_due = match shared.schedule {
            Some(schedule) => shared.epoch + schedule.due(self.id, 0),
            None => shared.deadline,
        };
        let send_timer = tokio::time::sleep_until(first_due);
        tokio::pin!(deadline, stopped, send_timer);
        let mut acks = shared.v1.then(Acks::default);
        while outcome.error.is_none() {
            let sending = shared.schedule.is_some() && outcome.sent < shared.messages;
            // `None` when messages are due (sent outside `select!`, whose output holds the
            // `stopped` guard, which must not live across an await).
            let frame = tokio::select! {
                _ = &mut stopped => break,
                _ = &mut deadline => break,
                _ = &mut send_timer, if sending => None,
                frame = ws.next() => Some(frame),
            };
            let Some(frame) = frame else {
                if let Some(next) = outcome.send_due(&self, &mut ws, &shared).await {
                    send_timer.as_mut().reset(next);
                }
                continue;
            };
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    outcome.error = Some(format!("the server closed the connection: {frame:?}"));
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => {
                    outcome.error = Some(format!("receiving: {err}"));
                    break;
                }
                None => {
                    outcome.error = Some("the connection ended".to_string());
                    break;
                }
            };
            let body = match &mut acks {
                None => text.as_str(),
                Some(acks) => {
                    let Some(body) = acks.text(text.as_str()) else {
                        continue;
                    };
                    if let Some(count) = acks.due() {
                        outcome.send_ack(&mut ws, &shared, count).await;
                    }
                    body
                }
            };
            // Greetings and other service messages are not the bench's.
            let Some(stamp) = message::parse(body) else {
                continue;
            };
            let now = shared.now_nanos();
            let new = outcome.tally.record(stamp) == Delivery::New;
            if new {
                shared.received.fetch_add(1, Ordering::Relaxed);
                shared.last_delivery_nanos.fetch_max(now, Ordering::Relaxed);
            }
            if shared.schedule.is_some() {
                if !new {
                    continue;
                }
                let latency = latency_nanos(stamp.nanos, now);
                outcome.latencies.push(latency);
                if stamp.client != self.id {
                    continue;
                }
                outcome.round_trips.push(latency);
                // The last of its own messages is back: any earlier one not back by now (one
                // connection keeps order) is lost, which the drain and the tallies account for.
                if stamp.seq + 1 == shared.messages {
                    finished = true;
                    shared.clients_finished.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            if stamp.client != self.id || stamp.seq + 1 != outcome.sent {
                continue;
            }
            outcome.round_trips.push(now.saturating_sub(stamp.nanos));
            if outcome.sent == shared.messages {
                finished = true;
                shared.clients_finished.fetch_add(1, Ordering::Relaxed);
            } else {
                outcome.send(&self, &mut ws, &shared).await;
            }
        }
        if outcome.error.is_none() {
            crate::connect::close(ws, shared.deadline).await;
        } else if !finished {
            // The run need not wait for a client that can no longer finish.
            shared.clients_finished.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

/// A `jamsocket.v1` client's count of the server's messages, and when it acknowledges them.
#[derive(Default)]
struct Acks {
    received: u64,
    /// From the server's welcome.
    every: u64,
}

impl Acks {
    /// The application message in a `jamsocket.v1` text frame (`m<text>`), counted; `None`
    /// for the welcome and the server's acknowledgements.
    fn text<'a>(&mut self, frame: &'a str) -> Option<&'a str> {
        match frame.split_at_checked(1) {
            Some(("m", text)) => {
                self.received += 1;
                Some(text)
            }
            Some(("w", welcome)) => {
                self.every = serde_json::from_str::<serde_json::Value>(welcome)
                    .ok()
                    .and_then(|welcome| welcome["ack_every"].as_u64())
                    .unwrap_or(1);
                None
            }
            _ => None,
        }
    }

    /// The acknowledgement to send now, if one is due.
    fn due(&self) -> Option<u64> {
        (self.every > 0 && self.received.is_multiple_of(self.every)).then_some(self.received)
    }
}

impl ClientOutcome {
    /// Awaits `send` until the run's deadline: `false`, with the error kept, if it failed.
    async fn await_send(
        &mut self,
        shared: &Shared,
        what: &str,
        send: impl Future<Output = Result<(), WsError>>,
    ) -> bool {
        let error = match tokio::time::timeout_at(shared.deadline, send).await {
            Ok(Ok(())) => return true,
            Ok(Err(err)) => format!("{what}: {err}"),
            Err(_) => format!("{what}: timed out"),
        };
        self.error = Some(error);
        false
    }

    /// Sends a `jamsocket.v1` acknowledgement of `count` messages.
    async fn send_ack(&mut self, ws: &mut Ws, shared: &Shared, count: u64) {
        let ack = Message::text(format!("a{count}"));
        self.await_send(shared, "sending an acknowledgement", ws.send(ack))
            .await;
    }

    /// Sends the client's next message, stamped now.
    async fn send(&mut self, client: &Client, ws: &mut Ws, shared: &Shared) {
        let text = message_text(client, shared, self.sent, shared.now_nanos());
        if self
            .await_send(shared, "sending", ws.send(Message::text(text)))
            .await
        {
            self.sent += 1;
        }
    }

    /// Open loop: sends every message the schedule says is due by now, each stamped with the
    /// time it was due (so a client that fell behind catches up at once, and its lateness
    /// counts in the latency). Returns when the next message is due, if any is left.
    async fn send_due(&mut self, client: &Client, ws: &mut Ws, shared: &Shared) -> Option<Instant> {
        let schedule = shared.schedule?;
        let due = schedule.due_count(client.id, shared.epoch.elapsed());
        let first = self.sent;
        let send = async {
            for seq in first..due {
                let scheduled = nanos(schedule.due(client.id, seq));
                let text = message_text(client, shared, seq, scheduled);
                ws.feed(Message::text(text)).await?;
            }
            ws.flush().await
        };
        if self.await_send(shared, "sending", send).await {
            self.sent = due.max(first);
        }
        (self.error.is_none() && self.sent < shared.messages)
            .then(|| shared.epoch + schedule.due(client.id, self.sent))
    }
}

/// The text of message `seq` of `client`, stamped `nanos` since the run's epoch.
fn message_text(client: &Client, shared: &Shared, seq: u64, nanos: u64) -> String {
    let stamp = Stamp {
        client: client.id,
        seq,
        nanos,
    };
    format!(
        "{}{}",
        shared.prefix,
        message::encode(stamp, shared.payload_bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::Acks;

    #[test]
    fn a_v1_client_counts_application_messages_and_acknowledges_as_the_welcome_asks() {
        let mut acks = Acks::default();
        assert_eq!(
            acks.text(r#"w{"client":3,"resumed":false,"received":0,"ack_every":2}"#),
            None
        );
        assert_eq!(acks.text("m0:0:5:xx"), Some("0:0:5:xx"));
        assert_eq!(acks.due(), None);
        assert_eq!(
            acks.text("a32"),
            None,
            "the server's acknowledgement is not a message"
        );
        assert_eq!(acks.text("m"), Some(""));
        assert_eq!(acks.due(), Some(2));
    }
}
