use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
struct Wrapper<T>(T);

#[jamsocket_wasm]
struct Borrowing<'a>(&'a str);

fn main() {}
