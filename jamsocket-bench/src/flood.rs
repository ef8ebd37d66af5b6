//! Flooders: clients that send as fast as the server lets them into rooms of their own, to
//! measure how much they slow everyone else (`broadcast --flooders N`).

use crate::connect::Ws;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Running flooders; stop them with [`Flood::stop`].
pub struct Flood {
    tasks: Vec<JoinHandle<bool>>,
    sent: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
}

/// What the flooders did.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct FloodReport {
    pub flooders: usize,
    pub messages_sent: u64,
    /// Flooders the server disconnected (for example for exceeding a rate limit).
    pub closed_by_server: usize,
}

impl Flood {
    /// Starts one flooder per socket: each sends `payload` over and over, without waiting for
    /// replies, and reads whatever comes back so that it is never closed for not reading.
    pub fn start(sockets: Vec<Ws>, payload: String) -> Flood {
        let sent = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        let tasks = sockets
            .into_iter()
            .map(|ws| tokio::spawn(flood(ws, payload.clone(), sent.clone(), stopped.clone())))
            .collect();
        Flood { tasks, sent, stop }
    }

    pub async fn stop(self) -> FloodReport {
        let _ = self.stop.send(true);
        let flooders = self.tasks.len();
        let mut closed_by_server = 0;
        for task in self.tasks {
            if task.await.unwrap_or(true) {
                closed_by_server += 1;
            }
        }
        FloodReport {
            flooders,
            messages_sent: self.sent.load(Ordering::Relaxed),
            closed_by_server,
        }
    }
}

/// Floods until told to stop; true if the server ended the connection first.
async fn flood(
    ws: Ws,
    payload: String,
    sent: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let (mut sink, mut stream) = ws.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    let message = Message::text(payload);
    let closed = loop {
        tokio::select! {
            _ = stop.changed() => break false,
            result = sink.send(message.clone()) => {
                if result.is_err() {
                    break true;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    drain.abort();
    closed
}
