use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
struct JustData(u8);

fn main() {}
