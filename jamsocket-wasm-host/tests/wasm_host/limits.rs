//! Per-instance memory, bytes sent per call, and the room limit.

use crate::common::{guest_failure, room, test_config, within, Recorder, WatGuest};
use jamsocket::{ClientId, JamsocketService, JamsocketServiceFactory, ServiceError};
use jamsocket_wasm_host::{GuestFailure, WasmHostError};

/// Grows memory one page at a time until growth fails, then returns (no trap of its own).
const MEMORY_BOMB: &str =
    "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))";

#[tokio::test]
async fn memory_growth_past_the_limit_traps() {
    let config = test_config().with_max_memory_bytes(4 << 20);
    let factory = WatGuest::default()
        .body("jamsocket_message", MEMORY_BOMB)
        .load(config)
        .unwrap();
    let (mut bomb, _) = room(&factory, "bomb-room").await;
    let error = within(bomb.message(ClientId::from(1), "boom"))
        .await
        .unwrap_err();
    assert_eq!(
        guest_failure(&error, "bomb-room", "jamsocket_message"),
        GuestFailure::MemoryLimit {
            limit: 4 << 20,
            requested: (4 << 20) + 65_536
        }
    );
}

#[tokio::test]
async fn memory_can_grow_up_to_the_limit() {
    // 1 page to start, 63 more reach exactly 4 MiB.
    let config = test_config().with_max_memory_bytes(4 << 20);
    let factory = WatGuest::default()
        .body("jamsocket_connect", "(drop (memory.grow (i32.const 63)))")
        .load(config)
        .unwrap();
    let (mut host, _) = room(&factory, "grow-room").await;
    within(host.connect(ClientId::from(1))).await.unwrap();
}

#[tokio::test]
async fn sending_too_much_in_one_call_traps() {
    let config = test_config().with_max_sent_bytes_per_call(1_000);
    let factory = WatGuest::default()
        .body(
            "jamsocket_message",
            "(loop $spam (call $send_message (i32.const 0) (i32.const 16) (i32.const 2)) (br $spam))",
        )
        .body(
            "jamsocket_binary",
            "(call $send_binary (i32.const 0) (i32.const 0) (i32.const 1000))",
        )
        .load(config)
        .unwrap();

    // Exactly the limit is fine, and the budget is per call.
    let (mut host, sent) = room(&factory, "quota-room").await;
    within(host.binary(ClientId::from(1), b"x")).await.unwrap();
    within(host.binary(ClientId::from(1), b"x")).await.unwrap();
    assert_eq!(sent.take_binaries().len(), 2);

    let error = within(host.message(ClientId::from(1), "go"))
        .await
        .unwrap_err();
    assert_eq!(
        guest_failure(&error, "quota-room", "jamsocket_message"),
        GuestFailure::SendLimit {
            limit: 1_000,
            attempted: 1_002
        }
    );
    // What was sent before the limit was delivered, in order.
    assert_eq!(sent.take_messages().len(), 500);
}

#[tokio::test]
async fn the_room_limit_makes_build_unavailable() {
    let factory = WatGuest::default()
        .load(test_config().with_max_rooms(2))
        .unwrap();
    let (first, _) = room(&factory, "one").await;
    let (_second, _) = room(&factory, "two").await;
    let error = within(factory.build("three", Recorder::default()))
        .await
        .unwrap_err();
    let ServiceError::Unavailable(cause) = &error else {
        panic!("expected unavailable, got {error}");
    };
    assert!(
        matches!(
            cause.downcast_ref::<WasmHostError>(),
            Some(WasmHostError::RoomLimit { max_rooms: 2, .. })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("`three`"), "{error}");

    // Closing a room frees its slot.
    drop(first);
    let (mut third, sent) = room(&factory, "three").await;
    within(third.message(ClientId::from(1), "x")).await.unwrap();
    assert_eq!(sent.take_messages().len(), 1);
}

/// Not run: compiling it shows that the factory, the host and their futures are `Send`, so a
/// server may also run rooms on a multi-threaded runtime.
#[allow(dead_code)]
fn hosts_and_their_futures_are_send(
    factory: &jamsocket_wasm_host::WasmHostFactory,
    host: &mut jamsocket_wasm_host::WasmHost,
) {
    fn send<T: Send>(_: T) {}
    send(factory.clone());
    send(factory.build("room", Recorder::default()));
    send(host.message(ClientId::from(1), "x"));
    send(host.binary(ClientId::from(1), b"x"));
    send(host.timer());
}
