//! Test helpers: a service that does what its messages ask, a server on 127.0.0.1:0 and a real
//! WebSocket client with a timeout on every receive.

use futures_util::{SinkExt, StreamExt};
use jamsocket::{ClientId, JamsocketContext, MessageRecipient, SimpleJamsocketService};
use jamsocket_server::{RunningServer, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use tokio::net::TcpStream as TokioTcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A service driven by its messages:
/// - `to:<id>:<text>` sends text to one client, `all:<text>` broadcasts it;
/// - `timer:<ms>` sets the timer (which broadcasts `timer fired`);
/// - `count` increments the room's counter and broadcasts `count <n>`;
/// - `burst:<n>[:<pad>]` broadcasts `burst <i>` n times (padded with `pad` spaces); `twice` sends the sender two frames;
/// - `panic` panics; anything else is echoed to the sender as `echo:<text>`.
///
/// On connect the client gets `welcome <room> <id>`; on disconnect everyone gets `left <id>`.
/// Binary messages are echoed to the sender.
pub struct TestService {
    room: String,
    count: u64,
}

impl SimpleJamsocketService for TestService {
    fn new(room_id: &str, _: &impl JamsocketContext) -> Self {
        TestService {
            room: room_id.to_string(),
            count: 0,
        }
    }

    fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        ctx.send_message(client, &format!("welcome {} {client}", self.room));
    }

    fn disconnect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        ctx.send_message(MessageRecipient::Broadcast, &format!("left {client}"));
    }

    fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
        if let Some(rest) = message.strip_prefix("to:") {
            let (id, text) = rest.split_once(':').unwrap();
            ctx.send_message(ClientId::from(id.parse::<u32>().unwrap()), text);
        } else if let Some(text) = message.strip_prefix("all:") {
            ctx.send_message(MessageRecipient::Broadcast, text);
        } else if let Some(ms) = message.strip_prefix("timer:") {
            ctx.set_timer(ms.parse().unwrap());
        } else if message == "count" {
            self.count += 1;
            ctx.send_message(
                MessageRecipient::Broadcast,
                &format!("count {}", self.count),
            );
        } else if let Some(rest) = message.strip_prefix("burst:") {
            let (n, pad) = rest.split_once(':').unwrap_or((rest, "0"));
            let pad = " ".repeat(pad.parse().unwrap());
            for i in 0..n.parse::<u32>().unwrap() {
                ctx.send_message(MessageRecipient::Broadcast, &format!("burst {i}{pad}"));
            }
        } else if message == "twice" {
            ctx.send_message(client, "first");
            ctx.send_message(client, "second");
        } else if message == "panic" {
            panic!("the test asked this room to panic");
        } else {
            ctx.send_message(client, &format!("echo:{message}"));
        }
    }

    fn binary(&mut self, client: ClientId, message: &[u8], ctx: &impl JamsocketContext) {
        ctx.send_binary(client, message);
    }

    fn timer(&mut self, ctx: &impl JamsocketContext) {
        ctx.send_message(MessageRecipient::Broadcast, "timer fired");
    }
}

/// Starts `server` on 127.0.0.1:0 with the test service.
pub fn start(server: Server) -> RunningServer {
    let _ = rlimit::increase_nofile_limit(16_384);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    server
        .start(
            listener,
            jamsocket::SimpleJamsocketServiceFactory::<TestService>::default(),
        )
        .unwrap()
}

pub type Ws = WebSocketStream<MaybeTlsStream<TokioTcpStream>>;

pub async fn connect(addr: SocketAddr, room: &str) -> Ws {
    let url = format!("ws://{addr}/ws/{room}");
    let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    ws
}

/// Connects and reads the welcome message; returns the socket and the client id.
pub async fn join(addr: SocketAddr, room: &str) -> (Ws, u32) {
    let mut ws = connect(addr, room).await;
    let welcome = recv_text(&mut ws).await;
    let id = welcome
        .strip_prefix(&format!("welcome {room} "))
        .unwrap_or_else(|| panic!("unexpected welcome `{welcome}`"))
        .parse()
        .unwrap();
    (ws, id)
}

/// The HTTP status a WebSocket handshake to `path` gets (101 when it succeeds).
pub async fn handshake_status(addr: SocketAddr, path: &str) -> u16 {
    let url = format!("ws://{addr}{path}");
    match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
    {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

pub async fn send(ws: &mut Ws, text: &str) {
    tokio::time::timeout(TIMEOUT, ws.send(Message::text(text)))
        .await
        .expect("send timed out")
        .expect("send failed");
}

/// The next data or close message, skipping pings and pongs.
pub async fn recv(ws: &mut Ws) -> Message {
    loop {
        let message = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("receive timed out")
            .expect("connection ended")
            .expect("receive failed");
        match message {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

pub async fn recv_text(ws: &mut Ws) -> String {
    match recv(ws).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Reads until a close frame arrives and returns its code and reason.
pub async fn recv_close(ws: &mut Ws) -> (u16, String) {
    loop {
        match recv(ws).await {
            Message::Close(Some(CloseFrame { code, reason })) => {
                return (u16::from(code), reason.to_string())
            }
            Message::Close(None) => return (1005, String::new()),
            _ => continue,
        }
    }
}

/// Asserts nothing arrives within `wait` (used only to check absence).
pub async fn assert_silent(ws: &mut Ws, wait: Duration) {
    if let Ok(Some(Ok(message))) = tokio::time::timeout(wait, ws.next()).await {
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            panic!("expected silence, got {message:?}");
        }
    }
}

/// A minimal blocking HTTP/1.1 request; returns status and body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}
