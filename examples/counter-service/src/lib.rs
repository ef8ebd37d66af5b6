//! A counter shared by everyone in a room.
//!
//! Run it with `jamsocket dev examples/counter-service`, then connect two WebSocket clients to
//! the same room (for example with `websocat ws://127.0.0.1:8080/ws/my-room`). Send `increment`
//! or `decrement` from either: both clients receive `new value: N`.

use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
pub struct SharedCounterServer(i32);

impl SimpleJamsocketService for SharedCounterServer {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        SharedCounterServer(0)
    }

    fn message(&mut self, _: ClientId, message: &str, ctx: &impl JamsocketContext) {
        match message {
            "increment" => self.0 += 1,
            "decrement" => self.0 -= 1,
            _ => (),
        }

        ctx.send_message(
            MessageRecipient::Broadcast,
            &format!("new value: {}", self.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::RecordingContext;

    #[test]
    fn counts() {
        let ctx = RecordingContext::default();
        let mut counter = SharedCounterServer::new("room", &ctx);
        counter.message(ClientId::from(1), "increment", &ctx);
        counter.message(ClientId::from(2), "decrement", &ctx);
        counter.message(ClientId::from(2), "decrement", &ctx);
        let sent: Vec<String> = ctx.take_messages().into_iter().map(|(_, m)| m).collect();
        assert_eq!(sent, ["new value: 1", "new value: 0", "new value: -1"]);
    }
}
