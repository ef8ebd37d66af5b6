//! The store against real SQLite files (in temporary folders) and real redis-server processes
//! (started by `jamsocket_store::testing`; `apt-get install redis-server` if it is missing).

#[macro_use]
mod common;

mod corrupt;
mod durability;
mod fencing;
mod limits;
mod listing;
mod open;
mod outage;
mod pending;
mod round_trip;
mod runtimes;
