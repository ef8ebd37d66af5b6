//! Real guests on real wasmtime: the example crates (built once per run for
//! `wasm32-wasip1`) and deliberately broken guests written in WAT.

mod abi_conformance;
mod broken_guests;
mod common;
mod examples;
mod guest_output;
mod guests;
mod limits;
mod log_capture;
mod metrics;
mod module_loading;
mod requests;
mod snapshots;
mod time_slicing;
mod users;
mod wat_guest;
