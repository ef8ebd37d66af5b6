//! Computes for as long as you ask: a demonstration of the host's CPU limit.
//!
//! Run it with `jamsocket dev examples/cpu-hog` and connect a WebSocket client to a room (for
//! example `websocat ws://127.0.0.1:8080/ws/my-room`). Send a number of seconds, such as `5`
//! (anything else means 5). The guest prints `cpu-hog: computing for 5 s` to the server's log
//! and computes. With the host's default limit of 1 s of CPU time per call, the room is
//! closed after about a second and the log names the room and the limit; other rooms keep
//! running meanwhile. Ask for less than the limit (`0.2`) and you get back
//! `done: N rounds in M ms`.

use jamsocket_wasm::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Rounds of arithmetic between two looks at the clock.
const ROUNDS_PER_CHECK: u32 = 100_000;

#[jamsocket_wasm]
pub struct CpuHog;

/// Runs a xorshift generator for `duration`, returning the number of rounds. `black_box`
/// keeps the optimizer from removing (or precomputing) the loop.
pub fn compute_for(duration: Duration) -> u64 {
    let start = Instant::now();
    let mut state = black_box(0x2545_f491_4f6c_dd1d_u64);
    let mut rounds = 0_u64;
    while start.elapsed() < duration {
        for _ in 0..ROUNDS_PER_CHECK {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state = black_box(state);
        }
        rounds += u64::from(ROUNDS_PER_CHECK);
    }
    black_box(state);
    rounds
}

impl SimpleJamsocketService for CpuHog {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        CpuHog
    }

    fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
        let seconds = message
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 3600.0)
            .unwrap_or(5.0);
        println!("cpu-hog: computing for {seconds} s");
        let start = Instant::now();
        let rounds = compute_for(Duration::from_secs_f64(seconds));
        let elapsed = start.elapsed().as_millis();
        ctx.send_message(client, &format!("done: {rounds} rounds in {elapsed} ms"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::RecordingContext;

    #[test]
    fn computes_then_replies() {
        let ctx = RecordingContext::default();
        let mut hog = CpuHog::new("room", &ctx);
        hog.message(ClientId::from(1), "0.01", &ctx);
        let sent = ctx.take_messages();
        assert!(sent[0].1.starts_with("done: "), "{sent:?}");
    }
}
