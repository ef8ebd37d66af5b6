//! A SQLite store outlives its process: a new `Snapshots` on the same file sees earlier writes.

use crate::common::{open, sqlite_url, within, WAIT};

#[tokio::test]
async fn a_reopened_file_has_the_snapshots() {
    let (_folder, url) = sqlite_url();
    let store = open(&url);
    store.save("kept", b"v1".to_vec());
    store.save("deleted", b"gone".to_vec());
    within("flush", store.flush()).await;
    store.delete("deleted");
    within("flush", store.flush()).await;
    drop(store);

    let store = open(&url);
    assert_eq!(
        within("load", store.load("kept")).await.unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(within("load", store.load("deleted")).await.unwrap(), None);
}

#[tokio::test]
async fn the_last_handle_dropped_still_writes_what_is_pending() {
    let (_folder, url) = sqlite_url();
    let store = open(&url);
    let clone = store.clone();
    store.save("late", b"written on close".to_vec());
    drop(store);
    drop(clone);

    let reopened = open(&url);
    let mut found = None;
    let deadline = std::time::Instant::now() + WAIT;
    while found.is_none() && std::time::Instant::now() < deadline {
        found = within("load", reopened.load("late")).await.unwrap();
        if found.is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    assert_eq!(found, Some(b"written on close".to_vec()));
}
