//! Forwarding a handshake to the node that owns its room: the request goes to the owner as the
//! client sent it (plus `X-Forwarded-For` and the [`FORWARDED_HEADER`]), on a stream of this
//! thread's [`link`](super::link) to the owner, then bytes are copied both ways until either
//! side closes. The owner checks everything else (origin, token, limits) and answers the
//! client itself, through this node.

use super::handshake::{self, Rejection};
use super::link::{self, LinkStream, Received};
use crate::admission::ConnectionPermit;
use crate::cluster::{ClusterRefusal, FORWARDED_HEADER};
use crate::metrics::Metrics;
use crate::routes::AppState;
use actix_codec::Framed;
use actix_http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_http::{h1, Request};
use actix_web::rt::net::TcpStream;
use bytes::{Buf, BytesMut};
use jamsocket_cluster::{Cluster, Owner};
use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::ReadHalf;
use tokio::time::timeout;
use tokio::time::Instant;
use tokio_util::io::poll_read_buf;

/// Once one side has closed, how long the other may take to close too (a client that vanished
/// without a word must not hold the relay forever).
const LINGER: Duration = Duration::from_secs(5);
/// What is read from a client at a time.
const READ_CHUNK: usize = 8 * 1024;
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
/// follow within [`LINGER`], or the owner reset the stream. (The owner's heartbeats find a
/// silent client and close its side; a client that neither reads nor sends would otherwise
/// hold the relay forever.)
///
/// What the owner sends goes from the stream's buffer straight to the client's socket, and
/// what the client sends is read only when it has sent something: an idle forwarded client
/// holds no buffer here (two 8 KiB ones with `tokio::io::copy`).
async fn copy_both_ways(client: &mut TcpStream, upstream: &LinkStream) {
    let (mut reader, mut writer) = client.split();
    let mut to_owner = BytesMut::new();
    let (mut client_open, mut owner_open) = (true, true);
    // The client's socket is full: what the owner sent waits in the stream (its window).
    let mut blocked = false;
    let linger = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(linger);
    let mut lingering = false;
    loop {
        if owner_open && !blocked {
            match upstream.write_received(|bytes| writer.as_ref().try_write(bytes)) {
                Ok(Received::Drained) => {}
                Ok(Received::Blocked) => blocked = true,
                Ok(Received::Finished) => {
                    owner_open = false;
                    let _ = writer.shutdown().await;
                }
                Err(_) => return,
            }
        }
        while !to_owner.is_empty() {
            match upstream.try_write(&to_owner) {
                Ok(n) => to_owner.advance(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        if to_owner.is_empty() && to_owner.capacity() > 0 {
            to_owner = BytesMut::new();
        }
        if !client_open && !owner_open {
            return;
        }
        if (!client_open || !owner_open) && !lingering {
            lingering = true;
            linger.as_mut().reset(Instant::now() + LINGER);
        }
        tokio::select! {
            () = &mut linger, if lingering => return,
            () = upstream.reset(), if blocked && !lingering => {
                lingering = true;
                linger.as_mut().reset(Instant::now() + LINGER);
            }
            ready = writer.as_ref().writable(), if blocked => {
                if ready.is_err() {
                    return;
                }
                blocked = false;
            }
            () = poll_fn(|cx| upstream.poll_received(cx)), if owner_open && !blocked => {}
            ready = upstream.writable(), if !to_owner.is_empty() => {
                if ready.is_err() {
                    return;
                }
            }
            read = poll_fn(|cx| read_client(cx, &mut reader, &mut to_owner)), if client_open && to_owner.is_empty() => {
                match read {
                    Ok(0) => {
                        client_open = false;
                        upstream.finish();
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }
    }
}

/// Reads what the client sent, once it sent something (the buffer is reserved only then).
fn read_client(
    cx: &mut Context<'_>,
    reader: &mut ReadHalf<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    ready!(reader.as_ref().poll_read_ready(cx))?;
    buf.reserve(READ_CHUNK);
    poll_read_buf(Pin::new(reader), cx, buf)
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
