//! Host Jamsocket services compiled to WebAssembly, one isolated wasmtime instance per room.
//!
//! A [`WasmHostFactory`] loads a guest module (built with `jamsocket-wasm` for
//! `wasm32-wasip1`), checks it against [`jamsocket::abi`], and implements
//! [`JamsocketServiceFactory`](jamsocket::JamsocketServiceFactory): each room gets a
//! [`WasmHost`], a [`JamsocketService`](jamsocket::JamsocketService) that forwards events to the
//! guest's exports and the guest's messages to the room's context.
//!
//! Rooms are isolated and limited ([`WasmHostConfig`]): memory per instance, CPU time per call
//! (long calls yield to other rooms every time slice), bytes sent per call, and the number of
//! rooms. Whatever a guest does, the host does not panic: a trap or a broken limit fails that
//! room only, with an error naming the room, the export and the cause. Guest stdout and
//! stderr lines go to the `tracing` log (target `jamsocket_wasm_host::guest`, with the room id),
//! rate-limited per room and cut at a length limit.
//!
//! Rooms are durable: [`JamsocketService::snapshot`](jamsocket::JamsocketService::snapshot)
//! returns the service's own snapshot when the guest has one (`jamsocket_snapshot`, e.g. a
//! `Durable<_>` service), which any build of the module that reads it can restore, and
//! otherwise a memory image of the guest (the 4 KiB chunks of its memory that differ from the
//! module's initial memory, and its exported mutable globals), which only the same module
//! ([`WasmHostFactory::module_hash`]) can restore.
//! [`JamsocketServiceFactory::restore`](jamsocket::JamsocketServiceFactory::restore) brings the
//! room back. See the README's *Snapshots* for the format and what survives a code change.
//!
//! Requests from the server side ([`JamsocketService::request`](jamsocket::JamsocketService::request),
//! a backend calling the room API) go to the guest's optional `jamsocket_request`; a module
//! without it answers 404. The factory's [`HostMetrics`] ([`WasmHostFactory::metrics`]), a
//! Prometheus collector, count the guests' CPU time, memory, instances and failures.
//!
//! ```
//! use jamsocket::{ClientId, JamsocketContext, JamsocketService, JamsocketServiceFactory, MessageRecipient};
//! use jamsocket_wasm_host::{WasmHostConfig, WasmHostFactory};
//! use std::sync::mpsc;
//!
//! /// A room context that forwards text messages to a channel.
//! struct Outbox(mpsc::Sender<(MessageRecipient, String)>);
//!
//! impl JamsocketContext for Outbox {
//!     fn send_message(&self, recipient: impl Into<MessageRecipient>, message: &str) {
//!         self.0.send((recipient.into(), message.to_string())).unwrap();
//!     }
//!     fn send_binary(&self, _: impl Into<MessageRecipient>, _: &[u8]) {}
//!     fn set_timer(&self, _: u32) {}
//! }
//!
//! // A guest written by hand: it answers every text message with "hi". Real guests are
//! // Rust crates using `#[jamsocket_wasm]`.
//! let wasm = wat::parse_str(r#"
//!     (module
//!       (import "jamsocket" "send_message" (func $send (param i32 i32 i32)))
//!       (memory (export "memory") 1)
//!       (data (i32.const 16) "hi")
//!       (func (export "jamsocket_abi_version") (result i32) i32.const 3)
//!       (func (export "jamsocket_buffer") (param i32) (result i32) i32.const 1024)
//!       (func (export "jamsocket_initialize") (param i32 i32))
//!       (func (export "jamsocket_connect") (param i32))
//!       (func (export "jamsocket_disconnect") (param i32))
//!       (func (export "jamsocket_message") (param $client i32) (param i32 i32)
//!         (call $send (local.get $client) (i32.const 16) (i32.const 2)))
//!       (func (export "jamsocket_binary") (param i32 i32 i32))
//!       (func (export "jamsocket_timer")))
//! "#)?;
//! let factory = WasmHostFactory::from_bytes(&wasm, WasmHostConfig::default().with_max_rooms(10))?;
//!
//! let (outbox, sent) = mpsc::channel();
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! runtime.block_on(async {
//!     let mut room = factory.build("room-1", Outbox(outbox.clone())).await?;
//!     room.message(ClientId::from(7), "hello").await?;
//!     // Saved (a memory image: this guest keeps no snapshot of its own), then brought back.
//!     let saved = room.snapshot().await?.expect("a wasm room always has a snapshot");
//!     let mut restored = factory.restore("room-1", Outbox(outbox), &saved).await?;
//!     restored.message(ClientId::from(8), "hello again").await?;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! assert_eq!(sent.try_recv()?, (MessageRecipient::Client(ClientId::from(7)), "hi".to_string()));
//! assert_eq!(sent.try_recv()?, (MessageRecipient::Client(ClientId::from(8)), "hi".to_string()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Calls use wasmtime's async API, so drive the futures on any executor; on a tokio
//! current-thread runtime (with `spawn_local`), a long guest call yields every time slice and
//! other rooms on the thread keep running. See the README for the ABI, limits and defaults.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod abi_check;
mod call_budget;
mod config;
mod epoch_ticker;
mod erased_context;
mod error;
mod guest_failure;
mod guest_limiter;
mod guest_log;
mod host_metrics;
mod host_state;
mod imports;
mod lock;
mod memory_image;
mod output_budget;
mod snapshot_format;
mod wasm_host;
mod wasm_host_factory;

pub use config::WasmHostConfig;
pub use error::WasmHostError;
pub use guest_failure::GuestFailure;
pub use host_metrics::HostMetrics;
pub use wasm_host::WasmHost;
pub use wasm_host_factory::WasmHostFactory;
