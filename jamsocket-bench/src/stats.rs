//! Percentiles of a set of durations, reported in microseconds.

use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Count, nearest-rank percentiles and maximum of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    /// Summarises `samples` (nanoseconds, any order). All zero when there are none.
    pub fn from_nanos(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Percentiles {
            count: samples.len(),
            p50_us: percentile(&samples, 50.0) / 1_000,
            p90_us: percentile(&samples, 90.0) / 1_000,
            p99_us: percentile(&samples, 99.0) / 1_000,
            max_us: samples.last().copied().unwrap_or(0) / 1_000,
        }
    }

    /// Summarises durations.
    pub fn from_durations(samples: &[Duration]) -> Self {
        Self::from_nanos(samples.iter().map(|d| nanos(*d)).collect())
    }
}

/// `p50 1.234 ms  p90 ...`, for the human table.
impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {}  p90 {}  p99 {}  max {}  (n={})",
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.max_us),
            self.count
        )
    }
}

/// Like [`Percentiles`], with the 99.9th percentile too: for latencies of open-loop runs,
/// which have the samples to support it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TailPercentiles {
    pub count: usize,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl TailPercentiles {
    /// Summarises `samples` (nanoseconds, any order). All zero when there are none.
    pub fn from_nanos(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        TailPercentiles {
            count: samples.len(),
            p50_us: per_mille(&samples, 500) / 1_000,
            p90_us: per_mille(&samples, 900) / 1_000,
            p99_us: per_mille(&samples, 990) / 1_000,
            p999_us: per_mille(&samples, 999) / 1_000,
            max_us: samples.last().copied().unwrap_or(0) / 1_000,
        }
    }
}

/// `p50 1.234 ms  p90 ...  p999 ...`, for the human table.
impl fmt::Display for TailPercentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {}  p90 {}  p99 {}  p999 {}  max {}  (n={})",
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us),
            self.count
        )
    }
}

/// The nearest-rank `p`th percentile of `sorted` (ascending): the smallest sample that at
/// least `p` percent of the samples are less than or equal to. Zero for no samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The nearest-rank percentile of `sorted` (ascending) at `per_mille` thousandths, in
/// integers: `99.9 / 100.0 * 1000.0` is a hair over 999 in floating point, which would push
/// the rank one sample too far. Zero for no samples.
fn per_mille(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (per_mille.saturating_mul(sorted.len())).div_ceil(1_000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in whole nanoseconds, saturating at `u64::MAX` (584 years).
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Microseconds written as milliseconds with three decimals: `1.234 ms`.
pub fn ms(micros: u64) -> String {
    format!("{}.{:03} ms", micros / 1_000, micros % 1_000)
}

/// `count / seconds`, or 0 when no time passed.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 90.0), 90);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&sorted, 0.0), 1);
    }

    #[test]
    fn small_sets_round_up() {
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2], 50.0), 1);
        assert_eq!(percentile(&[1, 2], 51.0), 2);
        assert_eq!(percentile(&[1, 2, 3], 99.0), 3);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn summary_sorts_and_converts_to_micros() {
        let samples = vec![5_000, 1_000, 3_000, 2_000, 4_000];
        let summary = Percentiles::from_nanos(samples);
        assert_eq!(
            summary,
            Percentiles {
                count: 5,
                p50_us: 3,
                p90_us: 5,
                p99_us: 5,
                max_us: 5,
            }
        );
        assert_eq!(Percentiles::from_nanos(Vec::new()), Percentiles::default());
    }

    #[test]
    fn tail_percentiles_include_p999() {
        let samples: Vec<u64> = (1..=1_000).map(|i| i * 1_000).collect();
        let tail = TailPercentiles::from_nanos(samples);
        assert_eq!(tail.count, 1_000);
        assert_eq!(tail.p50_us, 500);
        assert_eq!(tail.p99_us, 990);
        assert_eq!(tail.p999_us, 999);
        assert_eq!(tail.max_us, 1_000);
        assert_eq!(
            tail.to_string(),
            "p50 0.500 ms  p90 0.900 ms  p99 0.990 ms  p999 0.999 ms  max 1.000 ms  (n=1000)"
        );
    }

    #[test]
    fn durations_and_formatting() {
        let summary = Percentiles::from_durations(&[Duration::from_micros(1_234)]);
        assert_eq!(summary.p50_us, 1_234);
        assert_eq!(ms(1_234), "1.234 ms");
        assert_eq!(ms(5), "0.005 ms");
        assert_eq!(rate(10, Duration::from_millis(500)), 20.0);
        assert_eq!(rate(10, Duration::ZERO), 0.0);
    }
}
