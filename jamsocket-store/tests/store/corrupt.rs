//! Stored bytes that are not a snapshot: load fails with `Corrupt` and keeps them aside.

use jamsocket_store::StoreError;

use crate::common::{logged, open, redis, sqlite_url, within};

const GARBAGE: &[u8] = b"\x00\x01 definitely not zstd";

fn assert_corrupt(result: Result<Option<Vec<u8>>, StoreError>, room: &str) {
    match result {
        Err(error @ StoreError::Corrupt { .. }) => {
            let message = error.to_string();
            assert!(message.contains(&format!("room `{room}`")), "{message}");
            assert!(message.contains("not a zstd frame"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        logged(room).iter().any(|line| line.contains("ERROR")),
        "an error naming {room}"
    );
}

#[tokio::test]
async fn sqlite_keeps_corrupt_bytes_in_the_side_table() {
    let (folder, url) = sqlite_url();
    let store = open(&url);
    let db = rusqlite::Connection::open(folder.path().join("rooms.db")).unwrap();
    db.execute(
        "INSERT INTO snapshots (room, saved_at, bytes) VALUES ('broken-sqlite', 0, ?1)",
        [GARBAGE],
    )
    .unwrap();
    assert_corrupt(
        within("load", store.load("broken-sqlite")).await,
        "broken-sqlite",
    );
    // Loading again does not keep a second copy.
    assert_corrupt(
        within("load", store.load("broken-sqlite")).await,
        "broken-sqlite",
    );
    within("flush", store.flush()).await;
    let kept: Vec<(String, Vec<u8>, i64)> = db
        .prepare("SELECT room, bytes, saved_at FROM corrupt_snapshots")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].0.as_str(), kept[0].1.as_slice()),
        ("broken-sqlite", GARBAGE)
    );
    assert!(kept[0].2 > 1_600_000_000_000, "saved_at is unix ms");

    // A new save replaces the corrupt snapshot.
    store.save("broken-sqlite", b"fresh".to_vec());
    within("flush", store.flush()).await;
    assert_eq!(
        within("load", store.load("broken-sqlite")).await.unwrap(),
        Some(b"fresh".to_vec())
    );
}

#[tokio::test]
async fn redis_keeps_corrupt_bytes_under_a_side_key() {
    let server = redis();
    let store = open(&server.url());
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("SET")
        .arg("jamsocket:room:broken-redis")
        .arg(GARBAGE)
        .exec(&mut raw)
        .unwrap();
    assert_corrupt(
        within("load", store.load("broken-redis")).await,
        "broken-redis",
    );
    within("flush", store.flush()).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("jamsocket:corrupt:broken-redis:*")
        .query(&mut raw)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let millis: u64 = keys[0].rsplit(':').next().unwrap().parse().unwrap();
    assert!(millis > 1_600_000_000_000, "{}", keys[0]);
    let kept: Vec<u8> = redis::cmd("GET").arg(&keys[0]).query(&mut raw).unwrap();
    assert_eq!(kept, GARBAGE);
}

#[tokio::test]
async fn quarantine_keeps_what_the_caller_gives() {
    let server = redis();
    let store = open(&server.url());
    store.quarantine("undecodable", b"v0 snapshot".to_vec());
    within("flush", store.flush()).await;
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("jamsocket:corrupt:undecodable:*")
        .query(&mut raw)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");

    let (folder, url) = sqlite_url();
    let store = open(&url);
    store.quarantine("undecodable", b"v0 snapshot".to_vec());
    within("flush", store.flush()).await;
    let db = rusqlite::Connection::open(folder.path().join("rooms.db")).unwrap();
    let bytes: Vec<u8> = db
        .query_row(
            "SELECT bytes FROM corrupt_snapshots WHERE room = 'undecodable'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bytes, b"v0 snapshot");
}
