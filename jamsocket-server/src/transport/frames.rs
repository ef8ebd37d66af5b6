//! WebSocket frames on one connection: the socket's two buffers, decoding what the client sent
//! into whole messages (joining fragments, checking sizes from frame headers, checking UTF-8)
//! and encoding what goes out. Everything but the few socket calls works on buffers alone and
//! is tested without sockets.

use super::frame_header::{self, HeaderError};
use super::stream::{Reader, Writer};
use crate::close_frame::{code, CloseFrame};
use crate::rooms::Outbound;
use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, Message, ProtocolError};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::timeout;

/// After our close frame, how long we read (and discard) what the client still sends, so that
/// closing the socket does not reset the connection before the client has read our frame.
const LINGER: Duration = Duration::from_millis(100);
/// The first byte of a whole text frame (FIN, opcode 1) and of a whole binary frame.
const TEXT: u8 = 0x81;
const BINARY: u8 = 0x82;
/// Space reserved for each read from the socket.
const READ_CHUNK: usize = 4 * 1024;
/// A read buffer larger than this is dropped once the message that needed it is complete.
const LARGE_READ_BUF: usize = 16 * READ_CHUNK;
/// Most bytes of a close reason: a control frame carries at most 125 bytes, two of them the code.
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// What the client sent, once a frame (or the last fragment of a message) is complete.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Text(ByteString),
    Binary(Bytes),
    /// A fragment of a message that is not complete yet.
    Fragment,
    Ping(Bytes),
    Pong,
    /// The client's close frame, with its code if it gave one.
    Close(Option<u16>),
}

/// A frame that ends the connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A message, or a frame header, is larger than the limit.
    TooLarge { max: usize },
    /// A control frame announced more than 125 bytes.
    ControlTooLong { len: u64 },
    /// A text message is not UTF-8.
    InvalidUtf8,
    /// Anything else the codec refused.
    Protocol(String),
}

impl FrameError {
    /// The close frame the client gets for it.
    pub(super) fn close_frame(&self) -> CloseFrame {
        match self {
            FrameError::TooLarge { max } => {
                CloseFrame::new(code::TOO_BIG, format!("message larger than {max} bytes"))
            }
            FrameError::ControlTooLong { len } => CloseFrame::new(
                code::PROTOCOL,
                format!("control frame of {len} bytes (at most 125)"),
            ),
            FrameError::InvalidUtf8 => {
                CloseFrame::new(code::INVALID_PAYLOAD, "text message is not valid UTF-8")
            }
            FrameError::Protocol(err) => {
                CloseFrame::new(code::PROTOCOL, format!("protocol error: {err}"))
            }
        }
    }
}

/// A text or binary message arriving in fragments.
#[derive(Debug)]
struct Fragments {
    text: bool,
    data: BytesMut,
}

/// The frame codec, the socket's two buffers and the fragments of a message under way.
#[derive(Debug)]
pub(crate) struct Frames {
    codec: Codec,
    max_message_bytes: usize,
    pub read_buf: BytesMut,
    pub write_buf: BytesMut,
    fragments: Option<Fragments>,
}

impl Frames {
    /// Frames for messages of at most `max_message_bytes`; `read_buf` holds what the client
    /// sent after its handshake request, if anything.
    pub(super) fn new(max_message_bytes: usize, read_buf: BytesMut) -> Frames {
        Frames {
            codec: Codec::new().max_size(max_message_bytes),
            max_message_bytes,
            read_buf,
            write_buf: BytesMut::new(),
            fragments: None,
        }
    }

    /// The next complete frame in the read buffer, if there is one. A frame whose header
    /// announces more than the limit (or a control frame announcing more than 125 bytes) is
    /// refused from its header alone, before its payload is read.
    pub(super) fn decode(&mut self) -> Result<Option<Incoming>, FrameError> {
        self.check_header()?;
        let frame = match self.codec.decode(&mut self.read_buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(ProtocolError::Overflow) => return Err(self.too_large()),
            Err(err) => return Err(FrameError::Protocol(err.to_string())),
        };
        let (text, data) = match frame {
            Frame::Text(data) => (true, data),
            Frame::Binary(data) => (false, data),
            Frame::Continuation(item) => match self.join(item)? {
                Some(message) => message,
                None => return Ok(Some(Incoming::Fragment)),
            },
            Frame::Ping(data) => return Ok(Some(Incoming::Ping(data))),
            Frame::Pong(_) => return Ok(Some(Incoming::Pong)),
            Frame::Close(reason) => {
                let code = reason.map(|reason| u16::from(reason.code));
                return Ok(Some(Incoming::Close(code)));
            }
        };
        if !text {
            return Ok(Some(Incoming::Binary(data)));
        }
        match ByteString::try_from(data) {
            Ok(text) => Ok(Some(Incoming::Text(text))),
            Err(_) => Err(FrameError::InvalidUtf8),
        }
    }

    /// Adds a fragment to the message under way; the message, once this was its last one.
    fn join(&mut self, item: Item) -> Result<Option<(bool, Bytes)>, FrameError> {
        let (first, last, chunk) = match item {
            Item::FirstText(chunk) => (Some(true), false, chunk),
            Item::FirstBinary(chunk) => (Some(false), false, chunk),
            Item::Continue(chunk) => (None, false, chunk),
            Item::Last(chunk) => (None, true, chunk),
        };
        // The codec checks that fragments come in order.
        let message = self.fragments.get_or_insert_with(|| Fragments {
            text: first.unwrap_or(false),
            data: BytesMut::new(),
        });
        if message.data.len() + chunk.len() > self.max_message_bytes {
            return Err(self.too_large());
        }
        message.data.extend_from_slice(&chunk);
        if !last {
            return Ok(None);
        }
        Ok(self
            .fragments
            .take()
            .map(|message| (message.text, message.data.freeze())))
    }

    /// Refuses the frame at the start of the read buffer from its header alone: a control
    /// frame longer than 125 bytes, or a data frame that would make its message larger than
    /// the limit.
    fn check_header(&self) -> Result<(), FrameError> {
        match frame_header::peek(&self.read_buf) {
            Ok(None) => Ok(()),
            Ok(Some(header)) => {
                let collected = match (header.opcode, &self.fragments) {
                    (0, Some(fragments)) => fragments.data.len() as u64,
                    _ => 0,
                };
                if collected.saturating_add(header.payload_len) > self.max_message_bytes as u64 {
                    return Err(self.too_large());
                }
                Ok(())
            }
            Err(HeaderError::ControlTooLong(len)) => Err(FrameError::ControlTooLong { len }),
        }
    }

    fn too_large(&self) -> FrameError {
        FrameError::TooLarge {
            max: self.max_message_bytes,
        }
    }

    /// Whether part of a message has arrived: bytes of a frame, or fragments.
    pub(super) fn message_under_way(&self) -> bool {
        !self.read_buf.is_empty() || self.fragments.is_some()
    }

    /// Bytes held for the message under way.
    pub(super) fn held_bytes(&self) -> usize {
        self.read_buf.capacity() + self.fragments.as_ref().map_or(0, |f| f.data.capacity())
    }

    /// Drops a large read buffer once the message that needed it is done.
    pub(super) fn message_done(&mut self) {
        if self.read_buf.capacity() > LARGE_READ_BUF {
            self.read_buf = BytesMut::new();
        }
    }

    /// Queues a frame for writing. Encoding the frames we send cannot fail.
    fn encode(&mut self, message: Message) {
        if let Err(err) = self.codec.encode(message, &mut self.write_buf) {
            tracing::error!(error = %err, "could not encode a WebSocket frame");
        }
    }

    /// Queues a message of the plain protocol (acknowledgements are not part of it).
    pub(super) fn encode_outbound(&mut self, message: Outbound) {
        encode_outbound(&mut self.write_buf, message);
    }

    /// Queues a message of the `jamsocket.v1` protocol: text as `m<text>`, an
    /// acknowledgement as `a<n>`, binary unchanged.
    pub(super) fn encode_sequenced(&mut self, message: &Outbound) {
        encode_sequenced(&mut self.write_buf, message);
    }

    /// Queues a text frame whose payload is `tag` followed by `body`. `body` is UTF-8 (or
    /// ASCII digits), and so is the frame.
    pub(super) fn encode_tagged(&mut self, tag: u8, body: &[u8]) {
        self.encode_data(TEXT, Some(tag), body);
    }

    fn encode_data(&mut self, first: u8, tag: Option<u8>, body: &[u8]) {
        encode_data(&mut self.write_buf, first, tag, body);
    }

    pub(super) fn encode_ping(&mut self) {
        self.encode(Message::Ping(Bytes::new()));
    }

    pub(super) fn encode_pong(&mut self, data: Bytes) {
        self.encode(Message::Pong(data));
    }

    /// Queues a close frame; a reason too long for a control frame is cut at a character
    /// boundary.
    pub(super) fn encode_close(&mut self, frame: CloseFrame) {
        let mut reason = frame.reason.into_owned();
        if reason.len() > MAX_CLOSE_REASON_BYTES {
            let mut end = MAX_CLOSE_REASON_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        let description = (!reason.is_empty()).then_some(reason);
        self.encode(Message::Close(Some(CloseReason {
            code: CloseCode::from(frame.code),
            description,
        })));
    }

    /// Writes as much of the write buffer as the socket takes without waiting.
    pub(super) fn flush(&mut self, socket: &Writer) -> io::Result<()> {
        while !self.write_buf.is_empty() {
            match socket.try_write(&self.write_buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.write_buf.advance(written),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Reads what the socket has, once it has something: a buffer is only reserved then, so
    /// an idle connection holds none. `Ok(0)` means the client closed the connection.
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut Reader,
        limit: usize,
    ) -> Poll<io::Result<usize>> {
        // Never more than one frame of the largest size: the header of what is already here
        // has been checked against the limits.
        let wanted = limit.saturating_sub(self.read_buf.len());
        reader.poll_read(cx, &mut self.read_buf, wanted, |buf| {
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
        })
    }

    /// Frees the buffers of a connection with nothing in flight.
    pub(super) fn shrink(&mut self) {
        if self.read_buf.is_empty() {
            self.read_buf = BytesMut::new();
        }
        if self.write_buf.is_empty() {
            self.write_buf = BytesMut::new();
        }
    }

    /// Writes the rest of the write buffer, then closes the connection gracefully.
    pub(super) async fn finish(&mut self, reader: &mut Reader, writer: &Writer) -> io::Result<()> {
        loop {
            self.flush(writer)?;
            if self.write_buf.is_empty() {
                break;
            }
            writer.writable().await?;
        }
        writer.shutdown()?;
        let mut sink = [0u8; 512];
        let _ = timeout(LINGER, async {
            while reader.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        })
        .await;
        Ok(())
    }
}

/// Appends a message of the plain protocol to `buf`, as one whole frame (an acknowledgement,
/// which only `jamsocket.v1` has, as nothing).
pub(super) fn encode_outbound(buf: &mut BytesMut, message: Outbound) {
    match message {
        Outbound::Text(text) => encode_data(buf, TEXT, None, text.as_bytes()),
        Outbound::Binary(data) => encode_data(buf, BINARY, None, &data),
        Outbound::Ack(_) => {}
    }
}

/// Appends a message of the `jamsocket.v1` protocol to `buf`, as one whole frame: text as
/// `m<text>`, an acknowledgement as `a<n>`, binary unchanged.
pub(super) fn encode_sequenced(buf: &mut BytesMut, message: &Outbound) {
    match message {
        Outbound::Text(text) => encode_data(buf, TEXT, Some(b'm'), text.as_bytes()),
        Outbound::Binary(data) => encode_data(buf, BINARY, None, data),
        Outbound::Ack(count) => encode_data(buf, TEXT, Some(b'a'), count.to_string().as_bytes()),
    }
}

/// Appends a whole data frame (`first` is its first byte: FIN and the opcode) whose payload
/// is `tag`, if any, followed by `body`, without first copying the two into one buffer.
fn encode_data(buf: &mut BytesMut, first: u8, tag: Option<u8>, body: &[u8]) {
    let len = body.len() + usize::from(tag.is_some());
    buf.reserve(len + 10);
    // A server's frames are not masked.
    buf.put_u8(first);
    if len < 126 {
        buf.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        buf.put_u8(126);
        buf.put_u16(len);
    } else {
        buf.put_u8(127);
        buf.put_u64(len as u64);
    }
    if let Some(tag) = tag {
        buf.put_u8(tag);
    }
    buf.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_frames_decode_as_text_frames_of_every_length_class() {
        for len in [0, 124, 125, 126, 65_534, 65_535, 70_000] {
            let body = "x".repeat(len);
            let mut frames = Frames::new(1 << 20, BytesMut::new());
            frames.encode_tagged(b'm', body.as_bytes());
            let mut client = Codec::new().client_mode().max_size(1 << 20);
            let frame = client.decode(&mut frames.write_buf).unwrap().unwrap();
            let Frame::Text(payload) = frame else {
                panic!("{len}: not a text frame: {frame:?}");
            };
            assert_eq!(payload.len(), len + 1, "{len}");
            assert_eq!(payload[0], b'm');
            assert!(frames.write_buf.is_empty(), "{len}");
        }
    }

    /// A masked frame as a client sends it (mask 0, so the payload reads as is).
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(payload);
        frame
    }

    fn frames_with(max: usize, bytes: &[u8]) -> Frames {
        Frames::new(max, BytesMut::from(bytes))
    }

    #[test]
    fn fragments_are_joined_into_one_message() {
        let mut bytes = client_frame(false, 1, b"hel");
        bytes.extend(client_frame(false, 0, b"lo "));
        bytes.extend(client_frame(true, 0, b"there"));
        let mut frames = frames_with(64, &bytes);
        assert_eq!(frames.decode(), Ok(Some(Incoming::Fragment)));
        assert!(frames.message_under_way());
        assert_eq!(frames.decode(), Ok(Some(Incoming::Fragment)));
        assert_eq!(
            frames.decode(),
            Ok(Some(Incoming::Text(ByteString::from("hello there"))))
        );
        assert!(!frames.message_under_way());
        assert_eq!(frames.decode(), Ok(None));
    }

    #[test]
    fn control_frames_may_come_between_fragments() {
        let mut bytes = client_frame(false, 2, &[1, 2]);
        bytes.extend(client_frame(true, 9, b"ping"));
        bytes.extend(client_frame(true, 0, &[3]));
        let mut frames = frames_with(64, &bytes);
        assert_eq!(frames.decode(), Ok(Some(Incoming::Fragment)));
        assert_eq!(
            frames.decode(),
            Ok(Some(Incoming::Ping(Bytes::from_static(b"ping"))))
        );
        assert!(frames.message_under_way());
        assert_eq!(
            frames.decode(),
            Ok(Some(Incoming::Binary(Bytes::from_static(&[1, 2, 3]))))
        );
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_the_header_of_its_frame() {
        // Only the header has arrived: the payload is never waited for.
        let header = &client_frame(true, 2, &[0; 65])[..6];
        let mut frames = frames_with(64, header);
        assert_eq!(frames.decode(), Err(FrameError::TooLarge { max: 64 }));
        assert_eq!(frames.decode().unwrap_err().close_frame().code, 1009);
    }

    #[test]
    fn fragments_together_over_the_limit_are_refused() {
        let mut bytes = client_frame(false, 2, &[0; 40]);
        bytes.extend(&client_frame(true, 0, &[0; 40])[..6]);
        let mut frames = frames_with(64, &bytes);
        assert_eq!(frames.decode(), Ok(Some(Incoming::Fragment)));
        assert_eq!(frames.decode(), Err(FrameError::TooLarge { max: 64 }));
    }

    #[test]
    fn long_control_frames_and_bad_utf8_are_refused() {
        let header = &client_frame(true, 9, &[0; 126])[..8];
        let mut frames = frames_with(1024, header);
        let err = frames.decode().unwrap_err();
        assert_eq!(err, FrameError::ControlTooLong { len: 126 });
        assert_eq!(err.close_frame().code, 1002);

        let mut frames = frames_with(1024, &client_frame(true, 1, &[0xff, 0xfe]));
        assert_eq!(frames.decode(), Err(FrameError::InvalidUtf8));
    }

    #[test]
    fn close_frames_report_their_code_and_invalid_codes_are_protocol_errors() {
        let mut frames = frames_with(1024, &client_frame(true, 8, &1000u16.to_be_bytes()));
        assert_eq!(frames.decode(), Ok(Some(Incoming::Close(Some(1000)))));
        let mut frames = frames_with(1024, &client_frame(true, 8, &[]));
        assert_eq!(frames.decode(), Ok(Some(Incoming::Close(None))));
        // 1005 may not be sent in a frame (RFC 6455, 7.4.1).
        let mut frames = frames_with(1024, &client_frame(true, 8, &1005u16.to_be_bytes()));
        let err = frames.decode().unwrap_err();
        assert_eq!(err.close_frame().code, 1002, "{err:?}");
    }

    #[test]
    fn unmasked_client_frames_are_protocol_errors() {
        let mut frames = frames_with(1024, &[0x81, 0x01, b'x']);
        assert!(matches!(frames.decode(), Err(FrameError::Protocol(_))));
    }

    #[test]
    fn close_reasons_are_cut_to_fit_a_control_frame_at_a_character_boundary() {
        let mut frames = frames_with(1024, &[]);
        frames.encode_close(CloseFrame::new(1008, "é".repeat(100)));
        let written = &frames.write_buf[..];
        // FIN + close opcode, then the payload length: 2 code bytes and 61 two-byte characters.
        assert_eq!(written[0], 0x88);
        assert_eq!(written[1] as usize, 2 + 122);
        assert_eq!(u16::from_be_bytes([written[2], written[3]]), 1008);
        assert!(std::str::from_utf8(&written[4..]).is_ok());
    }
}
