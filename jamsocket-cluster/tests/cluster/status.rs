//! `Cluster::status`, for `jamsocket cluster-status`.

use std::time::Duration;

use jamsocket_cluster::{Cluster, NodeStatus};

use crate::{eventually, inspect, join, redis, SHORT_TTL};

#[tokio::test]
async fn status_lists_the_nodes_with_their_rooms_and_leases() {
    let redis = redis();
    // b's lease is short, to see it expire; a's is long, to stay live on a busy machine.
    let a = join(&redis, "a", Duration::from_secs(3));
    let b = join(&redis, "b", SHORT_TTL);
    a.set_room_count(3);
    b.set_room_count(1);

    // Room counts arrive with the next heartbeats.
    let url = redis.url();
    let nodes = eventually("both counts", 4 * SHORT_TTL, async || {
        let nodes = Cluster::status(&url).unwrap();
        let rooms: Vec<u64> = nodes.iter().map(|n| n.rooms).collect();
        (rooms == [3, 1]).then_some(nodes)
    })
    .await;
    let ids: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(ids, [a.node_id(), b.node_id()]);
    let advertised: Vec<&str> = nodes.iter().map(|n| n.advertise.as_str()).collect();
    assert_eq!(advertised, ["a.test:9101", "b.test:9101"]);
    for (status, ttl) in nodes.iter().zip([3000, 1000]) {
        let NodeStatus {
            node,
            started_ms,
            heartbeat_ms,
            expires_in_ms,
            ..
        } = status;
        assert!(*started_ms > 0 && heartbeat_ms >= started_ms, "{node}");
        assert!(
            *expires_in_ms > 0 && *expires_in_ms <= ttl,
            "{node}: {expires_in_ms}"
        );
    }

    // A node that stops is listed until its lease expires, then pruned from the set.
    let gone = b.node_id();
    drop(b);
    eventually("b to be gone", 4 * SHORT_TTL, async || {
        let nodes = Cluster::status(&url).unwrap();
        (nodes.len() == 1).then_some(())
    })
    .await;
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("jamsocket:nodes")
        .query(&mut inspect(&redis))
        .unwrap();
    assert_eq!(members, vec![a.node_id()], "{gone} still listed");
}
