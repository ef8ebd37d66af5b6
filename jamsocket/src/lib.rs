//! The service interface of Jamsocket.
//!
//! A Jamsocket server hosts *rooms*. Each room is one instance of your service, and the
//! WebSocket clients connected to that room share its state. This crate holds the interface
//! between a service and whatever hosts it (the native server in `jamsocket-server`, or a
//! WebAssembly module through `jamsocket-wasm`). It has no dependencies.
//!
//! Most services implement [`SimpleJamsocketService`]: a constructor plus optional handlers for
//! clients connecting, disconnecting and sending messages, for timers, and for requests from the
//! server side (a backend calling the room API), which get a [`Response`]. Every handler
//! receives a [`JamsocketContext`] to send messages and set a timer.
//!
//! ```
//! use jamsocket::{ClientId, JamsocketContext, MessageRecipient, RecordingContext, SimpleJamsocketService};
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
//! let ctx = RecordingContext::default();
//! let mut counter = SharedCounterServer::new("room-1", &ctx);
//! counter.message(ClientId::from(1), "increment", &ctx);
//! counter.message(ClientId::from(2), "increment", &ctx);
//! assert_eq!(
//!     ctx.take_messages(),
//!     vec![
//!         (MessageRecipient::Broadcast, "new value: 1".to_string()),
//!         (MessageRecipient::Broadcast, "new value: 2".to_string()),
//!     ]
//! );
//! ```
//!
//! Hosts talk to rooms through [`JamsocketService`] and create them with a
//! [`JamsocketServiceFactory`]; [`SimpleJamsocketServiceFactory`] adapts any
//! [`SimpleJamsocketService`] to that interface.
//!
//! The one deliberate change from Jamsocket 0.1: [`JamsocketService`] and
//! [`JamsocketServiceFactory`] return futures and `Result`s, so that a host can time-slice
//! a long-running WebAssembly guest and close a room whose service failed.
//! [`SimpleJamsocketService`] is unchanged, so services written for 0.1 compile as they are.
//!
//! Durable rooms: a host with a store saves a room's [`JamsocketService::snapshot`] and brings
//! the room back with [`JamsocketServiceFactory::restore`]. A [`SimpleJamsocketService`] opts
//! in with its `snapshot`/`restore` pair, or, with the `serde` feature, by being served as
//! `Durable<YourService>`. WebAssembly rooms need neither: their host saves the guest's memory.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod abi;
mod client_id;
mod context;
#[cfg(feature = "serde")]
mod durable;
mod error;
mod recording_context;
mod response;
mod service;
mod simple_service;
mod user;

pub use client_id::{ClientId, MessageRecipient};
pub use context::JamsocketContext;
#[cfg(feature = "serde")]
pub use durable::Durable;
pub use error::{RestoreError, ServiceError};
pub use recording_context::RecordingContext;
pub use response::Response;
pub use service::{JamsocketService, JamsocketServiceFactory};
pub use simple_service::{
    SimpleJamsocketService, SimpleJamsocketServiceFactory, WrappedJamsocketService,
};
pub use user::User;
