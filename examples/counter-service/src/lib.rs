//! A counter shared by everyone in a room: the service `jamsocket new` creates.
//!
//! Serve it with `jamsocket dev` in this crate's folder (`jamsocket dev examples/counter-service`
//! from the Jamsocket repository) and open http://localhost:8080/ in two browser tabs (add
//! `?room=name` to pick a room): a click in one updates both. Or connect two WebSocket clients to
//! `ws://localhost:8080/ws/my-room`: each gets `new value: N` on joining, and both receive
//! `new value: N` whenever either sends `increment` or `decrement`.
//!
//! A backend reaches the room through the server's room API (`POST /rooms/<id>/messages` on
//! the admin listener): the body `get` answers the value, `set N` sets it (clients receive
//! `new value: N`) and answers it.

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

    /// A backend's request: `get`, or `set N`.
    fn request(&mut self, body: &[u8], ctx: &impl JamsocketContext) -> Response {
        let command = String::from_utf8_lossy(body);
        if let Some(value) = command.strip_prefix("set ") {
            let Ok(value) = value.parse() else {
                return Response::new(400, "set takes a 32-bit integer");
            };
            self.0 = value;
            ctx.send_message(
                MessageRecipient::Broadcast,
                &format!("new value: {}", self.0),
            );
        } else if command != "get" {
            return Response::new(400, "expected `get` or `set N`");
        }
        Response::ok(self.0.to_string())
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

    #[test]
    fn answers_requests() {
        let ctx = RecordingContext::default();
        let mut counter = SharedCounterServer::new("room", &ctx);
        assert_eq!(counter.request(b"set 5", &ctx), Response::ok("5"));
        assert_eq!(counter.request(b"get", &ctx), Response::ok("5"));
        assert_eq!(counter.request(b"set x", &ctx).status, 400);
        assert_eq!(counter.request(b"reset", &ctx).status, 400);
        let sent: Vec<String> = ctx.take_messages().into_iter().map(|(_, m)| m).collect();
        assert_eq!(sent, ["new value: 5"]);
    }
}
