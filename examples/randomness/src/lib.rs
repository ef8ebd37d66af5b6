//! Replies with random numbers from the host's secure random source (WASI `random_get`).
//!
//! Run it with `jamsocket dev examples/randomness` and connect a WebSocket client to a room
//! (for example `websocat ws://127.0.0.1:8080/ws/my-room`). Send a count such as `3` and you
//! receive that many random 64-bit numbers, separated by spaces (anything that is not a number
//! from 1 to 100 counts as 1). On connect you receive one as a greeting: `welcome N`.

use jamsocket_wasm::prelude::*;

/// The most numbers one message asks for.
pub const MAX_COUNT: usize = 100;

#[jamsocket_wasm]
pub struct Randomness;

fn random_u64() -> u64 {
    // The host always provides randomness; if it ever failed, trapping the room is right.
    getrandom::u64().expect("the host provides randomness")
}

impl SimpleJamsocketService for Randomness {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Randomness
    }

    fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        ctx.send_message(client, &format!("welcome {}", random_u64()));
    }

    fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
        let count = message
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|count| (1..=MAX_COUNT).contains(count))
            .unwrap_or(1);
        let numbers: Vec<String> = (0..count).map(|_| random_u64().to_string()).collect();
        ctx.send_message(client, &numbers.join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::RecordingContext;

    #[test]
    fn replies_with_the_requested_count() {
        let ctx = RecordingContext::default();
        let mut random = Randomness::new("room", &ctx);
        random.message(ClientId::from(1), "5", &ctx);
        random.message(ClientId::from(1), "many", &ctx);
        let sent = ctx.take_messages();
        assert_eq!(sent[0].1.split(' ').count(), 5);
        assert_eq!(sent[1].1.split(' ').count(), 1);
    }
}
