//! The close frame a connection sends: how rooms tell the transport to close a client.

use std::borrow::Cow;

/// A WebSocket close frame's status code and reason (RFC 6455, section 7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseFrame {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

impl CloseFrame {
    pub(crate) fn new(code: u16, reason: impl Into<Cow<'static, str>>) -> CloseFrame {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }
}

/// The close codes the server sends.
pub(crate) mod code {
    /// The closing handshake completed normally.
    pub(crate) const NORMAL: u16 = 1000;
    /// The server shuts down, the client missed heartbeats, or its room made way for another.
    pub(crate) const AWAY: u16 = 1001;
    /// The client broke the protocol.
    pub(crate) const PROTOCOL: u16 = 1002;
    /// A text message was not valid UTF-8.
    pub(crate) const INVALID_PAYLOAD: u16 = 1007;
    /// The client broke a policy (rates, deadlines, a full outbound queue).
    pub(crate) const POLICY: u16 = 1008;
    /// A message was larger than the limit.
    pub(crate) const TOO_BIG: u16 = 1009;
    /// The room's service failed.
    pub(crate) const INTERNAL_ERROR: u16 = 1011;
    /// The server restarts and keeps its rooms (a store is set): reconnect.
    pub(crate) const SERVICE_RESTART: u16 = 1012;
    /// The server is overloaded: try again later.
    pub(crate) const TRY_AGAIN_LATER: u16 = 1013;
    /// Another connection presented the client's resume key and took its session over.
    pub(crate) const TAKEN_OVER: u16 = 4000;
}
