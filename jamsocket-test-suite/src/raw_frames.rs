//! WebSocket frames by hand, for clients that misbehave on purpose: frames a well-behaved
//! library would never send, and reading the server's close frame off a raw socket.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The header of a masked client frame announcing `len` payload bytes (mask 0, which leaves the
/// payload as it is).
pub fn client_frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let first = if fin { 0x80 } else { 0 } | opcode;
    let mut header = vec![first];
    match len {
        0..=125 => header.push(0x80 | len as u8),
        126..=0xFFFF => {
            header.push(0x80 | 126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&len.to_be_bytes());
        }
    }
    header.extend_from_slice(&[0, 0, 0, 0]);
    header
}

/// A whole masked client frame (mask 0).
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = client_frame_header(fin, opcode, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// Reads server frames until a close frame arrives within `within`; returns its code and
/// reason. Panics if the connection ends or nothing comes in time.
pub async fn raw_close(reader: &mut (impl AsyncRead + Unpin), within: Duration) -> (u16, String) {
    let (_, code, reason) = raw_texts_then_close(reader, within).await;
    (code, reason)
}

/// Reads server frames until a close frame arrives within `within`; returns the text messages
/// before it, and its code and reason.
pub async fn raw_texts_then_close(
    reader: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> (Vec<String>, u16, String) {
    let read = async {
        let mut texts = Vec::new();
        loop {
            let mut header = [0u8; 2];
            reader.read_exact(&mut header).await?;
            let len = match header[1] & 0x7f {
                126 => u64::from(reader.read_u16().await?),
                127 => reader.read_u64().await?,
                len => u64::from(len),
            };
            let mut payload = vec![0u8; len as usize];
            reader.read_exact(&mut payload).await?;
            match header[0] & 0x0f {
                0x1 => texts.push(String::from_utf8_lossy(&payload).into_owned()),
                0x8 => {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
                    return std::io::Result::Ok((texts, code, reason));
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("no close frame in time")
        .expect("connection ended without a close frame")
}
