//! `jamsocket-server`'s integration tests, written once and run against every kind of room.
//!
//! Each test is an ordinary `pub async fn` taking the [`ConformanceFactory`] to serve: rooms
//! running `examples/conformance-service`, natively or as WebAssembly. A test binary picks its
//! rooms and instantiates every test for them with [`server_tests!`], as tokio's `rt_test!`
//! does for its runtimes: `jamsocket-server`'s `server` tests with native rooms,
//! `jamsocket-cli`'s `wasm_conformance` tests with WebAssembly rooms (`jamsocket-server` never
//! depends on wasmtime).
//!
//! The helpers in [`common`] start a server on 127.0.0.1:0 and talk to it with a real
//! WebSocket client, with a timeout on every receive:
//!
//! ```
//! use jamsocket_test_suite::common::{join, recv_text, send, start};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let factory = jamsocket::SimpleJamsocketServiceFactory::<
//!     conformance_service::ConformanceService,
//! >::default();
//! let server = start(jamsocket_server::Server::new(), factory);
//! let (mut ws, id) = join(server.local_addr(), "lobby").await;
//! assert_eq!(id, 1);
//! send(&mut ws, "count").await;
//! assert_eq!(recv_text(&mut ws).await, "count 1");
//! # }
//! ```
//!
//! [`raw_frames`] writes and reads WebSocket frames by hand, for clients that misbehave on
//! purpose; `jamsocket-cli`'s tests of the real binary use it too.

pub mod common;
pub mod raw_frames;

pub mod admin;
pub mod attacks;
pub mod chaos;
pub mod durable;
pub mod identity;
pub mod lifecycle;
pub mod limits;
pub mod messaging;
pub mod protocol;
pub mod strategies;

mod server_tests;

pub use common::ConformanceFactory;
