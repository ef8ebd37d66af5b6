use jamsocket_wasm::jamsocket_wasm;
use jamsocket_wasm::prelude::{JamsocketContext, SimpleJamsocketService};

#[jamsocket_wasm]
struct SharedCounterServer(i32);

impl SimpleJamsocketService for SharedCounterServer {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        SharedCounterServer(0)
    }
}

mod unit {
    use jamsocket_wasm::prelude::*;

    #[jamsocket_wasm]
    pub struct Nothing;

    impl SimpleJamsocketService for Nothing {
        fn new(_: &str, _: &impl JamsocketContext) -> Self {
            Nothing
        }
    }
}

fn main() {
    let _ = SharedCounterServer(1).0;
    let _ = unit::Nothing;
}
