//! Helpers shared by the fuzz targets in `fuzz_targets/`.

pub mod program_guest;

use jamsocket::{JamsocketContext, MessageRecipient, RecordingContext};
use std::future::Future;
use std::sync::{Arc, OnceLock};

/// A room context that records what the room sent and stays readable after the room took it.
#[derive(Clone, Default)]
pub struct Recorder(Arc<RecordingContext>);

impl std::ops::Deref for Recorder {
    type Target = RecordingContext;
    fn deref(&self) -> &RecordingContext {
        &self.0
    }
}

impl JamsocketContext for Recorder {
    fn send_message(&self, recipient: impl Into<MessageRecipient>, message: &str) {
        self.0.send_message(recipient, message);
    }
    fn send_binary(&self, recipient: impl Into<MessageRecipient>, message: &[u8]) {
        self.0.send_binary(recipient, message);
    }
    fn set_timer(&self, ms_delay: u32) {
        self.0.set_timer(ms_delay);
    }
}

/// Runs `future` on a current-thread tokio runtime shared by every input, as the server runs
/// rooms (a time-sliced guest call yields through `tokio::task::yield_now`).
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime")
        })
        .block_on(future)
}
