//! A node that loses Redis loses its lease in time, and comes back as a new node.

use std::time::{Duration, Instant};

use jamsocket_cluster::{ClusterError, Health};

use crate::{claim, inspect, join, mine, redis, within};

/// Lost comes 2/3 of it after the last heartbeat: a third of it (667 ms) before the lease can
/// expire, a margin that survives a test thread descheduled for a while on a busy machine.
const TTL: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_node_cut_off_from_redis_turns_lost_before_its_lease_can_expire() {
    let mut redis = redis();
    let a = join(&redis, "a", TTL);
    mine(claim(&a, "lobby").await);
    let mut health = a.health();
    let first = a.node_id();

    // The key cannot expire before `expires` (PTTL is read after `before`).
    let before = Instant::now();
    let pttl: u64 = redis::cmd("PTTL")
        .arg(format!("jamsocket:node:{first}"))
        .query(&mut inspect(&redis))
        .unwrap();
    let expires = before + Duration::from_millis(pttl);
    redis.stop();

    let changed = within("health to change", 3 * TTL, health.changed()).await;
    let lost_at = Instant::now();
    changed.unwrap();
    assert_eq!(*health.borrow_and_update(), Health::Lost);
    assert!(
        lost_at < expires,
        "Lost observed {:?} after the lease could expire",
        lost_at - expires
    );
    assert!(!a.is_live());
    let refused = within("a claim", Duration::from_secs(10), a.claim("den")).await;
    assert!(
        matches!(refused, Err(ClusterError::NotLive { .. })),
        "{refused:?}"
    );

    // Redis is back (empty): the node registers a new incarnation.
    redis.restart().unwrap();
    let changed = within("health to change", 5 * TTL, health.changed()).await;
    changed.unwrap();
    assert_eq!(*health.borrow_and_update(), Health::Live);
    assert!(a.is_live());
    let second = a.node_id();
    assert_ne!(second, first);
    assert!(second.starts_with("a-"), "{second}");
    mine(claim(&a, "lobby").await);
}
