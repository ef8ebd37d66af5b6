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
mod link;
mod outlet;
mod placement;
mod stream;

pub(crate) use handshake::Rejection;
pub(crate) use placement::current_worker;

use crate::admission::ConnectionPermit;
use crate::cluster::{self, ClusterRefusal};
use crate::log_throttle::warn_throttled;
use crate::rate_limit::{FrameBudget, RateLimit};
use crate::routes::AppState;
use actix_codec::{AsyncRead, AsyncWrite, Framed};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::header::UPGRADE;
use actix_http::{h1, ConnectionType, Request, Response, ServiceConfig, StatusCode};
use actix_service::Service;
use actix_web::dev::ServiceResponse;
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use connection::{Connection, Welcome};
use futures_util::{SinkExt, StreamExt};
use handshake::{Accepted, Checked, Upgraded};
use jamsocket_cluster::Owner;
use link::LinkStream;
use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use stream::Stream;
use subtle::ConstantTimeEq;
use tokio::time::timeout;
use tokio_util::task::TaskTracker;

/// How long a stream of a node link may take to bring its handshake request.
const LINK_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one upgrade request: refuses it with an HTTP error, or completes the handshake and
/// starts the connection's own task, tracked by `connections`. Actix's task for the request
/// ends there, and every HTTP buffer with it. A cluster node's [`link`] is accepted here too.
/// Upgrades to anything else go to `routes`.
pub(crate) async fn upgrade<R>(
    state: AppState,
    connections: TaskTracker,
    routes: Rc<R>,
    mut request: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), Infallible>
where
    R: Service<Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    if let Some(cluster) = &state.settings.cluster {
        if request.path() == link::LINK_PATH {
            let secret = cluster.link_secret();
            accept_link(state, connections, request, framed, &secret).await;
            return Ok(());
        }
    }
    if !wants_websocket(&request) {
        answer_as_plain_request(&*routes, request, framed).await;
        return Ok(());
    }
    // Only a node link's requests come from another node.
    request
        .head_mut()
        .headers_mut()
        .remove(cluster::FORWARDED_HEADER);
    if let Some(elsewhere) = websocket(&state, &connections, request, framed).await {
        relay(state, connections, elsewhere);
    }
    Ok(())
}

/// A handshake whose room lives on another node of the cluster.
struct Elsewhere<T> {
    request: Request,
    framed: Framed<T, h1::Codec>,
    owner: Owner,
    permit: ConnectionPermit,
}

/// Checks a WebSocket handshake, then answers it and starts the connection, or refuses it.
/// Returns the handshake if its room lives on another node.
async fn websocket<T>(
    state: &AppState,
    connections: &TaskTracker,
    request: Request,
    mut framed: Framed<T, h1::Codec>,
) -> Option<Elsewhere<T>>
where
    T: AsyncRead + AsyncWrite + Unpin + Into<Stream>,
{
    let Accepted {
        room_id,
        joined,
        permit,
        protocol,
        seen,
    } = match handshake::accept(state, &request).await {
        Ok(Checked::Joined(accepted)) => accepted,
        Ok(Checked::Elsewhere { owner, permit }) => {
            return Some(Elsewhere {
                request,
                framed,
                owner,
                permit,
            })
        }
        Err(rejection) => {
            let metrics = state.settings.metrics.as_deref();
            handshake::refuse(&mut framed, rejection, metrics).await;
            return None;
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
    placement::start(connection, stream.into(), early, connections);
    None
}

/// Answers a cluster node's link upgrade, if it shows the cluster's `secret`, then serves the
/// link on this thread: each stream on it is a client connection the node forwards here,
/// handshake first.
async fn accept_link(
    state: AppState,
    connections: TaskTracker,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
    secret: &str,
) {
    let shown = request.head().headers().get(link::SECRET_HEADER);
    let matches = shown.is_some_and(|shown| bool::from(shown.as_bytes().ct_eq(secret.as_bytes())));
    if !matches {
        let peer = request.peer_addr();
        warn_throttled!(
            ?peer,
            "refused a node link: it did not show this cluster's link secret"
        );
        let metrics = state.settings.metrics.as_deref();
        handshake::refuse(
            &mut framed,
            Rejection::Cluster(ClusterRefusal::LinkSecret),
            metrics,
        )
        .await;
        return;
    }
    let response = Response::build(StatusCode::SWITCHING_PROTOCOLS)
        .upgrade(link::LINK_PROTOCOL)
        .finish();
    if framed
        .send((response.drop_body(), BodySize::None).into())
        .await
        .is_err()
    {
        return;
    }
    let peer = request.peer_addr();
    drop(request);
    let parts = framed.into_parts();
    let early = BytesMut::from(&parts.read_buf[..]);
    let max_streams = state.admission.max_connections();
    let tracker = connections.clone();
    link::accept(parts.io, early, max_streams, move |stream| {
        let task = serve_link_stream(state.clone(), connections.clone(), peer, stream);
        tokio::task::spawn_local(tracker.track_future(task));
    });
}

/// Serves one stream of a node link: reads the client's handshake request from it, with the
/// node as the peer, and goes on as with a direct connection.
async fn serve_link_stream(
    state: AppState,
    connections: TaskTracker,
    peer: Option<SocketAddr>,
    stream: LinkStream,
) {
    let mut framed = Framed::new(stream, h1::Codec::new(ServiceConfig::default()));
    let mut request = match timeout(LINK_HEAD_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(h1::Message::Item(request)))) => request,
        // No request in time, or not one: dropping the stream resets it.
        _ => return,
    };
    // The client's own address, as the node that forwards it saw it.
    let client = forward::forwarding_peer(request.head_mut().headers_mut());
    request.head_mut().peer_addr = client.map(|ip| SocketAddr::new(ip, 0)).or(peer);
    // The request names the node that forwards it, so `place` refuses a second hop (503)
    // rather than answer `Elsewhere`; were it to, dropping the stream resets it.
    drop(websocket(&state, &connections, request, framed).await);
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
/// its permit counts it against this node's connection limits while it lasts.
fn relay(state: AppState, connections: TaskTracker, elsewhere: Elsewhere<TcpStream>) {
    let Elsewhere {
        request,
        framed,
        owner,
        permit,
    } = elsewhere;
    let task = async move {
        let Some(cluster) = &state.settings.cluster else {
            return;
        };
        forward::relay(&state, cluster, request, framed, owner, permit).await;
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
