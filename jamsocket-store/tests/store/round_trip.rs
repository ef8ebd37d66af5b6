//! Save, flush, load, overwrite and delete, on both kinds of store.

use crate::common::within;

on_both_stores! {
    async fn saved_snapshots_load_back(store) {
        assert_eq!(within("load", store.load("room-a")).await.unwrap(), None);
        store.save("room-a", b"first".to_vec());
        store.save("room-b", Vec::new());
        within("flush", store.flush()).await;
        assert_eq!(store.stats().pending, 0);
        assert_eq!(within("load", store.load("room-a")).await.unwrap(), Some(b"first".to_vec()));
        assert_eq!(within("load", store.load("room-b")).await.unwrap(), Some(Vec::new()));
        let stats = store.stats();
        assert_eq!(stats.written, 2);
        assert!(stats.bytes_written > 0);
        assert_eq!(stats.failures, 0);
    }

    async fn a_save_overwrites(store) {
        store.save("room", b"v1".to_vec());
        within("flush", store.flush()).await;
        store.save("room", b"v2".to_vec());
        within("flush", store.flush()).await;
        assert_eq!(within("load", store.load("room")).await.unwrap(), Some(b"v2".to_vec()));
    }

    async fn a_delete_removes(store) {
        store.save("room", b"v1".to_vec());
        store.save("other", b"stays".to_vec());
        within("flush", store.flush()).await;
        store.delete("room");
        assert_eq!(within("load", store.load("room")).await.unwrap(), None, "pending delete");
        within("flush", store.flush()).await;
        assert_eq!(within("load", store.load("room")).await.unwrap(), None);
        assert_eq!(within("load", store.load("other")).await.unwrap(), Some(b"stays".to_vec()));
        // Deleting what is not there is fine.
        store.delete("never-saved");
        within("flush", store.flush()).await;
    }

    async fn the_last_of_save_and_delete_wins(store) {
        store.save("a", b"1".to_vec());
        store.delete("a");
        store.delete("b");
        store.save("b", b"2".to_vec());
        within("flush", store.flush()).await;
        assert_eq!(within("load", store.load("a")).await.unwrap(), None);
        assert_eq!(within("load", store.load("b")).await.unwrap(), Some(b"2".to_vec()));
    }

    async fn large_snapshots_round_trip(store) {
        let mut snapshot = vec![0u8; 4 * 1024 * 1024];
        snapshot[..64 * 1024].copy_from_slice(&crate::common::noise(64 * 1024, 7));
        store.save("big", snapshot.clone());
        within("flush", store.flush()).await;
        let stats = store.stats();
        assert!(stats.bytes_written < 100 * 1024, "{} bytes stored", stats.bytes_written);
        assert_eq!(within("load", store.load("big")).await.unwrap(), Some(snapshot));
    }

    async fn flush_with_nothing_queued_returns(store) {
        within("flush", store.flush()).await;
    }
}

#[tokio::test]
async fn sqlite_in_memory_works_for_tests() {
    let store = crate::common::open("sqlite::memory:");
    store.save("r", b"x".to_vec());
    within("flush", store.flush()).await;
    assert_eq!(
        within("load", store.load("r")).await.unwrap(),
        Some(b"x".to_vec())
    );
}
