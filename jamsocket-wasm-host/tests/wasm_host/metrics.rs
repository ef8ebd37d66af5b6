//! The factory's guest metrics, scraped through a Prometheus registry.

use crate::common::{example_wasm, room, test_config, within, WatGuest};
use jamsocket::{ClientId, JamsocketService};
use jamsocket_wasm_host::WasmHostFactory;
use prometheus_client::registry::Registry;

/// The text exposition of a registry holding only `factory`'s metrics.
fn scrape(factory: &WasmHostFactory) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(factory.metrics()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encoding");
    text
}

/// The value of the sample named exactly `name` (with its labels, if any).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
        .parse()
        .unwrap_or_else(|err| panic!("{name}: {err}\n{text}"))
}

#[tokio::test]
async fn a_guest_s_cpu_time_and_memory_are_exposed() {
    // A factory of its own, so no other test's rooms are counted.
    let factory = WasmHostFactory::with_config(example_wasm("counter-service"), test_config())
        .expect("load the counter");
    let (mut counter, _) = room(&factory, "metered").await;
    for _ in 0..100 {
        within(counter.message(ClientId::from(1), "increment"))
            .await
            .unwrap();
    }
    within(counter.request(b"get")).await.unwrap();

    let memory = counter
        .memory_bytes()
        .expect("a wasm room knows its memory");
    assert!(memory > 0 && memory % 65_536 == 0, "{memory}");
    let text = scrape(&factory);
    for descriptor in [
        "# TYPE jamsocket_guest_cpu_seconds counter",
        "# TYPE jamsocket_guest_memory_bytes gauge",
        "# TYPE jamsocket_guest_instances gauge",
        "# TYPE jamsocket_guest_failures counter",
    ] {
        assert!(
            text.lines().any(|l| l == descriptor),
            "{descriptor}\n{text}"
        );
    }
    assert!(
        sample(&text, "jamsocket_guest_cpu_seconds_total") > 0.0,
        "{text}"
    );
    assert_eq!(sample(&text, "jamsocket_guest_memory_bytes"), memory as f64);
    assert_eq!(sample(&text, "jamsocket_guest_instances"), 1.0);
    assert_eq!(
        sample(&text, "jamsocket_guest_failures_total{kind=\"trap\"}"),
        0.0
    );

    // A second room adds its memory; dropping the rooms takes theirs away.
    let (other, _) = room(&factory, "metered-2").await;
    assert_eq!(factory.metrics().instances(), 2);
    assert_eq!(
        factory.metrics().memory_bytes(),
        memory + other.memory_bytes().unwrap()
    );
    drop((counter, other));
    let text = scrape(&factory);
    assert_eq!(sample(&text, "jamsocket_guest_instances"), 0.0);
    assert_eq!(sample(&text, "jamsocket_guest_memory_bytes"), 0.0);
}

#[tokio::test]
async fn memory_growth_and_failures_are_counted() {
    let factory = WatGuest::default()
        .body("jamsocket_connect", "(drop (memory.grow (i32.const 3)))")
        .body("jamsocket_timer", "unreachable")
        .factory();
    let (mut guest, _) = room(&factory, "growing").await;
    assert_eq!(factory.metrics().memory_bytes(), 65_536);
    within(guest.connect(ClientId::from(1))).await.unwrap();
    assert_eq!(guest.memory_bytes(), Some(4 * 65_536));
    assert_eq!(factory.metrics().memory_bytes(), 4 * 65_536);

    assert!(within(guest.timer()).await.is_err());
    // A refused call is not a second failure.
    assert!(within(guest.timer()).await.is_err());
    let text = scrape(&factory);
    assert_eq!(
        sample(&text, "jamsocket_guest_failures_total{kind=\"trap\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "jamsocket_guest_failures_total{kind=\"cpu_limit\"}"),
        0.0
    );
    // A failed room is live until it is dropped.
    assert_eq!(sample(&text, "jamsocket_guest_instances"), 1.0);
}
