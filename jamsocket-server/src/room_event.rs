use crate::room_context::Outbound;
use actix_http::ws::CloseReason;
use bytes::Bytes;
use bytestring::ByteString;
use jamsocket::ClientId;
use std::borrow::Cow;
use tokio::sync::{mpsc, oneshot};

/// A message to a room actor.
pub(crate) enum RoomEvent {
    /// A client wants in. `outbound` carries messages to it; `close` tells its connection to
    /// close with a reason.
    Join {
        outbound: mpsc::Sender<Outbound>,
        close: oneshot::Sender<CloseReason>,
        reply: oneshot::Sender<Result<ClientId, JoinError>>,
    },
    /// Answered once the room's service exists (used by `POST` to report creation).
    Ready {
        reply: oneshot::Sender<Result<(), JoinError>>,
    },
    Text {
        client: ClientId,
        text: ByteString,
    },
    Binary {
        client: ClientId,
        data: Bytes,
    },
    /// A client's connection ended. Every joined client sends exactly one. `handled` is
    /// dropped once the room has handled it, and so every message the client sent before.
    Leave {
        client: ClientId,
        reason: Cow<'static, str>,
        handled: oneshot::Sender<()>,
    },
    /// Close the room and every client in it (server shutdown, module reload).
    Close {
        reason: CloseReason,
    },
}

/// Why a room did not take a client.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum JoinError {
    #[error("room `{room}` is full ({max} clients)")]
    Full { room: String, max: usize },
    #[error("room `{room}` could not be created: {cause}")]
    Unavailable { room: String, cause: String },
    #[error("room `{room}` failed to start: {cause}")]
    Failed { room: String, cause: String },
    /// The room closed while the request was on its way; the caller may retry.
    #[error("room `{room}` closed")]
    Closed { room: String },
}
