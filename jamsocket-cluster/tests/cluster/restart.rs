//! Redis restarted without its data while a node is live: the node registers the same id again
//! and re-asserts its rooms.

use std::time::Duration;

use jamsocket_cluster::{Claim, Owner};

use crate::{claim, eventually, get, inspect, join, mine, redis, within};

/// Heartbeats every 2 s; the lease is lost 4 s after the last one: time enough to restart
/// Redis in between, even on a busy machine.
const TTL: Duration = Duration::from_secs(6);

#[tokio::test]
async fn after_redis_restarts_empty_a_live_node_keeps_its_id_and_its_rooms() {
    let mut redis = redis();
    let a = join(&redis, "a", TTL);
    let b = join(&redis, "b", TTL);
    let fence = mine(claim(&a, "lobby").await);
    mine(claim(&a, "den").await);
    // Closed here: not re-asserted.
    a.forget("den");
    let health = a.health();
    let id = a.node_id();

    redis.restart().unwrap();
    let mut directory = inspect(&redis);
    let owner = format!("{id} {fence}");
    eventually("a to re-assert lobby", 2 * TTL, async || {
        (get(&mut directory, "jamsocket:owner:lobby") == Some(owner.clone())).then_some(())
    })
    .await;
    assert_eq!(a.node_id(), id);
    assert!(a.is_live());
    assert!(!health.has_changed().unwrap(), "health changed");
    assert_eq!(get(&mut directory, "jamsocket:owner:den"), None);
    let counter = get(&mut directory, "jamsocket:fence").unwrap();
    assert!(counter.parse::<u64>().unwrap() >= fence, "{counter}");

    // b registers again at its own next heartbeat.
    let b_key = format!("jamsocket:node:{}", b.node_id());
    eventually("b to register again", 2 * TTL, async || {
        get(&mut directory, &b_key)
    })
    .await;
    let expected = Owner {
        node: id,
        advertise: "a.test:9101".into(),
        fence,
    };
    assert_eq!(claim(&b, "lobby").await, Claim::Elsewhere(expected));
    let newer = mine(claim(&b, "fresh").await);
    assert!(newer > fence, "{newer} after {fence}");
    mine(claim(&b, "den").await);
}

#[tokio::test]
async fn rooms_another_node_took_while_redis_had_lost_a_node_are_reported() {
    let redis = redis();
    let a = join(&redis, "a", TTL);
    let b = join(&redis, "b", TTL);
    let fence = mine(claim(&a, "den").await);
    mine(claim(&a, "lobby").await);
    let mut taken = a.taken_rooms().unwrap();
    assert!(a.taken_rooms().is_none());
    let id = a.node_id();

    // Redis loses a's key and b takes lobby meanwhile, in one transaction, so that a's next
    // heartbeat comes after both.
    let lobby = format!("{} 99", b.node_id());
    let () = redis::pipe()
        .atomic()
        .del(format!("jamsocket:node:{id}"))
        .ignore()
        .set("jamsocket:owner:lobby", &lobby)
        .ignore()
        .query(&mut inspect(&redis))
        .unwrap();

    let room = within("a report", 2 * TTL, taken.recv()).await;
    assert_eq!(room.as_deref(), Some("lobby"));
    assert_eq!(a.node_id(), id);
    assert!(a.is_live());
    let owner = Owner {
        node: b.node_id(),
        advertise: "b.test:9101".into(),
        fence: 99,
    };
    assert_eq!(claim(&a, "lobby").await, Claim::Elsewhere(owner));
    assert_eq!(claim(&b, "lobby").await, Claim::Mine { fence: 99 });
    assert_eq!(claim(&a, "den").await, Claim::Mine { fence });
    let counter = get(&mut inspect(&redis), "jamsocket:fence").unwrap();
    assert!(counter.parse::<u64>().unwrap() >= fence, "{counter}");
}
