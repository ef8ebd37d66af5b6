//! The shared counter of `counter-service`, durable: its state is saved with serde, so a room
//! keeps its count across server restarts and across changes to the code.
//!
//! Serve it with `jamsocket dev examples/durable-counter` (from the Jamsocket repository; `dev`
//! saves rooms in the crate's `target/jamsocket/rooms.db`) and connect two WebSocket clients to
//! `ws://localhost:8080/ws/my-room`: each gets `new value: N` on joining, and both receive
//! `new value: N` whenever either sends `increment` or `decrement`. Stop and restart the server,
//! or change the code (say, the text of `announce`) so that `dev` rebuilds it, and reconnect:
//! the count goes on from where it was. The `v2` feature is such a change, used by the tests: it
//! answers `count: N` instead.
//!
//! How: the module serves `Durable<DurableCounter>`, so the `jamsocket_snapshot` export of
//! `#[jamsocket_wasm]` returns the counter as JSON and `jamsocket_restore` reads it back, in
//! whichever build. A guest that keeps no snapshot of its own (`counter-service`) is saved as a
//! memory image instead, which only the very same module can restore: after a code change its
//! rooms start from 0.

use jamsocket_wasm::prelude::*;
use serde::{Deserialize, Serialize};

/// The count shared by everyone in a room. Only this struct is saved, so builds that change the
/// code but not these fields read each other's snapshots.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DurableCounter {
    value: i32,
}

/// What the module exports: the counter, saved with serde.
#[jamsocket_wasm]
pub type Service = Durable<DurableCounter>;

impl DurableCounter {
    /// The text clients receive.
    fn announce(&self) -> String {
        if cfg!(feature = "v2") {
            format!("count: {}", self.value)
        } else {
            format!("new value: {}", self.value)
        }
    }
}

impl SimpleJamsocketService for DurableCounter {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        DurableCounter::default()
    }

    /// A new client learns the current value at once.
    fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        ctx.send_message(client, &self.announce());
    }

    fn message(&mut self, _: ClientId, message: &str, ctx: &impl JamsocketContext) {
        match message {
            "increment" => self.value += 1,
            "decrement" => self.value -= 1,
            _ => (),
        }
        ctx.send_message(MessageRecipient::Broadcast, &self.announce());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::RecordingContext;

    fn sent(ctx: &RecordingContext) -> Vec<String> {
        ctx.take_messages().into_iter().map(|(_, m)| m).collect()
    }

    #[test]
    fn the_count_survives_a_snapshot() {
        let ctx = RecordingContext::default();
        let mut counter = Service::new("room", &ctx);
        counter.message(ClientId::from(1), "increment", &ctx);
        counter.message(ClientId::from(1), "increment", &ctx);
        let saved = counter
            .snapshot()
            .expect("a durable service keeps snapshots");

        let mut restored = Service::restore("room", &saved, &ctx).expect("restores");
        restored.message(ClientId::from(2), "decrement", &ctx);
        let prefix = if cfg!(feature = "v2") {
            "count"
        } else {
            "new value"
        };
        assert_eq!(
            sent(&ctx),
            [1, 2, 1].map(|n| format!("{prefix}: {n}")).to_vec()
        );
        assert!(Service::restore("room", b"garbage", &ctx).is_err());
    }
}
