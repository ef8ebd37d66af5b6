//! Serves `BroadcastEcho` natively on 127.0.0.1:0 and talks to it with real WebSocket clients.
//! (The WebAssembly build is exercised by `jamsocket-wasm-host`'s example tests.)

use broadcast_echo::BroadcastEcho;
use futures_util::{SinkExt, StreamExt};
use jamsocket_server::{RunningServer, Server};
use jamsocket_wasm::jamsocket::SimpleJamsocketServiceFactory;
use std::net::TcpListener;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const TIMEOUT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn start() -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    Server::new()
        .start(
            listener,
            SimpleJamsocketServiceFactory::<BroadcastEcho>::default(),
        )
        .expect("starting the server")
}

async fn send(ws: &mut Ws, message: Message) {
    tokio::time::timeout(TIMEOUT, ws.send(message))
        .await
        .expect("send timed out")
        .expect("send failed");
}

/// The next data or close message, skipping pings and pongs.
async fn recv(ws: &mut Ws) -> Message {
    loop {
        let message = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("receive timed out")
            .expect("the connection ended")
            .expect("receive failed");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// Connects to `room` and waits for its own announcement to come back, so the room has it as
/// a client before anyone sends; every client already in the room receives the announcement.
async fn join(server: &RunningServer, room: &str, name: &str, present: &mut [&mut Ws]) -> Ws {
    let url = format!("ws://{}/ws/{room}", server.local_addr());
    let (mut ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    let hello = Message::text(format!("{name} is here"));
    send(&mut ws, hello.clone()).await;
    assert_eq!(recv(&mut ws).await, hello);
    for other in present {
        assert_eq!(recv(other).await, hello);
    }
    ws
}

#[tokio::test]
async fn everyone_in_the_room_gets_every_message_verbatim() {
    let server = start();
    let mut a = join(&server, "room", "a", &mut []).await;
    let mut b = join(&server, "room", "b", &mut [&mut a]).await;
    let c = join(&server, "room", "c", &mut [&mut a, &mut b]).await;
    let mut room = [a, b, c];
    let mut elsewhere = join(&server, "other-room", "d", &mut []).await;

    let messages = [
        Message::text("all:not a command, just text é"),
        Message::text(""),
        Message::binary(vec![0, 255, 1, 2]),
        Message::binary(Vec::new()),
        Message::text("x".repeat(10_000)),
    ];
    for (i, message) in messages.iter().enumerate() {
        send(&mut room[i % room.len()], message.clone()).await;
        for client in &mut room {
            assert_eq!(&recv(client).await, message);
        }
    }

    // The other room got none of it: the first thing it receives is its own next message.
    send(&mut elsewhere, Message::text("only here")).await;
    assert_eq!(recv(&mut elsewhere).await, Message::text("only here"));

    // A client that leaves no longer counts; the others carry on.
    let [mut a, mut b, mut c] = room;
    a.close(None).await.expect("closing a");
    send(&mut b, Message::text("after a left")).await;
    for client in [&mut b, &mut c] {
        assert_eq!(recv(client).await, Message::text("after a left"));
    }
    drop((b, c, elsewhere));
    server.stop().expect("stopping the server");
}
