//! Each example guest, driven through `WasmHostFactory` with a recording context.

use crate::common::{example_factory, guest_failure, room, test_config, within, Recorder};
use jamsocket::{ClientId, JamsocketService, MessageRecipient};
use jamsocket_wasm_host::{GuestFailure, WasmHostFactory};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn client(id: u32) -> ClientId {
    ClientId::from(id)
}

fn texts(recorder: &Recorder) -> Vec<(MessageRecipient, String)> {
    recorder.take_messages()
}

#[tokio::test]
async fn counter_broadcasts_the_shared_value() {
    let factory = example_factory("counter-service");
    let (mut counter, sent) = room(&factory, "counter-room").await;
    within(counter.connect(client(1))).await.unwrap();
    within(counter.connect(client(2))).await.unwrap();
    for (from, message) in [
        (1, "increment"),
        (2, "increment"),
        (1, "decrement"),
        (2, "nonsense"),
    ] {
        within(counter.message(client(from), message))
            .await
            .unwrap();
    }
    let broadcast = |text: &str| (MessageRecipient::Broadcast, text.to_string());
    assert_eq!(
        texts(&sent),
        vec![
            (
                MessageRecipient::Client(client(1)),
                "new value: 0".to_string()
            ),
            (
                MessageRecipient::Client(client(2)),
                "new value: 0".to_string()
            ),
            broadcast("new value: 1"),
            broadcast("new value: 2"),
            broadcast("new value: 1"),
            broadcast("new value: 1"),
        ]
    );

    // Rooms are isolated: a second room starts from zero.
    let (mut other, other_sent) = room(&factory, "other-room").await;
    within(other.message(client(1), "decrement")).await.unwrap();
    assert_eq!(texts(&other_sent), vec![broadcast("new value: -1")]);
    assert!(texts(&sent).is_empty());
}

#[tokio::test]
async fn echo_server_replies_to_the_sender_only() {
    let factory = example_factory("echo-server");
    let (mut echo, sent) = room(&factory, "echo-room").await;
    within(echo.message(client(3), "hello")).await.unwrap();
    within(echo.message(client(4), "")).await.unwrap();
    let long = "é".repeat(100_000);
    within(echo.message(client(3), &long)).await.unwrap();
    assert_eq!(
        texts(&sent),
        vec![
            (MessageRecipient::Client(client(3)), "hello".to_string()),
            (MessageRecipient::Client(client(4)), String::new()),
            (MessageRecipient::Client(client(3)), long),
        ]
    );
}

#[tokio::test]
async fn binary_echo_returns_the_bytes() {
    let factory = example_factory("binary-echo");
    let (mut echo, sent) = room(&factory, "binary-room").await;
    let all_bytes: Vec<u8> = (0..=255).collect();
    within(echo.binary(client(1), &all_bytes)).await.unwrap();
    within(echo.binary(client(2), &[])).await.unwrap();
    within(echo.message(client(1), "text is ignored"))
        .await
        .unwrap();
    assert_eq!(
        sent.take_binaries(),
        vec![
            (MessageRecipient::Client(client(1)), all_bytes),
            (MessageRecipient::Client(client(2)), vec![]),
        ]
    );
    assert!(texts(&sent).is_empty());
}

#[tokio::test]
async fn broadcast_echo_broadcasts_text_and_binary_verbatim() {
    let factory = example_factory("broadcast-echo");
    let (mut echo, sent) = room(&factory, "broadcast-room").await;
    within(echo.connect(client(1))).await.unwrap();
    within(echo.message(client(1), "all:hello é"))
        .await
        .unwrap();
    within(echo.message(client(2), "")).await.unwrap();
    within(echo.binary(client(2), &[0, 255, 7])).await.unwrap();
    assert_eq!(
        texts(&sent),
        vec![
            (MessageRecipient::Broadcast, "all:hello é".to_string()),
            (MessageRecipient::Broadcast, String::new()),
        ]
    );
    assert_eq!(
        sent.take_binaries(),
        vec![(MessageRecipient::Broadcast, vec![0, 255, 7])]
    );
}

#[tokio::test]
async fn clock_ticks_with_host_time() {
    let factory = example_factory("clock");
    let (mut clock, sent) = room(&factory, "clock-room").await;
    assert_eq!(sent.timer(), None, "no timer before anyone connects");
    within(clock.connect(client(1))).await.unwrap();
    assert_eq!(sent.timer(), Some(100));

    for tick in 1..=2 {
        within(clock.timer()).await.unwrap();
        let messages = texts(&sent);
        assert_eq!(messages.len(), 1, "{messages:?}");
        let (recipient, text) = &messages[0];
        assert_eq!(*recipient, MessageRecipient::Broadcast);
        let prefix = format!("tick {tick} at ");
        let guest_ms: u128 = text
            .strip_prefix(&prefix)
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("unexpected tick {text:?}"));
        let host_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert!(
            host_ms.abs_diff(guest_ms) < 5_000,
            "guest clock {guest_ms}, host {host_ms}"
        );
    }

    within(clock.disconnect(client(1))).await.unwrap();
    within(clock.timer()).await.unwrap();
    assert!(
        texts(&sent).is_empty(),
        "the clock stops when everyone left"
    );
}

fn numbers(text: &str) -> Vec<u64> {
    text.split(' ')
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("not a number list: {text:?}"))
        })
        .collect()
}

#[tokio::test]
async fn randomness_comes_from_the_host() {
    let factory = example_factory("randomness");
    let (mut first, first_sent) = room(&factory, "random-1").await;
    let (mut second, second_sent) = room(&factory, "random-2").await;
    within(first.connect(client(1))).await.unwrap();
    let welcome = texts(&first_sent);
    assert!(welcome[0].1.starts_with("welcome "), "{welcome:?}");

    within(first.message(client(1), "20")).await.unwrap();
    within(second.message(client(1), "20")).await.unwrap();
    let a = numbers(&texts(&first_sent)[0].1);
    let b = numbers(&texts(&second_sent)[0].1);
    assert_eq!((a.len(), b.len()), (20, 20));
    assert_ne!(a, b, "two rooms drew the same numbers");
    let mut distinct = a.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 20, "repeated numbers: {a:?}");
}

#[tokio::test]
async fn cpu_hog_finishes_short_work_and_fails_long_work() {
    let config = test_config().with_cpu_time_per_call(Duration::from_millis(300));
    let factory = WasmHostFactory::with_config(crate::common::example_wasm("cpu-hog"), config)
        .expect("load cpu-hog");
    let (mut hog, sent) = room(&factory, "hog-room").await;
    within(hog.message(client(1), "0.02")).await.unwrap();
    let reply = texts(&sent);
    assert!(reply[0].1.starts_with("done: "), "{reply:?}");

    let started = std::time::Instant::now();
    let error = within(hog.message(client(1), "5")).await.unwrap_err();
    assert_eq!(
        guest_failure(&error, "hog-room", "jamsocket_message"),
        GuestFailure::CpuLimit {
            limit: Duration::from_millis(300)
        }
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "stopped after {elapsed:?}"
    );
    assert!(texts(&sent).is_empty());
}
