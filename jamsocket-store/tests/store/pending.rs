//! Changes not written yet: visible to loads, coalesced, never overtaken by older ones.

use std::time::Duration;

use crate::common::{open, redis, within};

#[tokio::test]
async fn load_sees_a_save_before_it_is_written() {
    let mut server = redis();
    let store = open(&server.url());
    server.stop();
    store.save("room", b"pending".to_vec());
    assert_eq!(
        within("load", store.load("room")).await.unwrap(),
        Some(b"pending".to_vec())
    );
    store.delete("room");
    assert_eq!(within("load", store.load("room")).await.unwrap(), None);
    assert_eq!(store.stats().pending, 1);
    assert_eq!(store.stats().written, 0);
}

on_both_stores! {
    async fn a_thousand_saves_of_a_room_load_as_the_last(store) {
        for i in 0..1000u32 {
            store.save("busy", i.to_le_bytes().to_vec());
        }
        assert_eq!(
            within("load", store.load("busy")).await.unwrap(),
            Some(999u32.to_le_bytes().to_vec())
        );
        within("flush", store.flush()).await;
        assert_eq!(
            within("load", store.load("busy")).await.unwrap(),
            Some(999u32.to_le_bytes().to_vec())
        );
        let written = store.stats().written;
        assert!((1..1000).contains(&written), "{written} writes for 1000 coalesced saves");
    }

    async fn saves_during_writes_are_not_lost(store) {
        // Saves race the writer (which takes the room while newer saves arrive); the last one
        // of each round must be what the store ends up with.
        for round in 0..20u32 {
            for i in 0..50u32 {
                store.save("racing", (round * 100 + i).to_le_bytes().to_vec());
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            within("flush", store.flush()).await;
            let expected = (round * 100 + 49).to_le_bytes().to_vec();
            assert_eq!(within("load", store.load("racing")).await.unwrap(), Some(expected));
        }
    }

    async fn quarantined_copies_are_queued_and_flushed(store) {
        store.quarantine("q-room", b"undecodable".to_vec());
        within("flush", store.flush()).await;
        assert_eq!(store.stats().pending, 0);
        // The room's own snapshot is untouched.
        assert_eq!(within("load", store.load("q-room")).await.unwrap(), None);
    }
}
