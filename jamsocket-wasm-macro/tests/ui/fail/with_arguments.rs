use jamsocket_wasm::prelude::*;

#[jamsocket_wasm(name = "counter")]
struct Counter;

impl SimpleJamsocketService for Counter {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Counter
    }
}

fn main() {}
