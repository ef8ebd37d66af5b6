//! Fenced saves: a node that lost its room (its fence is older) never overwrites the new owner.

use crate::common::{logged, open, redis, sqlite_url, within};

on_both_stores! {
    async fn an_older_fence_is_refused_and_a_newer_one_passes(store) {
        let room = if store.url().starts_with("redis") { "fenced-redis" } else { "fenced-sqlite" };
        store.save_fenced(room, b"owner 3".to_vec(), 3);
        within("flush", store.flush()).await;
        store.save_fenced(room, b"owner 5".to_vec(), 5);
        within("flush", store.flush()).await;
        // The same owner saves again.
        store.save_fenced(room, b"owner 5 again".to_vec(), 5);
        within("flush", store.flush()).await;
        assert_eq!(store.stats().fenced_out, 0);
        assert_eq!(store.stats().written, 3);

        // The owner of fence 4 lost the room, and does not know it yet.
        store.save_fenced(room, b"stale owner 4".to_vec(), 4);
        within("flush (a fenced-out save completes it)", store.flush()).await;
        let stats = store.stats();
        assert_eq!((stats.fenced_out, stats.written, stats.failures, stats.pending), (1, 3, 0, 0));
        assert_eq!(within("load", store.load(room)).await.unwrap(), Some(b"owner 5 again".to_vec()));
        let lines = logged(&format!("room `{room}` fenced out"));
        let line = lines.iter().find(|l| l.contains("WARN")).expect("a warning naming the room");
        assert!(line.contains("its fence is 4"), "{line}");
        assert!(line.contains("current fence is 5"), "{line}");

        // Unfenced saves always pass, and keep the recorded fence.
        store.save(room, b"unfenced".to_vec());
        within("flush", store.flush()).await;
        assert_eq!(within("load", store.load(room)).await.unwrap(), Some(b"unfenced".to_vec()));
        store.save_fenced(room, b"stale owner 4 again".to_vec(), 4);
        within("flush", store.flush()).await;
        assert_eq!(store.stats().fenced_out, 2);
        assert_eq!(within("load", store.load(room)).await.unwrap(), Some(b"unfenced".to_vec()));

        // A good fence still works after a refusal; other rooms have fences of their own.
        store.save_fenced(room, b"owner 6".to_vec(), 6);
        store.save_fenced("another-room", b"owner 1".to_vec(), 1);
        within("flush", store.flush()).await;
        assert_eq!(within("load", store.load(room)).await.unwrap(), Some(b"owner 6".to_vec()));
        assert_eq!(
            within("load", store.load("another-room")).await.unwrap(),
            Some(b"owner 1".to_vec())
        );
        assert_eq!(store.stats().fenced_out, 2);
    }

    async fn the_recorded_fence_is_in_the_store_not_the_handle(store) {
        // A second handle (another node, or this one restarted) sees it.
        store.save_fenced("room", b"owner 9".to_vec(), 9);
        within("flush", store.flush()).await;
        let other = open(store.url());
        other.save_fenced("room", b"owner 8".to_vec(), 8);
        within("flush", other.flush()).await;
        assert_eq!(other.stats().fenced_out, 1);
        assert_eq!(within("load", store.load("room")).await.unwrap(), Some(b"owner 9".to_vec()));
    }
}

fn raw_redis(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

#[tokio::test]
async fn redis_writes_only_for_the_fence_the_owner_key_names() {
    let server = redis();
    let store = open(&server.url());
    let mut raw = raw_redis(&server.url());
    let set_owner = |raw: &mut redis::Connection, owner: &str| {
        redis::cmd("SET")
            .arg("jamsocket:owner:owned")
            .arg(owner)
            .exec(raw)
            .unwrap();
    };
    set_owner(&mut raw, "node-b 7");

    store.save_fenced("owned", b"node-a, fence 6".to_vec(), 6);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 1);
    assert_eq!(within("load", store.load("owned")).await.unwrap(), None);
    let lines = logged("room `owned` fenced out");
    assert!(
        lines.iter().any(|l| l.contains("current fence is 7")),
        "{lines:?}"
    );

    store.save_fenced("owned", b"node-b, fence 7".to_vec(), 7);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 1);
    assert_eq!(
        within("load", store.load("owned")).await.unwrap(),
        Some(b"node-b, fence 7".to_vec())
    );
    let recorded: String = redis::cmd("GET")
        .arg("jamsocket:fence:owned")
        .query(&mut raw)
        .unwrap();
    assert_eq!(recorded, "7");

    // A higher fence than the owner's is refused too: the owner key names exactly one.
    store.save_fenced("owned", b"fence 8".to_vec(), 8);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 2);

    // An owner value without a fence names none.
    set_owner(&mut raw, "node-x");
    store.save_fenced("owned", b"fence 7 again".to_vec(), 7);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 3);
    let lines = logged("room `owned` fenced out");
    assert!(lines.iter().any(|l| l.contains("unknown")), "{lines:?}");

    // Unfenced saves do not look at the owner.
    store.save("owned", b"unfenced".to_vec());
    within("flush", store.flush()).await;
    assert_eq!(
        within("load", store.load("owned")).await.unwrap(),
        Some(b"unfenced".to_vec())
    );

    // Without an owner key, the recorded fence (7) alone decides.
    redis::cmd("DEL")
        .arg("jamsocket:owner:owned")
        .exec(&mut raw)
        .unwrap();
    store.save_fenced("owned", b"fence 6".to_vec(), 6);
    store.save_fenced("unowned", b"fence 1".to_vec(), 1);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 4);
    store.save_fenced("owned", b"fence 8".to_vec(), 8);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 4);
    assert_eq!(
        within("load", store.load("owned")).await.unwrap(),
        Some(b"fence 8".to_vec())
    );
    assert_eq!(
        within("load", store.load("unowned")).await.unwrap(),
        Some(b"fence 1".to_vec())
    );
}

#[tokio::test]
async fn redis_compares_fences_exactly_past_2_pow_53() {
    // Lua numbers are doubles: 2^53 and 2^53 + 1 would compare equal.
    let server = redis();
    let store = open(&server.url());
    let mut raw = raw_redis(&server.url());
    let big = 1u64 << 53;
    redis::cmd("SET")
        .arg("jamsocket:owner:big")
        .arg(format!("node-b 00{}", big + 1))
        .exec(&mut raw)
        .unwrap();
    store.save_fenced("big", b"2^53".to_vec(), big);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 1);
    store.save_fenced("big", b"2^53 + 1".to_vec(), big + 1);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 1, "leading zeros are allowed");

    redis::cmd("DEL")
        .arg("jamsocket:owner:big")
        .exec(&mut raw)
        .unwrap();
    store.save_fenced("big", b"2^53 again".to_vec(), big);
    store.save_fenced("huge", b"u64::MAX".to_vec(), u64::MAX);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 2);
    assert_eq!(
        within("load", store.load("big")).await.unwrap(),
        Some(b"2^53 + 1".to_vec())
    );
    assert_eq!(
        within("load", store.load("huge")).await.unwrap(),
        Some(b"u64::MAX".to_vec())
    );
}

#[tokio::test]
async fn a_sqlite_file_from_before_fencing_opens_and_works() {
    let (folder, url) = sqlite_url();
    let path = folder.path().join("rooms.db");
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE snapshots (
                 room TEXT PRIMARY KEY NOT NULL,
                 saved_at INTEGER NOT NULL,
                 bytes BLOB NOT NULL
             );
             CREATE TABLE corrupt_snapshots (
                 room TEXT NOT NULL,
                 saved_at INTEGER NOT NULL,
                 bytes BLOB NOT NULL
             );",
        )
        .unwrap();
        let old = zstd::encode_all(&b"old snapshot"[..], 1).unwrap();
        db.execute(
            "INSERT INTO snapshots (room, saved_at, bytes) VALUES ('old', 0, ?1)",
            [old],
        )
        .unwrap();
    }

    let store = open(&url);
    assert_eq!(
        within("load", store.load("old")).await.unwrap(),
        Some(b"old snapshot".to_vec())
    );
    store.save_fenced("old", b"fence 2".to_vec(), 2);
    within("flush", store.flush()).await;
    store.save_fenced("old", b"fence 1".to_vec(), 1);
    within("flush", store.flush()).await;
    assert_eq!(store.stats().fenced_out, 1);
    drop(store);

    // Opening it again does not add the column twice.
    let store = open(&url);
    assert_eq!(
        within("load", store.load("old")).await.unwrap(),
        Some(b"fence 2".to_vec())
    );
    let db = rusqlite::Connection::open(&path).unwrap();
    let fence: Option<i64> = db
        .query_row("SELECT fence FROM snapshots WHERE room = 'old'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fence, Some(2));
}
