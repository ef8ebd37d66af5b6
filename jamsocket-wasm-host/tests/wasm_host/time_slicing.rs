//! Long guest calls: the CPU limit, and other rooms on the same thread keep running.

use crate::common::{example_factory, guest_failure, room, test_config, within, WatGuest};
use jamsocket::{ClientId, JamsocketService};
use jamsocket_wasm_host::GuestFailure;
use std::time::{Duration, Instant};

const SPIN: &str = "(loop $spin (br $spin))";

#[tokio::test]
async fn an_infinite_loop_hits_the_cpu_limit() {
    let limit = Duration::from_millis(200);
    let factory = WatGuest::default()
        .body("jamsocket_message", SPIN)
        .load(test_config().with_cpu_time_per_call(limit))
        .unwrap();
    let (mut spinner, _) = room(&factory, "spin-room").await;
    let started = Instant::now();
    let error = within(spinner.message(ClientId::from(1), "go"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        guest_failure(&error, "spin-room", "jamsocket_message"),
        GuestFailure::CpuLimit { limit }
    );
    assert!(error.to_string().contains("200ms"), "{error}");
    assert!(
        elapsed >= limit && elapsed < limit * 5,
        "stopped after {elapsed:?}"
    );
}

#[test]
fn other_rooms_keep_running_on_the_same_thread() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let limit = Duration::from_millis(600);
        let spinning = WatGuest::default()
            .body("jamsocket_message", SPIN)
            .load(test_config().with_cpu_time_per_call(limit))
            .unwrap();
        let (mut spinner, _) = room(&spinning, "spinner").await;
        let spin = tokio::task::spawn_local(async move {
            let started = Instant::now();
            let result = spinner.message(ClientId::from(1), "go").await;
            (result, started.elapsed())
        });

        // Let the spinner start, then use another room (a real Rust guest) meanwhile.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let counter = example_factory("counter-service");
        let (mut other, sent) = room(&counter, "neighbour").await;
        for _ in 0..5 {
            let started = Instant::now();
            within(other.message(ClientId::from(1), "increment"))
                .await
                .unwrap();
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(100),
                "a neighbour's call took {took:?}"
            );
            // The tokio timer still fires while the spinner runs.
            let started = Instant::now();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let slept = started.elapsed();
            assert!(
                slept < Duration::from_millis(100),
                "a 20 ms sleep took {slept:?}"
            );
        }
        assert!(!spin.is_finished(), "the spinner should still be running");
        assert_eq!(sent.take_messages().len(), 5);

        let (result, elapsed) = within(spin).await.unwrap();
        let error = result.unwrap_err();
        assert_eq!(
            guest_failure(&error, "spinner", "jamsocket_message"),
            GuestFailure::CpuLimit { limit }
        );
        // Only the spinner's own running time counts, so it ran for at least the limit.
        assert!(elapsed >= limit, "stopped after {elapsed:?}");
    });
}

#[tokio::test]
async fn a_cancelled_call_fails_the_room() {
    let factory = WatGuest::default()
        .body("jamsocket_message", SPIN)
        .load(test_config().with_cpu_time_per_call(Duration::from_secs(5)))
        .unwrap();
    let (mut spinner, _) = room(&factory, "cancel-room").await;
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        spinner.message(ClientId::from(1), "go"),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the call should still have been running"
    );
    let error = within(spinner.timer()).await.unwrap_err();
    assert!(error.to_string().contains("cancelled"), "{error}");
    assert_eq!(spinner.failure(), Some(&GuestFailure::Cancelled));
}

#[test]
fn time_slicing_needs_no_tokio_runtime() {
    // Driven by a plain thread-parking executor: yields still happen, and the limit still hits.
    let limit = Duration::from_millis(100);
    let factory = WatGuest::default()
        .body("jamsocket_message", SPIN)
        .load(test_config().with_cpu_time_per_call(limit))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (mut spinner, _) = runtime.block_on(room(&factory, "plain-spinner"));
    let error = crate::common::block_on(spinner.message(ClientId::from(1), "go")).unwrap_err();
    assert_eq!(
        guest_failure(&error, "plain-spinner", "jamsocket_message"),
        GuestFailure::CpuLimit { limit }
    );
}
