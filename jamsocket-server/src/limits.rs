use std::time::Duration;

/// Limits that keep one client or one room from hurting the others.
///
/// Every limit has a default suitable for production; change them with the `with_*` methods of
/// [`Server`](crate::Server). The limits that are on by default never depend on the client's
/// address, so they work the same behind a reverse proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message a client may send, in bytes (text or binary, after joining
    /// fragments). Over it the client is closed with 1009 as soon as a frame header announces
    /// more, before its payload is read. Default 64 KiB.
    pub max_message_bytes: usize,
    /// How long a message may take to arrive once its first byte has: a message sent in
    /// fragments, or a frame whose payload trickles in, must be complete within this time or
    /// the client is closed with 1008. Default 10 s.
    pub message_deadline: Duration,
    /// Most bytes of partly received messages (fragments collected, a frame whose payload is
    /// still arriving) the server holds over every connection together. A connection whose
    /// message would take the total over it is closed with 1013 ("try again later"), so that
    /// thousands of slow senders cannot hold `max_connections` times the message limit.
    /// Default 256 MiB.
    pub max_pending_message_bytes: usize,
    /// Most clients in one room. Further connections get HTTP 503. Default 1,000.
    pub max_clients_per_room: usize,
    /// Most rooms on the server. When the table is full, empty rooms still in their grace
    /// period are closed, oldest first, to make space; only when there are none does creating
    /// another room get HTTP 503. Default 100,000.
    pub max_rooms: usize,
    /// Most WebSocket connections at once; further handshakes get HTTP 503. Default (`None`):
    /// derived from the open-file limit, leaving a tenth of it (at least 64) for everything
    /// else.
    pub max_connections: Option<usize>,
    /// Most WebSocket connections at once from one client address; further handshakes get
    /// HTTP 429. Default: no limit (behind a proxy every client shares its address; see
    /// [`Server::with_trusted_proxies`](crate::Server::with_trusted_proxies)).
    pub max_connections_per_ip: Option<usize>,
    /// Most rooms one client address may create per second (bursts of one second's worth);
    /// over it, connecting to (or `POST`ing) a new room gets HTTP 429. Default: no limit.
    pub max_new_rooms_per_ip_per_sec: Option<u32>,
    /// Most messages waiting to be written to one client, besides the up to 64 KiB its
    /// connection has already encoded for the socket. A client that stops reading is closed
    /// with 1008 once its queue is full; the rest of its room is unaffected.
    /// Default 1,024.
    pub outbound_queue_messages: usize,
    /// Most messages per second one client may send, with bursts of up to one second's worth.
    /// Over it the client is closed with 1008. Default: no limit (a flooding client is already
    /// slowed down by backpressure: it waits while its room is busy, and so does its socket).
    pub max_messages_per_sec: Option<u32>,
    /// Most frames per second one client may send, of any kind (pings, pongs and
    /// continuation frames included), with bursts of up to two seconds' worth. Over it the
    /// client is closed with 1008. Default 1,000.
    pub max_frames_per_sec: u32,
    /// Most bytes per second one client may send, frame headers included, with bursts of up
    /// to two seconds' worth (and never less than one message of the largest size). Over it
    /// the client is closed with 1008. Default 64 MiB: well above what a healthy client sends
    /// (one streaming 16 KiB messages as fast as its room answers, over loopback, sends 10-20
    /// MiB/s), low enough that one connection cannot keep a core busy with bytes alone.
    pub max_bytes_per_sec: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            message_deadline: Duration::from_secs(10),
            max_pending_message_bytes: 256 * 1024 * 1024,
            max_clients_per_room: 1_000,
            max_rooms: 100_000,
            max_connections: None,
            max_connections_per_ip: None,
            max_new_rooms_per_ip_per_sec: None,
            outbound_queue_messages: 1_024,
            max_messages_per_sec: None,
            max_frames_per_sec: 1_000,
            max_bytes_per_sec: 64 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// [`max_connections`](Limits::max_connections), or the default derived from the process's
    /// open-file limit (`RLIMIT_NOFILE`).
    pub fn effective_max_connections(&self) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let files = open_file_limit();
            files.saturating_sub((files / 10).max(64)).max(1)
        })
    }
}

/// How many files this process may have open (`RLIMIT_NOFILE`, soft).
pub(crate) fn open_file_limit() -> usize {
    let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(files).unwrap_or(usize::MAX)
}
