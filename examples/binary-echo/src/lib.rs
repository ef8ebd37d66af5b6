//! Echoes each binary message back to the client that sent it.
//!
//! Run it with `jamsocket dev examples/binary-echo` and connect a WebSocket client that can
//! send binary frames (for example `websocat --binary ws://127.0.0.1:8080/ws/my-room`). Every
//! binary frame you send comes back to you unchanged; text frames are ignored.

use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
pub struct BinaryEcho;

impl SimpleJamsocketService for BinaryEcho {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        BinaryEcho
    }

    fn binary(&mut self, client: ClientId, message: &[u8], ctx: &impl JamsocketContext) {
        ctx.send_binary(client, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::RecordingContext;

    #[test]
    fn echoes_binary_to_the_sender() {
        let ctx = RecordingContext::default();
        let mut echo = BinaryEcho::new("room", &ctx);
        echo.binary(ClientId::from(2), &[0, 255, 7], &ctx);
        echo.message(ClientId::from(2), "ignored", &ctx);
        assert_eq!(
            ctx.take_binaries(),
            vec![(MessageRecipient::Client(ClientId::from(2)), vec![0, 255, 7])]
        );
        assert!(ctx.take_messages().is_empty());
    }
}
