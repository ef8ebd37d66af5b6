//! The expansion adds nothing that the strict lints of a user crate complain about. (Natively;
//! the `wasm32` exports are checked the same way when the example guests are built.)
#![deny(missing_docs, missing_debug_implementations, unreachable_pub)]

use jamsocket_wasm::prelude::*;

/// A documented service.
#[jamsocket_wasm]
#[derive(Debug)]
pub struct Documented;

impl SimpleJamsocketService for Documented {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Documented
    }
}

fn main() {
    let _ = Documented;
}
