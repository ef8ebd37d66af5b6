//! Serves [`BroadcastEcho`] natively: the same type the WebAssembly build exports.
//!
//! ```sh
//! cargo run --release -p broadcast-echo --example serve_native            # port 8080
//! PORT=9000 cargo run --release -p broadcast-echo --example serve_native
//! ```
//!
//! Stop it with Ctrl-C (or SIGTERM): every client gets close 1001.

use broadcast_echo::BroadcastEcho;

fn main() -> std::io::Result<()> {
    match std::env::var("PORT") {
        Ok(port) => {
            let port = port.parse().map_err(|_| {
                std::io::Error::other(format!("PORT=`{port}` is not a port number"))
            })?;
            jamsocket_server::Server::new()
                .with_port(port)
                .serve_default::<BroadcastEcho>()
        }
        Err(_) => jamsocket_server::serve::<BroadcastEcho>(),
    }
}
