//! `guest_abi`: arbitrary `(recipient, ptr, len)` values and memory contents through the host
//! imports of a real wasmtime instance.
//!
//! The guest (`jamsocket_fuzz::program_guest`, in WAT) runs each message as a program of
//! `send_message` / `send_binary` / `set_timer` calls with raw arguments, memory stores and
//! memory growth; its `Model` is the same guest in Rust. Each input goes to a fresh room as a
//! binary message and, if it is UTF-8, to another as a text message. Then:
//! - nothing panics, and the call succeeds or fails with exactly the [`GuestFailure`] the model
//!   predicts (out of bounds, invalid UTF-8, memory limit, send limit), from the right export;
//! - the room recorded exactly what the model sent: the bytes that were in guest memory at
//!   `ptr..ptr + len` (text only if valid UTF-8), to the decoded recipient, and the last timer;
//! - a failed room refuses the next call, naming the same failure.
//!
//! Should the machine be so busy that a call hits its CPU limit, what was sent must only be a
//! prefix of what the model sent.

#![no_main]

use jamsocket::abi::exports;
use jamsocket::{
    ClientId, JamsocketService, JamsocketServiceFactory, MessageRecipient, ServiceError,
};
use jamsocket_fuzz::program_guest::{self, Model, GREETING, MAX_MEMORY, MAX_SENT};
use jamsocket_fuzz::{block_on, Recorder};
use jamsocket_wasm_host::{GuestFailure, WasmHost, WasmHostConfig, WasmHostError, WasmHostFactory};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::Duration;

const ROOM_ID: &str = "fuzz-room";
const CLIENT: u32 = 1;

/// The guest's factory, compiled once per process.
fn factory() -> &'static WasmHostFactory {
    static FACTORY: OnceLock<WasmHostFactory> = OnceLock::new();
    FACTORY.get_or_init(|| {
        let wasm = wat::parse_str(program_guest::wat()).expect("the guest's WAT");
        let config = WasmHostConfig::default()
            .with_max_rooms(2)
            .with_max_memory_bytes(MAX_MEMORY)
            .with_max_sent_bytes_per_call(MAX_SENT)
            .with_cpu_time_per_call(Duration::from_millis(200));
        WasmHostFactory::from_bytes(&wasm, config).expect("loading the guest")
    })
}

/// The export and failure behind a room's error; anything untyped fails the target.
fn guest_failure(error: &ServiceError) -> (&'static str, GuestFailure) {
    let ServiceError::Failed(cause) = error else {
        panic!("a guest failure must fail the room, got {error}");
    };
    match cause.downcast_ref::<WasmHostError>() {
        Some(WasmHostError::GuestFailed {
            room_id,
            export,
            failure,
            ..
        }) => {
            assert_eq!(room_id, ROOM_ID, "{error}");
            (export, failure.clone())
        }
        _ => panic!("not a typed guest failure: {error}"),
    }
}

/// A new room with one connected client, which got the greeting.
fn new_room() -> (WasmHost, Recorder) {
    let recorder = Recorder::default();
    let client = ClientId::from(CLIENT);
    let room = block_on(async {
        let mut room = factory().build(ROOM_ID, recorder.clone()).await?;
        room.connect(client).await?;
        Ok::<_, ServiceError>(room)
    })
    .unwrap_or_else(|error| panic!("creating the room: {error}"));
    let greeting = (MessageRecipient::Client(client), GREETING.to_string());
    assert_eq!(recorder.take_messages(), [greeting]);
    (room, recorder)
}

/// Delivers `input` to a new room, as text if `text` is given, and checks the room against the
/// model.
fn check(input: &[u8], text: Option<&str>) {
    let (mut room, recorder) = new_room();
    let client = ClientId::from(CLIENT);
    let (export, result) = block_on(async {
        match text {
            Some(text) => (exports::MESSAGE, room.message(client, text).await),
            None => (exports::BINARY, room.binary(client, input).await),
        }
    });
    let failure = result.as_ref().err().map(guest_failure);
    assert_eq!(room.failure(), failure.as_ref().map(|(_, failure)| failure));

    let mut model = Model::new(ROOM_ID);
    let expected = model.deliver(export, input).err();
    let messages = recorder.take_messages();
    let binaries = recorder.take_binaries();
    if let Some((_, GuestFailure::CpuLimit { .. })) = failure {
        assert!(model.messages.starts_with(&messages), "{messages:?}");
        assert!(model.binaries.starts_with(&binaries), "{binaries:?}");
    } else {
        assert_eq!(failure, expected);
        assert_eq!(messages, model.messages);
        assert_eq!(binaries, model.binaries);
        assert_eq!(recorder.timer(), model.timer);
    }

    // A failed room refuses the next call, naming the same failure; a healthy one carries on.
    let next = block_on(room.timer());
    match (failure, next) {
        (None, next) => next.expect("a healthy room takes the next call"),
        (Some((_, failure)), Err(ServiceError::Failed(cause))) => {
            match cause.downcast_ref::<WasmHostError>() {
                Some(WasmHostError::RoomFailed { failure: named, .. }) => {
                    assert_eq!(*named, failure)
                }
                _ => panic!("a failed room must refuse with RoomFailed, got {cause}"),
            }
        }
        (Some(failure), next) => panic!("room failed with {failure:?}, then answered {next:?}"),
    }
    assert!(recorder.take_messages().is_empty() && recorder.take_binaries().is_empty());
}

fuzz_target!(|input: &[u8]| {
    check(input, None);
    if let Ok(text) = std::str::from_utf8(input) {
        check(input, Some(text));
    }
});
