use crate::common::*;
use jamsocket_server::{Server, ShutdownPolicy};
use std::time::Duration;

async fn count_in(addr: std::net::SocketAddr, room: &str) -> String {
    let (mut ws, _) = join(addr, room).await;
    send(&mut ws, "count").await;
    let count = recv_text(&mut ws).await;
    ws.close(None).await.unwrap();
    recv_close(&mut ws).await;
    count
}

pub async fn immediate_policy_forgets_an_empty_room(factory: impl ConformanceFactory) {
    let server = start(
        Server::new().with_shutdown_policy(ShutdownPolicy::Immediate),
        factory,
    );
    let addr = server.local_addr();
    assert_eq!(count_in(addr, "r").await, "count 1");
    // The first client is gone; the room closed with it, so this starts over.
    assert_eq!(count_in(addr, "r").await, "count 1");
}

pub async fn never_policy_keeps_an_empty_room(factory: impl ConformanceFactory) {
    let server = start(
        Server::new().with_shutdown_policy(ShutdownPolicy::Never),
        factory,
    );
    let addr = server.local_addr();
    assert_eq!(count_in(addr, "r").await, "count 1");
    assert_eq!(count_in(addr, "r").await, "count 2");
}

pub async fn grace_period_keeps_state_for_clients_that_return_in_time(
    factory: impl ConformanceFactory,
) {
    let grace = Duration::from_millis(1500);
    let server = start(
        Server::new().with_shutdown_policy(ShutdownPolicy::After(grace)),
        factory,
    );
    let addr = server.local_addr();
    assert_eq!(count_in(addr, "r").await, "count 1");
    assert_eq!(count_in(addr, "r").await, "count 2");
    // Wait out the grace period: there is no event to await from an empty room.
    tokio::time::sleep(grace + Duration::from_millis(500)).await;
    assert_eq!(count_in(addr, "r").await, "count 1");
}

pub async fn silent_clients_are_dropped_after_the_heartbeat_timeout(
    factory: impl ConformanceFactory,
) {
    let server = start(
        Server::new()
            .with_heartbeat_interval(Duration::from_millis(50))
            .with_heartbeat_timeout(Duration::from_millis(300)),
        factory,
    );
    let addr = server.local_addr();
    let (mut watcher, _) = join(addr, "hb").await;
    // The silent client never reads, so it never answers the server's pings.
    let (_silent, silent_id) = join(addr, "hb").await;
    // The watcher reads, so its client library answers pings and it stays.
    assert_eq!(recv_text(&mut watcher).await, format!("left {silent_id}"));
    send(&mut watcher, "still here").await;
    assert_eq!(recv_text(&mut watcher).await, "echo:still here");
}

pub async fn stopping_the_server_closes_every_client_with_1001(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut a, _) = join(addr, "one").await;
    let (mut b, _) = join(addr, "two").await;
    let stopped = tokio::task::spawn_blocking(move || server.stop());
    assert_eq!(recv_close(&mut a).await.0, 1001);
    assert_eq!(recv_close(&mut b).await.0, 1001);
    tokio::time::timeout(TIMEOUT, stopped)
        .await
        .expect("stop timed out")
        .unwrap()
        .unwrap();
}

pub async fn close_rooms_closes_clients_with_the_code_and_keeps_serving(
    factory: impl ConformanceFactory,
) {
    let server = start(
        Server::new().with_shutdown_policy(ShutdownPolicy::Never),
        factory,
    );
    let addr = server.local_addr();
    let (mut a, _) = join(addr, "reload").await;
    send(&mut a, "count").await;
    assert_eq!(recv_text(&mut a).await, "count 1");
    server.close_rooms(1012, "service reloaded").await;
    assert_eq!(
        recv_close(&mut a).await,
        (1012, "service reloaded".to_string())
    );
    // The room starts over with the next client.
    assert_eq!(count_in(addr, "reload").await, "count 1");
}

pub async fn close_room_closes_one_room_and_leaves_the_others(factory: impl ConformanceFactory) {
    let server = start(
        Server::new().with_shutdown_policy(ShutdownPolicy::Never),
        factory,
    );
    let addr = server.local_addr();
    let (mut closed, _) = join(addr, "closed").await;
    let (mut kept, _) = join(addr, "kept").await;
    send(&mut kept, "count").await;
    assert_eq!(recv_text(&mut kept).await, "count 1");
    assert!(server.close_room("closed", 4000, "room deleted").await);
    assert_eq!(
        recv_close(&mut closed).await,
        (4000, "room deleted".to_string())
    );
    assert!(!server.close_room("no-such-room", 4000, "x").await);
    send(&mut kept, "count").await;
    assert_eq!(recv_text(&mut kept).await, "count 2");
}
