//! Durable rooms: a store keeps rooms across restarts and while they hibernate. Each test runs
//! with a real store: a SQLite file in a temporary folder, or a `redis-server` started on a free
//! loopback port. Servers stop the way SIGTERM stops them (`RunningServer::stop`).

use crate::common::*;
use jamsocket_server::{RunningServer, Server, ShutdownPolicy, Snapshots, StoreConfig};
use jamsocket_store::testing::RedisServer;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A SQLite store in a temporary folder, kept as long as the folder.
pub(crate) struct SqliteFile {
    _dir: tempfile::TempDir,
    pub url: String,
}

impl SqliteFile {
    pub(crate) fn new() -> SqliteFile {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("rooms.db").display());
        SqliteFile { _dir: dir, url }
    }

    fn path(&self) -> &str {
        self.url.strip_prefix("sqlite:").unwrap()
    }
}

fn store(url: &str) -> Snapshots {
    Snapshots::open(url, StoreConfig::new()).unwrap()
}

pub(crate) fn durable_server(url: &str) -> Server {
    Server::new()
        .with_store(store(url))
        .with_snapshot_interval(Duration::from_millis(100))
}

/// Sends `count` and returns the count the room answers.
async fn count(ws: &mut Ws) -> u64 {
    send(ws, "count").await;
    let reply = recv_text(ws).await;
    reply
        .strip_prefix("count ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected `count N`, got `{reply}`"))
}

/// Stops `server` as SIGTERM does, checking that `clients` are told to reconnect (1012).
pub(crate) async fn stop(server: RunningServer, clients: Vec<Ws>) {
    let stopped = tokio::task::spawn_blocking(move || server.stop());
    for mut ws in clients {
        assert_eq!(recv_close(&mut ws).await, (1012, "service restart".into()));
    }
    tokio::time::timeout(TIMEOUT, stopped)
        .await
        .expect("shutdown timed out")
        .unwrap()
        .unwrap();
}

async fn restart_keeps_count_and_client_ids(url: &str, factory: impl ConformanceFactory) {
    let server = start(durable_server(url), factory.clone());
    let (mut ws, id) = join(server.local_addr(), "counter").await;
    assert_eq!(id, 1);
    for expected in 1..=5 {
        assert_eq!(count(&mut ws).await, expected);
    }
    stop(server, vec![ws]).await;

    let server = start(durable_server(url), factory);
    let (mut ws, id) = join(server.local_addr(), "counter").await;
    assert_eq!(id, 2, "client ids continue after a restore");
    assert_eq!(count(&mut ws).await, 6);
}

pub async fn a_room_survives_a_restart_with_sqlite(factory: impl ConformanceFactory) {
    let file = SqliteFile::new();
    restart_keeps_count_and_client_ids(&file.url, factory).await;
}

pub async fn a_room_survives_a_restart_with_redis(factory: impl ConformanceFactory) {
    let redis = RedisServer::start().unwrap();
    restart_keeps_count_and_client_ids(&redis.url(), factory).await;
}

pub async fn a_pending_timer_fires_after_a_restore(factory: impl ConformanceFactory) {
    let file = SqliteFile::new();
    let server = start(durable_server(&file.url), factory.clone());
    let (mut ws, _) = join(server.local_addr(), "timer").await;
    send(&mut ws, "timer:1500").await;
    // `count` answers after the timer was set: the room has handled both.
    count(&mut ws).await;
    stop(server, vec![ws]).await;

    let server = start(durable_server(&file.url), factory);
    let (mut ws, _) = join(server.local_addr(), "timer").await;
    // The saved client's `left` went to nobody; the timer set before the restart fires.
    assert_eq!(recv_text(&mut ws).await, "timer fired");
}

/// Joins `room`, counts once and leaves; returns the count.
async fn visit(addr: SocketAddr, room: &str) -> u64 {
    let (mut ws, _) = join(addr, room).await;
    let n = count(&mut ws).await;
    ws.close(None).await.unwrap();
    recv_close(&mut ws).await;
    n
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < TIMEOUT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn idle_rooms_hibernate_and_come_back_on_connect(factory: impl ConformanceFactory) {
    const ROOMS: usize = 1000;
    let file = SqliteFile::new();
    let server = start(
        durable_server(&file.url).with_shutdown_policy(ShutdownPolicy::Immediate),
        factory,
    );
    let addr = server.local_addr();
    for room in 0..ROOMS {
        assert_eq!(visit(addr, &format!("h{room}")).await, 1);
    }
    until("every room to hibernate", || server.room_count() == 0).await;
    for room in 0..ROOMS {
        assert_eq!(visit(addr, &format!("h{room}")).await, 2, "room h{room}");
    }
}

pub async fn a_corrupt_snapshot_is_kept_aside_and_the_room_starts_fresh(
    factory: impl ConformanceFactory,
) {
    let file = SqliteFile::new();
    let writer = store(&file.url);
    writer.save("broken", b"not a snapshot".to_vec());
    writer.flush().await;
    drop(writer);

    let server = start(durable_server(&file.url), factory);
    let addr = server.local_addr();
    assert_eq!(visit(addr, "broken").await, 1);
    assert_eq!(visit(addr, "other").await, 1);
    let kept: Vec<Vec<u8>> = rusqlite::Connection::open(file.path())
        .unwrap()
        .prepare("SELECT bytes FROM corrupt_snapshots WHERE room = 'broken'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kept.len(), 1, "the bad bytes are kept for inspection");
}

pub async fn an_oversized_snapshot_is_refused_and_the_room_keeps_serving(
    factory: impl ConformanceFactory,
) {
    let file = SqliteFile::new();
    let tiny = Snapshots::open(&file.url, StoreConfig::new().with_max_snapshot_bytes(8)).unwrap();
    let server = start(
        Server::new()
            .with_store(tiny.clone())
            .with_snapshot_interval(Duration::from_millis(50)),
        factory.clone(),
    );
    let (mut ws, _) = join(server.local_addr(), "big").await;
    assert_eq!(count(&mut ws).await, 1);
    until("the refused write", || tiny.stats().failures > 0).await;
    assert_eq!(count(&mut ws).await, 2, "the room keeps serving");
    stop(server, vec![ws]).await;

    // Nothing was written: the room starts fresh.
    let server = start(durable_server(&file.url), factory);
    let (mut ws, _) = join(server.local_addr(), "big").await;
    assert_eq!(count(&mut ws).await, 1);
}

pub async fn redis_going_away_stops_nothing_and_pending_snapshots_are_written_when_it_returns(
    factory: impl ConformanceFactory,
) {
    let mut redis = RedisServer::start().unwrap();
    let url = redis.url();
    let server = start(durable_server(&url), factory.clone());
    let addr = server.local_addr();
    let (mut ws, _) = join(addr, "kept").await;
    assert_eq!(count(&mut ws).await, 1);

    redis.stop();
    for expected in 2..=5 {
        assert_eq!(count(&mut ws).await, expected);
    }
    // Open rooms keep serving; a room whose saved state cannot be read is refused, not started
    // empty (which would overwrite that state).
    assert_eq!(handshake_status(addr, "/ws/unreadable").await, 503);
    assert_eq!(count(&mut ws).await, 6);
    redis.restart().unwrap();
    stop(server, vec![ws]).await;

    let server = start(durable_server(&url), factory);
    let (mut ws, _) = join(server.local_addr(), "kept").await;
    assert_eq!(count(&mut ws).await, 7);
}

pub async fn a_session_resumes_across_a_restart(factory: impl ConformanceFactory) {
    let file = SqliteFile::new();
    let server = start(durable_server(&file.url), factory.clone());
    let path = format!("/ws/notes?resume={}", crate::identity::KEY);
    let (mut ws, _) = open(server.local_addr(), &path, &[]).await.unwrap();
    let id = welcome(&mut ws, "notes").await;
    send(&mut ws, "count").await;
    assert_eq!(recv_text(&mut ws).await, "count 1");
    stop(server, vec![ws]).await;

    let server = start(durable_server(&file.url), factory);
    let (mut ws, _) = open(server.local_addr(), &path, &[]).await.unwrap();
    send(&mut ws, "count").await;
    assert_eq!(
        recv_text(&mut ws).await,
        "count 2",
        "no welcome: the same client, resumed"
    );
    send(&mut ws, &format!("to:{id}:still {id}")).await;
    assert_eq!(recv_text(&mut ws).await, format!("still {id}"));
}

/// A `jamsocket.v1` client that is away when the server stops gets, once it resumes on the
/// restarted server, what it had not seen: the messages written to its lost connection and
/// those queued while it was away, in order, none repeated.
pub async fn messages_on_their_way_to_an_away_client_survive_a_restart(
    factory: impl ConformanceFactory,
) {
    use crate::identity::{open_sequenced, KEY};
    let file = SqliteFile::new();
    let server = start(durable_server(&file.url), factory.clone());
    let addr = server.local_addr();
    let (mut alice, hello) = open_sequenced(addr, "feed", KEY, 0).await;
    let id = hello["client"].as_u64().unwrap();
    assert_eq!(recv_text(&mut alice).await, format!("mwelcome feed {id}"));
    let (mut bob, bob_id) = join(addr, "feed").await;
    for i in 0..10 {
        send(&mut bob, &format!("all:{i}")).await;
    }
    // Alice sees 5 of them (6 messages with the service's welcome), then loses her connection.
    for i in 0..5 {
        assert_eq!(recv_text(&mut alice).await, format!("m{i}"));
    }
    drop(alice);
    for i in 10..20 {
        send(&mut bob, &format!("all:{i}")).await;
    }
    // Bob's echo of the last one says the room has queued it for Alice too.
    for i in 0..20 {
        assert_eq!(recv_text(&mut bob).await, i.to_string());
    }
    stop(server, vec![bob]).await;

    let server = start(durable_server(&file.url), factory);
    let (mut alice, hello) = open_sequenced(server.local_addr(), "feed", KEY, 6).await;
    assert_eq!(hello["resumed"], true);
    assert_eq!(hello["client"].as_u64(), Some(id));
    for i in 5..20 {
        assert_eq!(
            recv_text(&mut alice).await,
            format!("m{i}"),
            "in order, none lost"
        );
    }
    // Bob had no session: the restored room tells Alice he left.
    assert_eq!(recv_text(&mut alice).await, format!("mleft {bob_id}"));
    let (mut carol, _) = join(server.local_addr(), "feed").await;
    send(&mut carol, "all:end").await;
    assert_eq!(recv_text(&mut alice).await, "mend", "none repeated");
}

pub async fn the_room_api_reports_hibernated_rooms_and_forgets_them_on_delete(
    factory: impl ConformanceFactory,
) {
    use crate::admin::api;
    const TOKEN: &str = "token";
    let file = SqliteFile::new();
    let server = start(
        durable_server(&file.url)
            .with_shutdown_policy(ShutdownPolicy::Immediate)
            .with_admin("127.0.0.1:0".parse().unwrap(), Some(TOKEN)),
        factory,
    );
    let (addr, admin) = (server.local_addr(), server.admin_addr().unwrap());
    assert_eq!(visit(addr, "sleeper").await, 1);
    until("the room to hibernate", || server.room_count() == 0).await;
    let (status, _, body) = api(admin, "GET", "/rooms/sleeper", Some(TOKEN), b"");
    assert_eq!(status, 200, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["state"], "hibernated");
    assert!(info["snapshot_bytes"].as_u64().unwrap() > 0, "{body}");
    // Listing shows live rooms only.
    let (_, _, body) = api(admin, "GET", "/rooms", Some(TOKEN), b"");
    assert!(!body.contains("sleeper"), "{body}");
    // A backend's request opens it from its snapshot.
    let (status, _, body) = api(
        admin,
        "POST",
        "/rooms/sleeper/messages",
        Some(TOKEN),
        b"count",
    );
    assert_eq!((status, body.as_str()), (200, "count 2"));
    let (status, _, body) = api(
        admin,
        "POST",
        "/rooms/nowhere/messages",
        Some(TOKEN),
        b"count",
    );
    assert_eq!(status, 404, "{body}");

    // Delete a live room and forget it: it comes back fresh.
    let (mut ws, _) = join(addr, "sleeper").await;
    assert_eq!(count(&mut ws).await, 3);
    let (status, _, body) = api(
        admin,
        "DELETE",
        "/rooms/sleeper?forget=true",
        Some(TOKEN),
        b"",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""forgot":true"#), "{body}");
    assert_eq!(recv_close(&mut ws).await.0, 1000);
    let (status, _, body) = api(admin, "GET", "/rooms/sleeper", Some(TOKEN), b"");
    assert_eq!(status, 404, "{body}");
    assert_eq!(visit(addr, "sleeper").await, 1);
}

pub async fn the_room_api_lists_hibernated_rooms_apart_from_live_ones(
    factory: impl ConformanceFactory,
) {
    use crate::admin::api;
    const TOKEN: &str = "token";
    let file = SqliteFile::new();
    let server = start(
        durable_server(&file.url)
            .with_shutdown_policy(ShutdownPolicy::Immediate)
            .with_admin("127.0.0.1:0".parse().unwrap(), Some(TOKEN)),
        factory,
    );
    let (addr, admin) = (server.local_addr(), server.admin_addr().unwrap());
    assert_eq!(visit(addr, "h-a").await, 1);
    assert_eq!(visit(addr, "h-c").await, 1);
    // `h-b` stays live, and saved: the listing must leave it out, not just miss it.
    let (mut live, _) = join(addr, "h-b").await;
    assert_eq!(count(&mut live).await, 1);
    until("two rooms to hibernate", || server.room_count() == 1).await;
    let reader = store(&file.url);
    let mut saved = Vec::new();
    let started = Instant::now();
    while saved.len() < 3 {
        assert!(started.elapsed() < TIMEOUT, "only {saved:?} saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
        saved = reader.rooms("h-", None, 10).await.unwrap();
    }
    let list = |query: &str| {
        let (status, _, body) = api(admin, "GET", &format!("/rooms?{query}"), Some(TOKEN), b"");
        assert_eq!(status, 200, "{query}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let page = list("state=hibernated&prefix=h-");
    assert_eq!(
        page,
        serde_json::json!({
            "rooms": [{"id": "h-a", "state": "hibernated"}, {"id": "h-c", "state": "hibernated"}],
            "next": null,
        })
    );
    // Pages of one: the live room between them is skipped, not returned as an empty page.
    let page = list("state=hibernated&prefix=h-&limit=1");
    assert_eq!(
        page["rooms"],
        serde_json::json!([{"id": "h-a", "state": "hibernated"}])
    );
    assert_eq!(page["next"], "h-a");
    let page = list("state=hibernated&prefix=h-&limit=1&after=h-a");
    assert_eq!(
        page["rooms"],
        serde_json::json!([{"id": "h-c", "state": "hibernated"}])
    );
    assert_eq!(page["next"], serde_json::Value::Null);
    // The live listing is unchanged, with or without `state=live`.
    for query in ["prefix=h-", "state=live&prefix=h-"] {
        let rooms = list(query)["rooms"].clone();
        let ids: Vec<_> = rooms
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].clone())
            .collect();
        assert_eq!(ids, ["h-b"], "{query}");
    }
    let (status, _, body) = api(admin, "GET", "/rooms?state=bogus", Some(TOKEN), b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("state=bogus"), "{body}");
    drop(live);
}
