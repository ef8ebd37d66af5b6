//! What every scenario is given: where the server is, how rooms are named, when to stop.

use crate::process::Process;
use crate::server_url::ServerUrl;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use tokio::time::Instant;

pub struct RunContext {
    pub url: ServerUrl,
    /// Names this run's rooms, so runs against one server never share a room.
    pub run_id: String,
    /// Everything, closing included, is over by then.
    pub deadline: Instant,
    /// Most WebSocket handshakes in flight at once.
    pub connect_concurrency: usize,
    /// The server's process, when its pid was given.
    pub server: Option<Process>,
}

impl RunContext {
    /// The URL of this run's room `index` of a scenario: `<url>/ws/bench-<run id>-<scenario>-<index>`.
    pub fn room_url(&self, scenario: &str, index: u64) -> String {
        self.url.room(&room_name(&self.run_id, scenario, index))
    }
}

/// Eight random hex digits (from the standard library's per-process random hash keys).
pub fn new_run_id() -> String {
    let random = RandomState::new().hash_one(std::process::id());
    format!("{:08x}", random as u32)
}

/// A room id the server accepts (see `jamsocket_server::validate_room_id`).
fn room_name(run_id: &str, scenario: &str, index: u64) -> String {
    format!("bench-{run_id}-{scenario}-{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_valid_and_distinct() {
        let name = room_name(&new_run_id(), "broadcast", u64::MAX);
        jamsocket_server::validate_room_id(&name).unwrap();
        assert_ne!(room_name("a", "idle", 1), room_name("a", "idle", 2));
    }

    #[test]
    fn run_ids_differ() {
        let ids: std::collections::HashSet<_> = (0..8).map(|_| new_run_id()).collect();
        assert!(ids.len() > 1);
        assert!(ids.iter().all(|id| id.len() == 8));
    }
}
