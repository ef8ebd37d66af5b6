//! What a room tells the room API about itself (`GET /rooms`, `GET /rooms/<id>`).

use serde::Serialize;

/// One room, as the room API lists it. Rates are for the reader to compute from two readings of
/// the counters.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoomInfo {
    pub id: String,
    /// Clients in the room, counting those away within their reconnect grace.
    pub clients: usize,
    /// Seconds since the room opened (on this node).
    pub age_secs: f64,
    /// Seconds since the room last handled a client's message, a join, a leave or a request.
    pub idle_secs: f64,
    /// Messages the room received from its clients.
    pub messages_in: u64,
    /// Messages the room delivered to its clients (a broadcast counts once per recipient).
    pub messages_out: u64,
    /// The memory its service holds, when the host can tell (WebAssembly rooms).
    pub memory_bytes: Option<u64>,
    /// Always `live`: the room API answers `hibernated` for a room only saved in the store.
    pub state: &'static str,
    /// The room's clients; only in `GET /rooms/<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberInfo>>,
}

/// One client of a room.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemberInfo {
    pub client: u32,
    /// Its user id, when the client was admitted with one.
    pub user: Option<String>,
    /// Seconds since it joined (its session began, for a client that resumed).
    pub connected_secs: f64,
    /// Whether its connection is lost and the room waits for it to resume.
    pub away: bool,
}
