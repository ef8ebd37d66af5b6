//! The room directory of a Jamsocket cluster, in Redis: which nodes are alive, and which node
//! owns each room, with fencing tokens.
//!
//! Each room must be live on exactly one node. A node [joins](Cluster::join) with a lease that
//! its heartbeats renew; it [claims](Cluster::claim) a room before running it, and learns
//! either that the room is its own (with a fencing token for the room's saves) or which node to
//! forward the room's clients to. Nothing is written per room while rooms just live: heartbeats
//! are per node, and a room's ownership is valid only while its node's lease is.
//!
//! ```
//! use jamsocket_cluster::{Claim, Cluster, ClusterConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let redis = jamsocket_store::testing::RedisServer::start()?;
//! # let url = redis.url();
//! let a = Cluster::join(ClusterConfig::new(&url, "10.0.0.1:9101").with_node_name("a"))?;
//! let b = Cluster::join(ClusterConfig::new(&url, "10.0.0.2:9101").with_node_name("b"))?;
//!
//! let Claim::Mine { fence } = a.claim("lobby").await? else { panic!("lobby was free") };
//! // b finds the room on a, and would forward the room's clients there.
//! let Claim::Elsewhere(owner) = b.claim("lobby").await? else { panic!("lobby is a's") };
//! assert_eq!((owner.node, owner.advertise), (a.node_id(), "10.0.0.1:9101".to_string()));
//!
//! // Once a leaves, the room is b's, with a larger fence: a's late saves would be refused.
//! a.leave().await?;
//! let Claim::Mine { fence: newer } = b.claim("lobby").await? else { panic!("a left") };
//! assert!(newer > fence);
//! # Ok(())
//! # }
//! ```
//!
//! # Keys
//!
//! | key | value | written |
//! |---|---|---|
//! | `jamsocket:node:<node_id>` | JSON `{"advertise":"10.0.0.1:9101","rooms":12,"started_ms":…,"heartbeat_ms":…}` | at registration (`SET NX PX ttl`), then every ttl/3 (`SET XX PX ttl`); deleted when the node leaves |
//! | `jamsocket:nodes` | set of node ids | at registration; for listings only: [`Cluster::status`] prunes ids whose node key is gone |
//! | `jamsocket:owner:<room>` | `"<node_id> <fence>"` | by a claim that takes the room; no TTL: the owner is valid only while its node key exists |
//! | `jamsocket:fence` | counter | `INCR` by every claim that takes a room, so fences grow with every change of owner |
//! | `jamsocket:link-secret` | 32 random hex digits | by the first registration that finds none (`SET NX`), read by every registration: [`Cluster::link_secret`], which a node shows to open a link to another |
//!
//! A node id is `<name>-<8 random hex digits>` ([`ClusterConfig::with_node_name`]), new with
//! every registration after a lost lease. Claims and lookups are Lua scripts, so each is
//! atomic; they read the owner's node key by name, which needs a single Redis (not Redis
//! Cluster). `jamsocket-store`'s fenced saves read the same owner keys.
//!
//! # Liveness, and why no room runs on two nodes
//!
//! - A heartbeat goes out every ttl/3 (`SET jamsocket:node:<id> <json> PX <ttl> XX`), with a
//!   Redis response timeout of at most ttl/6 (after a failure it is retried after ttl/12). The
//!   node remembers when the last heartbeat that succeeded was *sent*: Redis set the key's
//!   expiry after that moment, so the key lives at least until then + ttl.
//! - If no heartbeat has succeeded by that send time + 2/3·ttl, [`Health`] turns
//!   [`Lost`](Health::Lost), and claims are refused. The server then stops every room at once,
//!   so by the time the key can expire (send time + ttl), no instance of its rooms is left, and
//!   only then can another node take them. A claim checks, in the same script, that the
//!   claiming node's key exists; and a claim answered after the lease was lost is refused.
//! - While lost, the node tries every ttl/3 to register a *new* incarnation (a new random
//!   suffix, `SET NX`). On success it turns [`Live`](Health::Live) again under the new
//!   [`node_id`](Cluster::node_id), and forgets the rooms it tracked (the server closed them).
//!   The old incarnation's rooms become free when its key expires; until then claims (this
//!   node's too) answer [`Elsewhere`](Claim::Elsewhere), naming the old id. The first try
//!   comes ttl/3 after the lease was lost, which leaves the server time to see `Lost` (a watch
//!   channel keeps only the latest value; a changed node id means the same).
//! - Leaving deletes the node key (and its entry in `jamsocket:nodes`): every room it owned is
//!   free at once. Dropping every [`Cluster`] handle without leaving just stops the heartbeats,
//!   like a crash.
//!
//! ## Redis restarted without its data
//!
//! If a heartbeat finds the node key gone (`SET XX` fails) while the lease still holds (the
//! last heartbeat that succeeded was sent less than 2/3·ttl ago), Redis lost it: it restarted
//! without persistence (or someone deleted the key). The node registers the same id again at
//! once, stays live, and re-asserts the rooms it tracks (claimed [`Mine`](Claim::Mine) and not
//! [forgotten](Cluster::forget)): each owner key is set to `"<id> <fence>"` only if absent
//! (`SET NX`), and `jamsocket:fence` is raised to at least the largest fence re-asserted. A
//! room whose owner key now names another node is lost here: it is reported on
//! [`taken_rooms`](Cluster::taken_rooms), and the server closes it.
//!
//! The window: between the restart and this node's next heartbeat (at most ttl/3, plus
//! ttl/12 per failed retry), another node can claim one of its rooms and run it while this
//! node still does, until the report closes it here. Redis persistence (`appendonly yes`,
//! `appendfsync always` or `everysec`) keeps the keys across restarts and closes the window.
//!
//! # Logs
//!
//! Through `tracing` (the library installs no subscriber): registered, lost (error), live
//! again, registered again after Redis lost its keys, rooms taken, left; failed heartbeats as
//! one warning per run of failures.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod cluster;
mod config;
mod directory;
mod error;
mod keys;
mod node_thread;
mod scripts;
mod status;

pub use cluster::{Claim, Cluster, Health, Owner};
pub use config::ClusterConfig;
pub use error::ClusterError;
pub use status::NodeStatus;
