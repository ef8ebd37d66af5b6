//! Broadcasts every message verbatim to everyone in the room, the sender included: text as
//! text, binary as binary. Nothing else: no greeting, no prefix, no state.
//!
//! It is the service the benchmark suite (`bench/suite.py`) measures, natively and as
//! WebAssembly, from this one source. As WebAssembly:
//!
//! ```sh
//! jamsocket dev examples/broadcast-echo
//! ```
//!
//! Natively (this crate's `serve_native` example; `PORT` picks the port, default 8080):
//!
//! ```sh
//! cargo run --release -p broadcast-echo --example serve_native
//! ```
//!
//! Then connect two WebSocket clients to `ws://localhost:8080/ws/my-room` (for example
//! `websocat`, or `new WebSocket(...)` in the browser consoles of two pages on localhost, the
//! only pages `jamsocket dev` accepts): whatever either sends, both receive, unchanged. Clients
//! of other rooms receive nothing.

use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
pub struct BroadcastEcho;

impl SimpleJamsocketService for BroadcastEcho {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        BroadcastEcho
    }

    fn message(&mut self, _: ClientId, message: &str, ctx: &impl JamsocketContext) {
        ctx.send_message(MessageRecipient::Broadcast, message);
    }

    fn binary(&mut self, _: ClientId, message: &[u8], ctx: &impl JamsocketContext) {
        ctx.send_binary(MessageRecipient::Broadcast, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::RecordingContext;

    #[test]
    fn broadcasts_text_and_binary_verbatim() {
        let ctx = RecordingContext::default();
        let mut echo = BroadcastEcho::new("room", &ctx);
        echo.connect(ClientId::from(1), &ctx);
        echo.message(ClientId::from(1), "all:not a command", &ctx);
        echo.message(ClientId::from(2), "", &ctx);
        echo.binary(ClientId::from(2), &[0, 255, 7], &ctx);
        assert_eq!(
            ctx.take_messages(),
            vec![
                (MessageRecipient::Broadcast, "all:not a command".to_string()),
                (MessageRecipient::Broadcast, String::new()),
            ]
        );
        assert_eq!(
            ctx.take_binaries(),
            vec![(MessageRecipient::Broadcast, vec![0, 255, 7])]
        );
    }
}
