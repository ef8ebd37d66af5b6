//! Hostile and unlucky clients: connection storms, connections reset in the middle of a frame.

use crate::common::*;
use futures_util::future::join_all;
use jamsocket_server::{Server, ShutdownPolicy};
use tokio::io::AsyncWriteExt;

pub async fn a_connection_reset_in_the_middle_of_a_frame_leaves_once_and_the_room_carries_on(
    factory: impl ConformanceFactory,
) {
    let server = start(
        Server::new().with_shutdown_policy(ShutdownPolicy::Never),
        factory,
    );
    let addr = server.local_addr();
    let (mut watcher, _) = join(addr, "reset").await;
    send(&mut watcher, "count").await;
    assert_eq!(recv_text(&mut watcher).await, "count 1");
    for round in 0..3 {
        let mut tcp = raw_websocket(addr, "reset").await;
        // A masked text frame announcing 100 bytes, of which only 10 arrive.
        let mut frame = vec![0x81, 0x80 | 100, 1, 2, 3, 4];
        frame.extend_from_slice(&[b'x' ^ 1; 10]);
        tcp.write_all(&frame).await.unwrap();
        // Reset (RST), not a clean close.
        tcp.set_zero_linger().unwrap();
        drop(tcp);
        let left = recv_text(&mut watcher).await;
        assert!(left.starts_with("left "), "round {round}: {left}");
    }
    // Each departure was reported once, and the state is intact.
    send(&mut watcher, "count").await;
    assert_eq!(recv_text(&mut watcher).await, "count 2");
}

/// Connections opened at once in a storm.
const STORM: usize = 5000;

pub async fn a_storm_on_one_room_is_served_up_to_its_limit_and_refused_cleanly_beyond(
    factory: impl ConformanceFactory,
) {
    let _big = THOUSANDS_OF_CONNECTIONS.lock().await;
    let server = start(Server::new().with_max_clients_per_room(STORM / 2), factory);
    let addr = server.local_addr();
    let statuses = join_all((0..STORM).map(|_| async move {
        let url = format!("ws://{addr}/ws/storm");
        match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url)).await {
            Ok(Ok((ws, _))) => (101, Some(ws)),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                (response.status().as_u16(), None)
            }
            other => panic!("connect failed: {:?}", other.map(|r| r.map(|_| ()))),
        }
    }))
    .await;
    let accepted = statuses.iter().filter(|(s, _)| *s == 101).count();
    let refused = statuses.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!((accepted, refused), (STORM / 2, STORM / 2));
    // The server still serves everyone else.
    let (mut ws, _) = join(addr, "after-the-storm").await;
    send(&mut ws, "count").await;
    assert_eq!(recv_text(&mut ws).await, "count 1");
}

pub async fn a_storm_on_many_rooms_creates_them_all(factory: impl ConformanceFactory) {
    let _big = THOUSANDS_OF_CONNECTIONS.lock().await;
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let clients =
        join_all((0..STORM).map(|i| async move { join(addr, &format!("storm-{i}")).await })).await;
    assert!(clients.iter().all(|(_, id)| *id == 1));
    assert_eq!(server.room_count(), STORM);
}
