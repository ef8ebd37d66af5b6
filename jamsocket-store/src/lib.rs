//! Durable snapshot storage for Jamsocket rooms.
//!
//! A [`Snapshots`] store keeps one opaque byte blob (a *snapshot*, versioned by the caller) per
//! room id, in a SQLite file or in Redis, and gives it back when the room starts again. It knows
//! nothing of rooms, HTTP or wasm.
//!
//! - [`save`](Snapshots::save), [`delete`](Snapshots::delete) and
//!   [`quarantine`](Snapshots::quarantine) return at once: a background thread compresses
//!   (zstd) and writes, in batches, retrying while the store is unreachable. A newer save of a
//!   room replaces an older one that is not written yet.
//! - [`load`](Snapshots::load) answers from memory while a save is pending, else from the store;
//!   [`flush`](Snapshots::flush) waits until everything queued is written. Both work from any
//!   async runtime, including Actix's single-threaded ones.
//! - [`rooms`](Snapshots::rooms) pages through the ids of saved rooms by prefix, in id order,
//!   counting pending saves and deletes as done.
//! - [`save_fenced`](Snapshots::save_fenced) is `save` for the owner of a room in a cluster,
//!   holding a fencing token (*fence*) that grows with every change of owner. The store refuses
//!   it, for good, if a higher fence was written for the room, or (Redis) if key
//!   `jamsocket:owner:<room>` (`"<node_id> <fence>"`) names another fence: a node that lost its
//!   room can never overwrite the new owner's snapshot. Redis checks and writes atomically (a
//!   Lua script) and records the fence in `jamsocket:fence:<room>`; SQLite in one statement,
//!   in column `snapshots.fence` (added to older files when they are opened). Refusals are
//!   counted in [`StoreStats::fenced_out`]. Unfenced saves and deletes are never refused.
//!
//! ```
//! use jamsocket_store::{Snapshots, StoreConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let folder = tempfile::tempdir()?;
//! let url = format!("sqlite:{}", folder.path().join("rooms.db").display());
//!
//! let store = Snapshots::open(&url, StoreConfig::new())?;
//! store.save("lobby", b"state v1".to_vec());
//! // Visible at once, before it is written.
//! assert_eq!(store.load("lobby").await?, Some(b"state v1".to_vec()));
//! store.flush().await;
//! drop(store);
//!
//! // A restarted server finds it in the file.
//! let store = Snapshots::open(&url, StoreConfig::new())?;
//! assert_eq!(store.load("lobby").await?, Some(b"state v1".to_vec()));
//! assert_eq!(store.load("elsewhere").await?, None);
//! # Ok(())
//! # }
//! ```
//!
//! [`stats`](Snapshots::stats) counts what was written, failed and fenced out;
//! [`latency`](Snapshots::latency) says how long writes and loads took, as histograms a
//! metrics exporter can publish (`jamsocket-server` does, with `Server::with_metrics`).
//!
//! Logs go through `tracing` (the library installs no subscriber): refused (oversized) and
//! corrupt snapshots as errors naming the room, failed writes as warnings (at most one a second),
//! fenced-out saves as warnings naming the room, their fence and the current one.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod backend;
mod compression;
mod config;
mod error;
mod latency;
mod pending;
mod redis_store;
mod snapshots;
mod sqlite_store;
mod stats;
mod store_url;
#[cfg(feature = "test-util")]
pub mod testing;
mod writer;

pub use config::StoreConfig;
pub use error::StoreError;
pub use latency::{LatencyHistogram, StoreLatency, LATENCY_BUCKETS};
pub use snapshots::Snapshots;
pub use stats::StoreStats;
pub use store_url::redact as redact_url;
