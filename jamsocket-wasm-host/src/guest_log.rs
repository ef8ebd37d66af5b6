//! Guest stdout and stderr, line by line, into the host's `tracing` log: lines are cut at a
//! length limit, and a room's stdout and stderr share one rate limit ([`OutputBudget`]).

use crate::output_budget::OutputBudget;
use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The `tracing` target of guest output.
pub(crate) const TARGET: &str = "jamsocket_wasm_host::guest";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Logged at `info`.
    Stdout,
    /// Logged at `warn`.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A guest's stdout or stderr: each complete line becomes a `tracing` event with the room id,
/// if the room's [`OutputBudget`] allows it.
pub(crate) struct GuestLog {
    budget: Arc<OutputBudget>,
    stream: Stream,
    max_line_bytes: usize,
}

impl GuestLog {
    pub(crate) fn new(budget: Arc<OutputBudget>, stream: Stream, max_line_bytes: usize) -> Self {
        GuestLog {
            budget,
            stream,
            max_line_bytes,
        }
    }

    fn writer(&self) -> LineWriter {
        LineWriter {
            budget: self.budget.clone(),
            stream: self.stream,
            max_line_bytes: self.max_line_bytes,
            pending: Vec::new(),
            cut: 0,
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }
}

/// Collects bytes into lines and logs each line. Writes never block and never fail; at most
/// `max_line_bytes` of a line are kept.
struct LineWriter {
    budget: Arc<OutputBudget>,
    stream: Stream,
    max_line_bytes: usize,
    pending: Vec<u8>,
    /// Bytes of the current line past `max_line_bytes`, not kept.
    cut: usize,
}

impl LineWriter {
    fn write_bytes(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.collect(&bytes[..newline]);
            self.end_line();
            bytes = &bytes[newline + 1..];
        }
        self.collect(bytes);
    }

    fn collect(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.pending.len());
        let kept = bytes.len().min(room);
        self.pending.extend_from_slice(&bytes[..kept]);
        self.cut = self.cut.saturating_add(bytes.len() - kept);
    }

    fn end_line(&mut self) {
        if self.budget.admit_line() {
            self.emit();
        }
        self.pending.clear();
        self.cut = 0;
    }

    fn emit(&self) {
        let mut kept = &self.pending[..];
        let mut cut = self.cut;
        if cut > 0 {
            // Do not log half a character where the line was cut.
            let whole = whole_chars_len(kept);
            cut += kept.len() - whole;
            kept = &kept[..whole];
        }
        let line = String::from_utf8_lossy(kept);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let room_id = self.budget.room_id();
        let stream = self.stream.name();
        let marker = if cut > 0 {
            format!("… ({cut} bytes cut)")
        } else {
            String::new()
        };
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: TARGET, room = room_id, stream, "{line}{marker}")
            }
            Stream::Stderr => {
                tracing::warn!(target: TARGET, room = room_id, stream, "{line}{marker}")
            }
        }
    }
}

/// The length of `bytes` without a UTF-8 sequence that is cut off at its end.
fn whole_chars_len(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(4) {
        let byte = bytes[bytes.len() - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // A continuation byte: look further back for the sequence's first byte.
        }
        let sequence_len = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if sequence_len > back {
            bytes.len() - back
        } else {
            bytes.len()
        };
    }
    bytes.len()
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() || self.cut > 0 {
            self.end_line();
        }
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::whole_chars_len;

    #[test]
    fn a_character_cut_in_half_is_left_out() {
        let text = "aé€😀".as_bytes(); // 1 + 2 + 3 + 4 bytes
        let ends: Vec<usize> = (0..=text.len())
            .map(|len| whole_chars_len(&text[..len]))
            .collect();
        assert_eq!(ends, [0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10]);
        assert_eq!(whole_chars_len(b"\xff\x80"), 2);
    }
}
