//! Durable rooms through the real binary: `jamsocket serve --store`, stopped with SIGTERM or
//! `kill -9` and started again on the same store (a SQLite file in a temporary folder, or a
//! `redis-server` this test starts on a free port).

use crate::common::*;
use jamsocket_store::testing::RedisServer;
use std::time::{Duration, Instant};

const INTERVAL_MS: u64 = 200;

fn serve(module: &str, store: &str) -> Running {
    let interval = INTERVAL_MS.to_string();
    Running::start(&[
        "serve",
        module,
        "--port=0",
        "--host=127.0.0.1",
        "--store",
        store,
        "--snapshot-interval-ms",
        &interval,
    ])
}

fn sqlite_store(dir: &TempDir) -> String {
    format!("sqlite:{}", dir.0.join("rooms.db").display())
}

/// The counter's value in a `new value: N` (or the v2 build's `count: N`) message.
fn value(message: &str) -> i64 {
    assert!(!message.starts_with("close"), "closed: {message}");
    message
        .rsplit_once(' ')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("no value in `{message}`"))
}

async fn increment(ws: &mut Ws) -> i64 {
    ws.send("increment").await;
    value(&ws.recv().await)
}

/// The seed's counter, unchanged: count to 5, SIGTERM, start again, and the count goes on.
async fn the_seed_counter_keeps_its_count_across_sigterm(store: &str) {
    let counter = build_example("counter-service");
    let server = serve(&counter, store);
    let mut ws = server.ws("room").await;
    assert_eq!(ws.recv().await, "new value: 0");
    for expected in 1..=5 {
        assert_eq!(increment(&mut ws).await, expected);
    }
    assert!(server.terminate().success());
    assert_eq!(ws.recv().await, "close 1012", "told to reconnect");

    let server = serve(&counter, store);
    let mut ws = server.ws("room").await;
    assert_eq!(ws.recv().await, "new value: 5");
    assert_eq!(increment(&mut ws).await, 6);
}

#[tokio::test]
async fn the_seed_counter_keeps_its_count_across_sigterm_with_sqlite() {
    let dir = TempDir::new("sqlite-counter");
    the_seed_counter_keeps_its_count_across_sigterm(&sqlite_store(&dir)).await;
}

#[tokio::test]
async fn the_seed_counter_keeps_its_count_across_sigterm_with_redis() {
    let redis = RedisServer::start().unwrap();
    the_seed_counter_keeps_its_count_across_sigterm(&redis.url()).await;
}

#[tokio::test]
async fn kill_9_loses_at_most_the_last_snapshot_interval() {
    let counter = build_example("counter-service");
    let dir = TempDir::new("kill9");
    let store = sqlite_store(&dir);
    let mut server = serve(&counter, &store);
    let mut ws = server.ws("room").await;
    ws.recv().await;
    // Acknowledged values with the time their answer arrived.
    let mut acked = Vec::new();
    let started = Instant::now();
    // A steady stream, well under the per-client frame rate limit (1,000/s).
    let mut pace = tokio::time::interval(Duration::from_millis(3));
    while started.elapsed() < Duration::from_millis(6 * INTERVAL_MS) {
        pace.tick().await;
        acked.push((Instant::now(), increment(&mut ws).await));
    }
    // One more increment that may or may not be saved: the last value sent.
    ws.send("increment").await;
    let last_sent = acked.last().unwrap().1 + 1;
    server.child.kill().unwrap();
    let killed = Instant::now();
    server.child.wait().unwrap();

    // A value acknowledged one interval before the kill was saved (allowing 100 ms for the
    // store's own write).
    let margin = Duration::from_millis(INTERVAL_MS + 100);
    let safe = acked
        .iter()
        .filter(|(at, _)| killed.duration_since(*at) > margin)
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    let server = serve(&counter, &store);
    let mut ws = server.ws("room").await;
    let restored = value(&ws.recv().await);
    assert!(
        (safe..=last_sent).contains(&restored),
        "restored {restored}: expected between {safe} (acknowledged before the last interval) \
         and {last_sent} (the last sent)"
    );
}

#[tokio::test]
async fn a_changed_module_without_explicit_snapshots_starts_fresh_and_says_why_once() {
    let dir = TempDir::new("changed-module");
    let store = sqlite_store(&dir);
    let server = serve(&build_example("counter-service"), &store);
    let mut ws = server.ws("room").await;
    ws.recv().await;
    assert_eq!(increment(&mut ws).await, 1);
    assert!(server.terminate().success());

    // Another module (the conformance service) finds the counter's memory image.
    let server = serve(&build_example("conformance-service"), &store);
    let mut ws = server.ws("room").await;
    assert_eq!(
        ws.recv().await,
        "welcome room 2",
        "client ids still continue"
    );
    ws.send("count").await;
    assert_eq!(ws.recv().await, "count 1", "the room started fresh");
    let line = "snapshot cannot be restored";
    let started = Instant::now();
    while !server.stderr().contains(line) && started.elapsed() < TIMEOUT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = server.stderr();
    assert_eq!(log.matches(line).count(), 1, "{log}");
    assert!(log.contains("module changed"), "{log}");
}

#[tokio::test]
async fn explicit_serde_snapshots_survive_a_rebuild_with_changed_code() {
    let dir = TempDir::new("rebuild");
    let store = sqlite_store(&dir);
    let v1 = dir.0.join("v1.wasm");
    std::fs::copy(build_example("durable-counter"), &v1).unwrap();
    let server = serve(v1.to_str().unwrap(), &store);
    let mut ws = server.ws("room").await;
    ws.recv().await;
    for expected in 1..=3 {
        assert_eq!(increment(&mut ws).await, expected);
    }
    assert!(server.terminate().success());

    let v2 = build_v2_durable_counter();
    let server = serve(&v2, &store);
    let mut ws = server.ws("room").await;
    assert_eq!(ws.recv().await, "count: 3", "the v2 code kept the v1 state");
    assert_eq!(increment(&mut ws).await, 4);
}

/// `examples/durable-counter` built with its `v2` feature (other replies, same state).
fn build_v2_durable_counter() -> String {
    let root = workspace_root();
    let target = root.join("target/cli-tests");
    let output = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip1"])
        .args(["-p", "durable-counter", "--features", "v2"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let wasm = target.join("wasm32-wasip1/release/durable_counter.wasm");
    wasm.to_str().unwrap().to_string()
}
