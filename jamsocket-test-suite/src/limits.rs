use crate::common::*;
use futures_util::SinkExt;
use jamsocket_server::Server;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

pub async fn messages_over_the_size_limit_close_with_1009(factory: impl ConformanceFactory) {
    let server = start(Server::new().with_max_message_bytes(1024), factory);
    let addr = server.local_addr();
    let (mut watcher, _) = join(addr, "size").await;
    let (mut ws, _) = join(addr, "size").await;
    send(&mut ws, &"a".repeat(1024)).await;
    assert_eq!(
        recv_text(&mut ws).await,
        format!("echo:{}", "a".repeat(1024))
    );
    send(&mut ws, &"a".repeat(1025)).await;
    let (code, reason) = recv_close(&mut ws).await;
    assert_eq!(code, 1009);
    assert!(reason.contains("1024 bytes"), "{reason}");
    assert_eq!(recv_text(&mut watcher).await, "left 2");

    // Fragments count together.
    let (mut ws, _) = join(addr, "size").await;
    let first = Frame::message(vec![b'a'; 600], OpCode::Data(Data::Text), false);
    let rest = Frame::message(vec![b'a'; 600], OpCode::Data(Data::Continue), true);
    ws.send(Message::Frame(first)).await.unwrap();
    ws.send(Message::Frame(rest)).await.unwrap();
    assert_eq!(recv_close(&mut ws).await.0, 1009);
}

pub async fn invalid_utf8_text_closes_with_1007(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut ws, _) = join(addr, "utf8").await;
    let frame = Frame::message(vec![0xff, 0xfe, b'a'], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(recv_close(&mut ws).await.0, 1007);
}

pub async fn clients_over_the_message_rate_are_closed_with_1008(factory: impl ConformanceFactory) {
    let server = start(Server::new().with_max_messages_per_sec(20), factory);
    let addr = server.local_addr();
    let (mut watcher, _) = join(addr, "rate").await;
    let (mut calm, _) = join(addr, "rate").await;
    let (mut flood, flood_id) = join(addr, "rate").await;
    // A burst of one second's worth passes.
    for i in 0..10 {
        send(&mut calm, &format!("calm {i}")).await;
        assert_eq!(recv_text(&mut calm).await, format!("echo:calm {i}"));
    }
    // Far more than that is cut off.
    for i in 0..200 {
        if flood
            .send(Message::text(format!("flood {i}")))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = recv_close(&mut flood).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("20 messages/s"), "{reason}");
    assert_eq!(recv_text(&mut watcher).await, format!("left {flood_id}"));
    assert_eq!(recv_text(&mut calm).await, format!("left {flood_id}"));
    send(&mut calm, "still fine").await;
    assert_eq!(recv_text(&mut calm).await, "echo:still fine");
}

pub async fn full_rooms_refuse_with_503(factory: impl ConformanceFactory) {
    let server = start(Server::new().with_max_clients_per_room(2), factory);
    let addr = server.local_addr();
    let (_a, _) = join(addr, "small").await;
    let (_b, _) = join(addr, "small").await;
    assert_eq!(handshake_status(addr, "/ws/small").await, 503);
    let (_c, _) = join(addr, "elsewhere").await;
}

pub async fn the_room_limit_refuses_new_rooms_with_503(factory: impl ConformanceFactory) {
    let server = start(Server::new().with_max_rooms(2), factory);
    let addr = server.local_addr();
    let (_a, _) = join(addr, "one").await;
    let (_b, _) = join(addr, "two").await;
    assert_eq!(handshake_status(addr, "/ws/three").await, 503);
    let (_c, _) = join(addr, "one").await;
}

pub async fn a_client_that_stops_reading_is_closed_and_the_rest_get_everything_in_order(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new().with_outbound_queue_messages(600), factory);
    let addr = server.local_addr();
    let (mut reader, _) = join(addr, "slow").await;
    let (mut sleeper, sleeper_id) = join(addr, "slow").await;
    // The sleeper never reads again; its socket buffers fill (20 MB in all), then its queue.
    // Bursts stay below the queue size, so a client that reads keeps up.
    const BURSTS: u32 = 40;
    const PER_BURST: u32 = 500;
    let mut next = 0;
    let mut saw_left = false;
    for _ in 0..BURSTS {
        send(&mut reader, &format!("burst:{PER_BURST}:1000")).await;
        for i in 0..PER_BURST {
            let text = recv_text(&mut reader).await.trim_end().to_string();
            if text == format!("left {sleeper_id}") {
                saw_left = true;
                assert_eq!(
                    recv_text(&mut reader).await.trim_end(),
                    format!("burst {i}")
                );
            } else {
                assert_eq!(text, format!("burst {i}"), "message {next} out of order");
            }
            next += 1;
        }
    }
    assert!(
        saw_left || {
            // The disconnect may come right after the last burst.
            recv_text(&mut reader).await == format!("left {sleeper_id}")
        }
    );
    // The sleeper finally reads: whatever was buffered, then the end of the connection. Its
    // close frame (1008) could only be written if it had made room by reading, so it may be
    // missing; if it is there, it says why.
    let end = async {
        use futures_util::StreamExt;
        while let Some(Ok(message)) = sleeper.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
        }
        None
    };
    let close = tokio::time::timeout(Duration::from_secs(30), end)
        .await
        .expect("the slow client's connection stayed open");
    if let Some((code, reason)) = close {
        assert_eq!(code, 1008, "{reason}");
    }
}

pub async fn fifty_clients_that_never_read_are_dropped_while_fifty_that_read_get_everything_in_order(
    factory: impl ConformanceFactory,
) {
    const SLEEPERS: usize = 50;
    const READERS: usize = 50;
    const QUEUE: usize = 100;
    const BURSTS: usize = 10;
    const PER_BURST: usize = QUEUE / 2;
    // Enough bytes (8 MB per client) to fill the server's socket buffer for each sleeper (on
    // loopback, Linux lets it grow to megabytes) and then its queue.
    const PAD: usize = 16 * 1024;
    let server = start(Server::new().with_outbound_queue_messages(QUEUE), factory);
    let addr = server.local_addr();
    let mut sleepers = Vec::new();
    for _ in 0..SLEEPERS {
        sleepers.push(connect_with_small_receive_buffer(addr, "fifty").await);
    }
    let (mut driver, _) = join(addr, "fifty").await;
    // Each reader reports every burst it has read completely; the next burst waits for all, so
    // a reader never has more than half its queue outstanding.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(READERS * BURSTS);
    let mut readers = Vec::new();
    for _ in 1..READERS {
        let (mut ws, _) = join(addr, "fifty").await;
        let done = done_tx.clone();
        readers.push(tokio::spawn(async move {
            for _ in 0..BURSTS {
                read_burst(&mut ws, PER_BURST).await;
                done.send(()).await.unwrap();
            }
        }));
    }
    let mut departures = 0;
    for _ in 0..BURSTS {
        send(&mut driver, &format!("burst:{PER_BURST}:{PAD}")).await;
        departures += read_burst(&mut driver, PER_BURST).await;
        for _ in 1..READERS {
            tokio::time::timeout(TIMEOUT, done_rx.recv())
                .await
                .expect("a reader fell behind")
                .unwrap();
        }
    }
    for reader in readers {
        reader.await.unwrap();
    }
    // The server closed every sleeper (its queue overflowed): the room saw each one leave.
    while departures < SLEEPERS {
        let text = recv_text(&mut driver).await;
        assert!(text.starts_with("left "), "unexpected `{text}`");
        departures += 1;
    }
    drop(sleepers);
}

/// A client that falls behind and catches up gets every message once, in order: the server
/// stops writing when the client's socket is full, with a frame half written, and picks up
/// there once the client reads again.
pub async fn a_client_that_reads_late_gets_everything_in_order(factory: impl ConformanceFactory) {
    // 400 messages of 8 KiB: 3.2 MB, far more than the late client's socket buffers hold,
    // fewer messages than its queue holds.
    const MESSAGES: usize = 400;
    const PAD: usize = 8 * 1024;
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let mut late = connect_with_small_receive_buffer(addr, "late").await;
    assert!(recv_text(&mut late).await.starts_with("welcome late "));
    let (mut driver, _) = join(addr, "late").await;
    for round in 0..3 {
        send(&mut driver, &format!("burst:{MESSAGES}:{PAD}")).await;
        // The driver has everything, so the late client's share is written or queued.
        assert_eq!(read_burst(&mut driver, MESSAGES).await, 0, "round {round}");
        assert_eq!(read_burst(&mut late, MESSAGES).await, 0, "round {round}");
    }
}

/// Reads one `burst:<n>` worth of messages in order; returns how many clients left meanwhile.
async fn read_burst(ws: &mut Ws, n: usize) -> usize {
    let (mut i, mut departures) = (0, 0);
    while i < n {
        let text = recv_text(ws).await;
        if text.starts_with("left ") {
            departures += 1;
            continue;
        }
        assert_eq!(text.trim_end(), format!("burst {i}"));
        i += 1;
    }
    departures
}

/// A client whose kernel buffers hold almost nothing, so what it does not read piles up in
/// the server's queue for it.
async fn connect_with_small_receive_buffer(addr: std::net::SocketAddr, room: &str) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/ws/{room}");
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(url, stream))
        .await
        .expect("connect timed out")
        .expect("connect failed")
        .0
}
