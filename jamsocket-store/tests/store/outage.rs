//! Redis dies mid-run and comes back on the same port.

use std::time::{Duration, Instant};

use jamsocket_store::StoreError;

use crate::common::{logged, open, redis, until, within};

#[tokio::test]
async fn pending_snapshots_are_written_when_redis_comes_back() {
    let mut server = redis();
    let store = open(&server.url());
    store.save("outage-a", b"before".to_vec());
    within("flush", store.flush()).await;

    server.stop();
    let started = Instant::now();
    for i in 0..100u32 {
        store.save("outage-a", format!("during {i}").into_bytes());
        store.save(&format!("outage-room-{i}"), i.to_le_bytes().to_vec());
    }
    store.delete("outage-b");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(200),
        "201 saves took {elapsed:?}"
    );

    // Pending rooms answer from memory; others fail (they do not hang).
    let loaded = within("load", store.load("outage-a")).await.unwrap();
    assert_eq!(loaded, Some(b"during 99".to_vec()));
    let unknown = within("load of a room Redis would have", store.load("outage-c")).await;
    assert!(
        matches!(unknown, Err(StoreError::Redis { .. })),
        "{unknown:?}"
    );

    // Writes fail and are retried; flush keeps waiting.
    until("a failed write", || store.stats().failures > 0).await;
    let flushed = tokio::time::timeout(Duration::from_millis(300), store.flush()).await;
    assert!(flushed.is_err(), "flush returned while Redis was down");
    assert_eq!(store.stats().pending, 102);
    until("a warning naming the url or a room", || {
        logged("writing snapshots failed")
            .iter()
            .any(|line| line.contains("outage-"))
    })
    .await;

    server.restart().unwrap();
    within("flush after restart", store.flush()).await;
    assert_eq!(store.stats().pending, 0);

    let fresh = open(&server.url());
    assert_eq!(
        within("load", fresh.load("outage-a")).await.unwrap(),
        Some(b"during 99".to_vec())
    );
    for i in [0u32, 57, 99] {
        let room = format!("outage-room-{i}");
        assert_eq!(
            within("load", fresh.load(&room)).await.unwrap(),
            Some(i.to_le_bytes().to_vec())
        );
    }
    assert!(logged("reachable again")
        .iter()
        .any(|line| line.contains(&server.url())));
}

#[tokio::test]
async fn a_dead_redis_logs_a_few_warnings_not_thousands() {
    let mut server = redis();
    let store = open(&server.url());
    server.stop();
    let room = "log-flood-probe";
    for _ in 0..1000 {
        store.save(room, b"x".to_vec());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let warnings = logged(room).len();
    assert!((1..=3).contains(&warnings), "{warnings} warnings in 1.5 s");
    // With a 100 ms first retry delay, doubling: 100 + 200 + 400 + 800 ms.
    let failures = store.stats().failures;
    assert!(
        (2..=8).contains(&failures),
        "{failures} failed attempts in 1.5 s"
    );
}
