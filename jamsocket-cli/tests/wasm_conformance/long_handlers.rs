//! A guest handler that runs for many time slices starts on the connection task that read the
//! message and is finished by the room's task: the client's next messages wait their turn, and
//! other rooms are answered meanwhile.
//!
//! The guest is `examples/cpu-hog`: it computes for the seconds a message asks for, then
//! replies `done: N rounds in M ms`.

use jamsocket_server::Server;
use jamsocket_test_suite::common::{connect, recv_text, send};
use jamsocket_wasm_host::{WasmHostConfig, WasmHostFactory};
use std::time::Duration;

/// The milliseconds a cpu-hog reply says it computed for.
fn computed_ms(reply: &str) -> u64 {
    let ms = reply
        .strip_prefix("done: ")
        .and_then(|rest| rest.split(" rounds in ").nth(1))
        .and_then(|rest| rest.strip_suffix(" ms"));
    ms.and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("not a cpu-hog reply: {reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_yields_finishes_on_the_room_task_in_order_while_other_rooms_are_answered() {
    let config = WasmHostConfig::new()
        .with_cpu_time_per_call(Duration::from_secs(5))
        .with_time_slice(Duration::from_millis(10));
    let wasm = crate::build_guest("cpu-hog");
    let factory = WasmHostFactory::with_config(wasm, config).expect("the guest loads");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // One worker: the long handler and the other room share its thread.
    let server = Server::new()
        .with_workers(1)
        .start(listener, factory)
        .unwrap();
    let addr = server.local_addr();

    let mut other = connect(addr, "other-room").await;
    send(&mut other, "0").await;
    assert!(computed_ms(&recv_text(&mut other).await) < 1000);

    let mut hog = connect(addr, "hog-room").await;
    let mut neighbour = connect(addr, "hog-room").await;
    // A second of computing (a hundred time slices), then at once a message of no work.
    send(&mut hog, "1").await;
    send(&mut hog, "0").await;
    send(&mut neighbour, "0").await;
    // The other room is answered while the hog computes: its reply comes first.
    send(&mut other, "0").await;
    let reply = tokio::select! {
        reply = recv_text(&mut other) => reply,
        reply = recv_text(&mut hog) => panic!("the other room waited for the hog: {reply:?}"),
    };
    assert!(computed_ms(&reply) < 1000, "{reply:?}");

    let first = recv_text(&mut hog).await;
    assert!(computed_ms(&first) >= 1000, "first reply: {first:?}");
    let second = recv_text(&mut hog).await;
    assert!(computed_ms(&second) < 1000, "second reply: {second:?}");
    let neighbours = recv_text(&mut neighbour).await;
    assert!(computed_ms(&neighbours) < 1000, "{neighbours:?}");

    // The room takes messages inline again.
    for _ in 0..3 {
        send(&mut hog, "0").await;
        assert!(computed_ms(&recv_text(&mut hog).await) < 1000);
    }
    drop(server);
}
