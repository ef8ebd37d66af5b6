//! Serve [Jamsocket](jamsocket) services to WebSocket clients.
//!
//! The server hosts one *room* per room id. A client connects with
//! `new WebSocket("ws://host:8080/ws/<room>")`; each room runs its own instance of your service,
//! in its own lightweight task (thousands of rooms cost thousands of tasks, not threads).
//!
//! ```no_run
//! use jamsocket::{ClientId, JamsocketContext, MessageRecipient, SimpleJamsocketService};
//!
//! struct SharedCounterServer(i32);
//!
//! impl SimpleJamsocketService for SharedCounterServer {
//!     fn new(_: &str, _: &impl JamsocketContext) -> Self {
//!         SharedCounterServer(0)
//!     }
//!
//!     fn message(&mut self, _: ClientId, message: &str, ctx: &impl JamsocketContext) {
//!         match message {
//!             "increment" => self.0 += 1,
//!             "decrement" => self.0 -= 1,
//!             _ => (),
//!         }
//!         ctx.send_message(MessageRecipient::Broadcast, &format!("new value: {}", self.0));
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     jamsocket_server::serve::<SharedCounterServer>()
//! }
//! ```
//!
//! # Routes
//! - `GET /status`: `ok`.
//! - `GET /ws/<room>`: the WebSocket of a room. Room ids are 1-128 characters of
//!   `A-Z a-z 0-9 - _ . ~`; others get 400.
//! - `POST /ws/<room>`: creates a room under [`RoomIdStrategy::Explicit`] (201, or 409 if it
//!   exists).
//! - `POST /new_room`: creates a room with a generated id under [`RoomIdStrategy::Uuid`] and
//!   [`RoomIdStrategy::Short`]; answers `{"room_id": "..."}`.
//! - Everything else: files from [`Server::with_static_path`], if set.
//!
//! # Connections
//! Actix Web parses each HTTP request. A WebSocket handshake (any HTTP/1.1 upgrade request) is
//! handed over with its TCP stream to a task of its own, which reads and writes frames itself:
//! what a room sends is encoded straight into the socket, everything queued at that moment in
//! one write, and an idle connection holds no buffers. The task runs on the worker thread of
//! its room (the thread that created the room), so a message and its broadcast never wake
//! another thread; rooms spread over the workers. WebSocket handshakes for other paths get
//! 404, and invalid ones 400, each with a plain-text reason; other upgrade requests (`Upgrade:
//! h2c` from `curl --http2`) are answered as plain requests.
//!
//! # Close codes
//! | code | when |
//! |---|---|
//! | 1000 | answer to a client's close frame (its own code is echoed) |
//! | 1001 | the server shuts down, or the client missed heartbeats |
//! | 1007 | a text message was not valid UTF-8 |
//! | 1008 | the client stopped reading and its outbound queue filled up, or sent more than [`Limits::max_messages_per_sec`] |
//! | 1009 | a message exceeded [`Limits::max_message_bytes`] |
//! | 1011 | the room's service failed |

mod admission;
mod connection;
mod error;
mod frame_header;
mod limits;
mod rate_limit;
mod registry;
mod room_actor;
mod room_context;
mod room_event;
mod room_id;
mod routes;
mod server;
mod settings;
mod shutdown_policy;
mod static_files;
mod websocket;

pub use error::{RoomIdError, SettingError};
pub use limits::Limits;
pub use room_context::RoomContext;
pub use room_id::{validate_room_id, RoomIdStrategy, MAX_ROOM_ID_BYTES};
pub use server::{RunningServer, Server, LISTEN_BACKLOG};
pub use shutdown_policy::ShutdownPolicy;

/// Serves `S` on port 8080 with default settings until SIGINT or SIGTERM.
pub fn serve<S: jamsocket::SimpleJamsocketService>() -> std::io::Result<()> {
    Server::new().serve_default::<S>()
}
