use jamsocket_wasm::prelude::*;

struct Counter;

#[jamsocket_wasm]
impl SimpleJamsocketService for Counter {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Counter
    }
}

fn main() {}
