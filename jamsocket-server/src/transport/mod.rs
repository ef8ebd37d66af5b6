//! The WebSocket transport: from an HTTP/1.1 upgrade request to frames on a socket.
//!
//! Actix hands every upgrade request here, with its connection. [`handshake`] checks it and
//! joins the room, or refuses it with an HTTP status; then a [`Connection`] task of our own
//! owns the TCP stream, on its room's worker thread ([`placement`]): [`frames`] go between the
//! socket and the room with no HTTP machinery, and no HTTP buffers, in between. Rooms talk to
//! a connection through two queues (messages, and the [`CloseFrame`](crate::close_frame)
//! that ends it), never through frame types.

mod connection;
mod forward;
mod frame_header;
mod frames;
mod handshake;
mod heartbeat;
mod placement;

pub(crate) use handshake::Rejection;
pub(crate) use placement::current_worker;

use crate::admission::ConnectionPermit;
use crate::rate_limit::{FrameBudget, RateLimit};
use crate::routes::AppState;
use actix_codec::Framed;
use actix_http::body::{BoxBody, MessageBody};
use actix_http::header::UPGRADE;
use actix_http::{h1, ConnectionType, Request, Response};
use actix_service::Service;
use actix_web::dev::ServiceResponse;
use actix_web::rt::net::TcpStream;
use connection::{Connection, Welcome};
use futures_util::SinkExt;
use handshake::{Accepted, Checked, Upgraded};
use jamsocket_cluster::{Cluster, Owner};
use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::pin;
use std::rc::Rc;
use tokio_util::task::TaskTracker;

/// Serves one upgrade request: refuses it with an HTTP error, or completes the handshake and
/// starts the connection's own task, tracked by `connections`. Actix's task for the request
/// ends there, and every HTTP buffer with it. Upgrades to anything but a WebSocket go to
/// `routes`.
pub(crate) async fn upgrade<R>(
    state: AppState,
    connections: TaskTracker,
    routes: Rc<R>,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), Infallible>
where
    R: Service<Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    if !wants_websocket(&request) {
        answer_as_plain_request(&*routes, request, framed).await;
        return Ok(());
    }
    let Accepted {
        room_id,
        joined,
        permit,
        protocol,
        seen,
    } = match handshake::accept(&state, &request).await {
        Ok(Checked::Joined(accepted)) => accepted,
        Ok(Checked::Elsewhere { owner, permit }) => {
            relay(state, connections, request, framed, owner, permit);
            return Ok(());
        }
        Err(rejection) => {
            let metrics = state.settings.metrics.as_deref();
            handshake::refuse(&mut framed, rejection, metrics).await;
            return Ok(());
        }
    };
    let Upgraded { stream, early } = handshake::answer(request, protocol.as_deref(), framed).await;
    if let Some(metrics) = &state.settings.metrics {
        metrics.connections.inc();
    }
    let sequenced =
        (protocol.as_deref() == Some(handshake::SEQUENCED_PROTOCOL)).then_some(Welcome {
            resumed: joined.resumed,
            received: joined.received,
            seen,
        });
    let limits = &state.settings.limits;
    let connection = Connection {
        room_id,
        room: joined.room,
        client: joined.client,
        delivery: joined.delivery,
        close: joined.close,
        sequenced,
        settings: state.settings.clone(),
        rate: limits
            .max_messages_per_sec
            .map(|rate| RateLimit::new(rate, tokio::time::Instant::now())),
        budget: FrameBudget::new(
            limits.max_frames_per_sec,
            limits.max_bytes_per_sec,
            limits.max_message_bytes,
        ),
        permit: Some(permit),
        replay_next: 1,
    };
    placement::start(connection, stream, early, &connections);
    Ok(())
}

fn wants_websocket(request: &Request) -> bool {
    request
        .head()
        .headers()
        .get(UPGRADE)
        .and_then(|upgrade| upgrade.to_str().ok())
        .is_some_and(|upgrade| upgrade.eq_ignore_ascii_case("websocket"))
}

/// Relays the connection to the node that owns its room, on a task tracked by `connections`;
/// `permit` counts it against this node's connection limits while it lasts.
fn relay(
    state: AppState,
    connections: TaskTracker,
    request: Request,
    framed: Framed<TcpStream, h1::Codec>,
    owner: Owner,
    permit: ConnectionPermit,
) {
    let task = async move {
        let node = state.settings.cluster.as_ref().map(Cluster::node_id);
        forward::relay(
            request,
            framed,
            owner,
            node.as_deref().unwrap_or(""),
            permit,
            state.settings.metrics.as_deref(),
        )
        .await;
    };
    tokio::task::spawn_local(connections.track_future(task));
}

/// Answers an upgrade request that is not for a WebSocket (say, `Upgrade: h2c` from
/// `curl --http2`) as if it had no `Upgrade` header, then closes the connection.
async fn answer_as_plain_request<R>(
    routes: &R,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) where
    R: Service<Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let response: Response<BoxBody> = match routes.call(request).await {
        Ok(response) => response.into(),
        Err(err) => err.error_response().into(),
    };
    let (mut head, body) = response.into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let size = body.size();
    if framed.send((head, size).into()).await.is_err() {
        return;
    }
    let mut body = pin!(body);
    while let Some(Ok(chunk)) = poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        if framed.send(h1::Message::Chunk(Some(chunk))).await.is_err() {
            return;
        }
    }
    let _ = framed.send(h1::Message::Chunk(None)).await;
}
