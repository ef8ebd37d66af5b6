//! Snapshots over the size limit are refused and the previous one stays.

use jamsocket_store::StoreConfig;

use crate::common::{logged, noise, open_with, redis, sqlite_url, within};

async fn oversized_is_refused(url: &str, room: &str) {
    let store = open_with(url, StoreConfig::new().with_max_snapshot_bytes(4096));
    assert_eq!(store.stats().failures, 0);
    store.save(room, b"small and fine".to_vec());
    within("flush", store.flush()).await;

    // Compressible: 1 MiB raw, far below the limit once compressed.
    store.save("zeros", vec![0; 1024 * 1024]);
    // Incompressible: 64 KiB stays 64 KiB.
    store.save(room, noise(64 * 1024, 42));
    within("flush (a refused snapshot completes it)", store.flush()).await;

    let stats = store.stats();
    assert_eq!(stats.failures, 1);
    assert_eq!(stats.pending, 0);
    assert_eq!(
        within("load", store.load(room)).await.unwrap(),
        Some(b"small and fine".to_vec()),
        "the previous snapshot stays"
    );
    assert_eq!(
        within("load", store.load("zeros"))
            .await
            .unwrap()
            .map(|s| s.len()),
        Some(1024 * 1024)
    );
    let lines = logged(room);
    let line = lines
        .iter()
        .find(|l| l.contains("ERROR"))
        .expect("an error naming the room");
    assert!(line.contains("65536 bytes raw"), "{line}");
    assert!(line.contains("limit of 4096 bytes"), "{line}");
}

#[tokio::test]
async fn sqlite_refuses_oversized_snapshots() {
    let (_folder, url) = sqlite_url();
    oversized_is_refused(&url, "oversized-sqlite").await;
}

#[tokio::test]
async fn redis_refuses_oversized_snapshots() {
    let server = redis();
    oversized_is_refused(&server.url(), "oversized-redis").await;
}

#[test]
fn the_default_limit_is_16_mib() {
    assert_eq!(StoreConfig::new().max_snapshot_bytes(), 16 * 1024 * 1024);
    assert_eq!(
        StoreConfig::default().max_snapshot_bytes(),
        16 * 1024 * 1024
    );
    assert_eq!(
        StoreConfig::new()
            .with_max_snapshot_bytes(10)
            .max_snapshot_bytes(),
        10
    );
}
