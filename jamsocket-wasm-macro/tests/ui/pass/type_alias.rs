use jamsocket_wasm::prelude::*;
use std::marker::PhantomData;

pub struct Generic<T>(PhantomData<T>);

impl<T: Send + 'static> SimpleJamsocketService for Generic<T> {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Generic(PhantomData)
    }
}

// A generic service is exported through a concrete alias.
#[jamsocket_wasm]
type Service = Generic<u32>;

fn main() {
    let _: Service = Generic(PhantomData);
}
