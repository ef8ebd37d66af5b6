//! Serves examples/conformance-service natively on 127.0.0.1, for benchmarking.
//!
//! ```sh
//! cargo run --release -p jamsocket-bench --example serve_conformance -- 8080
//! ```
//!
//! prints `listening on ws://127.0.0.1:8080 (pid 4242)`; then, in another terminal:
//!
//! ```sh
//! cargo run --release -p jamsocket-bench -- --url ws://127.0.0.1:8080 \
//!     broadcast --rooms 10 --clients 10 --prefix all: --server-pid 4242
//! ```
//!
//! The port defaults to 8080; 0 picks a free one. Stop it with Ctrl-C. It logs nothing, so
//! logging does not weigh on the numbers.

use conformance_service::ConformanceService;
use jamsocket::SimpleJamsocketServiceFactory;
use jamsocket_server::Server;
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse().map_err(|_| {
            std::io::Error::other(format!("`{port}` is not a port number (try 8080)"))
        })?,
        None => 8080,
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let running = Server::new().start(
        listener,
        SimpleJamsocketServiceFactory::<ConformanceService>::default(),
    )?;
    println!(
        "listening on ws://{} (pid {})",
        running.local_addr(),
        std::process::id()
    );
    running.stop_on_signal()
}
