//! The node link: one TCP connection from a cluster node to a room's owner that carries every
//! client connection the node forwards there, each as a stream of its own.
//!
//! A forwarded connection used to get a TCP connection of its own to the owner. Every frame
//! the owner sent then cost a `send` on the owner and a `recv` on the forwarding node, per
//! client. On a link, what the owner writes for all the clients it serves through one node
//! goes out in one `send`, and arrives in one `recv`: a broadcast to ten forwarded clients of a
//! room costs the pair of nodes one such round instead of ten.
//!
//! The bytes of each stream are the client's own, both ways: the owner reads the client's
//! handshake request from its stream and answers it as it would a direct connection (through
//! [`super::upgrade`]), and the forwarding node copies what comes back to the client's socket.
//!
//! # Protocol
//!
//! A node opens a link with `GET /_jamsocket/link` (with `Upgrade: websocket`, the only
//! upgrade Actix hands over) and the cluster's secret in [`SECRET_HEADER`]; the owner answers
//! 101 with `Upgrade: jamsocket-link/1` if it is a cluster node with the same secret, and 403
//! otherwise. Only the cluster's nodes (whoever can read its Redis) open links, so a link's
//! streams, and the memory each may hold ([`WINDOW`]), are theirs alone. Then both sides send frames of a 9-byte header (kind,
//! stream id and length, big-endian) and a payload:
//!
//! | kind | payload | meaning |
//! |---|---|---|
//! | `OPEN` | none | a new stream (only the connecting node opens them) |
//! | `DATA` | bytes | the stream's next bytes |
//! | `CREDIT` | none; the length field is the credit | the sender may send that many bytes more |
//! | `FIN` | none | the sender will send nothing more on the stream |
//! | `RESET` | none | the stream is gone |
//!
//! Each side may have at most [`WINDOW`] bytes of a stream that the other has not consumed yet:
//! a client that does not read stops its own stream, never the link. A peer that sends more
//! than its credit, or a malformed frame, loses the link.

use crate::log_throttle::warn_throttled;
use crate::sync::lock;
use bytes::{Buf, BufMut, BytesMut};
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The path a node asks for to open a link.
pub(crate) const LINK_PATH: &str = "/_jamsocket/link";
/// The header that carries the cluster's link secret ([`Cluster::link_secret`]).
///
/// [`Cluster::link_secret`]: jamsocket_cluster::Cluster::link_secret
pub(crate) const SECRET_HEADER: &str = "x-jamsocket-link-secret";
/// The `Upgrade` token of a link's 101 answer.
pub(crate) const LINK_PROTOCOL: &str = "jamsocket-link/1";
/// The most bytes of one stream either side may send before the other consumes them.
pub(crate) const WINDOW: u32 = 128 * 1024;
/// Consumed bytes are handed back as credit once this many have gathered.
const GRANT_AT: u32 = WINDOW / 4;
const HEADER_BYTES: usize = 9;
/// How long opening a link (connecting and the 101) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most a 101 answer's head may take.
const MAX_ANSWER_BYTES: usize = 8 * 1024;
const READ_CHUNK: usize = 64 * 1024;

const OPEN: u8 = 0;
const DATA: u8 = 1;
const CREDIT: u8 = 2;
const FIN: u8 = 3;
const RESET: u8 = 4;

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("cannot connect to `{addr}`: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("no link to `{addr}` within {CONNECT_TIMEOUT:?}")]
    Timeout { addr: String },
    #[error("`{addr}` refused a node link (is it a cluster node of this version?): {answer}")]
    Refused { addr: String, answer: String },
    #[error("link I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("bad link frame (kind {kind}, stream {stream}): {problem}")]
    Protocol {
        kind: u8,
        stream: u32,
        problem: &'static str,
    },
}

/// What both ends of a link share: the bytes waiting to be written, and the open streams.
#[derive(Debug, Default)]
struct Shared {
    out: Mutex<Out>,
    streams: Mutex<FxHashMap<u32, Arc<StreamState>>>,
}

#[derive(Debug, Default)]
struct Out {
    buf: BytesMut,
    /// The writer task, when it waits for bytes.
    waker: Option<Waker>,
    closed: bool,
}

#[derive(Debug)]
struct StreamState {
    id: u32,
    inner: Mutex<StreamInner>,
}

#[derive(Debug)]
struct StreamInner {
    /// Received and not read yet: copied out of the link's read buffer, so that what a stream
    /// holds is what its window counts.
    inbound: BytesMut,
    /// Read and not yet handed back as credit.
    consumed: u32,
    /// How much more the peer may send (received bytes count until they are handed back).
    receivable: u32,
    /// How much more this side may send.
    credit: u32,
    received_fin: bool,
    sent_fin: bool,
    /// The peer reset the stream, or the link ended.
    reset: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    /// Woken when the stream is reset, for a task that waits on neither reading nor writing.
    reset_waker: Option<Waker>,
}

impl StreamInner {
    /// Takes `n` read bytes off the front; returns the credit to hand back now, if any.
    fn consume(&mut self, n: usize) -> u32 {
        self.inbound.advance(n);
        // An idle stream holds no buffer.
        if self.inbound.is_empty() {
            self.inbound = BytesMut::new();
        }
        self.consumed += n as u32;
        if self.consumed < GRANT_AT {
            return 0;
        }
        let grant = std::mem::take(&mut self.consumed);
        self.receivable += grant;
        grant
    }
}

/// What [`LinkStream::write_received`] left.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Nothing more for now.
    Drained,
    /// The writer would block with bytes left.
    Blocked,
    /// Everything was written and the peer has finished.
    Finished,
}

impl StreamState {
    fn new(id: u32) -> StreamState {
        StreamState {
            id,
            inner: Mutex::new(StreamInner {
                inbound: BytesMut::new(),
                consumed: 0,
                receivable: WINDOW,
                credit: WINDOW,
                received_fin: false,
                sent_fin: false,
                reset: false,
                read_waker: None,
                write_waker: None,
                reset_waker: None,
            }),
        }
    }

    fn reset(&self) {
        let wakers = {
            let mut inner = lock(&self.inner);
            inner.reset = true;
            [
                inner.read_waker.take(),
                inner.write_waker.take(),
                inner.reset_waker.take(),
            ]
        };
        wakers.into_iter().flatten().for_each(Waker::wake);
    }
}

impl Shared {
    /// Queues a frame for the writer task. `false` if the link has ended.
    fn send(&self, kind: u8, stream: u32, len: u32, payload: &[u8]) -> bool {
        let waker = {
            let mut out = lock(&self.out);
            if out.closed {
                return false;
            }
            out.buf.reserve(HEADER_BYTES + payload.len());
            out.buf.put_u8(kind);
            out.buf.put_u32(stream);
            out.buf.put_u32(len);
            out.buf.put_slice(payload);
            out.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Ends the link: nothing more is written, and every stream is reset.
    fn close(&self) {
        let waker = {
            let mut out = lock(&self.out);
            out.closed = true;
            out.buf = BytesMut::new();
            out.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        let streams = std::mem::take(&mut *lock(&self.streams));
        for stream in streams.into_values() {
            stream.reset();
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.out).closed
    }

    /// Applies one frame from the peer. `open` serves a stream the peer opened (owner side
    /// only; the connecting side is given `None`, and an `OPEN` from the owner is an error).
    fn receive(
        self: &Arc<Self>,
        kind: u8,
        id: u32,
        len: u32,
        payload: &[u8],
        open: &mut Option<&mut dyn FnMut(LinkStream)>,
    ) -> Result<(), LinkError> {
        let bad = |problem| LinkError::Protocol {
            kind,
            stream: id,
            problem,
        };
        match kind {
            DATA | CREDIT => {}
            OPEN | FIN | RESET if len == 0 => {}
            OPEN | FIN | RESET => return Err(bad("a length on a frame without one")),
            _ => return Err(bad("unknown kind")),
        }
        if kind == OPEN {
            let Some(open) = open else {
                return Err(bad("only the connecting node opens streams"));
            };
            // A link whose writer failed takes no new streams.
            if self.is_closed() {
                return Ok(());
            }
            let state = Arc::new(StreamState::new(id));
            match lock(&self.streams).entry(id) {
                Entry::Occupied(_) => return Err(bad("the stream is open already")),
                Entry::Vacant(vacant) => drop(vacant.insert(state.clone())),
            }
            let stream = LinkStream {
                link: self.clone(),
                state,
            };
            open(stream);
            return Ok(());
        }
        let state = lock(&self.streams).get(&id).cloned();
        // A stream dropped here, whose peer did not know yet: its `RESET` is on its way.
        let Some(state) = state else {
            return Ok(());
        };
        let wake = {
            let mut inner = lock(&state.inner);
            match kind {
                DATA => {
                    if len > inner.receivable {
                        return Err(bad("more data than the stream's credit"));
                    }
                    if inner.received_fin {
                        return Err(bad("data after FIN"));
                    }
                    // Nothing to read (an empty piece would read as the end of the stream).
                    if len == 0 {
                        return Ok(());
                    }
                    inner.receivable -= len;
                    inner.inbound.extend_from_slice(payload);
                    inner.read_waker.take()
                }
                CREDIT => {
                    inner.credit = inner.credit.saturating_add(len);
                    if inner.credit > WINDOW {
                        return Err(bad("credit beyond the window"));
                    }
                    inner.write_waker.take()
                }
                FIN => {
                    inner.received_fin = true;
                    inner.read_waker.take()
                }
                _ => {
                    drop(inner);
                    remove(&self.streams, &state);
                    state.reset();
                    None
                }
            }
        };
        if let Some(waker) = wake {
            waker.wake();
        }
        Ok(())
    }
}

/// Reads frames from `socket` (after `buf`, what came with the handshake) until it closes or
/// fails, handing streams the peer opens to `open`; then ends the link.
async fn read_frames(
    shared: Arc<Shared>,
    mut socket: OwnedReadHalf,
    mut buf: BytesMut,
    mut open: Option<&mut dyn FnMut(LinkStream)>,
) -> Result<(), LinkError> {
    let _closing = CloseOnDrop(shared.clone());
    loop {
        while buf.len() >= HEADER_BYTES {
            let kind = buf[0];
            let id = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
            let len = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]);
            let payload_len = if kind == DATA { len as usize } else { 0 };
            if kind == DATA && len > WINDOW {
                return Err(LinkError::Protocol {
                    kind,
                    stream: id,
                    problem: "a frame larger than the window",
                });
            }
            if buf.len() < HEADER_BYTES + payload_len {
                buf.reserve(HEADER_BYTES + payload_len - buf.len());
                break;
            }
            let payload = &buf[HEADER_BYTES..HEADER_BYTES + payload_len];
            shared.receive(kind, id, len, payload, &mut open)?;
            buf.advance(HEADER_BYTES + payload_len);
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        if socket.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Ends the link when its reader or writer task ends, however it ends (a task dropped with its
/// worker thread included): every stream is reset, and no stream waits on a link that is gone.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Removes `state` from `streams` if it is still the stream of its id.
fn remove(streams: &Mutex<FxHashMap<u32, Arc<StreamState>>>, state: &Arc<StreamState>) {
    let mut streams = lock(streams);
    if streams
        .get(&state.id)
        .is_some_and(|current| Arc::ptr_eq(current, state))
    {
        streams.remove(&state.id);
    }
}

/// Writes what the link's streams queue, everything queued at that moment in one write,
/// until the link ends.
async fn write_frames(shared: Arc<Shared>, mut socket: OwnedWriteHalf) {
    let _closing = CloseOnDrop(shared.clone());
    let mut spare = BytesMut::new();
    loop {
        let more = poll_fn(|cx| {
            let mut out = lock(&shared.out);
            if out.closed {
                return Poll::Ready(false);
            }
            if out.buf.is_empty() {
                out.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            std::mem::swap(&mut out.buf, &mut spare);
            Poll::Ready(true)
        })
        .await;
        if !more {
            break;
        }
        if socket.write_all(&spare).await.is_err() {
            break;
        }
        spare.clear();
        if spare.capacity() > 4 * READ_CHUNK {
            spare = BytesMut::new();
        }
    }
    let _ = socket.shutdown().await;
}

/// One stream of a link: the bytes of one forwarded client connection.
#[derive(Debug)]
pub(crate) struct LinkStream {
    link: Arc<Shared>,
    state: Arc<StreamState>,
}

impl LinkStream {
    /// Moves up to `limit` received bytes into `buf` (at least one, if `limit` is 0).
    /// `Ok(0)` once the peer has finished and everything was read.
    pub(crate) fn poll_read_into(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        limit: usize,
    ) -> Poll<io::Result<usize>> {
        self.poll_read_with(cx, limit, |bytes| buf.extend_from_slice(bytes))
    }

    /// Hands up to `limit` received bytes to `put`, in pieces.
    fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        limit: usize,
        mut put: impl FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        let limit = limit.max(1);
        let (read, grant) = {
            let mut inner = lock(&self.state.inner);
            if inner.inbound.is_empty() {
                if inner.reset {
                    return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
                }
                if inner.received_fin {
                    return Poll::Ready(Ok(0));
                }
                inner.read_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let read = inner.inbound.len().min(limit);
            put(&inner.inbound[..read]);
            (read, inner.consume(read))
        };
        self.grant(grant);
        Poll::Ready(Ok(read))
    }

    /// Hands what was received to `write` (a socket's `try_write`) until it would block or
    /// nothing is left, with no buffer in between.
    pub(crate) fn write_received(
        &self,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<Received> {
        let (outcome, grant) = {
            let mut inner = lock(&self.state.inner);
            let mut written = 0;
            let outcome = loop {
                if written == inner.inbound.len() {
                    break if inner.reset {
                        Err(io::ErrorKind::ConnectionReset.into())
                    } else if inner.received_fin {
                        Ok(Received::Finished)
                    } else {
                        Ok(Received::Drained)
                    };
                }
                match write(&inner.inbound[written..]) {
                    Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => written += n,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        break Ok(Received::Blocked)
                    }
                    Err(err) => break Err(err),
                }
            };
            (outcome, inner.consume(written))
        };
        self.grant(grant);
        outcome
    }

    /// Ready once something was received, or the stream finished or was reset.
    pub(crate) fn poll_received(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.state.inner);
        if !inner.inbound.is_empty() || inner.received_fin || inner.reset {
            return Poll::Ready(());
        }
        inner.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn grant(&self, grant: u32) {
        if grant > 0 {
            self.link.send(CREDIT, self.state.id, grant, &[]);
        }
    }

    /// Queues as much of `data` as the stream's credit allows, without waiting.
    pub(crate) fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let n = {
            let mut inner = lock(&self.state.inner);
            if inner.reset || inner.sent_fin {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = data.len().min(inner.credit as usize);
            if n == 0 && !data.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            inner.credit -= n as u32;
            n
        };
        if n > 0 && !self.link.send(DATA, self.state.id, n as u32, &data[..n]) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(n)
    }

    /// Ready once the stream may send again (or has failed).
    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = lock(&self.state.inner);
        if inner.reset {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if inner.credit > 0 {
            return Poll::Ready(Ok(()));
        }
        inner.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub(crate) async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// Resolves once the stream is reset (by the peer, or with its link).
    pub(crate) async fn reset(&self) {
        poll_fn(|cx| {
            let mut inner = lock(&self.state.inner);
            if inner.reset {
                return Poll::Ready(());
            }
            inner.reset_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }

    /// Tells the peer nothing more comes from this side.
    pub(crate) fn finish(&self) {
        let first = {
            let mut inner = lock(&self.state.inner);
            !std::mem::replace(&mut inner.sent_fin, true) && !inner.reset
        };
        if first {
            self.link.send(FIN, self.state.id, 0, &[]);
        }
    }
}

impl Drop for LinkStream {
    fn drop(&mut self) {
        remove(&self.link.streams, &self.state);
        let inner = lock(&self.state.inner);
        let done = inner.reset || (inner.sent_fin && inner.received_fin);
        drop(inner);
        if !done {
            self.link.send(RESET, self.state.id, 0, &[]);
        }
    }
}

impl AsyncRead for &LinkStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let limit = buf.remaining();
        if limit == 0 {
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(self.poll_read_with(cx, limit, |bytes| buf.put_slice(bytes)))?;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for &LinkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.try_write(data) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.poll_write_ready(cx))?;
                }
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.finish();
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for LinkStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }
}

impl AsyncWrite for LinkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.finish();
        Poll::Ready(Ok(()))
    }
}

/// The connecting end of a link, on the forwarding node.
#[derive(Debug)]
struct Link {
    shared: Arc<Shared>,
    next_id: Cell<u32>,
}

impl Link {
    /// Connects to the node at `addr` and starts the link's tasks on this thread.
    async fn connect(addr: &str, secret: &str) -> Result<Link, LinkError> {
        let handshake = async {
            let mut socket =
                TcpStream::connect(addr)
                    .await
                    .map_err(|source| LinkError::Connect {
                        addr: addr.to_string(),
                        source,
                    })?;
            keep_alive(&socket);
            let request = format!(
                "GET {LINK_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{SECRET_HEADER}: {secret}\r\n\r\n"
            );
            socket.write_all(request.as_bytes()).await?;
            let mut answer = BytesMut::with_capacity(1024);
            let end = loop {
                if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
                if answer.len() > MAX_ANSWER_BYTES || socket.read_buf(&mut answer).await? == 0 {
                    return Err(refused(addr, &answer));
                }
            };
            let upgrade = format!("upgrade: {LINK_PROTOCOL}\r\n");
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            if !answer.starts_with(b"HTTP/1.1 101") || !head.contains(&upgrade) {
                return Err(refused(addr, &answer));
            }
            answer.advance(end);
            Ok((socket, answer))
        };
        let (socket, early) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| LinkError::Timeout {
                addr: addr.to_string(),
            })??;
        let shared = Arc::new(Shared::default());
        let (read, write) = socket.into_split();
        let reading = shared.clone();
        let peer = addr.to_string();
        tokio::task::spawn_local(async move {
            if let Err(err) = read_frames(reading, read, early, None).await {
                tracing::warn!(node = %peer, %err, "node link lost");
            }
        });
        tokio::task::spawn_local(write_frames(shared.clone(), write));
        Ok(Link {
            shared,
            next_id: Cell::new(1),
        })
    }

    /// A new stream; fails once the link's stream ids are used up (a new link takes over).
    fn open(&self) -> io::Result<LinkStream> {
        let id = self.next_id.get();
        if id == u32::MAX {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        self.next_id.set(id + 1);
        let state = Arc::new(StreamState::new(id));
        lock(&self.shared.streams).insert(id, state.clone());
        let stream = LinkStream {
            link: self.shared.clone(),
            state,
        };
        if !self.shared.send(OPEN, id, 0, &[]) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(stream)
    }
}

/// No delay for small frames, and a link whose peer vanished (a host gone, a connection
/// dropped by a firewall) is found within about 30 s, idle or not: keepalive probes while it is
/// idle, and a limit on how long sent bytes may wait for an acknowledgement.
fn keep_alive(socket: &TcpStream) {
    let _ = socket.set_nodelay(true);
    let socket = socket2::SockRef::from(socket);
    let probes = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5))
        .with_retries(4);
    let _ = socket.set_tcp_keepalive(&probes);
    #[cfg(target_os = "linux")]
    let _ = socket.set_tcp_user_timeout(Some(Duration::from_secs(30)));
}

fn refused(addr: &str, answer: &[u8]) -> LinkError {
    let line = answer.split(|&b| b == b'\r').next().unwrap_or_default();
    LinkError::Refused {
        addr: addr.to_string(),
        answer: String::from_utf8_lossy(line).into_owned(),
    }
}

thread_local! {
    /// This thread's links, by the address of the node they lead to.
    static LINKS: RefCell<HashMap<String, Rc<tokio::sync::OnceCell<Link>>>> =
        RefCell::new(HashMap::new());
}

/// Opens a stream to the node at `addr`, on this thread's link to it (connecting one with
/// `secret` if there is none, or if the last one ended).
pub(crate) async fn open(addr: &str, secret: &str) -> Result<LinkStream, LinkError> {
    for _ in 0..2 {
        let cell =
            LINKS.with_borrow_mut(|links| links.entry(addr.to_string()).or_default().clone());
        let link = cell.get_or_try_init(|| Link::connect(addr, secret)).await?;
        if !link.shared.is_closed() {
            if let Ok(stream) = link.open() {
                return Ok(stream);
            }
        }
        LINKS.with_borrow_mut(|links| {
            if links
                .get(addr)
                .is_some_and(|current| Rc::ptr_eq(current, &cell))
            {
                links.remove(addr);
            }
        });
    }
    Err(LinkError::Io(io::ErrorKind::BrokenPipe.into()))
}

/// Serves the accepting end of a link on this thread: `socket` answered the link's upgrade,
/// `early` is what came after the request. Each stream the peer opens goes to `serve`, while
/// fewer than `max_streams` are open; more are reset.
pub(crate) fn accept(
    socket: TcpStream,
    early: BytesMut,
    max_streams: usize,
    serve: impl Fn(LinkStream) + 'static,
) {
    keep_alive(&socket);
    let peer = socket.peer_addr().ok();
    let shared = Arc::new(Shared::default());
    let (read, write) = socket.into_split();
    let reading = shared.clone();
    tokio::task::spawn_local(async move {
        let mut open = |stream: LinkStream| {
            // The stream is counted already. Dropping it resets it.
            if lock(&stream.link.streams).len() > max_streams {
                warn_throttled!(
                    ?peer,
                    max_streams,
                    "node link: too many streams; resetting one"
                );
                return;
            }
            serve(stream);
        };
        tracing::debug!(?peer, "node link accepted");
        match read_frames(reading, read, early, Some(&mut open)).await {
            Ok(()) => tracing::debug!(?peer, "node link closed"),
            Err(err) => tracing::warn!(?peer, %err, "node link lost"),
        }
    });
    tokio::task::spawn_local(write_frames(shared, write));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Arc<Shared>, LinkStream) {
        let shared = Arc::new(Shared::default());
        let state = Arc::new(StreamState::new(7));
        lock(&shared.streams).insert(7, state.clone());
        let stream = LinkStream {
            link: shared.clone(),
            state,
        };
        (shared, stream)
    }

    fn queued(shared: &Shared) -> BytesMut {
        std::mem::take(&mut lock(&shared.out).buf)
    }

    #[test]
    fn writes_stop_at_the_window_and_resume_with_credit() {
        let (shared, stream) = pair();
        let big = vec![1u8; WINDOW as usize + 10];
        assert_eq!(stream.try_write(&big).unwrap(), WINDOW as usize);
        let err = stream.try_write(b"more").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let frame = queued(&shared);
        assert_eq!(frame[0], DATA);
        assert_eq!(frame.len(), HEADER_BYTES + WINDOW as usize);
        let mut none = None;
        shared.receive(CREDIT, 7, 4, &[], &mut none).unwrap();
        assert_eq!(stream.try_write(b"more").unwrap(), 4);
    }

    #[test]
    fn data_beyond_the_credit_is_a_protocol_error() {
        let (shared, _stream) = pair();
        let mut none = None;
        let full = vec![0u8; WINDOW as usize];
        shared.receive(DATA, 7, WINDOW, &full, &mut none).unwrap();
        let err = shared.receive(DATA, 7, 1, b"x", &mut none).unwrap_err();
        assert!(err.to_string().contains("credit"), "{err}");
        let err = shared.receive(OPEN, 9, 0, &[], &mut none).unwrap_err();
        assert!(err.to_string().contains("connecting node"), "{err}");
    }

    #[test]
    fn reading_hands_credit_back_in_batches() {
        let (shared, stream) = pair();
        let mut none = None;
        let chunk = vec![0u8; GRANT_AT as usize / 2];
        for _ in 0..2 {
            shared
                .receive(DATA, 7, chunk.len() as u32, &chunk, &mut none)
                .unwrap();
        }
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut buf = BytesMut::new();
        let read = stream.poll_read_into(&mut cx, &mut buf, chunk.len());
        assert!(matches!(read, Poll::Ready(Ok(n)) if n == chunk.len()));
        assert!(queued(&shared).is_empty(), "no credit for half a grant");
        let read = stream.poll_read_into(&mut cx, &mut buf, usize::MAX);
        assert!(matches!(read, Poll::Ready(Ok(n)) if n == chunk.len()));
        let frame = queued(&shared);
        assert_eq!(frame[0], CREDIT);
        assert_eq!(
            u32::from_be_bytes(frame[5..9].try_into().unwrap()),
            GRANT_AT
        );
        assert!(stream.poll_read_into(&mut cx, &mut buf, 10).is_pending());
        shared.receive(FIN, 7, 0, &[], &mut none).unwrap();
        assert!(matches!(
            stream.poll_read_into(&mut cx, &mut buf, 10),
            Poll::Ready(Ok(0))
        ));
    }

    #[test]
    fn received_bytes_go_straight_to_a_writer_until_it_blocks() {
        let (shared, stream) = pair();
        let mut none = None;
        let chunk = vec![7u8; GRANT_AT as usize];
        shared
            .receive(DATA, 7, chunk.len() as u32, &chunk, &mut none)
            .unwrap();
        // A socket that takes 1,000 bytes, then would block.
        let mut taken = 0;
        let mut socket = |bytes: &[u8]| {
            if taken == 1_000 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = bytes.len().min(1_000 - taken);
            taken += n;
            Ok(n)
        };
        assert_eq!(
            stream.write_received(&mut socket).unwrap(),
            Received::Blocked
        );
        assert!(
            queued(&shared).is_empty(),
            "no credit before a quarter window is out"
        );
        let rest = std::cell::Cell::new(0);
        let all = |bytes: &[u8]| {
            rest.set(rest.get() + bytes.len());
            Ok(bytes.len())
        };
        assert_eq!(stream.write_received(all).unwrap(), Received::Drained);
        assert_eq!(rest.get(), chunk.len() - 1_000);
        assert_eq!(queued(&shared)[0], CREDIT);
        shared.receive(FIN, 7, 0, &[], &mut none).unwrap();
        assert_eq!(stream.write_received(all).unwrap(), Received::Finished);
        // Bytes sent before a reset still go out; then the reset is reported.
        let (shared, stream) = pair();
        shared.receive(DATA, 7, 3, b"bye", &mut none).unwrap();
        shared.receive(RESET, 7, 0, &[], &mut none).unwrap();
        let mut out = Vec::new();
        let err = stream
            .write_received(|bytes| {
                out.extend_from_slice(bytes);
                Ok(bytes.len())
            })
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(out, b"bye");
    }

    #[test]
    fn a_stream_dropped_early_is_reset_and_a_closed_link_fails_its_streams() {
        let (shared, stream) = pair();
        drop(stream);
        let frame = queued(&shared);
        assert_eq!(frame[0], RESET);
        assert!(lock(&shared.streams).is_empty());
        let (shared, stream) = pair();
        shared.close();
        let err = stream.try_write(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
