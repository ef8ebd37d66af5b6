//! Echoes each text message back to the client that sent it, and logs it.
//!
//! Run it with `jamsocket dev examples/echo-server` and connect a WebSocket client to any room
//! (for example `websocat ws://127.0.0.1:8080/ws/my-room`). Whatever text you send comes back
//! to you alone, and the server's log shows a line like
//! `echo-server: client 1 in room my-room sent "hello"` (the guest's `println!`), tagged with
//! the room id.

use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
pub struct EchoServer {
    room_id: String,
}

impl SimpleJamsocketService for EchoServer {
    fn new(room_id: &str, _: &impl JamsocketContext) -> Self {
        EchoServer {
            room_id: room_id.to_string(),
        }
    }

    fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
        println!(
            "echo-server: client {client} in room {} sent {message:?}",
            self.room_id
        );
        ctx.send_message(client, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::RecordingContext;

    #[test]
    fn echoes_to_the_sender() {
        let ctx = RecordingContext::default();
        let mut echo = EchoServer::new("room", &ctx);
        echo.message(ClientId::from(4), "hi", &ctx);
        assert_eq!(
            ctx.take_messages(),
            vec![(
                MessageRecipient::Client(ClientId::from(4)),
                "hi".to_string()
            )]
        );
    }
}
