//! Guest metrics shared by a factory and its rooms, exposed as a Prometheus collector.

use crate::GuestFailure;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the guests of one [`WasmHostFactory`](crate::WasmHostFactory) use, for every room it
/// built ([`WasmHostFactory::metrics`](crate::WasmHostFactory::metrics)). Clones share the same
/// counters.
///
/// It is a [`Collector`]: register it with a `prometheus_client` registry, and every scrape
/// reads the current values.
///
/// | metric | type | value |
/// |---|---|---|
/// | `jamsocket_guest_cpu_seconds_total` | counter | time spent running guest calls (their CPU time, unless the OS preempted the thread) |
/// | `jamsocket_guest_memory_bytes` | gauge | the linear memory of the live instances, summed (as of the end of their last call) |
/// | `jamsocket_guest_instances` | gauge | live instances (rooms) |
/// | `jamsocket_guest_failures_total{kind}` | counter | guest failures, by [`GuestFailure::kind`] (every kind is listed, from 0) |
///
/// ```
/// use jamsocket_wasm_host::{WasmHostConfig, WasmHostFactory};
/// use prometheus_client::registry::Registry;
///
/// # let wasm = wat::parse_str(r#"(module
/// #   (memory (export "memory") 1)
/// #   (func (export "jamsocket_abi_version") (result i32) i32.const 3)
/// #   (func (export "jamsocket_buffer") (param i32) (result i32) i32.const 1024)
/// #   (func (export "jamsocket_initialize") (param i32 i32))
/// #   (func (export "jamsocket_connect") (param i32))
/// #   (func (export "jamsocket_disconnect") (param i32))
/// #   (func (export "jamsocket_message") (param i32 i32 i32))
/// #   (func (export "jamsocket_binary") (param i32 i32 i32))
/// #   (func (export "jamsocket_timer")))"#)?;
/// let factory = WasmHostFactory::from_bytes(&wasm, WasmHostConfig::default().with_max_rooms(10))?;
/// let mut registry = Registry::default();
/// registry.register_collector(Box::new(factory.metrics()));
///
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &registry)?;
/// assert!(text.contains("\njamsocket_guest_instances 0\n"), "{text}");
/// assert!(text.contains("\njamsocket_guest_failures_total{kind=\"trap\"} 0\n"), "{text}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct HostMetrics {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    cpu_nanos: AtomicU64,
    memory_bytes: AtomicU64,
    instances: AtomicU64,
    /// Indexed like [`GuestFailure::KINDS`].
    failures: [AtomicU64; GuestFailure::KINDS.len()],
}

impl HostMetrics {
    /// The time spent running guest calls so far.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.shared.cpu_nanos.load(Ordering::Relaxed))
    }

    /// The linear memory of the live instances, summed.
    pub fn memory_bytes(&self) -> u64 {
        self.shared.memory_bytes.load(Ordering::Relaxed)
    }

    /// How many instances (rooms) are live.
    pub fn instances(&self) -> u64 {
        self.shared.instances.load(Ordering::Relaxed)
    }

    /// How many guest failures of `kind` (a [`GuestFailure::kind`]) there were; 0 for an
    /// unknown kind.
    pub fn failures(&self, kind: &str) -> u64 {
        GuestFailure::KINDS
            .iter()
            .position(|known| *known == kind)
            .map_or(0, |index| {
                self.shared.failures[index].load(Ordering::Relaxed)
            })
    }

    /// Counts a guest failure.
    pub(crate) fn count_failure(&self, failure: &GuestFailure) {
        self.shared.failures[failure.kind_index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a new live instance, until the returned guard is dropped.
    pub(crate) fn instance(&self) -> InstanceMetrics {
        self.shared.instances.fetch_add(1, Ordering::Relaxed);
        InstanceMetrics {
            metrics: self.clone(),
            memory_bytes: 0,
        }
    }

    /// Awaits `future` (a guest call), charging the time each of its polls takes: the time
    /// the guest ran on this thread, not the time other tasks ran while the call yielded. A
    /// guest call never blocks, so this is its CPU time unless the OS preempts the thread. It
    /// is read from the monotonic clock (a few ns, no system call); the thread CPU clock
    /// (`CLOCK_THREAD_CPUTIME_ID`) is a system call on virtual machines and tripled the cost of
    /// a warm room's message.
    pub(crate) async fn timed<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let started = Instant::now();
            let poll = future.as_mut().poll(cx);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.shared.cpu_nanos.fetch_add(nanos, Ordering::Relaxed);
            poll
        })
        .await
    }
}

/// One live instance, counted in [`HostMetrics`] until dropped, with the memory size it last
/// reported.
#[derive(Debug)]
pub(crate) struct InstanceMetrics {
    metrics: HostMetrics,
    memory_bytes: u64,
}

impl InstanceMetrics {
    /// Records the instance's current memory size.
    pub(crate) fn set_memory(&mut self, bytes: u64) {
        let total = &self.metrics.shared.memory_bytes;
        if bytes >= self.memory_bytes {
            total.fetch_add(bytes - self.memory_bytes, Ordering::Relaxed);
        } else {
            total.fetch_sub(self.memory_bytes - bytes, Ordering::Relaxed);
        }
        self.memory_bytes = bytes;
    }
}

impl Drop for InstanceMetrics {
    fn drop(&mut self) {
        self.set_memory(0);
        self.metrics
            .shared
            .instances
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Collector for HostMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Counters are described without `_total`, which the encoders add to their samples.
        let cpu = ConstCounter::new(self.cpu_time().as_secs_f64());
        cpu.encode(encoder.encode_descriptor(
            "jamsocket_guest_cpu",
            "Time spent running guest calls: their CPU time, unless the OS preempted the thread.",
            Some(&Unit::Seconds),
            cpu.metric_type(),
        )?)?;

        let memory = ConstGauge::new(self.memory_bytes());
        memory.encode(encoder.encode_descriptor(
            "jamsocket_guest_memory",
            "Linear memory of the live guest instances, summed.",
            Some(&Unit::Bytes),
            memory.metric_type(),
        )?)?;

        let instances = ConstGauge::new(self.instances());
        instances.encode(encoder.encode_descriptor(
            "jamsocket_guest_instances",
            "Live guest instances (rooms).",
            None,
            instances.metric_type(),
        )?)?;

        let mut failures = encoder.encode_descriptor(
            "jamsocket_guest_failures",
            "Guest failures (traps, broken limits, ABI misuse), by kind.",
            None,
            MetricType::Counter,
        )?;
        for (kind, count) in GuestFailure::KINDS.iter().zip(&self.shared.failures) {
            let count = ConstCounter::new(count.load(Ordering::Relaxed));
            count.encode(failures.encode_family(&[("kind", *kind)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn scrape(metrics: &HostMetrics) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(metrics.clone()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn instances_report_memory_until_dropped() {
        let metrics = HostMetrics::default();
        let mut first = metrics.instance();
        let mut second = metrics.instance();
        first.set_memory(65536);
        second.set_memory(131072);
        first.set_memory(196608);
        assert_eq!((metrics.instances(), metrics.memory_bytes()), (2, 327680));
        drop(second);
        assert_eq!((metrics.instances(), metrics.memory_bytes()), (1, 196608));
        drop(first);
        assert_eq!((metrics.instances(), metrics.memory_bytes()), (0, 0));
    }

    #[test]
    fn the_names_are_exact_and_every_kind_is_listed() {
        let metrics = HostMetrics::default();
        metrics.count_failure(&GuestFailure::Cancelled);
        metrics.count_failure(&GuestFailure::Cancelled);
        let _room = metrics.instance();
        let text = scrape(&metrics);
        for line in [
            "# TYPE jamsocket_guest_cpu_seconds counter",
            "jamsocket_guest_cpu_seconds_total 0.0",
            "# TYPE jamsocket_guest_memory_bytes gauge",
            "jamsocket_guest_memory_bytes 0",
            "jamsocket_guest_instances 1",
            "# TYPE jamsocket_guest_failures counter",
            "jamsocket_guest_failures_total{kind=\"cancelled\"} 2",
            "jamsocket_guest_failures_total{kind=\"trap\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let kinds = text
            .lines()
            .filter(|l| l.starts_with("jamsocket_guest_failures_total{"))
            .count();
        assert_eq!(kinds, GuestFailure::KINDS.len());
        assert_eq!(metrics.failures("cancelled"), 2);
        assert_eq!(metrics.failures("no_such_kind"), 0);
    }

    #[test]
    fn timed_futures_charge_cpu_time() {
        let metrics = HostMetrics::default();
        let spin = std::pin::pin!(metrics.timed(async {
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_millis(20) {
                std::hint::black_box(started);
            }
        }));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(spin.poll(&mut cx).is_ready());
        assert!(
            metrics.cpu_time() >= Duration::from_millis(5),
            "{:?}",
            metrics.cpu_time()
        );
    }
}
