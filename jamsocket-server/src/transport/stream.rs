//! A connection's byte stream: the client's own TCP stream, or, for a client another cluster
//! node forwards, its stream on that node's [`link`](super::link).

use super::link::LinkStream;
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::io::poll_read_buf;

#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Link(LinkStream),
}

/// The reading side of a [`Stream`].
pub(crate) enum Reader {
    Tcp(OwnedReadHalf),
    Link(Rc<LinkStream>),
}

/// The writing side of a [`Stream`]: it writes without waiting, and says when it can again.
/// Shared with the thread's [outlet](super::outlet), which writes what a room sends a client
/// while the connection's task sleeps.
pub(crate) enum Writer {
    Tcp(OwnedWriteHalf),
    Link(Rc<LinkStream>),
}

impl From<TcpStream> for Stream {
    fn from(stream: TcpStream) -> Stream {
        Stream::Tcp(stream)
    }
}

impl From<LinkStream> for Stream {
    fn from(stream: LinkStream) -> Stream {
        Stream::Link(stream)
    }
}

impl Stream {
    pub(crate) fn split(self) -> (Reader, Rc<Writer>) {
        match self {
            Stream::Tcp(stream) => {
                let (reader, writer) = stream.into_split();
                (Reader::Tcp(reader), Rc::new(Writer::Tcp(writer)))
            }
            Stream::Link(stream) => {
                let stream = Rc::new(stream);
                (Reader::Link(stream.clone()), Rc::new(Writer::Link(stream)))
            }
        }
    }
}

impl Reader {
    /// Reads what the stream has into `buf`, at most `limit` bytes, once it has something: a
    /// buffer is only reserved then (by `reserve`), so an idle connection holds none. `Ok(0)`
    /// means the peer closed the stream.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        limit: usize,
        reserve: impl FnOnce(&mut BytesMut),
    ) -> Poll<io::Result<usize>> {
        match self {
            Reader::Tcp(reader) => {
                ready!(reader.as_ref().poll_read_ready(cx))?;
                reserve(buf);
                let mut reader = reader.take(limit.max(1) as u64);
                // Unlike `try_read`, a short read here marks the socket drained: no extra
                // `recv` that would only say "would block".
                poll_read_buf(Pin::new(&mut reader), cx, buf)
            }
            Reader::Link(stream) => stream.poll_read_into(cx, buf, limit),
        }
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Tcp(reader) => reader.read(buf).await,
            Reader::Link(stream) => {
                let mut stream: &LinkStream = stream;
                stream.read(buf).await
            }
        }
    }
}

impl Writer {
    pub(crate) fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            Writer::Tcp(stream) => stream.try_write(data),
            Writer::Link(stream) => stream.try_write(data),
        }
    }

    /// Ready once the stream takes more.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            Writer::Tcp(stream) => stream.writable().await,
            Writer::Link(stream) => stream.writable().await,
        }
    }

    /// Closes the writing side gracefully.
    pub(crate) fn shutdown(&self) -> io::Result<()> {
        match self {
            Writer::Tcp(stream) => {
                socket2::SockRef::from(stream.as_ref()).shutdown(std::net::Shutdown::Write)
            }
            Writer::Link(stream) => {
                stream.finish();
                Ok(())
            }
        }
    }
}
