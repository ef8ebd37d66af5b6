//! The server's integration tests (`jamsocket-test-suite`) with WebAssembly rooms, and guests
//! that misbehave.
//!
//! The suite is the one `jamsocket-server`'s tests run natively; only the factory differs: here
//! every room is a wasmtime instance of `examples/conformance-service` built for
//! `wasm32-wasip1` by the real `jamsocket build`.

mod long_handlers;
mod misbehaving_guests;

use jamsocket_wasm_host::WasmHostFactory;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The rooms under test: the conformance service as WebAssembly, built once per test run.
fn factory() -> WasmHostFactory {
    static FACTORY: OnceLock<WasmHostFactory> = OnceLock::new();
    FACTORY
        .get_or_init(|| {
            WasmHostFactory::new(build_guest("conformance-service")).expect("the guest loads")
        })
        .clone()
}

jamsocket_test_suite::server_tests!(factory());
// WebAssembly rooms are durable as they are: the host saves the guest's memory.
jamsocket_test_suite::durable_tests!(super::factory());

/// Builds `examples/<name>` for `wasm32-wasip1` with the real `jamsocket build`.
fn build_guest(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_jamsocket"))
        .arg("build")
        .arg(root.join("examples").join(name))
        .env("CARGO_TARGET_DIR", root.join("target/cli-tests"))
        .output()
        .expect("cannot run jamsocket build");
    assert!(
        output.status.success(),
        "jamsocket build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}
