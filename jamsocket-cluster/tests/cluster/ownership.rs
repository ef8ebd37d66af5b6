//! Claims, lookups and leaving.

use std::time::{Duration, Instant};

use jamsocket_cluster::{Claim, Cluster, ClusterConfig, ClusterError, Owner};

use crate::{claim, eventually, get, inspect, join, mine, redis, within, SHORT_TTL};

const TTL: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_room_belongs_to_the_node_that_claimed_it_first() {
    let redis = redis();
    let a = join(&redis, "a", TTL);
    let b = join(&redis, "b", TTL);
    assert_ne!(a.node_id(), b.node_id());
    assert!(a.node_id().starts_with("a-"), "{}", a.node_id());

    let fence = mine(claim(&a, "lobby").await);
    let owner = Owner {
        node: a.node_id(),
        advertise: "a.test:9101".into(),
        fence,
    };
    assert_eq!(claim(&b, "lobby").await, Claim::Elsewhere(owner.clone()));
    assert_eq!(claim(&a, "lobby").await, Claim::Mine { fence });

    let limit = Duration::from_secs(10);
    let found = within("a lookup", limit, b.owner("lobby")).await.unwrap();
    assert_eq!(found, Some(owner));
    let none = within("a lookup", limit, b.owner("nowhere")).await.unwrap();
    assert_eq!(none, None);

    // As documented: `"<node_id> <fence>"`; and every new owner gets a larger fence.
    let mut redis = inspect(&redis);
    let recorded = get(&mut redis, "jamsocket:owner:lobby");
    assert_eq!(recorded, Some(format!("{} {fence}", a.node_id())));
    let other = mine(claim(&b, "den").await);
    assert!(other > fence, "{other} after {fence}");
    assert_eq!(get(&mut redis, "jamsocket:fence"), Some(other.to_string()));
}

#[tokio::test]
async fn a_forgotten_room_is_still_the_nodes_until_another_takes_it() {
    let redis = redis();
    let a = join(&redis, "a", TTL);
    let fence = mine(claim(&a, "lobby").await);
    a.forget("lobby");
    assert_eq!(claim(&a, "lobby").await, Claim::Mine { fence });
}

#[tokio::test]
async fn a_node_that_leaves_frees_its_rooms_at_once() {
    let redis = redis();
    let a = join(&redis, "a", TTL);
    let b = join(&redis, "b", TTL);
    let fence = mine(claim(&a, "lobby").await);
    let mut health = a.health();
    let id = a.node_id();

    within("leaving", Duration::from_secs(10), a.leave())
        .await
        .unwrap();
    let newer = mine(claim(&b, "lobby").await);
    assert!(newer > fence, "{newer} after {fence}");

    assert!(!a.is_live());
    let refused = within("a claim", Duration::from_secs(10), a.claim("den")).await;
    assert!(
        matches!(refused, Err(ClusterError::Left { .. })),
        "{refused:?}"
    );
    // The cluster thread has stopped.
    let changed = within(
        "the thread to stop",
        Duration::from_secs(5),
        health.changed(),
    )
    .await;
    assert!(changed.is_err());
    within("leaving again", Duration::from_secs(5), a.leave())
        .await
        .unwrap();

    let mut redis = inspect(&redis);
    assert_eq!(get(&mut redis, &format!("jamsocket:node:{id}")), None);
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg("jamsocket:nodes")
        .query(&mut redis)
        .unwrap();
    assert_eq!(nodes, vec![b.node_id()]);
}

#[tokio::test]
async fn a_silent_node_loses_its_rooms_once_its_lease_expires() {
    let redis = redis();
    let a = join(&redis, "a", SHORT_TTL);
    // A long lease for b, which must stay live through a busy machine's hiccups.
    let b = join(&redis, "b", TTL);
    let fence = mine(claim(&a, "lobby").await);

    // Dropping every handle without leaving stops the heartbeats, as a crash would.
    let silent = Instant::now();
    drop(a);
    assert!(matches!(claim(&b, "lobby").await, Claim::Elsewhere(_)));
    let newer = eventually("b takes the room", 4 * SHORT_TTL, async || {
        match claim(&b, "lobby").await {
            Claim::Mine { fence } => Some(fence),
            Claim::Elsewhere(_) => None,
        }
    })
    .await;
    assert!(newer > fence, "{newer} after {fence}");
    // The last heartbeat went out at most a third of the ttl before: the lease outlived the
    // node by at least two thirds of it.
    let after = silent.elapsed();
    assert!(
        after >= SHORT_TTL / 2,
        "the room moved {after:?} after the node fell silent"
    );
}

#[tokio::test]
async fn claims_are_refused_while_the_node_key_is_missing() {
    let redis = redis();
    // Heartbeats every 2 s: the key is deleted and the claim made long before the first.
    let ttl = Duration::from_secs(6);
    let a = join(&redis, "a", ttl);
    let id = a.node_id();
    let mut directory = inspect(&redis);
    let key = format!("jamsocket:node:{id}");
    let () = redis::cmd("DEL").arg(&key).query(&mut directory).unwrap();

    let refused = within("a claim", Duration::from_secs(10), a.claim("lobby")).await;
    let Err(error @ ClusterError::NotLive { .. }) = refused else {
        panic!("expected NotLive, got {refused:?}");
    };
    let text = error.to_string();
    assert!(text.contains(&id) && text.contains("`lobby`"), "{text}");

    // The next heartbeat finds the key gone while the lease holds: the same node registers
    // again.
    eventually("the node key again", ttl, async || {
        get(&mut directory, &key)
    })
    .await;
    assert_eq!(a.node_id(), id);
    assert!(a.is_live());
    mine(claim(&a, "lobby").await);
}

#[test]
fn joining_fails_fast_when_redis_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:secret@127.0.0.1:{port}/0");
    let started = Instant::now();
    let error = Cluster::join(ClusterConfig::new(url, "a.test:9101")).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{text}"
    );
    assert!(!format!("{error:?}").contains("secret"), "{error:?}");
}

#[test]
fn bad_settings_are_refused_before_connecting() {
    let join = |config: ClusterConfig| Cluster::join(config).unwrap_err().to_string();
    let config = || ClusterConfig::new("redis://127.0.0.1:1/0", "a.test:9101");
    let short = join(config().with_node_ttl(Duration::from_millis(500)));
    assert!(
        short.contains("500ms") && short.contains("minimum of 1s"),
        "{short}"
    );
    let spaced = join(config().with_node_name("my node"));
    assert!(spaced.contains("`my node`"), "{spaced}");
    let other = join(ClusterConfig::new("sqlite:rooms.db", "a.test:9101"));
    assert!(other.contains("`sqlite:rooms.db`"), "{other}");
}

/// Redis lost the fence counter (restarted empty) but the store had recorded the fence of the
/// room's last snapshot: the next claim's fence is above it, or every save of the new owner
/// would be refused.
#[tokio::test]
async fn fences_never_go_backwards_past_a_written_snapshot() {
    let redis = redis();
    let a = join(&redis, "a", TTL);
    let mut connection = inspect(&redis);
    redis::cmd("SET")
        .arg("jamsocket:fence:lobby")
        .arg("57")
        .query::<()>(&mut connection)
        .unwrap();
    assert_eq!(mine(claim(&a, "lobby").await), 58);
    // The counter moved on from there for every room.
    assert_eq!(mine(claim(&a, "den").await), 59);
}
