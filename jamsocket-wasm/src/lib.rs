//! Write Jamsocket services that compile to WebAssembly.
//!
//! Implement [`SimpleJamsocketService`](jamsocket::SimpleJamsocketService) as usual and put
//! `#[jamsocket_wasm]` on the type. Built for `wasm32-wasip1` as a `cdylib`, the crate becomes a
//! module that `jamsocket-wasm-host` can serve, one instance per room. The attribute adds
//! nothing on other targets, so the same crate also builds natively (as an `rlib`) and the
//! service is an ordinary type there, which is how you test it:
//!
//! ```
//! use jamsocket_wasm::prelude::*;
//! use jamsocket_wasm::jamsocket::RecordingContext;
//!
//! #[jamsocket_wasm]
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
//! assert_eq!(
//!     ctx.take_messages(),
//!     vec![(MessageRecipient::Broadcast, "new value: 1".to_string())]
//! );
//! ```
//!
//! Build the module with
//! `cargo build --release --target wasm32-wasip1` (with `crate-type = ["cdylib", "rlib"]` in
//! `[lib]`); the `.wasm` lands in `target/wasm32-wasip1/release/`.
//!
//! # What the guest may use
//!
//! Its context works as natively, including
//! [`user`](jamsocket::JamsocketContext::user): who a client is, as the host authenticated it
//! (the ABI's `user` import; test it natively with `RecordingContext::set_user`).
//!
//! Besides its context, a service can use the WASI functions the host provides: clocks
//! (`std::time`), secure randomness (`getrandom`) and standard output and error (`println!`,
//! `eprintln!`: each line goes to the host's log, tagged with the room id). It cannot sleep
//! (`std::thread::sleep` traps: use [`JamsocketContext::set_timer`](jamsocket::JamsocketContext::set_timer)),
//! open files or sockets. The host limits each instance's memory and the CPU time of each call.
//!
//! # Durable rooms
//!
//! A host with a store saves rooms and brings them back after a restart. With no code, it saves
//! the guest's memory, which only the same module can restore: after a code change, rooms start
//! fresh. To keep state across code changes, enable this crate's `serde` feature, derive serde's
//! `Serialize` and `Deserialize` on the service and export it as
//! [`Durable`](jamsocket::Durable) (in the prelude with the feature):
//!
//! ```
//! use jamsocket_wasm::prelude::*;
//! # // The prelude has `Durable` with this crate's `serde` feature; here it comes from `jamsocket`.
//! use jamsocket_wasm::jamsocket::{Durable, RecordingContext};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Tally(u64);
//!
//! impl SimpleJamsocketService for Tally {
//!     fn new(_: &str, _: &impl JamsocketContext) -> Self {
//!         Tally(0)
//!     }
//!
//!     fn message(&mut self, _: ClientId, _: &str, _: &impl JamsocketContext) {
//!         self.0 += 1;
//!     }
//! }
//!
//! #[jamsocket_wasm]
//! type Service = Durable<Tally>;
//!
//! // What the host saves and restores, natively:
//! let ctx = RecordingContext::default();
//! let mut tally = Service::new("room", &ctx);
//! tally.message(ClientId::from(1), "hi", &ctx);
//! let saved = tally.snapshot().expect("a Durable service keeps snapshots");
//! assert_eq!(saved, b"\x011"); // format 1, then JSON
//! assert_eq!(Service::restore("room", &saved, &ctx).unwrap().0 .0, 1);
//! ```
//!
//! Its state is then saved as JSON through the attribute's `jamsocket_snapshot` export and read
//! back by `jamsocket_restore` (instead of `new`), in whichever build can deserialize it. Or
//! implement [`SimpleJamsocketService::snapshot`](jamsocket::SimpleJamsocketService::snapshot)
//! and `restore` yourself. `examples/durable-counter` is a complete one.
//!
//! # The ABI
//!
//! The attribute exports the functions listed in [`jamsocket::abi`], including the optional
//! `jamsocket_snapshot` / `jamsocket_restore` pair (a service that keeps no snapshots answers
//! "none" and "unsupported", and the host saves its memory instead) and `jamsocket_request`
//! (a service without a request handler answers 404). The host copies a room id
//! or a message into a buffer it gets from `jamsocket_buffer` and passes its `(ptr, len)`. The
//! runtime only reads input inside that buffer, so a wrong pointer cannot make it read
//! elsewhere. Text that is not valid UTF-8 (which a conforming host never sends) is decoded
//! lossily: invalid sequences become U+FFFD. A handler called before `jamsocket_initialize`
//! panics, which traps the instance.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod buffer;
mod guest_context;
mod imports;
mod kept;
mod lock;
pub mod prelude;
mod request;
mod service_cell;
mod snapshot;

pub use jamsocket;
pub use jamsocket_wasm_macro::jamsocket_wasm;

/// The runtime behind the code generated by `#[jamsocket_wasm]`. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::buffer::buffer;
    pub use crate::guest_context::GuestContext;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::guest_context::{set_user, take_sent, Sent};
    pub use crate::request::request;
    pub use crate::service_cell::{
        abi_version, assert_service, binary, connect, disconnect, initialize, message, timer,
        ServiceCell,
    };
    pub use crate::snapshot::{restore, snapshot};
}
