//! Guest stdout and stderr reach the host's log, tagged with the room id, without panicking
//! the host and within the per-room output limits (these tests run on tokio current-thread
//! runtimes, like the server's rooms).

use crate::common::{example_factory, guest_failure, room, within, LogCapture, WatGuest};
use jamsocket::{ClientId, JamsocketService};
use jamsocket_wasm_host::GuestFailure;
use std::time::{Duration, Instant};
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

const FD_WRITE: &str = r#"(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#;

/// Writes `spam line` 1,000 times, one `fd_write` each, alternating stdout and stderr.
const SPAM: &str = r#"
    (local $i i32)
    (i32.store (i32.const 300) (i32.const 100))
    (i32.store (i32.const 304) (i32.const 10))
    (loop $again
      (drop (call $fd_write
        (i32.add (i32.const 1) (i32.and (local.get $i) (i32.const 1)))
        (i32.const 300) (i32.const 1) (i32.const 400)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1000))))
"#;

/// Writes `after the pause` to stdout.
const ONE_LINE: &str = r#"
    (i32.store (i32.const 308) (i32.const 200))
    (i32.store (i32.const 312) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 308) (i32.const 1) (i32.const 400)))
"#;

/// The counts of the "lines dropped" summaries logged for `room_id`, in order.
fn dropped_summaries(log: &LogCapture, room_id: &str) -> Vec<usize> {
    let summary = " lines of guest output dropped (rate limit: 100 lines/s)";
    log.lines_with(&["WARN", room_id, summary])
        .iter()
        .map(|line| {
            let before = &line[..line.find(summary).unwrap()];
            before.rsplit(' ').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_flood_of_output_is_rate_limited_and_the_dropped_lines_counted() {
    let log = LogCapture::start();
    let factory = WatGuest::default()
        .import(FD_WRITE)
        .extra(r#"(data (i32.const 100) "spam line\n")"#)
        .extra(r#"(data (i32.const 200) "after the pause\n")"#)
        .body("jamsocket_timer", SPAM)
        .body("jamsocket_connect", ONE_LINE)
        .factory();
    let started = Instant::now();
    let (mut host, _) = room(&factory, "flood-room").await;

    within(host.timer()).await.unwrap();
    let first_flood = log.lines_with(&["flood-room", "spam line"]).len();
    // A burst of 200 lines, plus 100 a second while the flood ran; stdout and stderr share it.
    let allowance = |elapsed: Duration| 200 + (elapsed.as_secs_f64() * 100.0).ceil() as usize + 1;
    assert!(
        (200..=allowance(started.elapsed())).contains(&first_flood),
        "{first_flood} lines logged"
    );
    assert!(!log
        .lines_with(&["INFO", "flood-room", "spam line", "stdout"])
        .is_empty());
    assert!(!log
        .lines_with(&["WARN", "flood-room", "spam line", "stderr"])
        .is_empty());

    // Once the room may log again, its next line comes after a summary of what was dropped.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    within(host.connect(ClientId::from(1))).await.unwrap();
    let text = log.text();
    let last_summary = text.rfind("lines of guest output dropped").unwrap();
    let pause_line = text
        .find("after the pause")
        .expect("the line after the pause");
    assert!(last_summary < pause_line, "log:\n{text}");
    assert_eq!(
        dropped_summaries(&log, "flood-room").iter().sum::<usize>(),
        1_000 - first_flood,
        "log:\n{text}"
    );

    // Lines dropped since the last summary are counted when the room ends.
    within(host.timer()).await.unwrap();
    drop(host);
    let logged = log.lines_with(&["flood-room", "spam line"]).len();
    assert!(
        logged <= allowance(started.elapsed()),
        "{logged} lines logged"
    );
    let summaries = dropped_summaries(&log, "flood-room");
    assert!(summaries.len() <= 3, "{summaries:?}");
    assert_eq!(summaries.iter().sum::<usize>(), 2_000 - logged);
}

/// Writes a line of 3,000 `x` to stdout.
const LONG_LINE: &str = r#"
    (memory.fill (i32.const 2048) (i32.const 120) (i32.const 3000))
    (i32.store8 (i32.const 5048) (i32.const 10))
    (i32.store (i32.const 300) (i32.const 2048))
    (i32.store (i32.const 304) (i32.const 3001))
    (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 400)))
"#;

#[tokio::test]
async fn a_long_line_is_logged_once_cut_at_1_kib() {
    let log = LogCapture::start();
    let factory = WatGuest::default()
        .import(FD_WRITE)
        .body("jamsocket_timer", LONG_LINE)
        .factory();
    let (mut host, _) = room(&factory, "long-line-room").await;
    within(host.timer()).await.unwrap();
    let lines = log.lines_with(&["long-line-room", "xxxx"]);
    assert_eq!(lines.len(), 1, "log:\n{}", log.text());
    let kept = format!("{}… (1976 bytes cut)", "x".repeat(1024));
    assert!(lines[0].contains(&kept), "{}", lines[0]);
    assert!(!lines[0].contains(&"x".repeat(1025)), "{}", lines[0]);
    drop(host);
}
