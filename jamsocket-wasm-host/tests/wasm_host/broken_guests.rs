//! Guests that trap or misuse the ABI: each failure closes its room only, with an error naming
//! the room, the export and the cause, and the room refuses later calls.

use crate::common::{guest_failure, room, within, Recorder, WatGuest};
use jamsocket::abi::imports;
use jamsocket::{ClientId, JamsocketService, JamsocketServiceFactory, ServiceError};
use jamsocket_wasm_host::{GuestFailure, WasmHost, WasmHostError};
use wasmtime::Trap;

fn client() -> ClientId {
    ClientId::from(1)
}

/// Calls the handler behind `export` on `host`.
async fn call(host: &mut WasmHost, export: &str) -> Result<(), ServiceError> {
    match export {
        "jamsocket_connect" => host.connect(client()).await,
        "jamsocket_disconnect" => host.disconnect(client()).await,
        "jamsocket_message" => host.message(client(), "hi").await,
        "jamsocket_binary" => host.binary(client(), b"hi").await,
        "jamsocket_timer" => host.timer().await,
        other => panic!("no handler for {other}"),
    }
}

#[tokio::test]
async fn a_trap_in_any_handler_fails_the_room() {
    for export in [
        "jamsocket_connect",
        "jamsocket_disconnect",
        "jamsocket_message",
        "jamsocket_binary",
        "jamsocket_timer",
    ] {
        let factory = WatGuest::default().body(export, "unreachable").factory();
        let (mut host, _) = room(&factory, "trap-room").await;
        let error = within(call(&mut host, export)).await.unwrap_err();
        assert_eq!(
            guest_failure(&error, "trap-room", export),
            GuestFailure::Trap {
                trap: Trap::UnreachableCodeReached
            },
            "{export}"
        );
        assert!(host.failure().is_some());

        // Every later call is refused, naming the earlier failure.
        let error = within(host.timer()).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("already failed"), "{message}");
        assert!(message.contains("unreachable"), "{message}");
    }
}

#[tokio::test]
async fn a_trap_while_creating_the_room_fails_build() {
    for export in ["jamsocket_initialize", "jamsocket_buffer"] {
        let factory = WatGuest::default().body(export, "unreachable").factory();
        let error = within(factory.build("init-room", Recorder::default()))
            .await
            .unwrap_err();
        assert_eq!(
            guest_failure(&error, "init-room", export),
            GuestFailure::Trap {
                trap: Trap::UnreachableCodeReached
            }
        );
    }
}

#[tokio::test]
async fn pointers_outside_guest_memory_are_refused() {
    let cases = [
        // A pointer past the end of the one-page memory.
        (
            "(i32.const 0x7fffffff)",
            "(i32.const 10)",
            0x7fff_ffff_u32,
            10_u32,
        ),
        // A huge length (u32::MAX).
        ("(i32.const 16)", "(i32.const -1)", 16, u32::MAX),
        // Both at the maximum: the sum overflows 32 bits.
        ("(i32.const -1)", "(i32.const -1)", u32::MAX, u32::MAX),
        // One byte past the end.
        ("(i32.const 65535)", "(i32.const 2)", 65_535, 2),
    ];
    for import in [imports::SEND_MESSAGE, imports::SEND_BINARY] {
        for (ptr, len, ptr_value, len_value) in cases {
            let body = format!("(call ${import} (i32.const 0) {ptr} {len})");
            let factory = WatGuest::default()
                .body("jamsocket_message", &body)
                .factory();
            let (mut host, sent) = room(&factory, "pointer-room").await;
            let error = within(host.message(client(), "x")).await.unwrap_err();
            assert_eq!(
                guest_failure(&error, "pointer-room", "jamsocket_message"),
                GuestFailure::OutOfBounds {
                    import,
                    ptr: ptr_value,
                    len: len_value,
                    memory_size: 65_536,
                }
            );
            assert!(sent.take_messages().is_empty() && sent.take_binaries().is_empty());
        }
    }
}

#[tokio::test]
async fn a_zero_length_message_at_the_end_of_memory_is_fine() {
    let body = "(call $send_message (i32.const 0) (i32.const 65536) (i32.const 0))";
    let factory = WatGuest::default()
        .body("jamsocket_message", body)
        .factory();
    let (mut host, sent) = room(&factory, "edge-room").await;
    within(host.message(client(), "x")).await.unwrap();
    assert_eq!(sent.take_messages().len(), 1);
}

#[tokio::test]
async fn invalid_utf8_text_is_refused() {
    let factory = WatGuest::default()
        .extra(r#"(data (i32.const 32) "ab\ff\fe")"#)
        .body(
            "jamsocket_message",
            "(call $send_message (i32.const 0) (i32.const 32) (i32.const 4))",
        )
        .factory();
    let (mut host, sent) = room(&factory, "utf8-room").await;
    let error = within(host.message(client(), "x")).await.unwrap_err();
    assert_eq!(
        guest_failure(&error, "utf8-room", "jamsocket_message"),
        GuestFailure::InvalidUtf8 { valid_up_to: 2 }
    );
    assert!(sent.take_messages().is_empty());
}

#[tokio::test]
async fn a_bad_buffer_pointer_is_refused() {
    let factory = WatGuest::default()
        .body("jamsocket_buffer", "i32.const 65530")
        .factory();
    // The room id is written to the buffer too: "r" fits in the last 6 bytes.
    let (mut host, _) = room(&factory, "r").await;
    let error = within(host.message(client(), "more than six bytes"))
        .await
        .unwrap_err();
    assert_eq!(
        guest_failure(&error, "`r`", "jamsocket_buffer"),
        GuestFailure::BadBuffer {
            ptr: 65_530,
            len: 19,
            memory_size: 65_536
        }
    );
}

#[tokio::test]
async fn stack_overflow_is_a_trap() {
    let factory = WatGuest::default()
        .extra("(func $recurse (call $recurse))")
        .body("jamsocket_timer", "(call $recurse)")
        .factory();
    let (mut host, _) = room(&factory, "deep-room").await;
    let error = within(host.timer()).await.unwrap_err();
    assert_eq!(
        guest_failure(&error, "deep-room", "jamsocket_timer"),
        GuestFailure::Trap {
            trap: Trap::StackOverflow
        }
    );
}

#[tokio::test]
async fn sleeping_is_refused() {
    let factory = WatGuest::default()
        .import(r#"(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))"#)
        .body("jamsocket_timer", "(drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))")
        .factory();
    let (mut host, _) = room(&factory, "sleepy-room").await;
    let error = within(host.timer()).await.unwrap_err();
    assert_eq!(
        guest_failure(&error, "sleepy-room", "jamsocket_timer"),
        GuestFailure::Sleep
    );
}

#[tokio::test]
async fn exiting_fails_the_room() {
    let factory = WatGuest::default()
        .import(r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#)
        .body("jamsocket_connect", "(call $exit (i32.const 3))")
        .factory();
    let (mut host, _) = room(&factory, "exit-room").await;
    let error = within(host.connect(client())).await.unwrap_err();
    assert_eq!(
        guest_failure(&error, "exit-room", "jamsocket_connect"),
        GuestFailure::Exit { code: 3 }
    );
}

#[tokio::test]
async fn set_timer_reaches_the_context() {
    let factory = WatGuest::default()
        .body("jamsocket_connect", "(call $set_timer (i32.const 250))")
        .factory();
    let (mut host, sent) = room(&factory, "timer-room").await;
    within(host.connect(client())).await.unwrap();
    assert_eq!(sent.timer(), Some(250));
}

#[tokio::test]
async fn rooms_survive_a_neighbour_failing() {
    let factory = WatGuest::default()
        .body("jamsocket_timer", "unreachable")
        .factory();
    let (mut failing, _) = room(&factory, "failing").await;
    let (mut healthy, sent) = room(&factory, "healthy").await;
    assert!(within(failing.timer()).await.is_err());
    within(healthy.message(client(), "x")).await.unwrap();
    assert_eq!(sent.take_messages().len(), 1);
}

#[test]
fn room_errors_are_service_errors_naming_the_room() {
    let error = WasmHostError::GuestFailed {
        room_id: "abc".to_string(),
        export: "jamsocket_timer",
        failure: GuestFailure::Sleep,
    };
    assert!(error
        .to_string()
        .starts_with("room `abc`: guest call `jamsocket_timer` failed"));
}
