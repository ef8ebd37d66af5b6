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
use actix_http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_http::{h1, Request};
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use jamsocket_cluster::{Cluster, Owner};
use std::future::poll_fn;
use std::net::IpAddr;
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
    framed: Framed<TcpStream, h1::Codec>,
    owner: Owner,
    permit: ConnectionPermit,
) {
    let metrics = state.settings.metrics.as_deref();
    let room = request.path().strip_prefix("/ws/").unwrap_or_default();
    let head = request_head(&request, &cluster.node_id());
    let mut parts = framed.into_parts();
    let mut answer = BytesMut::new();
    // A stream that fails before the owner answers found its link broken (the owner restarted,
    // say): the request goes again, once, on a new link.
    let mut cause = String::new();
    let mut upstream = None;
    for _ in 0..2 {
        // Connecting a link may take up to 2 s before the client gets 502.
        let stream = match link::open(&owner.advertise, &cluster.link_secret()).await {
            Ok(stream) => stream,
            Err(err) => {
                cause = err.to_string();
                break;
            }
        };
        let sent = (&stream).write_all(&head).await.is_ok()
            && (&stream).write_all(&parts.read_buf).await.is_ok();
        let answered = poll_fn(|cx| stream.poll_read_into(cx, &mut answer, 4096));
        match timeout(ANSWER_TIMEOUT, answered).await {
            Ok(Ok(n)) if sent && n > 0 => {
                upstream = Some(stream);
                break;
            }
            Ok(_) => cause = "the link to it broke".into(),
            Err(_) => {
                cause = format!("no answer within {ANSWER_TIMEOUT:?}");
                break;
            }
        }
    }
    let Some(upstream) = upstream else {
        state.owners.forget(room);
        let mut framed = Framed::from_parts(parts);
        return unreachable(&mut framed, &request, owner, cause, metrics).await;
    };
    if let Some(metrics) = metrics {
        metrics.forwarded_connections.inc();
    }
    tracing::debug!(owner = %owner.node, "forwarded a connection to its room's owner");
    // 503: the room is not (or no longer) the owner's to serve, or the owner is leaving; the
    // next client asks the directory again.
    if answer.starts_with(b"HTTP/1.1 503") {
        state.owners.forget(room);
    }
    drop((request, head));
    let mut client = parts.io;
    parts.read_buf = BytesMut::new();
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
        // The owner is gone, or gave up on the client: what it sent before goes out if the
        // client takes it in time. (A client that neither reads nor sends would otherwise
        // hold both copies forever.)
        () = upstream.reset() => drop(tokio::time::timeout(LINGER, &mut down).await),
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

/// On the owner: the client's address as the forwarding node saw it, which that node appended
/// to `X-Forwarded-For` ([`request_head`]). It is taken off the list, so that the client's
/// address and the rest of the list read as they did on that node, and per-address limits
/// count the client rather than the node. Only for requests on a node link: only nodes of the
/// cluster open those.
pub(crate) fn forwarding_peer(headers: &mut HeaderMap) -> Option<IpAddr> {
    let name = HeaderName::from_static("x-forwarded-for");
    let chain = headers.get(&name)?.to_str().ok()?.to_string();
    let (rest, last) = match chain.rsplit_once(',') {
        Some((rest, last)) => (rest.trim(), last.trim()),
        None => ("", chain.trim()),
    };
    let peer = last.parse().ok()?;
    match HeaderValue::from_str(rest) {
        Ok(rest) if !rest.is_empty() => drop(headers.insert(name, rest)),
        _ => drop(headers.remove(name)),
    }
    Some(peer)
}

fn header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            let name = HeaderName::from_static("x-forwarded-for");
            headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_forwarding_nodes_hop_is_taken_off_the_chain() {
        let mut headers = chain(Some("203.0.113.7, 10.0.0.5"));
        assert_eq!(forwarding_peer(&mut headers), "10.0.0.5".parse().ok());
        assert_eq!(headers.get("x-forwarded-for").unwrap(), "203.0.113.7");
        assert_eq!(forwarding_peer(&mut headers), "203.0.113.7".parse().ok());
        assert!(headers.get("x-forwarded-for").is_none());
        assert_eq!(forwarding_peer(&mut headers), None);
        let mut headers = chain(Some("::1"));
        assert_eq!(forwarding_peer(&mut headers), "::1".parse().ok());
        let mut headers = chain(Some("not an address"));
        assert_eq!(forwarding_peer(&mut headers), None);
        assert!(headers.get("x-forwarded-for").is_some(), "left as it was");
    }
}
