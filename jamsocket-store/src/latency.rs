//! How long a store's work takes: durations counted in fixed buckets with a few relaxed atomic
//! adds, read as plain numbers that any metrics library can export (a Prometheus histogram,
//! say).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets of a [`LatencyHistogram`], in seconds: from half a millisecond
/// (a SQLite write of one small snapshot) to ten seconds (a store that is not answering).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The store's latencies since it was opened ([`Snapshots::latency`](crate::Snapshots::latency)).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreLatency {
    /// Writing one batch of changes on the store thread, compression included; failed
    /// attempts are counted too (a store that does not answer takes long to fail).
    pub write: LatencyHistogram,
    /// Loading a room's snapshot ([`Snapshots::load`](crate::Snapshots::load)), from the call
    /// to its answer (a save not written yet is answered from memory, at once).
    pub load: LatencyHistogram,
}

/// Durations counted in the buckets of [`LATENCY_BUCKETS`].
///
/// ```
/// # use jamsocket_store::{LatencyHistogram, LATENCY_BUCKETS};
/// let histogram = LatencyHistogram::default();
/// let buckets: Vec<(f64, u64)> = histogram.buckets().collect();
/// assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
/// assert_eq!(buckets.last(), Some(&(f64::INFINITY, 0)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    /// How many durations fell in each bucket (not cumulative): `counts[i]` those at most
    /// `LATENCY_BUCKETS[i]` seconds and longer than the bucket before; the last, one more than
    /// there are bounds, those longer than every bound.
    pub counts: Vec<u64>,
    /// How many durations were recorded.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
}

impl LatencyHistogram {
    /// Each bucket's upper bound in seconds (`f64::INFINITY` for the last) and its count, not
    /// cumulative: the form Prometheus clients take a histogram in.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.counts.iter().copied())
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; LATENCY_BUCKETS.len() + 1],
            count: 0,
            sum_seconds: 0.0,
        }
    }
}

/// The counters behind a [`LatencyHistogram`].
#[derive(Debug, Default)]
pub(crate) struct Latency {
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Latency {
    pub(crate) fn record(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = (LATENCY_BUCKETS.iter())
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: (self.counts.iter())
                .map(|count| count.load(Ordering::Relaxed))
                .collect(),
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_first_bucket_that_holds_them() {
        let latency = Latency::default();
        latency.record(Duration::from_micros(100));
        latency.record(Duration::from_micros(500));
        latency.record(Duration::from_millis(3));
        latency.record(Duration::from_secs(60));
        let histogram = latency.read();
        assert_eq!(histogram.count, 4);
        assert!((histogram.sum_seconds - 60.0036).abs() < 1e-9);
        let buckets: Vec<(f64, u64)> = histogram.buckets().filter(|(_, n)| *n > 0).collect();
        assert_eq!(buckets, [(0.0005, 2), (0.005, 1), (f64::INFINITY, 1)]);
    }
}
