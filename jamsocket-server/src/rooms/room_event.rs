use super::room_info::RoomInfo;
use super::session::{Delivery, Held, ResumeKey};
use super::RoomError;
use crate::close_frame::CloseFrame;
use bytes::Bytes;
use bytestring::ByteString;
use jamsocket::{ClientId, Response, User};
use std::borrow::Cow;
use tokio::sync::oneshot;

/// A message to a room actor.
pub(crate) enum RoomEvent {
    /// A client wants in, or back in. `close` tells its connection to close with a reason.
    Join {
        arrival: Arrival,
        close: oneshot::Sender<CloseFrame>,
        reply: oneshot::Sender<Result<Admitted, RoomError>>,
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
    /// A client's connection ended. Every joined connection sends exactly one. `handled` is
    /// dropped once the room has handled it, and so every message the client sent before.
    /// `park` is the connection's delivery, and what it held, when the client may come back
    /// (its connection was lost, rather than closed): a client with a session is then away,
    /// not gone.
    Leave {
        client: ClientId,
        reason: Cow<'static, str>,
        handled: oneshot::Sender<()>,
        park: Option<(Delivery, Held)>,
    },
    /// Close the room and every client in it (server shutdown, module reload).
    Close {
        reason: CloseFrame,
    },
    /// Describe the room (the room API); `members` lists its clients too.
    Inspect {
        members: bool,
        reply: oneshot::Sender<RoomInfo>,
    },
    /// A request from the server side (the room API's `POST /rooms/<id>/messages`) for the
    /// service's `request` handler.
    Request {
        body: Bytes,
        reply: oneshot::Sender<Response>,
    },
}

/// Who is joining: what admission established and what the client asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Arrival {
    pub user: Option<User>,
    /// The client's resume key: it opens a session, or resumes the one it opened.
    pub resume: Option<ResumeKey>,
    /// Whether the connection speaks `jamsocket.v1` (and so gets acknowledgements).
    pub sequenced: bool,
}

/// A client the room took in.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub client: ClientId,
    /// The messages on their way to it: a new queue, or the resumed session's.
    pub delivery: Delivery,
    /// Whether an earlier session was resumed.
    pub resumed: bool,
    /// How many of the session's messages from the client the room has handled.
    pub received: u64,
}
