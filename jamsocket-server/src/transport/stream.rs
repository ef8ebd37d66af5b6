//! A connection's byte stream: the client's own TCP stream, or, for a client another cluster
//! node forwards, its stream on that node's [`link`](super::link).

use super::link::LinkStream;
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio_util::io::poll_read_buf;

#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Link(LinkStream),
}

/// The reading side of a [`Stream`].
pub(crate) enum Reader<'a> {
    Tcp(ReadHalf<'a>),
    Link(&'a LinkStream),
}

/// The writing side of a [`Stream`]: it writes without waiting, and says when it can again.
pub(crate) enum Writer<'a> {
    Tcp(WriteHalf<'a>),
    Link(&'a LinkStream),
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
    pub(crate) fn split(&mut self) -> (Reader<'_>, Writer<'_>) {
        match self {
            Stream::Tcp(stream) => {
                let (reader, writer) = stream.split();
                (Reader::Tcp(reader), Writer::Tcp(writer))
            }
            Stream::Link(stream) => (Reader::Link(stream), Writer::Link(stream)),
        }
    }

    /// Closes the writing side gracefully.
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => stream.shutdown().await,
            Stream::Link(stream) => {
                stream.finish();
                Ok(())
            }
        }
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => stream.read(buf).await,
            Stream::Link(stream) => stream.read(buf).await,
        }
    }
}

impl Reader<'_> {
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
}

impl Writer<'_> {
    pub(crate) fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            Writer::Tcp(stream) => stream.as_ref().try_write(data),
            Writer::Link(stream) => stream.try_write(data),
        }
    }

    /// Ready once the stream takes more.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            Writer::Tcp(stream) => stream.as_ref().writable().await,
            Writer::Link(stream) => stream.writable().await,
        }
    }
}
