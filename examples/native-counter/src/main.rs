//! The seed's shared counter, served natively.
//!
//! Run it with `cargo run --release -p native-counter`, then in a browser console:
//!
//! ```js
//! let ws = new WebSocket('ws://localhost:8080/ws/1');
//! ws.onmessage = (c) => console.log(c.data);
//! ws.send('increment');   // every client in room 1 logs "new value: 1"
//! ```
//!
//! It logs `Jamsocket listening on http://0.0.0.0:8080` (`RUST_LOG` filters the log; default
//! `info`), and `http://localhost:8080/status` answers `ok`. Set `PORT` to listen elsewhere.
//!
//! Set `STORE=sqlite:counter.db` (or `STORE=redis://127.0.0.1:6379/0`) and the counts survive
//! a restart: the service derives serde's traits and is served as `Durable<...>`, one line.

use jamsocket::{ClientId, Durable, JamsocketContext, MessageRecipient, SimpleJamsocketService};
use jamsocket_server::{Server, Snapshots, StoreConfig};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct SharedCounterServer(i32);

impl SimpleJamsocketService for SharedCounterServer {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        SharedCounterServer(0)
    }

    fn message(&mut self, _: ClientId, message: &str, ctx: &impl JamsocketContext) {
        match message {
            "increment" => self.0 += 1,
            "decrement" => self.0 -= 1,
            _ => (),
        }

        ctx.send_message(
            MessageRecipient::Broadcast,
            &format!("new value: {}", self.0),
        );
    }
}

fn main() -> std::io::Result<()> {
    init_logging();
    let mut server = Server::new();
    if let Ok(port) = std::env::var("PORT") {
        let port = port
            .parse()
            .map_err(|_| std::io::Error::other(format!("PORT=`{port}` is not a port number")))?;
        server = server.with_port(port);
    }
    if let Ok(url) = std::env::var("STORE") {
        let store = Snapshots::open(&url, StoreConfig::new())
            .map_err(|err| std::io::Error::other(format!("STORE=`{url}`: {err}")))?;
        server = server.with_store(store);
    }
    server.serve_default::<Durable<SharedCounterServer>>()
}

/// Prints the server's log (where it listens, refusals, failures) to stdout; `RUST_LOG`
/// filters it (default `info`). The server library leaves logging to the program.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}
