//! Opening many WebSockets at once, timing each handshake, and closing them politely.

use crate::stats::Percentiles;
use futures_util::StreamExt;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a close handshake may take before the socket is just dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Bytes tungstenite reads at a time. Its default, 128 KiB, is zeroed before every read: with
/// small messages that made the load generator spend a third of its time in `memset`, CPU
/// taken from the server under test.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Opens a WebSocket to `url` (Nagle off, as the server does), offering `protocol` if given,
/// giving up at `deadline`.
pub async fn connect(url: &str, protocol: Option<&str>, deadline: Instant) -> Result<Ws, String> {
    let mut request = url
        .into_client_request()
        .map_err(|err| format!("connecting to {url}: {err}"))?;
    if let Some(protocol) = protocol {
        let value = HeaderValue::from_str(protocol)
            .map_err(|err| format!("subprotocol {protocol:?}: {err}"))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", value);
    }
    match tokio::time::timeout_at(
        deadline,
        tokio_tungstenite::connect_async_with_config(
            request,
            Some(WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES)),
            true,
        ),
    )
    .await
    {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(err)) => Err(format!("connecting to {url}: {err}")),
        Err(_) => Err(format!("connecting to {url}: timed out")),
    }
}

/// Sends a close frame and waits briefly for the server's; drops the socket either way.
///
/// The socket is dropped as soon as the server's close frame arrives rather than when the
/// server ends the TCP connection, which Actix does only after a while (0.5-1 s).
pub async fn close(mut ws: Ws, deadline: Instant) {
    let deadline = deadline.min(Instant::now() + CLOSE_GRACE);
    let _ = tokio::time::timeout_at(deadline, async {
        if ws.close(None).await.is_ok() {
            while let Some(Ok(message)) = ws.next().await {
                if message.is_close() {
                    break;
                }
            }
        }
    })
    .await;
}

/// Sockets from [`connect_all`], in the order of their URLs, and how opening them went.
pub struct Connected {
    /// `None` where the connection failed.
    pub sockets: Vec<Option<Ws>>,
    pub report: ConnectReport,
}

/// How opening a batch of connections went.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectReport {
    pub attempted: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    /// Wall time to open all of them.
    pub total_ms: u64,
    /// Time of each successful handshake, TCP connect included.
    pub handshake: Percentiles,
}

impl fmt::Display for ConnectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "connections     {} opened, {} failed, all in {} ms",
            self.attempted - self.failed,
            self.failed,
            self.total_ms
        )?;
        write!(f, "connect time    {}", self.handshake)?;
        if let Some(err) = &self.first_error {
            write!(f, "\nfirst failure   {err}")?;
        }
        Ok(())
    }
}

/// Opens a WebSocket to each URL (offering `protocol` if given), at most `concurrency`
/// handshakes at a time, each task on the runtime's worker threads. Failures are counted, not
/// fatal.
pub async fn connect_all(
    urls: Vec<String>,
    protocol: Option<&'static str>,
    concurrency: usize,
    deadline: Instant,
) -> Connected {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|url| {
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let begun = Instant::now();
                let result = connect(&url, protocol, deadline).await;
                (result, begun.elapsed())
            })
        })
        .collect();
    let attempted = tasks.len();
    let mut sockets = Vec::with_capacity(attempted);
    let mut times = Vec::with_capacity(attempted);
    let mut failed = 0;
    let mut first_error = None;
    for task in tasks {
        let result = match task.await {
            Ok((result, time)) => result.map(|ws| (ws, time)),
            Err(err) => Err(format!("connect task failed: {err}")),
        };
        match result {
            Ok((ws, time)) => {
                sockets.push(Some(ws));
                times.push(time);
            }
            Err(err) => {
                sockets.push(None);
                failed += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    Connected {
        sockets,
        report: ConnectReport {
            attempted,
            failed,
            first_error,
            total_ms: started.elapsed().as_millis() as u64,
            handshake: Percentiles::from_durations(&times),
        },
    }
}
