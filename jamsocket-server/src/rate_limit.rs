//! Token buckets: how often a client may send messages and frames, how many bytes, and how
//! many rooms one address may create.

use tokio::time::Instant;

/// A token bucket: `per_sec` tokens a second, holding at most `capacity`.
#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    per_sec: f64,
    capacity: f64,
    tokens: f64,
    refilled: Instant,
}

impl RateLimit {
    /// `per_sec` tokens a second, with bursts of up to one second's worth.
    pub(crate) fn new(per_sec: u32, now: Instant) -> RateLimit {
        RateLimit::with_capacity(per_sec.into(), per_sec.into(), now)
    }

    /// `per_sec` tokens a second, with bursts of up to `capacity`; starts full.
    pub(crate) fn with_capacity(per_sec: f64, capacity: f64, now: Instant) -> RateLimit {
        RateLimit {
            per_sec,
            capacity,
            tokens: capacity,
            refilled: now,
        }
    }

    pub(crate) fn per_sec(&self) -> f64 {
        self.per_sec
    }

    /// Takes `n` tokens; `false` (and nothing taken) if there are not that many.
    pub(crate) fn take(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled completely: then it holds nothing worth keeping.
    pub(crate) fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.refilled = now;
    }
}

/// What a client may send, whatever it is: frames of any kind, and bytes.
#[derive(Debug)]
pub(crate) struct FrameBudget {
    frames: RateLimit,
    bytes: RateLimit,
}

/// Which part of a [`FrameBudget`] ran out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OverBudget {
    Frames(f64),
    Bytes(f64),
}

impl OverBudget {
    pub(crate) fn describe(&self) -> String {
        match self {
            OverBudget::Frames(limit) => format!("frame rate limit exceeded ({limit} frames/s)"),
            OverBudget::Bytes(limit) => format!("byte rate limit exceeded ({limit} bytes/s)"),
        }
    }
}

impl FrameBudget {
    /// Bursts of two seconds' worth, and at least one largest message (plus its header).
    pub(crate) fn new(frames_per_sec: u32, bytes_per_sec: usize, max_message_bytes: usize) -> Self {
        let now = Instant::now();
        let frames = f64::from(frames_per_sec.max(1));
        let bytes = (bytes_per_sec.max(1)) as f64;
        let largest = max_message_bytes as f64 + 14.0;
        FrameBudget {
            frames: RateLimit::with_capacity(frames, 2.0 * frames, now),
            bytes: RateLimit::with_capacity(bytes, (2.0 * bytes).max(largest), now),
        }
    }

    /// Spends `frames` frames and `bytes` bytes.
    pub(crate) fn spend(
        &mut self,
        frames: usize,
        bytes: usize,
        now: Instant,
    ) -> Result<(), OverBudget> {
        if frames > 0 && !self.frames.take(frames as f64, now) {
            return Err(OverBudget::Frames(self.frames.per_sec()));
        }
        if bytes > 0 && !self.bytes.take(bytes as f64, now) {
            return Err(OverBudget::Bytes(self.bytes.per_sec()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = RateLimit::new(10, start);
        assert!((0..10).all(|_| bucket.take(1.0, start)));
        assert!(!bucket.take(1.0, start));
        let later = start + Duration::from_millis(100);
        assert!(bucket.take(1.0, later));
        assert!(!bucket.take(1.0, later));
        assert!(bucket.is_full(later + Duration::from_secs(2)));
    }

    #[test]
    fn a_frame_flood_runs_out_within_its_burst() {
        let now = Instant::now();
        let mut budget = FrameBudget::new(1_000, 1 << 20, 64 * 1024);
        assert_eq!(budget.spend(2_000, 0, now), Ok(()));
        assert_eq!(budget.spend(1, 0, now), Err(OverBudget::Frames(1_000.0)));
    }

    #[test]
    fn the_byte_budget_always_admits_one_largest_message() {
        let now = Instant::now();
        let mut budget = FrameBudget::new(1_000, 10, 64 * 1024);
        assert_eq!(budget.spend(1, 64 * 1024 + 14, now), Ok(()));
        assert!(matches!(
            budget.spend(1, 1_000, now),
            Err(OverBudget::Bytes(_))
        ));
    }
}
