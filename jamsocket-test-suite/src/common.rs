//! Helpers: a server on 127.0.0.1:0 serving the conformance service (see
//! `examples/conformance-service` for what each message does) and a real WebSocket client with
//! a timeout on every receive.

use futures_util::{SinkExt, StreamExt};
use jamsocket::JamsocketServiceFactory;
use jamsocket_server::{RoomContext, RunningServer, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use tokio::net::TcpStream as TokioTcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Held by tests that open thousands of connections, so that together they stay within the
/// open-file limit.
pub static THOUSANDS_OF_CONNECTIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A factory of rooms running `examples/conformance-service`, natively or as WebAssembly: what
/// the suite runs against. Cloned for tests that start more than one server.
pub trait ConformanceFactory: JamsocketServiceFactory<RoomContext> + Clone {}

impl<F: JamsocketServiceFactory<RoomContext> + Clone> ConformanceFactory for F {}

/// Starts `server` on 127.0.0.1:0 with rooms from `factory`.
pub fn start(server: Server, factory: impl ConformanceFactory) -> RunningServer {
    let _ = rlimit::increase_nofile_limit(65_536);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    server.start(listener, factory).unwrap()
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

/// Reads an HTTP response head (status line and headers) byte by byte from a raw socket.
pub async fn read_head(tcp: &mut TokioTcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(TIMEOUT, tcp.read_exact(&mut byte))
            .await
            .expect("response timed out")
            .unwrap();
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
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

/// Retries a handshake to `path` until it gets 101; `false` if it never does within [`TIMEOUT`].
pub async fn accepted_within_timeout(addr: SocketAddr, path: &str) -> bool {
    let started = std::time::Instant::now();
    while handshake_status(addr, path).await != 101 {
        if started.elapsed() > TIMEOUT {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
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
    let response = http_raw(addr, method, path);
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The whole response to a minimal blocking HTTP/1.1 request, headers included.
pub fn http_raw(addr: SocketAddr, method: &str, path: &str) -> String {
    http_raw_with(addr, method, path, "")
}

/// Like [`http_raw`], with `extra_headers` (each ending in `\r\n`).
pub fn http_raw_with(addr: SocketAddr, method: &str, path: &str, extra_headers: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n{extra_headers}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Opens a WebSocket by hand and returns the raw socket after the 101 response.
pub async fn raw_websocket(addr: SocketAddr, room: &str) -> TokioTcpStream {
    let (tcp, head) = raw_handshake(addr, &format!("/ws/{room}"), "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// Sends a WebSocket handshake for `path` with `extra_headers` (each ending in `\r\n`) and
/// returns the socket and the response head.
pub async fn raw_handshake(
    addr: SocketAddr,
    path: &str,
    extra_headers: &str,
) -> (TokioTcpStream, String) {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::time::timeout(TIMEOUT, TokioTcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await;
    (tcp, head)
}

/// Opens a WebSocket to `path` with extra request headers; the HTTP status and body of a
/// refusal as `Err`.
pub async fn open(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, Option<String>), (u16, String)> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let connecting = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(TIMEOUT, connecting)
        .await
        .expect("connect timed out")
    {
        Ok((ws, response)) => {
            let protocol = response
                .headers()
                .get("sec-websocket-protocol")
                .map(|value| value.to_str().unwrap().to_string());
            Ok((ws, protocol))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ))
        }
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

/// Reads the welcome the conformance service sends, and returns the client id.
pub async fn welcome(ws: &mut Ws, room: &str) -> u32 {
    let text = recv_text(ws).await;
    text.strip_prefix(&format!("welcome {room} "))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("expected a welcome, got `{text}`"))
}
