//! Requests from the server side (`JamsocketService::request`): the counter example's handler,
//! modules without `jamsocket_request` (404), and guests whose answer is malformed.

use crate::common::{example_factory, guest_failure, room, test_config, within, WatGuest};
use jamsocket::{ClientId, JamsocketService, MessageRecipient, Response};
use jamsocket_wasm_host::{GuestFailure, WasmHostError};

/// A guest whose `jamsocket_request` has `body` (returning `(ptr << 32) | len` as an `i64`),
/// with `data` as an extra data segment.
fn answering(body: &str, data: &str) -> WatGuest {
    WatGuest::default()
        .extra(&format!(
            r#"(func (export "jamsocket_request") (param $ptr i32) (param $len i32) (result i64) {body})"#
        ))
        .extra(data)
}

#[tokio::test]
async fn the_counter_answers_get_and_set() {
    let factory = example_factory("counter-service");
    let (mut counter, sent) = room(&factory, "requested-counter").await;
    within(counter.connect(ClientId::from(1))).await.unwrap();
    sent.take_messages();

    let mut request = async |body: &str| within(counter.request(body.as_bytes())).await.unwrap();
    assert_eq!(request("get").await, Response::ok("0"));
    assert_eq!(request("set 41").await, Response::ok("41"));
    assert_eq!(request("get").await, Response::ok("41"));
    for bad in ["set forty", "reset", ""] {
        let answer = request(bad).await;
        assert_eq!(answer.status, 400, "{bad:?}: {answer:?}");
        assert!(!answer.body.is_empty(), "{bad:?}: a reason");
    }
    // `set` broadcasts the new value as the clients' handlers do, and they go on from it.
    within(counter.message(ClientId::from(1), "increment"))
        .await
        .unwrap();
    let broadcast = |text: &str| (MessageRecipient::Broadcast, text.to_string());
    assert_eq!(
        sent.take_messages(),
        [broadcast("new value: 41"), broadcast("new value: 42")]
    );
}

#[tokio::test]
async fn a_module_without_the_export_answers_404() {
    let factory = WatGuest::default().factory();
    let (mut guest, sent) = room(&factory, "no-requests").await;
    let answer = within(guest.request(b"anything")).await.unwrap();
    assert_eq!(answer, Response::not_found());
    // The room is untouched and still serves its clients.
    within(guest.message(ClientId::from(2), "hi"))
        .await
        .unwrap();
    assert_eq!(sent.take_messages().len(), 1);
    assert!(guest.failure().is_none());
}

#[tokio::test]
async fn a_guest_gets_the_body_and_may_send_messages() {
    // Writes status 200 just before the buffer (at 1024), so the answer echoes the body, and
    // broadcasts the body.
    let echo = answering(
        "(call $send_message (i32.const 0) (local.get $ptr) (local.get $len))
         (i32.store16 (i32.const 1022) (i32.const 200))
         (i64.or (i64.shl (i64.const 1022) (i64.const 32))
                 (i64.extend_i32_u (i32.add (local.get $len) (i32.const 2))))",
        "",
    );
    let factory = echo.factory();
    let (mut guest, sent) = room(&factory, "echo").await;
    for body in ["ping", "", "é"] {
        let answer = within(guest.request(body.as_bytes())).await.unwrap();
        assert_eq!(answer, Response::ok(body));
    }
    let broadcast = |text: &str| (MessageRecipient::Broadcast, text.to_string());
    assert_eq!(
        sent.take_messages(),
        [broadcast("ping"), broadcast(""), broadcast("é")]
    );
}

#[tokio::test]
async fn a_malformed_answer_is_a_guest_fault() {
    // Data: status 42 at 32, status 600 at 40.
    let data = r#"(data (i32.const 32) "\2a\00") (data (i32.const 40) "\58\02")"#;
    let cases: [(&str, i64, &str); 5] = [
        ("i64.const 0x20_0000_0002", 0x20_0000_0002, "status 42"),
        ("i64.const 0x28_0000_0002", 0x28_0000_0002, "status 600"),
        ("i64.const 0x20_0000_0001", 0x20_0000_0001, "1 bytes"),
        (
            "i64.const 0xffff_0000_0002",
            0xffff_0000_0002,
            "(ptr 0xffff, len 2) is not inside the guest's 65536-byte memory",
        ),
        (
            "i64.const -1",
            -1,
            "(ptr 0xffffffff, len 4294967295) is not inside",
        ),
    ];
    for (body, packed, expected) in cases {
        let factory = answering(body, data).factory();
        let (mut guest, _) = room(&factory, "malformed").await;
        let error = within(guest.request(b"x")).await.unwrap_err();
        let failure = guest_failure(&error, "malformed", "jamsocket_request");
        assert!(
            matches!(
                &failure,
                GuestFailure::BadReturn { export: "jamsocket_request", value, .. }
                    if *value == packed
            ),
            "{body}: {failure:?}"
        );
        assert!(failure.to_string().contains(expected), "{failure}");
        assert_eq!(factory.metrics().failures("bad_return"), 1);
        // The room is closed.
        let refused = within(guest.request(b"x")).await.unwrap_err();
        assert!(refused.to_string().contains("already failed"), "{refused}");
        let refused = within(guest.timer()).await.unwrap_err();
        assert!(refused.to_string().contains("already failed"), "{refused}");
    }
}

#[tokio::test]
async fn a_trap_in_the_request_handler_fails_the_room() {
    let factory = answering("unreachable", "").factory();
    let (mut guest, _) = room(&factory, "trapping").await;
    let error = within(guest.request(b"x")).await.unwrap_err();
    assert_eq!(
        guest_failure(&error, "trapping", "jamsocket_request"),
        GuestFailure::Trap {
            trap: wasmtime::Trap::UnreachableCodeReached
        }
    );
}

#[tokio::test]
async fn an_abi_version_2_module_is_still_served() {
    let factory = WatGuest::default()
        .body("jamsocket_abi_version", "i32.const 2")
        .factory();
    let (mut guest, sent) = room(&factory, "version-2").await;
    within(guest.message(ClientId::from(1), "hi"))
        .await
        .unwrap();
    assert_eq!(
        sent.take_messages(),
        [(
            MessageRecipient::Client(ClientId::from(1)),
            "ok".to_string()
        )]
    );
    let answer = within(guest.request(b"get")).await.unwrap();
    assert_eq!(answer, Response::not_found());
}

#[test]
fn a_request_export_with_the_wrong_signature_is_refused_at_load() {
    let guest = WatGuest::default()
        .extra(r#"(func (export "jamsocket_request") (param i32 i32) (result i32) i32.const 0)"#);
    match guest.load(test_config()) {
        Err(WasmHostError::ExportSignature {
            export, expected, ..
        }) => {
            assert_eq!(export, "jamsocket_request");
            assert_eq!(expected, "a function (i32, i32) -> (i64)");
        }
        other => panic!("expected a signature error, got {other:?}"),
    }
}
