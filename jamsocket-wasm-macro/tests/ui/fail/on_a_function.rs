use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
fn service() {}

fn main() {
    service();
}
