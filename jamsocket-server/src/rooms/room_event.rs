use super::room_context::Outbound;
use super::RoomError;
use crate::close_frame::CloseFrame;
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
        close: oneshot::Sender<CloseFrame>,
        reply: oneshot::Sender<Result<ClientId, RoomError>>,
    },
    /// Answered once the room's service exists (used by `POST` to report creation).
    Ready {
        reply: oneshot::Sender<Result<(), RoomError>>,
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
        reason: CloseFrame,
    },
}
