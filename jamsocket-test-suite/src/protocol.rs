//! The WebSocket protocol as the server speaks it once a connection is upgraded: fragmented
//! messages, pings, frames sent along with the handshake, closing handshakes, and upgrade
//! requests that are refused or are not for a WebSocket.

use crate::common::*;
use crate::raw_frames::{client_frame, raw_texts_then_close};
use futures_util::SinkExt;
use jamsocket_server::Server;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Sends one text message split into `parts`, one frame each.
async fn send_fragments(ws: &mut Ws, parts: &[&str]) {
    for (i, part) in parts.iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = Frame::message(part.as_bytes().to_vec(), opcode, i + 1 == parts.len());
        tokio::time::timeout(TIMEOUT, ws.send(Message::Frame(frame)))
            .await
            .expect("send timed out")
            .expect("send failed");
    }
}

pub async fn fragmented_messages_arrive_whole(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let (mut ws, _) = join(server.local_addr(), "fragments").await;
    send_fragments(&mut ws, &["all:", "hello ", "", "world"]).await;
    assert_eq!(recv_text(&mut ws).await, "hello world");
    // Whole messages still work afterwards.
    send(&mut ws, "all:after").await;
    assert_eq!(recv_text(&mut ws).await, "after");
}

pub async fn fragments_adding_up_to_more_than_the_limit_close_with_1009(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new().with_max_message_bytes(100), factory);
    let (mut ws, _) = join(server.local_addr(), "fragments").await;
    let part = "x".repeat(40);
    send_fragments(&mut ws, &["all:", &part, &part, &part]).await;
    assert_eq!(
        recv_close(&mut ws).await,
        (1009, "message larger than 100 bytes".to_string())
    );
}

pub async fn pings_get_pongs_with_the_same_payload(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let (mut ws, _) = join(server.local_addr(), "ping").await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(TIMEOUT, futures_util::StreamExt::next(&mut ws))
        .await
        .expect("no pong")
        .expect("connection ended")
        .unwrap();
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
}

pub async fn a_client_close_is_answered_with_its_code(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let (mut ws, _) = join(server.local_addr(), "bye").await;
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::from(4000),
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    assert_eq!(recv_close(&mut ws).await.0, 4000);
}

/// Reads one unmasked server frame with a short payload: (opcode, payload).
async fn read_frame(tcp: &mut TcpStream) -> (u8, String) {
    let mut header = [0u8; 2];
    tokio::time::timeout(TIMEOUT, tcp.read_exact(&mut header))
        .await
        .expect("frame timed out")
        .unwrap();
    let len = usize::from(header[1] & 0x7f);
    assert!(len < 126, "short frames only");
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.unwrap();
    (header[0] & 0x0f, String::from_utf8(payload).unwrap())
}

/// A masked text frame, as a client sends it.
fn client_text_frame(text: &str) -> Vec<u8> {
    let mask = [7u8, 1, 2, 3];
    let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).unwrap()];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Sends `request` and reads the response head.
async fn response_head(tcp: &mut TcpStream, request: &[u8]) -> String {
    tcp.write_all(request).await.unwrap();
    read_head(tcp).await
}

pub async fn frames_sent_along_with_the_handshake_are_not_lost(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    // The request and two frames in one write: the server reads them together.
    let mut bytes = upgrade_request("/ws/eager").into_bytes();
    bytes.extend(client_text_frame("count"));
    bytes.extend(client_text_frame("all:hi"));
    let head = response_head(&mut tcp, &bytes).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert_eq!(read_frame(&mut tcp).await, (1, "welcome eager 1".into()));
    assert_eq!(read_frame(&mut tcp).await, (1, "count 1".into()));
    assert_eq!(read_frame(&mut tcp).await, (1, "hi".into()));
}

/// The status line and body of the answer to `request`, after which the server closes the
/// connection.
async fn answer(addr: SocketAddr, request: &str) -> (String, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = response_head(&mut tcp, request.as_bytes()).await;
    let mut body = String::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_string(&mut body))
        .await
        .expect("the server closes the connection after refusing")
        .unwrap();
    let status = head.lines().next().unwrap().to_string();
    (status, body)
}

pub async fn upgrade_requests_that_cannot_be_served_get_an_http_error_that_says_why(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (status, body) = answer(addr, &upgrade_request("/status")).await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_eq!(
        body,
        "no WebSocket endpoint at `/status`: connect to /ws/<room>\n"
    );
    let (status, body) = answer(addr, &upgrade_request("/ws/no%20spaces")).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(body.contains("no%20spaces"), "{body}");
    let old_version = upgrade_request("/ws/room").replace("Version: 13", "Version: 8");
    let (status, body) = answer(addr, &old_version).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(body.starts_with("not a WebSocket handshake"), "{body}");
    // Without the upgrade headers, the room's path is an ordinary request, answered with 426
    // when a handshake would be accepted.
    let (status, body) = http(addr, "GET", "/ws/room");
    assert_eq!(status, 426);
    assert!(body.contains("expected a WebSocket handshake"), "{body}");
}

pub async fn other_upgrades_are_answered_as_plain_requests(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    // What `curl --http2 http://...` sends.
    let h2c = "GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n\
               Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    assert_eq!(
        answer(server.local_addr(), h2c).await,
        ("HTTP/1.1 200 OK".to_string(), "ok".to_string())
    );
}

pub async fn a_message_followed_at_once_by_a_bad_frame_still_gets_its_reply_before_the_close(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let mut tcp = raw_websocket(server.local_addr(), "abrupt").await;
    // A valid message, then in the same write a continuation that continues nothing.
    let mut frames = client_frame(true, 0x1, b"hello");
    frames.extend(client_frame(true, 0x0, b"orphan"));
    tcp.write_all(&frames).await.unwrap();
    let (texts, code, _) = raw_texts_then_close(&mut tcp, TIMEOUT).await;
    assert_eq!(code, 1002);
    assert!(texts.contains(&"echo:hello".to_string()), "{texts:?}");
}
