//! The service the server's integration tests drive, natively and as WebAssembly.
//!
//! The tests in `jamsocket-test-suite` are instantiated twice: `jamsocket-server`'s tests serve
//! it as native Rust, `jamsocket-cli`'s `wasm_conformance` tests its `wasm32-wasip1` build, so
//! native and WebAssembly rooms are held to one behaviour. Try it with `jamsocket dev examples/conformance-service`.
//!
//! What its messages ask for:
//! - `to:<id>:<text>` sends text to one client, `all:<text>` broadcasts it;
//! - `timer:<ms>` sets the timer (which broadcasts `timer fired`);
//! - `count` increments the room's counter and broadcasts `count <n>`;
//! - `burst:<n>[:<pad>]` broadcasts `burst <i>` n times, padded with `pad` spaces;
//! - `print:<n>` prints n lines of 100 bytes to stdout and sends nothing back (the host's
//!   per-room output limit drops most of them; `bench/log_flood.py` measures that);
//! - `twice` sends the sender two frames, `first` and `second`;
//! - `whoami` tells the sender who the host says it is (`JamsocketContext::user`):
//!   `user <id> <claims>` (the claims' text as is, `-` if none), or `user none` for an anonymous
//!   client;
//! - `panic` panics (the room fails); anything else is echoed to the sender as `echo:<text>`.
//!
//! On connect a client gets `welcome <room> <id>`; on disconnect everyone gets `left <id>`.
//! Binary messages are echoed to the sender.
//!
//! Requests through the room API (`POST /rooms/<id>/messages`): `count` increments the counter,
//! broadcasts `count <n>` and answers `count <n>`; `all:<text>` broadcasts the text and answers
//! `sent`; `status:<code>` answers that status with an empty body; anything else gets 400.

use jamsocket_wasm::jamsocket::Response;
use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ConformanceService {
    room: String,
    count: u64,
}

impl SimpleJamsocketService for ConformanceService {
    fn new(room_id: &str, _: &impl JamsocketContext) -> Self {
        ConformanceService {
            room: room_id.to_string(),
            count: 0,
        }
    }

    fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        ctx.send_message(client, &format!("welcome {} {client}", self.room));
    }

    fn disconnect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        ctx.send_message(MessageRecipient::Broadcast, &format!("left {client}"));
    }

    fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
        if let Some(rest) = message.strip_prefix("to:") {
            if let Some((id, text)) = rest.split_once(':') {
                if let Ok(id) = id.parse::<u32>() {
                    ctx.send_message(ClientId::from(id), text);
                }
            }
        } else if let Some(text) = message.strip_prefix("all:") {
            ctx.send_message(MessageRecipient::Broadcast, text);
        } else if let Some(ms) = message.strip_prefix("timer:") {
            if let Ok(ms) = ms.parse() {
                ctx.set_timer(ms);
            }
        } else if message == "count" {
            self.count += 1;
            ctx.send_message(
                MessageRecipient::Broadcast,
                &format!("count {}", self.count),
            );
        } else if let Some(rest) = message.strip_prefix("burst:") {
            let (n, pad) = rest.split_once(':').unwrap_or((rest, "0"));
            let pad = " ".repeat(pad.parse().unwrap_or(0).min(64 * 1024));
            for i in 0..n.parse::<u32>().unwrap_or(0) {
                ctx.send_message(MessageRecipient::Broadcast, &format!("burst {i}{pad}"));
            }
        } else if let Some(n) = message.strip_prefix("print:") {
            let pad = "p".repeat(89);
            for i in 0..n.parse::<u32>().unwrap_or(0) {
                println!("{i:>10} {pad}");
            }
        } else if message == "whoami" {
            let reply = match ctx.user(client) {
                Some(user) => format!("user {} {}", user.id, user.claims.as_deref().unwrap_or("-")),
                None => "user none".to_string(),
            };
            ctx.send_message(client, &reply);
        } else if message == "twice" {
            ctx.send_message(client, "first");
            ctx.send_message(client, "second");
        } else if message == "panic" {
            panic!("a client asked room `{}` to panic", self.room);
        } else {
            ctx.send_message(client, &format!("echo:{message}"));
        }
    }

    fn binary(&mut self, client: ClientId, message: &[u8], ctx: &impl JamsocketContext) {
        ctx.send_binary(client, message);
    }

    fn timer(&mut self, ctx: &impl JamsocketContext) {
        ctx.send_message(MessageRecipient::Broadcast, "timer fired");
    }

    fn request(&mut self, body: &[u8], ctx: &impl JamsocketContext) -> Response {
        let body = String::from_utf8_lossy(body);
        if body == "count" {
            self.count += 1;
            let count = format!("count {}", self.count);
            ctx.send_message(MessageRecipient::Broadcast, &count);
            Response::ok(count)
        } else if let Some(text) = body.strip_prefix("all:") {
            ctx.send_message(MessageRecipient::Broadcast, text);
            Response::ok("sent")
        } else if let Some(status) = body.strip_prefix("status:") {
            Response::new(status.parse().unwrap_or(500), "")
        } else {
            Response::new(400, format!("unknown request `{body}`"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::{RecordingContext, User};

    #[test]
    fn whoami_names_the_user_or_none() {
        let ctx = RecordingContext::default();
        let mut service = ConformanceService::new("room", &ctx);
        let (alice, bob, carol) = (ClientId::from(1), ClientId::from(2), ClientId::from(3));
        ctx.set_user(
            alice,
            Some(User::new("alice").with_claims(r#"{"role":"admin"}"#)),
        );
        ctx.set_user(bob, Some(User::new("bob")));
        for client in [alice, bob, carol] {
            service.message(client, "whoami", &ctx);
        }
        let reply = |client, text: &str| (MessageRecipient::Client(client), text.to_string());
        assert_eq!(
            ctx.take_messages(),
            vec![
                reply(alice, r#"user alice {"role":"admin"}"#),
                reply(bob, "user bob -"),
                reply(carol, "user none"),
            ]
        );
    }

    #[test]
    fn requests_and_prints() {
        let ctx = RecordingContext::default();
        let mut service = ConformanceService::new("room", &ctx);
        service.message(ClientId::from(1), "print:3", &ctx);
        assert!(ctx.take_messages().is_empty(), "print sends nothing back");
        assert_eq!(service.request(b"count", &ctx), Response::ok("count 1"));
        assert_eq!(service.request(b"status:204", &ctx), Response::new(204, ""));
        assert_eq!(service.request(b"what", &ctx).status, 400);
        assert_eq!(
            ctx.take_messages(),
            vec![(MessageRecipient::Broadcast, "count 1".to_string())]
        );
    }
}
