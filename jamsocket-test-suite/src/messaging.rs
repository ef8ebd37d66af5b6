use crate::common::*;
use futures_util::SinkExt;
use jamsocket_server::{Server, ShutdownPolicy};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub async fn status_says_ok(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (status, body) = tokio::task::spawn_blocking(move || http(addr, "GET", "/status"))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
}

pub async fn client_ids_start_at_one_and_are_never_reused(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (a, id_a) = join(addr, "ids").await;
    let (mut b, id_b) = join(addr, "ids").await;
    assert_eq!((id_a, id_b), (1, 2));
    drop(a);
    assert_eq!(recv_text(&mut b).await, "left 1");
    let (_c, id_c) = join(addr, "ids").await;
    assert_eq!(id_c, 3);
    // Ids are per room.
    let (_d, id_d) = join(addr, "other-room").await;
    assert_eq!(id_d, 1);
}

pub async fn broadcast_reaches_everyone_and_direct_reaches_one(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut a, _) = join(addr, "r").await;
    let (mut b, _) = join(addr, "r").await;
    let (mut c, _) = join(addr, "r").await;
    send(&mut a, "all:hello").await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(recv_text(ws).await, "hello");
    }
    send(&mut a, "to:2:psst").await;
    assert_eq!(recv_text(&mut b).await, "psst");
    send(&mut c, "all:after").await;
    assert_eq!(recv_text(&mut a).await, "after", "a got the direct message");
    assert_eq!(recv_text(&mut b).await, "after");
    assert_eq!(recv_text(&mut c).await, "after", "c got the direct message");
    // A message to a client that is not there is dropped.
    send(&mut a, "to:99:nobody").await;
    send(&mut a, "ping").await;
    assert_eq!(recv_text(&mut a).await, "echo:ping");
}

pub async fn rooms_are_isolated(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut red, _) = join(addr, "red").await;
    let (mut blue, _) = join(addr, "blue").await;
    send(&mut red, "count").await;
    send(&mut red, "count").await;
    assert_eq!(recv_text(&mut red).await, "count 1");
    assert_eq!(recv_text(&mut red).await, "count 2");
    send(&mut blue, "count").await;
    assert_eq!(
        recv_text(&mut blue).await,
        "count 1",
        "blue saw red's state or messages"
    );
}

pub async fn binary_frames_round_trip(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut ws, _) = join(addr, "bin").await;
    let payload: Vec<u8> = (0..=255).collect();
    ws.send(Message::binary(payload.clone())).await.unwrap();
    match recv(&mut ws).await {
        Message::Binary(data) => assert_eq!(data.as_ref(), payload.as_slice()),
        other => panic!("expected binary, got {other:?}"),
    }
    ws.send(Message::binary(Vec::new())).await.unwrap();
    match recv(&mut ws).await {
        Message::Binary(data) => assert!(data.is_empty()),
        other => panic!("expected binary, got {other:?}"),
    }
}

pub async fn timers_fire_and_a_new_timer_replaces_the_pending_one(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut ws, _) = join(addr, "timer").await;
    let started = Instant::now();
    send(&mut ws, "timer:50").await;
    assert_eq!(recv_text(&mut ws).await, "timer fired");
    assert!(started.elapsed() >= Duration::from_millis(50));

    // Replace a long timer with a short one: it fires once, early.
    let started = Instant::now();
    send(&mut ws, "timer:60000").await;
    send(&mut ws, "timer:50").await;
    assert_eq!(recv_text(&mut ws).await, "timer fired");
    assert!(started.elapsed() < Duration::from_secs(30));
    // And the short one replaces a pending short one: only the second fires.
    send(&mut ws, "timer:100").await;
    send(&mut ws, "timer:300").await;
    let started = Instant::now();
    assert_eq!(recv_text(&mut ws).await, "timer fired");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the replaced timer fired"
    );
    assert_silent(&mut ws, Duration::from_millis(200)).await;
}

pub async fn disconnect_is_delivered_for_close_frames_and_dropped_sockets(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut watcher, _) = join(addr, "bye").await;
    let (mut polite, id) = join(addr, "bye").await;
    polite.close(None).await.unwrap();
    // The server answers the close frame: the closing handshake completes.
    assert!(matches!(recv(&mut polite).await, Message::Close(_)));
    assert_eq!(recv_text(&mut watcher).await, format!("left {id}"));

    let (rude, id) = join(addr, "bye").await;
    drop(rude);
    assert_eq!(recv_text(&mut watcher).await, format!("left {id}"));
}

pub async fn back_to_back_frames_are_not_held_back_by_delayed_acks(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut ws, _) = join(addr, "nodelay").await;
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        send(&mut ws, "twice").await;
        assert_eq!(recv_text(&mut ws).await, "first");
        let first = Instant::now();
        assert_eq!(recv_text(&mut ws).await, "second");
        worst = worst.max(first.elapsed());
    }
    // Without TCP_NODELAY the second frame waits ~40 ms for the client's delayed ACK.
    assert!(
        worst < Duration::from_millis(20),
        "second frame lagged {worst:?}"
    );
}

pub async fn a_panicking_room_closes_with_1011_and_leaves_other_rooms_alone(
    factory: impl ConformanceFactory,
) {
    let server = start(
        Server::new().with_shutdown_policy(ShutdownPolicy::Never),
        factory,
    );
    let addr = server.local_addr();
    let (mut healthy, _) = join(addr, "healthy").await;
    let (mut doomed, _) = join(addr, "doomed").await;
    let (mut neighbour, _) = join(addr, "doomed").await;
    send(&mut doomed, "panic").await;
    assert_eq!(recv_close(&mut doomed).await.0, 1011);
    assert_eq!(recv_close(&mut neighbour).await.0, 1011);
    send(&mut healthy, "count").await;
    assert_eq!(recv_text(&mut healthy).await, "count 1");
    // The room id is usable again, with fresh state.
    let (mut again, id) = join(addr, "doomed").await;
    assert_eq!(id, 1);
    send(&mut again, "count").await;
    assert_eq!(recv_text(&mut again).await, "count 1");
}

pub async fn two_thousand_connections_across_two_hundred_rooms(factory: impl ConformanceFactory) {
    let _big = THOUSANDS_OF_CONNECTIONS.lock().await;
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let mut clients = Vec::new();
    for batch in 0..20 {
        let joins = (0..100).map(|i| {
            let room = format!("room-{}", (batch * 100 + i) % 200);
            async move { (room.clone(), join(addr, &room).await.0) }
        });
        clients.extend(futures_util::future::join_all(joins).await);
    }
    assert_eq!(clients.len(), 2000);
    // One broadcast per room reaches all ten of its clients.
    for room in 0..200 {
        let name = format!("room-{room}");
        let (_, ws) = clients.iter_mut().find(|(r, _)| *r == name).unwrap();
        send(ws, &format!("all:hi {name}")).await;
    }
    let receives = clients.iter_mut().map(|(room, ws)| async move {
        assert_eq!(recv_text(ws).await, format!("hi {room}"));
    });
    futures_util::future::join_all(receives).await;
}
