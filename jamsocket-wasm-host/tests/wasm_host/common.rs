//! Helpers: factories for the example guests, a shared recording context and timeouts.

pub use crate::guests::{example_wasm, EXAMPLES};
pub use crate::log_capture::LogCapture;
pub use crate::wat_guest::WatGuest;

use jamsocket::{RecordingContext, ServiceError};
use jamsocket_wasm_host::{GuestFailure, WasmHost, WasmHostConfig, WasmHostError, WasmHostFactory};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long any single wait in these tests may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The configuration of most tests: the defaults, with a small pool.
pub fn test_config() -> WasmHostConfig {
    WasmHostConfig::default().with_max_rooms(32)
}

/// A factory for an example with [`test_config`], compiled once per test run.
pub fn example_factory(name: &str) -> WasmHostFactory {
    static FACTORIES: OnceLock<Mutex<HashMap<String, WasmHostFactory>>> = OnceLock::new();
    let path = example_wasm(name);
    let mut factories = FACTORIES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    factories
        .entry(name.to_string())
        .or_insert_with(|| {
            WasmHostFactory::with_config(&path, test_config())
                .unwrap_or_else(|err| panic!("loading {}: {err}", path.display()))
        })
        .clone()
}

/// A context that records what the room sent and stays readable after the room took it.
pub type Recorder = Arc<RecordingContext>;

/// Builds a room with a fresh [`Recorder`].
pub async fn room(factory: &WasmHostFactory, room_id: &str) -> (WasmHost, Recorder) {
    let recorder = Recorder::default();
    let host = within(jamsocket::JamsocketServiceFactory::build(
        factory,
        room_id,
        recorder.clone(),
    ))
    .await
    .unwrap_or_else(|err| panic!("building room {room_id}: {err}"));
    (host, recorder)
}

/// Awaits `future`, failing the test after [`TIMEOUT`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("timed out")
}

/// The guest failure inside a room error, checking that the message names the room and export.
pub fn guest_failure(error: &ServiceError, room_id: &str, export: &str) -> GuestFailure {
    let message = error.to_string();
    assert!(
        message.contains(room_id),
        "{message} should name room {room_id}"
    );
    assert!(message.contains(export), "{message} should name {export}");
    let ServiceError::Failed(cause) = error else {
        panic!("expected a failed service, got {error}");
    };
    match cause.downcast_ref::<WasmHostError>() {
        Some(WasmHostError::GuestFailed { failure, .. }) => failure.clone(),
        other => panic!("expected a guest failure, got {other:?}"),
    }
}

/// Polls `future` to completion on the current thread, parking between polls.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::park_timeout(std::time::Duration::from_millis(10));
    }
}
