use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
union Bits {
    a: u32,
    b: f32,
}

#[jamsocket_wasm]
trait Service {}

#[jamsocket_wasm]
mod services {}

fn main() {}
