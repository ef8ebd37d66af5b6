//! Forwarding a handshake to the node that owns its room: the request goes to the owner as the
//! client sent it (plus `X-Forwarded-For` and the [`FORWARDED_HEADER`]), on a stream of this
//! thread's [`link`](super::link) to the owner, then bytes are copied both ways until either
//! side closes. The owner checks everything else (origin, token, limits) and answers the
//! client itself, through this node.

use super::handshake::{self, Rejection};
use super::link::{self, LinkStream};
use crate::admission::ConnectionPermit;
use crate::cluster::{ClusterRefusal, FORWARDED_HEADER};
use crate::metrics::Metrics;
use crate::routes::AppState;
use actix_codec::Framed;
use actix_http::{h1, Request};
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use jamsocket_cluster::{Cluster, Owner};
use std::future::poll_fn;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// Once one side has closed, how long the other may take to close too (a client that vanished
/// without a word must not hold the relay forever).
const LINGER: Duration = Duration::from_secs(5);
/// How long the owner may take to answer a forwarded handshake (it may have to claim the room
/// and restore it first).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Forwards the handshake to `owner` and relays the connection until either side closes.
/// `permit` counts the connection against this node's limits while it lasts.
pub(crate) async fn relay(
    state: &AppState,
    cluster: &Cluster,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
    owner: Owner,
    permit: ConnectionPermit,
) {
    let metrics = state.settings.metrics.as_deref();
    let room = request.path().strip_prefix("/ws/").unwrap_or_default();
    // Connecting a link the first time may take up to 2 s before the client gets 502.
    let upstream = match link::open(&owner.advertise, &cluster.link_secret()).await {
        Ok(upstream) => upstream,
        Err(err) => {
            state.owners.forget(room);
            let cause = err.to_string();
            return unreachable(&mut framed, &request, owner, cause, metrics).await;
        }
    };
    let room = room.to_string();
    let head = request_head(&request, &cluster.node_id());
    let parts = framed.into_parts();
    let mut client = parts.io;
    if (&upstream).write_all(&head).await.is_err()
        || (&upstream).write_all(&parts.read_buf).await.is_err()
    {
        if let Some(metrics) = metrics {
            metrics.forward_failures.inc();
        }
        return;
    }
    if let Some(metrics) = metrics {
        metrics.forwarded_connections.inc();
    }
    drop((request, head, parts.read_buf));
    tracing::debug!(owner = %owner.node, "forwarding a connection to its room's owner");
    // The owner's answer: anything but 101 means the room is not (or no longer) its to serve
    // here, and the next client asks the directory again.
    let mut answer = BytesMut::new();
    let answered = poll_fn(|cx| upstream.poll_read_into(cx, &mut answer, 4096));
    match timeout(ANSWER_TIMEOUT, answered).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => {
            state.owners.forget(&room);
            if let Some(metrics) = metrics {
                metrics.forward_failures.inc();
            }
            return;
        }
    }
    if !answer.starts_with(b"HTTP/1.1 101") {
        state.owners.forget(&room);
    }
    if client.write_all(&answer).await.is_err() {
        return;
    }
    drop(answer);
    copy_both_ways(&mut client, &upstream).await;
    drop(permit);
}

/// Copies bytes both ways until both sides have closed, or one has and the other did not
/// follow within [`LINGER`]. (The owner's heartbeats find a silent client and close its
/// side; `copy_bidirectional` alone would then wait for the client forever.)
async fn copy_both_ways(client: &mut TcpStream, upstream: &LinkStream) {
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = (upstream, upstream);
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    let (mut up, mut down) = (std::pin::pin!(up), std::pin::pin!(down));
    tokio::select! {
        () = &mut up => drop(tokio::time::timeout(LINGER, down).await),
        () = &mut down => drop(tokio::time::timeout(LINGER, up).await),
    }
}

async fn unreachable(
    framed: &mut Framed<TcpStream, h1::Codec>,
    request: &Request,
    owner: Owner,
    cause: String,
    metrics: Option<&Metrics>,
) {
    if let Some(metrics) = metrics {
        metrics.forward_failures.inc();
    }
    let room = request.path().strip_prefix("/ws/").unwrap_or_default();
    tracing::warn!(room, owner = %owner.node, advertise = %owner.advertise, %cause, "cannot reach the room's owner");
    let refusal = ClusterRefusal::OwnerUnreachable {
        room: room.to_string(),
        node: owner.node,
        advertise: owner.advertise,
        cause,
    };
    handshake::refuse(framed, Rejection::Cluster(refusal), metrics).await;
}

/// The request line and headers as the owner receives them: the client's, with the peer's
/// address appended to `X-Forwarded-For` and this node named in [`FORWARDED_HEADER`].
fn request_head(request: &Request, node: &str) -> Vec<u8> {
    let mut head = Vec::with_capacity(1024);
    head.extend_from_slice(request.method().as_str().as_bytes());
    head.push(b' ');
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |target| target.as_str());
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let mut forwarded_for = Vec::new();
    for (name, value) in request.head().headers() {
        if name == "x-forwarded-for" {
            forwarded_for.push(value.as_bytes());
            continue;
        }
        if name == FORWARDED_HEADER {
            continue;
        }
        header(&mut head, name.as_str(), value.as_bytes());
    }
    let peer = request.peer_addr().map(|peer| peer.ip().to_string());
    let chain: Vec<&[u8]> = forwarded_for
        .into_iter()
        .chain(peer.as_deref().map(str::as_bytes))
        .collect();
    if !chain.is_empty() {
        header(&mut head, "x-forwarded-for", &chain.join(&b", "[..]));
    }
    header(&mut head, FORWARDED_HEADER, node.as_bytes());
    head.extend_from_slice(b"\r\n");
    head
}

fn header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}
