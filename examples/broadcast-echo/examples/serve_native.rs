//! Serves [`BroadcastEcho`] natively: the same type the WebAssembly build exports.
//!
//! ```sh
//! cargo run --release -p broadcast-echo --example serve_native            # port 8080
//! PORT=9000 cargo run --release -p broadcast-echo --example serve_native
//! ```
//!
//! `MAX_MESSAGE_BYTES`, `MAX_FRAMES_PER_SEC` and `MAX_BYTES_PER_SEC` raise those limits (the
//! WebSocket conformance run, `.ci/autobahn.sh`, sends 16 MiB messages in 64-byte fragments).
//! `WORKERS` sets the number of worker threads (default: one per core). `ADMIN_PORT` serves the
//! admin listener on `127.0.0.1:<port>` (`/metrics`, the admin page; no room API) and so turns
//! metrics on (`bench/metrics.py` measures what they cost).
//!
//! It logs `Jamsocket listening on http://0.0.0.0:8080` (`RUST_LOG` filters the log; default
//! `info`). Stop it with Ctrl-C (or SIGTERM): every client gets close 1001.

use broadcast_echo::BroadcastEcho;
use jamsocket_server::Server;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

fn main() -> std::io::Result<()> {
    init_logging();
    let mut server = Server::new();
    if let Some(port) = setting("PORT")? {
        server = server.with_port(port);
    }
    if let Some(bytes) = setting("MAX_MESSAGE_BYTES")? {
        server = server.with_max_message_bytes(bytes);
    }
    if let Some(frames) = setting("MAX_FRAMES_PER_SEC")? {
        server = server.with_max_frames_per_sec(frames);
    }
    if let Some(bytes) = setting("MAX_BYTES_PER_SEC")? {
        server = server.with_max_bytes_per_sec(bytes);
    }
    if let Some(workers) = setting("WORKERS")? {
        server = server.with_workers(workers);
    }
    if let Some(port) = setting("ADMIN_PORT")? {
        server = server.with_admin(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port), None);
    }
    server.serve_default::<BroadcastEcho>()
}

/// The environment variable `name`, parsed, if it is set.
fn setting<T: FromStr>(name: &str) -> std::io::Result<Option<T>> {
    let Ok(value) = std::env::var(name) else {
        return Ok(None);
    };
    value
        .parse()
        .map(Some)
        .map_err(|_| std::io::Error::other(format!("{name}=`{value}` is not a number")))
}

/// Prints the server's log (where it listens, refusals, failures) to stdout; `RUST_LOG`
/// filters it (default `info`). The server library leaves logging to the program.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}
