//! One client of the broadcast scenario: sends its messages one at a time, each after its
//! previous one came back, and tallies everything its room delivers to it.

use crate::connect::Ws;
use crate::message::{self, Stamp};
use crate::stats::nanos;
use crate::tally::{Delivery, Tally};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What every client of the run sends and shares.
pub struct Shared {
    pub messages: u64,
    pub payload_bytes: usize,
    pub prefix: String,
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
    /// Round trips of the client's own messages, in nanoseconds.
    pub round_trips: Vec<u64>,
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
            error: None,
        };
        let mut finished = shared.messages == 0;
        if finished {
            shared.clients_finished.fetch_add(1, Ordering::Relaxed);
        } else {
            outcome.send(&self, &mut ws, &shared).await;
        }
        // Made once: a timer per received message would cost more than the rest of the loop.
        let deadline = tokio::time::sleep_until(shared.deadline);
        let stopped = stop.wait_for(|stop| *stop);
        tokio::pin!(deadline, stopped);
        while outcome.error.is_none() {
            let frame = tokio::select! {
                _ = &mut stopped => break,
                _ = &mut deadline => break,
                frame = ws.next() => frame,
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
            // Greetings and other service messages are not the bench's.
            let Some(stamp) = message::parse(text.as_str()) else {
                continue;
            };
            let now = shared.now_nanos();
            if outcome.tally.record(stamp) == Delivery::New {
                shared.received.fetch_add(1, Ordering::Relaxed);
                shared.last_delivery_nanos.fetch_max(now, Ordering::Relaxed);
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

impl ClientOutcome {
    /// Sends the client's next message, stamped now.
    async fn send(&mut self, client: &Client, ws: &mut Ws, shared: &Shared) {
        let stamp = Stamp {
            client: client.id,
            seq: self.sent,
            nanos: shared.now_nanos(),
        };
        let text = format!(
            "{}{}",
            shared.prefix,
            message::encode(stamp, shared.payload_bytes)
        );
        match tokio::time::timeout_at(shared.deadline, ws.send(Message::text(text))).await {
            Ok(Ok(())) => self.sent += 1,
            Ok(Err(err)) => self.error = Some(format!("sending: {err}")),
            Err(_) => self.error = Some("sending: timed out".to_string()),
        }
    }
}
