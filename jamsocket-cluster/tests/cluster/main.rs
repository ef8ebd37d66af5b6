//! The cluster's directory against real Redis servers: each test starts its own
//! `redis-server` (`apt-get install redis-server`). Every wait has a time limit; waits for a
//! lease to expire use leases of a second or a few.

mod liveness;
mod ownership;
mod restart;
mod status;

use std::future::Future;
use std::time::Duration;

use jamsocket_cluster::{Claim, Cluster, ClusterConfig};
use jamsocket_store::testing::RedisServer;

/// A short lease, for tests that wait for one to expire or be lost.
const SHORT_TTL: Duration = Duration::from_secs(1);

/// Starts a Redis server for one test.
fn redis() -> RedisServer {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    RedisServer::start().expect("start redis-server")
}

/// A node named `name` (advertised as `<name>.test:9101`) with a lease of `ttl`.
fn join(redis: &RedisServer, name: &str, ttl: Duration) -> Cluster {
    let config = ClusterConfig::new(redis.url(), format!("{name}.test:9101"))
        .with_node_name(name)
        .with_node_ttl(ttl);
    Cluster::join(config).expect("join the cluster")
}

/// A plain connection, to look at (and tamper with) the directory.
fn inspect(redis: &RedisServer) -> redis::Connection {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let connection = client.get_connection_with_timeout(Duration::from_secs(5));
    let connection = connection.expect("connect to redis-server");
    (connection.set_read_timeout(Some(Duration::from_secs(5)))).expect("read timeout");
    connection
}

/// A key's value, if it exists.
fn get(connection: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(connection).expect("GET")
}

/// `future`'s output, or a panic naming `what` after `limit`.
async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: nothing within {limit:?}"),
    }
}

/// `cluster`'s claim of `room`, which must answer within 10 s without error.
async fn claim(cluster: &Cluster, room: &str) -> Claim {
    let claim = within("a claim", Duration::from_secs(10), cluster.claim(room)).await;
    claim.unwrap_or_else(|e| panic!("claim of `{room}` by {}: {e}", cluster.node_id()))
}

/// The fence of a claim that must be [`Claim::Mine`].
fn mine(claim: Claim) -> u64 {
    match claim {
        Claim::Mine { fence } => fence,
        Claim::Elsewhere(owner) => panic!("expected the room to be mine, it is {owner:?}"),
    }
}

/// Polls `check` every 20 ms until it gives a value; panics naming `what` after `limit`.
async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let poll = async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within(what, limit, poll).await
}
