//! A counter shared by everyone in a room: the service `jamsocket new` creates.
//!
//! Serve it with `jamsocket dev` in this crate's folder (`jamsocket dev examples/counter-service`
//! from the Jamsocket repository) and open http://localhost:8080/ in two browser tabs (add
//! `?room=name` to pick a room): a click in one updates both. Or connect two WebSocket clients to
//! `ws://localhost:8080/ws/my-room`: each gets `new value: N` on joining, and both receive
//! `new value: N` whenever either sends `increment` or `decrement`.

use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
pub struct SharedCounterServer(i32);

impl SimpleJamsocketService for SharedCounterServer {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        SharedCounterServer(0)
    }

    /// A new client learns the current value at once (the page shows it before any click).
    fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        ctx.send_message(client, &format!("new value: {}", self.0));
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
