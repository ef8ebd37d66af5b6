//! A clock that ticks for everyone in a room.
//!
//! Run it with `jamsocket dev examples/clock` and connect a WebSocket client to a room (for
//! example `websocat ws://127.0.0.1:8080/ws/my-room`). The first client to connect starts the
//! clock: every 100 ms each client receives `tick N at T`, where `T` is the host's time in
//! milliseconds since the Unix epoch (read through WASI's clock). The clock stops when the last
//! client leaves and starts again, from where it was, when someone reconnects.

use jamsocket_wasm::prelude::*;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds between ticks.
pub const TICK_MS: u32 = 100;

#[jamsocket_wasm]
pub struct Clock {
    ticks: u64,
    clients: usize,
    running: bool,
}

impl SimpleJamsocketService for Clock {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Clock {
            ticks: 0,
            clients: 0,
            running: false,
        }
    }

    fn connect(&mut self, _: ClientId, ctx: &impl JamsocketContext) {
        self.clients += 1;
        if !self.running {
            self.running = true;
            ctx.set_timer(TICK_MS);
        }
    }

    fn disconnect(&mut self, _: ClientId, _: &impl JamsocketContext) {
        self.clients = self.clients.saturating_sub(1);
    }

    fn timer(&mut self, ctx: &impl JamsocketContext) {
        if self.clients == 0 {
            // Let the timer lapse; the next `connect` starts it again.
            self.running = false;
            return;
        }
        self.ticks += 1;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        ctx.send_message(
            MessageRecipient::Broadcast,
            &format!("tick {} at {now_ms}", self.ticks),
        );
        ctx.set_timer(TICK_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket_wasm::jamsocket::RecordingContext;

    #[test]
    fn ticks_while_someone_is_connected() {
        let ctx = RecordingContext::default();
        let mut clock = Clock::new("room", &ctx);
        assert_eq!(ctx.timer(), None);
        clock.connect(ClientId::from(1), &ctx);
        assert_eq!(ctx.timer(), Some(TICK_MS));
        clock.timer(&ctx);
        let sent = ctx.take_messages();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].1.starts_with("tick 1 at "), "{sent:?}");
        clock.disconnect(ClientId::from(1), &ctx);
        clock.timer(&ctx);
        assert!(ctx.take_messages().is_empty());
    }
}
