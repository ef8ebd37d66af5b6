//! Helpers shared by the fuzz targets in `fuzz_targets/`.

pub mod program_guest;

use jamsocket::abi::{imports, IMPORT_MODULE};
use jamsocket::RecordingContext;
use std::future::Future;
use std::sync::{Arc, OnceLock};

/// A room context that records what the room sent and stays readable after the room took it.
pub type Recorder = Arc<RecordingContext>;

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

/// The WAT import of every function of `jamsocket::abi::imports`, one per line, each with its
/// signature from `imports::FUNCTIONS` and named after the import (`$send_message`).
pub fn abi_imports_wat() -> String {
    let i32s = |kind: &str, count: usize| match count {
        0 => String::new(),
        _ => format!(" ({kind}{})", " i32".repeat(count)),
    };
    imports::FUNCTIONS
        .iter()
        .map(|&(name, params, results)| {
            format!(
                "(import \"{IMPORT_MODULE}\" \"{name}\" (func ${name}{}{}))\n",
                i32s("param", params),
                i32s("result", results)
            )
        })
        .collect()
}
