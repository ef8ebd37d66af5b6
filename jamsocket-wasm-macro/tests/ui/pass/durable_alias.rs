//! A serde service served as `Durable<_>` through a type alias: its snapshots are explicit.
use jamsocket_wasm::prelude::*;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Counter(i32);

impl SimpleJamsocketService for Counter {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Counter(0)
    }
}

#[jamsocket_wasm]
type Service = Durable<Counter>;

fn main() {
    let ctx = jamsocket_wasm::jamsocket::RecordingContext::default();
    let saved = Service::new("room", &ctx).snapshot().expect("a Durable keeps snapshots");
    assert!(Service::restore("room", &saved, &ctx).is_ok());
}
