//! Guest stdout and stderr reach the host's log, tagged with the room id, without panicking
//! the host (these tests run on tokio current-thread runtimes, like the server's rooms).

use crate::common::{example_factory, guest_failure, room, within, LogCapture, WatGuest};
use jamsocket::{ClientId, JamsocketService};
use jamsocket_wasm_host::GuestFailure;
use wasmtime::Trap;

#[tokio::test]
async fn a_rust_guests_println_is_logged_with_the_room_id() {
    let log = LogCapture::start();
    let factory = example_factory("echo-server");
    let (mut echo, sent) = room(&factory, "print-room").await;
    within(echo.message(ClientId::from(5), "logged?"))
        .await
        .unwrap();
    assert_eq!(sent.take_messages().len(), 1);
    let lines = log.lines_with(&[
        "INFO",
        "print-room",
        r#"echo-server: client 5 in room print-room sent "logged?""#,
    ]);
    assert_eq!(lines.len(), 1, "log:\n{}", log.text());
    assert!(lines[0].contains("stdout"), "{}", lines[0]);
}

/// Writes a line and a partial line to stdout, a line to stderr, then traps (what a Rust
/// guest's panic looks like: the message on stderr, then `unreachable`).
const PRINT_THEN_TRAP: &str = r#"
    (i32.store (i32.const 300) (i32.const 100))
    (i32.store (i32.const 304) (i32.const 25))
    (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 400)))
    (i32.store (i32.const 308) (i32.const 200))
    (i32.store (i32.const 312) (i32.const 15))
    (drop (call $fd_write (i32.const 2) (i32.const 308) (i32.const 1) (i32.const 400)))
    unreachable
"#;

#[tokio::test]
async fn output_before_a_trap_is_logged_and_the_host_survives() {
    let log = LogCapture::start();
    let factory = WatGuest::default()
        .import(r#"(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#)
        .extra(r#"(data (i32.const 100) "hello from stdout\npartial")"#)
        .extra(r#"(data (i32.const 200) "oops on stderr\n")"#)
        .body("jamsocket_timer", PRINT_THEN_TRAP)
        .factory();
    let (mut host, _) = room(&factory, "panic-room").await;
    let error = within(host.timer()).await.unwrap_err();
    assert_eq!(
        guest_failure(&error, "panic-room", "jamsocket_timer"),
        GuestFailure::Trap {
            trap: Trap::UnreachableCodeReached
        }
    );
    assert_eq!(
        log.lines_with(&["INFO", "panic-room", "hello from stdout"])
            .len(),
        1,
        "log:\n{}",
        log.text()
    );
    assert_eq!(
        log.lines_with(&["WARN", "panic-room", "oops on stderr", "stderr"])
            .len(),
        1,
        "log:\n{}",
        log.text()
    );
    // The failure itself is logged with the room, export and cause.
    assert!(!log
        .lines_with(&["WARN", "panic-room", "jamsocket_timer", "unreachable"])
        .is_empty());

    // A partial last line is logged when the room goes away.
    assert!(log.lines_with(&["partial"]).is_empty());
    drop(host);
    assert_eq!(log.lines_with(&["INFO", "panic-room", "partial"]).len(), 1);
}

#[test]
fn printing_works_on_a_plain_thread_too() {
    // No tokio runtime at all: the futures are driven by a minimal executor.
    let factory = example_factory("echo-server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (mut echo, sent) = runtime.block_on(room(&factory, "thread-room"));
    let handle = std::thread::spawn(move || {
        crate::common::block_on(echo.message(ClientId::from(1), "from a plain thread")).unwrap();
    });
    handle.join().expect("the host must not panic");
    assert_eq!(sent.take_messages().len(), 1);
}
