//! Guests that trap, spin, exhaust their memory or pass the host bad pointers, in every export,
//! while healthy rooms on the same server broadcast under load: each bad room is closed on its
//! own and the healthy rooms lose nothing.
//!
//! The guest is `examples/misbehaving-guest`; its room id picks the fault and the export.

use futures_util::future::join_all;
use futures_util::SinkExt;
use jamsocket_server::{RunningServer, Server};
use jamsocket_test_suite::common::{
    connect, handshake_status, recv_close, recv_text, send, TIMEOUT,
};
use jamsocket_wasm_host::{WasmHostConfig, WasmHostFactory};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

const FAULTS: [&str; 4] = ["trap", "loop", "oom", "badptr"];
const EXPORTS: [&str; 6] = ["new", "connect", "disconnect", "message", "binary", "timer"];

const HEALTHY_ROOMS: usize = 12;
const CLIENTS_PER_ROOM: usize = 4;
const MESSAGES_PER_CLIENT: usize = 100;

fn start_misbehaving_guest_server() -> RunningServer {
    let config = WasmHostConfig::new()
        .with_cpu_time_per_call(Duration::from_millis(100))
        .with_max_memory_bytes(16 << 20);
    let wasm = crate::build_guest("misbehaving-guest");
    let factory = WasmHostFactory::with_config(wasm, config).expect("the guest loads");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    Server::new().start(listener, factory).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_guests_close_only_their_own_rooms_and_healthy_rooms_lose_nothing() {
    let server = start_misbehaving_guest_server();
    let addr = server.local_addr();

    let healthy = join_all((0..HEALTHY_ROOMS).map(|room| healthy_room(addr, room)));
    let faults =
        join_all(
            FAULTS
                .iter()
                .flat_map(|fault| EXPORTS.iter().map(move |export| (*fault, *export)))
                .map(|(fault, export)| async move {
                    (fault, export, provoke(addr, fault, export).await)
                }),
        );
    let (healthy, faults) = tokio::join!(healthy, faults);

    for (fault, export, outcome) in faults {
        let expected = if export == "new" {
            "HTTP 500"
        } else {
            "close 1011"
        };
        assert_eq!(outcome, expected, "{fault} in {export}");
    }
    for (room, received) in healthy.iter().enumerate() {
        assert_eq!(
            received,
            &vec![CLIENTS_PER_ROOM * MESSAGES_PER_CLIENT; CLIENTS_PER_ROOM],
            "healthy room {room} lost messages"
        );
    }
    // A room that failed can be opened afresh, and the server still serves healthy rooms.
    let mut again = connect(addr, "after-the-faults").await;
    send(&mut again, "still here").await;
    assert_eq!(recv_text(&mut again).await, "still here");
}

/// Makes the guest misbehave in `export` of a new room; returns what the client saw.
async fn provoke(addr: SocketAddr, fault: &str, export: &str) -> String {
    let room = format!("{fault}-{export}-room");
    if export == "new" || export == "connect" {
        let status = handshake_status(addr, &format!("/ws/{room}")).await;
        if status != 101 {
            return format!("HTTP {status}");
        }
    }
    let mut client = connect(addr, &room).await;
    match export {
        "disconnect" => {
            let leaver = connect(addr, &room).await;
            drop(leaver);
        }
        "message" => send(&mut client, "hello").await,
        "binary" => tokio::time::timeout(TIMEOUT, client.send(Message::binary(vec![1, 2, 3])))
            .await
            .expect("send timed out")
            .expect("send failed"),
        _ => {}
    }
    let (code, reason) = recv_close(&mut client).await;
    assert!(!reason.is_empty(), "close {code} without a reason");
    format!("close {code}")
}

/// Runs one healthy room: every client sends its messages closed-loop (the next after its own
/// came back) and counts every broadcast it gets, checking each sender's order. Returns each
/// client's count.
async fn healthy_room(addr: SocketAddr, room: usize) -> Vec<usize> {
    let room = format!("healthy-{room}");
    let barrier = Arc::new(Barrier::new(CLIENTS_PER_ROOM));
    join_all((0..CLIENTS_PER_ROOM).map(|client| {
        let (room, barrier) = (room.clone(), barrier.clone());
        async move {
            let mut ws = connect(addr, &room).await;
            // Everyone is in the room before anyone sends.
            barrier.wait().await;
            let mut next_from = [0_usize; CLIENTS_PER_ROOM];
            let mut received = 0;
            for seq in 0..MESSAGES_PER_CLIENT {
                send(&mut ws, &format!("{client}:{seq}")).await;
                loop {
                    let text = recv_text(&mut ws).await;
                    let (sender, their_seq) = text.split_once(':').expect("sender:seq");
                    let (sender, their_seq): (usize, usize) =
                        (sender.parse().unwrap(), their_seq.parse().unwrap());
                    assert_eq!(their_seq, next_from[sender], "{room}: out of order");
                    next_from[sender] += 1;
                    received += 1;
                    if sender == client && their_seq == seq {
                        break;
                    }
                }
            }
            // Then the others' remaining messages.
            while received < CLIENTS_PER_ROOM * MESSAGES_PER_CLIENT {
                let text = recv_text(&mut ws).await;
                let (sender, their_seq) = text.split_once(':').expect("sender:seq");
                let sender: usize = sender.parse().unwrap();
                assert_eq!(their_seq.parse::<usize>().unwrap(), next_from[sender]);
                next_from[sender] += 1;
                received += 1;
            }
            received
        }
    }))
    .await
}
