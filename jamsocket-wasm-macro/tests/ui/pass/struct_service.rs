use jamsocket_wasm::jamsocket::RecordingContext;
use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
#[derive(Debug)]
pub struct Counter {
    value: i32,
}

impl SimpleJamsocketService for Counter {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Counter { value: 0 }
    }

    fn message(&mut self, client: ClientId, _: &str, ctx: &impl JamsocketContext) {
        self.value += 1;
        ctx.send_message(client, &self.value.to_string());
    }
}

fn main() {
    // The service is still an ordinary type natively.
    let ctx = RecordingContext::default();
    let mut counter = Counter::new("room", &ctx);
    counter.message(ClientId::from(1), "hi", &ctx);
    assert_eq!(ctx.take_messages().len(), 1);
}
