/// Limits that keep one client or one room from hurting the others.
///
/// Every limit has a default suitable for production; change them with the `with_*` methods of
/// [`Server`](crate::Server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message a client may send, in bytes (text or binary, after joining
    /// fragments). Over it the client is closed with 1009. Default 64 KiB.
    pub max_message_bytes: usize,
    /// Most clients in one room. Further connections get HTTP 503. Default 1,000.
    pub max_clients_per_room: usize,
    /// Most rooms on the server. Creating another gets HTTP 503. Default 100,000.
    pub max_rooms: usize,
    /// Most messages waiting to be written to one client, besides the up to 64 KiB its
    /// connection has already encoded for the socket. A client that stops reading is closed
    /// with 1008 once its queue is full; the rest of its room is unaffected.
    /// Default 1,024.
    pub outbound_queue_messages: usize,
    /// Most messages per second one client may send, with bursts of up to one second's worth.
    /// Over it the client is closed with 1008. Default: no limit (a flooding client is already
    /// slowed down by backpressure: it waits while its room is busy, and so does its socket).
    pub max_messages_per_sec: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            max_clients_per_room: 1_000,
            max_rooms: 100_000,
            outbound_queue_messages: 1_024,
            max_messages_per_sec: None,
        }
    }
}
