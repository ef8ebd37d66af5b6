//! The WebSocket handshake: checks a request in order (path, room id, room-id strategy,
//! handshake headers, origin, resume key, connection limits, token and admission hook), joins
//! the room, and answers 101 with the subprotocol it chose, or refuses with one typed
//! [`Rejection`] per failure, answered as an HTTP status with a reason before any WebSocket
//! exists.

use crate::admission::{ConnectionPermit, Refusal};
use crate::auth::{self, offered_protocols, AuthRefusal, Query, TOKEN_PROTOCOL_PREFIX};
use crate::cluster::{self, ClusterRefusal, Placement};
use crate::error::RoomIdError;
use crate::http_error::{refusal_reason, HttpError};
use crate::metrics::Metrics;
use crate::room_id::validate_room_id;
use crate::rooms::{Arrival, Joined, ResumeKey, ResumeKeyError, RoomError};
use crate::routes::AppState;
use actix_codec::{AsyncRead, AsyncWrite, Framed};
use actix_http::body::BodySize;
use actix_http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, SEC_WEBSOCKET_PROTOCOL};
use actix_http::ws::{handshake_response, verify_handshake, HandshakeError};
use actix_http::{h1, ConnectionType, Request, Response};
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use jamsocket_cluster::Owner;
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
    #[error(transparent)]
    Auth(#[from] AuthRefusal),
    #[error(transparent)]
    ResumeKey(#[from] ResumeKeyError),
    #[error(transparent)]
    Cluster(#[from] ClusterRefusal),
    #[error("`seen` must be a count of messages, not `{seen}`")]
    Seen { seen: String },
}

/// The subprotocol of numbered messages that lets the TypeScript client resume without loss.
pub(crate) const SEQUENCED_PROTOCOL: &str = "jamsocket.v1";
/// The seed's protocol, by name, for clients that must offer one.
pub(crate) const PLAIN_PROTOCOL: &str = "jamsocket";

/// A handshake that passed every check: the client joined its room here, or the room lives on
/// another node of the cluster, which the connection is forwarded to.
#[derive(Debug)]
pub(crate) enum Checked {
    Joined(Accepted),
    Elsewhere {
        owner: Owner,
        permit: ConnectionPermit,
    },
}

/// An accepted handshake: the client's place in the connection count and in its room.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub room_id: Arc<str>,
    pub joined: Joined,
    pub permit: ConnectionPermit,
    /// The subprotocol the server answers with, if the client offered one it speaks.
    pub protocol: Option<String>,
    /// How many of the session's messages the client says it has seen (`jamsocket.v1`).
    pub seen: u64,
}

/// An answered handshake: the socket, and whatever the client sent after its request.
#[derive(Debug)]
pub(crate) struct Upgraded<T> {
    pub stream: T,
    pub early: BytesMut,
}

/// Checks the request and joins the room it names, or finds that the room lives on another
/// node of the cluster.
pub(crate) async fn accept(state: &AppState, request: &Request) -> Result<Checked, Rejection> {
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
    let query = request.uri().query().unwrap_or("");
    let asked = Query::parse(query);
    let resume = asked.resume.as_deref().map(ResumeKey::parse).transpose()?;
    let seen = match asked.seen {
        Some(seen) => seen.parse().map_err(|_| Rejection::Seen { seen })?,
        None => 0,
    };
    let protocol = select_protocol(headers);
    let ip = admission.client_ip(request.peer_addr(), headers);
    let permit = admission.connect(ip)?;
    let user = auth::admit(
        &state.settings,
        room_id,
        headers,
        query,
        request.peer_addr(),
    )
    .await?;
    let lease = match cluster::place(state, request, room_id).await? {
        Placement::Here { lease } => lease,
        Placement::Elsewhere(owner) => return Ok(Checked::Elsewhere { owner, permit }),
    };
    let claimed = lease.is_some();
    let arrival = Arrival {
        user,
        resume,
        sequenced: protocol.as_deref() == Some(SEQUENCED_PROTOCOL),
    };
    let joined = state
        .rooms
        .join(room_id, arrival, lease, || {
            admission.create_room(ip).map_err(Rejection::from)
        })
        .await;
    let joined = match (joined, &state.settings.cluster) {
        (Ok(joined), _) => joined,
        (Err(rejection), Some(cluster)) if claimed && !state.rooms.contains(room_id) => {
            // Not opened here after all: not this node's to re-assert.
            cluster.forget(room_id);
            return Err(rejection);
        }
        (Err(rejection), _) => return Err(rejection),
    };
    Ok(Checked::Joined(Accepted {
        room_id: Arc::from(room_id),
        joined,
        permit,
        protocol,
        seen,
    }))
}

/// The subprotocol to answer with: `jamsocket.v1` or `jamsocket` if offered. A client that
/// offers only its token (`jamsocket.token.<jwt>`) gets it back, because a browser fails a
/// handshake whose answer selects none of the protocols it offered.
fn select_protocol(headers: &HeaderMap) -> Option<String> {
    let offered: Vec<&str> = offered_protocols(headers).collect();
    [SEQUENCED_PROTOCOL, PLAIN_PROTOCOL]
        .into_iter()
        .find(|known| offered.contains(known))
        .or_else(|| {
            offered
                .into_iter()
                .find(|protocol| protocol.starts_with(TOKEN_PROTOCOL_PREFIX))
        })
        .map(str::to_string)
}

/// Answers 101 and takes the socket out of Actix. The HTTP buffers, and the request whose
/// headers share them, are dropped with this call.
pub(crate) async fn answer<T: AsyncRead + AsyncWrite + Unpin>(
    request: Request,
    protocol: Option<&str>,
    mut framed: Framed<T, h1::Codec>,
) -> Upgraded<T> {
    let mut response = handshake_response(request.head());
    if let Some(value) = protocol.and_then(|protocol| HeaderValue::from_str(protocol).ok()) {
        response.insert_header((SEC_WEBSOCKET_PROTOCOL, value));
    }
    let response = response.finish();
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
/// Every refused handshake passes here, and is counted in `metrics`.
pub(crate) async fn refuse<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, h1::Codec>,
    rejection: Rejection,
    metrics: Option<&Metrics>,
) {
    let reason = refusal_reason(&rejection);
    let err = HttpError::from(rejection);
    if let Some(metrics) = metrics {
        metrics.refused(reason, err.status.as_u16());
    }
    let body = Bytes::from(format!("{}\n", err.message));
    let mut response = Response::with_body(err.status, ());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(err.content_type));
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    let size = BodySize::Sized(body.len() as u64);
    // Head and body in one write: a client that reads what arrived with the head gets both.
    if framed.feed((response, size).into()).await.is_ok() {
        let _ = framed.send(h1::Message::Chunk(Some(body))).await;
    }
}
