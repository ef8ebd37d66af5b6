//! A chat room with nicknames, served natively.
//!
//! Run it with `cargo run --release -p native-chat`, then open two browser consoles:
//!
//! ```js
//! let ws = new WebSocket('ws://localhost:8080/ws/lobby');
//! ws.onmessage = (m) => console.log(m.data);
//! ws.send('/nick ada');     // everyone sees "* user1 is now ada"
//! ws.send('hello');         // everyone sees "ada: hello"
//! ```
//!
//! Joining and leaving are announced ("* user2 joined", "* ada left"). The server logs
//! `Jamsocket listening on http://0.0.0.0:8080` (`RUST_LOG` filters the log; default `info`).
//! Set `PORT` to listen elsewhere.

use jamsocket::{ClientId, JamsocketContext, MessageRecipient, SimpleJamsocketService};
use std::collections::HashMap;

/// Longest nickname, in characters.
const MAX_NICK: usize = 24;

struct ChatRoom {
    nicknames: HashMap<ClientId, String>,
}

impl ChatRoom {
    fn name(&self, client: ClientId) -> String {
        self.nicknames
            .get(&client)
            .cloned()
            .unwrap_or_else(|| format!("user{client}"))
    }
}

impl SimpleJamsocketService for ChatRoom {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        ChatRoom {
            nicknames: HashMap::new(),
        }
    }

    fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        let name = self.name(client);
        ctx.send_message(
            client,
            &format!("* welcome, {name}; change your name with /nick <name>"),
        );
        ctx.send_message(MessageRecipient::Broadcast, &format!("* {name} joined"));
    }

    fn disconnect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        let name = self.name(client);
        self.nicknames.remove(&client);
        ctx.send_message(MessageRecipient::Broadcast, &format!("* {name} left"));
    }

    fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
        if let Some(nick) = message.strip_prefix("/nick ") {
            let nick = nick.trim();
            if nick.is_empty() || nick.chars().count() > MAX_NICK || nick.starts_with('*') {
                ctx.send_message(
                    client,
                    &format!(
                        "* a nickname has 1 to {MAX_NICK} characters and does not start with *"
                    ),
                );
                return;
            }
            let old = self.name(client);
            self.nicknames.insert(client, nick.to_string());
            ctx.send_message(
                MessageRecipient::Broadcast,
                &format!("* {old} is now {nick}"),
            );
        } else {
            let name = self.name(client);
            ctx.send_message(MessageRecipient::Broadcast, &format!("{name}: {message}"));
        }
    }
}

fn main() -> std::io::Result<()> {
    init_logging();
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| std::io::Error::other(format!("PORT=`{port}` is not a port number")))?,
        Err(_) => 8080,
    };
    jamsocket_server::Server::new()
        .with_port(port)
        .serve_default::<ChatRoom>()
}

/// Prints the server's log (where it listens, refusals, failures) to stdout; `RUST_LOG`
/// filters it (default `info`). The server library leaves logging to the program.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}
