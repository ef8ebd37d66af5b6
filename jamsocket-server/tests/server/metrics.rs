//! `Server::with_metrics`: what real clients do shows up in `RunningServer::metrics`, and a
//! server without metrics has none.

use futures_util::SinkExt;
use jamsocket_server::{RunningServer, Server, ShutdownPolicy, Snapshots, StoreConfig};
use jamsocket_test_suite::common::{
    handshake_status, join, open, recv, recv_close, recv_text, send, start, TIMEOUT,
};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The value of `series` (a metric name and its labels, as the text shows them), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

fn metrics(server: &RunningServer) -> String {
    server.metrics().expect("the server collects metrics")
}

/// Polls the metrics until `series` has `expected`, or fails after [`TIMEOUT`].
async fn until(server: &RunningServer, series: &str, expected: f64) {
    until_value(server, series, &format!("{expected}"), |v| v == expected).await;
}

/// Polls the metrics until `series` is at least `min`, or fails after [`TIMEOUT`].
async fn until_at_least(server: &RunningServer, series: &str, min: f64) {
    until_value(server, series, &format!("at least {min}"), |v| v >= min).await;
}

async fn until_value(server: &RunningServer, series: &str, what: &str, done: impl Fn(f64) -> bool) {
    let started = Instant::now();
    loop {
        let text = metrics(server);
        if value(&text, series).is_some_and(&done) {
            return;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "`{series}` never became {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every label value of every series.
fn label_values(text: &str) -> Vec<&str> {
    let labels = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| Some(line.split_once('{')?.1.split_once('}')?.0));
    labels
        .flat_map(|labels| labels.split(','))
        .filter_map(|label| Some(label.split_once('=')?.1.trim_matches('"')))
        .collect()
}

#[tokio::test]
async fn rooms_clients_messages_refusals_and_closes_are_counted() {
    let server = start(
        Server::new()
            .with_metrics()
            .with_shutdown_policy(ShutdownPolicy::Immediate)
            .with_allowed_origins(["https://app.example"]),
        crate::factory(),
    );
    let addr = server.local_addr();
    let room = "metrics-room";
    let (mut alice, _) = join(addr, room).await;
    let (mut bob, _) = join(addr, room).await;
    send(&mut alice, "all:hello").await;
    assert_eq!(recv_text(&mut alice).await, "hello");
    assert_eq!(recv_text(&mut bob).await, "hello");
    bob.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(recv(&mut bob).await, Message::binary(vec![1, 2, 3]));

    let text = metrics(&server);
    let welcomes = format!("welcome {room} 1").len() + format!("welcome {room} 2").len();
    for (series, expected) in [
        ("jamsocket_rooms", 1),
        ("jamsocket_rooms_created_total", 1),
        ("jamsocket_clients", 2),
        ("jamsocket_connections_total", 2),
        ("jamsocket_messages_received_total{kind=\"text\"}", 1),
        ("jamsocket_messages_received_total{kind=\"binary\"}", 1),
        ("jamsocket_bytes_received_total", "all:hello".len() + 3),
        // Two welcomes, and `hello` to both.
        ("jamsocket_messages_sent_total{kind=\"text\"}", 4),
        ("jamsocket_messages_sent_total{kind=\"binary\"}", 1),
        (
            "jamsocket_bytes_sent_total",
            welcomes + 2 * "hello".len() + 3,
        ),
    ] {
        assert_eq!(
            value(&text, series),
            Some(expected as f64),
            "{series} in\n{text}"
        );
    }

    // Refused before any WebSocket exists, counted by reason and status.
    assert_eq!(handshake_status(addr, "/ws/bad!room").await, 400);
    let refused = open(
        addr,
        "/ws/metrics-room",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(refused.err().map(|(status, _)| status), Some(403));
    let text = metrics(&server);
    for series in [
        "jamsocket_connections_refused_total{reason=\"bad_room_id\",status=\"400\"}",
        "jamsocket_connections_refused_total{reason=\"origin\",status=\"403\"}",
    ] {
        assert_eq!(value(&text, series), Some(1.0), "{series} in\n{text}");
    }

    // Bob closes: the server answers with his code.
    bob.close(None).await.unwrap();
    recv_close(&mut bob).await;
    assert_eq!(recv_text(&mut alice).await, "left 2");
    until(&server, "jamsocket_clients", 1.0).await;
    until(
        &server,
        "jamsocket_close_codes_sent_total{code=\"1000\"}",
        1.0,
    )
    .await;

    // Alice leaves too: the room ends empty.
    alice.close(None).await.unwrap();
    recv_close(&mut alice).await;
    until(
        &server,
        "jamsocket_rooms_closed_total{reason=\"empty\"}",
        1.0,
    )
    .await;
    until(&server, "jamsocket_clients", 0.0).await;
    until(&server, "jamsocket_rooms", 0.0).await;

    // A room closed through the API.
    let (mut carol, _) = join(addr, "closed-room").await;
    assert!(server.close_room("closed-room", 1001, "bye").await);
    assert_eq!(recv_close(&mut carol).await, (1001, "bye".to_string()));
    until(
        &server,
        "jamsocket_rooms_closed_total{reason=\"closed\"}",
        1.0,
    )
    .await;
    until(
        &server,
        "jamsocket_close_codes_sent_total{code=\"1001\"}",
        1.0,
    )
    .await;

    let text = metrics(&server);
    assert_eq!(value(&text, "jamsocket_rooms_created_total"), Some(2.0));
    for reason in ["failed", "shutdown", "evicted", "lease_lost"] {
        let series = format!("jamsocket_rooms_closed_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&text, &series), Some(0.0), "{series} in\n{text}");
    }
    assert!(text.contains("# HELP jamsocket_clients "), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let values = label_values(&text);
    assert!(values.contains(&"bad_room_id"), "{values:?}");
    for id in [room, "closed-room", "bad!room"] {
        assert!(
            !values.contains(&id),
            "a label names room `{id}`: {values:?}"
        );
    }
    // Without a store, no store metrics.
    assert!(!text.contains("jamsocket_snapshot"), "{text}");
}

#[tokio::test]
async fn a_server_without_metrics_has_none() {
    let server = start(Server::new(), crate::factory());
    let (mut ws, _) = join(server.local_addr(), "quiet").await;
    send(&mut ws, "count").await;
    assert_eq!(recv_text(&mut ws).await, "count 1");
    assert_eq!(server.metrics(), None);
}

#[tokio::test]
async fn snapshot_writes_and_their_latency_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("rooms.db").display());
    let store = Snapshots::open(&url, StoreConfig::new()).unwrap();
    let server = start(
        Server::new()
            .with_store(store)
            .with_snapshot_interval(Duration::from_millis(50))
            .with_shutdown_policy(ShutdownPolicy::Immediate)
            .with_metrics(),
        crate::durable_factory(),
    );
    let (mut ws, _) = join(server.local_addr(), "saved").await;
    send(&mut ws, "count").await;
    assert_eq!(recv_text(&mut ws).await, "count 1");
    // Opening the room looked for its snapshot.
    let text = metrics(&server);
    assert_eq!(
        value(&text, "jamsocket_snapshot_load_seconds_count"),
        Some(1.0),
        "{text}"
    );
    // Saved within the snapshot interval (twice if the join was saved before the message).
    until_at_least(&server, "jamsocket_snapshot_writes_total", 1.0).await;
    let text = metrics(&server);
    let batches = value(&text, "jamsocket_snapshot_write_seconds_count").unwrap();
    assert!(batches >= 1.0, "{text}");
    let all = value(
        &text,
        "jamsocket_snapshot_write_seconds_bucket{le=\"+Inf\"}",
    );
    assert_eq!(all, Some(batches), "{text}");
    assert_eq!(
        value(&text, "jamsocket_snapshot_write_failures_total"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "jamsocket_snapshot_fenced_out_total"),
        Some(0.0)
    );
    assert!(value(&text, "jamsocket_snapshot_write_seconds_sum").unwrap() > 0.0);
    assert!(
        text.contains("# UNIT jamsocket_snapshot_write_seconds seconds"),
        "{text}"
    );

    // The last client leaves: the room is saved and leaves memory.
    ws.close(None).await.unwrap();
    recv_close(&mut ws).await;
    until(&server, "jamsocket_rooms_hibernated_total", 1.0).await;
    until(
        &server,
        "jamsocket_rooms_closed_total{reason=\"empty\"}",
        1.0,
    )
    .await;
}
