//! The WebSocket handshake: checks a request in order (path, room id, room-id strategy,
//! handshake headers, origin, connection limits), joins the room, and answers 101, or refuses
//! with one typed [`Rejection`] per failure, answered as an HTTP status with a plain-text
//! reason before any WebSocket exists.

use crate::admission::{ConnectionPermit, Refusal};
use crate::error::RoomIdError;
use crate::http_error::HttpError;
use crate::room_id::validate_room_id;
use crate::rooms::{Joined, RoomError};
use crate::routes::AppState;
use actix_codec::Framed;
use actix_http::body::BodySize;
use actix_http::header::{HeaderValue, CONTENT_TYPE};
use actix_http::ws::{handshake_response, verify_handshake, HandshakeError};
use actix_http::{h1, ConnectionType, Request, Response};
use actix_web::rt::net::TcpStream;
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use std::sync::Arc;

/// Why a handshake was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("no WebSocket endpoint at `{path}`: connect to /ws/<room>")]
    NoEndpoint { path: String },
    #[error(transparent)]
    RoomId(#[from] RoomIdError),
    #[error("not a WebSocket handshake: {0}")]
    NotHandshake(HandshakeError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Room(#[from] RoomError),
}

/// An accepted handshake: the client's place in the connection count and in its room.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub room_id: Arc<str>,
    pub joined: Joined,
    pub permit: ConnectionPermit,
}

/// An answered handshake: the socket, and whatever the client sent after its request.
#[derive(Debug)]
pub(crate) struct Upgraded {
    pub stream: TcpStream,
    pub early: BytesMut,
}

/// Checks the request and joins the room it names.
pub(crate) async fn accept(state: &AppState, request: &Request) -> Result<Accepted, Rejection> {
    state.admission.check_running()?;
    let path = request.path();
    let Some(room_id) = path.strip_prefix("/ws/") else {
        return Err(Rejection::NoEndpoint {
            path: path.to_string(),
        });
    };
    validate_room_id(room_id)?;
    state.check_room_exists(room_id)?;
    verify_handshake(request.head()).map_err(Rejection::NotHandshake)?;
    let headers = request.head().headers();
    let admission = &state.admission;
    admission.check_origin(headers)?;
    let ip = admission.client_ip(request.peer_addr(), headers);
    let permit = admission.connect(ip)?;
    let joined = state
        .rooms
        .join(room_id, || {
            admission.create_room(ip).map_err(Rejection::from)
        })
        .await?;
    Ok(Accepted {
        room_id: Arc::from(room_id),
        joined,
        permit,
    })
}

/// Answers 101 and takes the socket out of Actix. The HTTP buffers, and the request whose
/// headers share them, are dropped with this call.
pub(crate) async fn answer(request: Request, mut framed: Framed<TcpStream, h1::Codec>) -> Upgraded {
    let response = handshake_response(request.head()).finish();
    // If this fails the connection finds the socket closed and leaves the room.
    let _ = framed
        .send((response.drop_body(), BodySize::None).into())
        .await;
    let parts = framed.into_parts();
    Upgraded {
        stream: parts.io,
        early: BytesMut::from(&parts.read_buf[..]),
    }
}

/// Answers with the rejection's status and reason as plain text, and closes the connection.
pub(crate) async fn refuse(framed: &mut Framed<TcpStream, h1::Codec>, rejection: Rejection) {
    let err = HttpError::from(rejection);
    let body = Bytes::from(format!("{}\n", err.message));
    let mut response = Response::with_body(err.status, ());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    let size = BodySize::Sized(body.len() as u64);
    if framed.send((response, size).into()).await.is_ok() {
        let _ = framed.send(h1::Message::Chunk(Some(body))).await;
    }
}
