//! The rate limit on guest output: a token bucket of lines per room, which its stdout and
//! stderr share, and the count of lines it dropped; and one bucket for every room of a factory
//! together, so that many rooms printing at once cannot fill the disk either.

use crate::guest_log::TARGET;
use crate::lock::lock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bucket holds this many seconds' worth of lines: a quiet room may print a burst.
const BURST_SECS: u32 = 2;

/// At most one "lines dropped" summary per room in this interval, so a room that prints
/// continuously over the limit logs its allowance plus one summary a second.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(1);

/// One room's output budget, shared by its stdout and stderr writers. Lines dropped since the
/// last summary are reported before the next line that may be logged, and when the room (the
/// last writer) goes away.
pub(crate) struct OutputBudget {
    room_id: Arc<str>,
    lines_per_sec: u32,
    bucket: Mutex<Bucket>,
    server: Arc<ServerOutputBudget>,
}

/// The lines every room of a factory may log together: a line (or a summary) a room's own
/// budget admits is still dropped, and counted in that room's summary, when this one is empty.
pub(crate) struct ServerOutputBudget(Mutex<Bucket>);

impl ServerOutputBudget {
    pub(crate) fn new(lines_per_sec: u32) -> Arc<Self> {
        Arc::new(ServerOutputBudget(Mutex::new(Bucket::new(
            lines_per_sec,
            Instant::now(),
        ))))
    }

    fn admit(&self, now: Instant) -> bool {
        lock(&self.0).admit(now) != Admission::Drop
    }
}

impl OutputBudget {
    pub(crate) fn new(
        room_id: Arc<str>,
        lines_per_sec: u32,
        server: Arc<ServerOutputBudget>,
    ) -> Self {
        OutputBudget {
            room_id,
            lines_per_sec,
            bucket: Mutex::new(Bucket::new(lines_per_sec, Instant::now())),
            server,
        }
    }

    pub(crate) fn room_id(&self) -> &str {
        &self.room_id
    }

    /// Whether the next line may be logged. If so, first logs the summary of lines dropped
    /// before it, if one is due.
    pub(crate) fn admit_line(&self) -> bool {
        let now = Instant::now();
        let mut bucket = lock(&self.bucket);
        match bucket.admit(now) {
            Admission::Log { dropped_before } if self.server.admit(now) => {
                drop(bucket);
                self.log_dropped(dropped_before);
                true
            }
            // Every room together is over the server's budget: counted like the room's own.
            Admission::Log { dropped_before } => {
                bucket.dropped = bucket.dropped.saturating_add(dropped_before + 1);
                false
            }
            Admission::Drop => false,
        }
    }

    fn log_dropped(&self, dropped: u64) {
        if dropped == 0 {
            return;
        }
        let room_id = &*self.room_id;
        let lines_per_sec = self.lines_per_sec;
        tracing::warn!(
            target: TARGET,
            room = room_id,
            dropped,
            "{dropped} lines of guest output dropped (rate limit: {lines_per_sec} lines/s)"
        );
    }
}

impl Drop for OutputBudget {
    fn drop(&mut self) {
        let dropped = lock(&self.bucket).take_dropped();
        self.log_dropped(dropped);
    }
}

/// What to do with a line.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// Log it, after a summary of `dropped_before` lines if that is not zero.
    Log { dropped_before: u64 },
    /// Drop it (it is counted).
    Drop,
}

/// A token bucket of lines, refilled continuously at `rate` per second up to `capacity`.
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
    /// Lines dropped and not yet reported.
    dropped: u64,
    last_summary: Option<Instant>,
}

impl Bucket {
    fn new(lines_per_sec: u32, now: Instant) -> Self {
        let rate = f64::from(lines_per_sec);
        let capacity = rate * f64::from(BURST_SECS);
        Bucket {
            rate,
            capacity,
            tokens: capacity,
            refilled_at: now,
            dropped: 0,
            last_summary: None,
        }
    }

    fn admit(&mut self, now: Instant) -> Admission {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.refilled_at = now;
        if self.tokens < 1.0 {
            self.dropped = self.dropped.saturating_add(1);
            return Admission::Drop;
        }
        self.tokens -= 1.0;
        let summary_due = self
            .last_summary
            .is_none_or(|last| now.saturating_duration_since(last) >= SUMMARY_INTERVAL);
        let dropped_before = if self.dropped > 0 && summary_due {
            self.last_summary = Some(now);
            self.take_dropped()
        } else {
            0
        };
        Admission::Log { dropped_before }
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_within_their_budgets_still_share_the_servers() {
        let server = ServerOutputBudget::new(100);
        let rooms: Vec<OutputBudget> = (0..10)
            .map(|i| OutputBudget::new(Arc::from(format!("r{i}")), 100, server.clone()))
            .collect();
        // Each room may burst 200 lines, the server 200 in all.
        let logged: usize = rooms
            .iter()
            .map(|room| (0..100).filter(|_| room.admit_line()).count())
            .sum();
        assert_eq!(logged, 200);
        let dropped: u64 = rooms.iter().map(|room| lock(&room.bucket).dropped).sum();
        assert_eq!(
            dropped, 800,
            "every dropped line is counted in its room's summary"
        );
    }

    fn admitted(bucket: &mut Bucket, lines: usize, now: Instant) -> usize {
        (0..lines)
            .filter(|_| bucket.admit(now) != Admission::Drop)
            .count()
    }

    #[test]
    fn a_burst_of_two_seconds_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(100, start);
        assert_eq!(admitted(&mut bucket, 1_000, start), 200);
        assert_eq!(bucket.dropped, 800);
        // 50 ms later, five more lines may be logged; the first reports the 800 dropped.
        let later = start + Duration::from_millis(50);
        assert_eq!(
            bucket.admit(later),
            Admission::Log {
                dropped_before: 800
            }
        );
        assert_eq!(admitted(&mut bucket, 10, later), 4);
        assert_eq!(bucket.dropped, 6);
        // The refill stops at the burst size.
        let much_later = later + Duration::from_secs(60);
        assert_eq!(admitted(&mut bucket, 1_000, much_later), 200);
    }

    #[test]
    fn one_summary_a_second_at_most() {
        let start = Instant::now();
        let mut bucket = Bucket::new(100, start);
        admitted(&mut bucket, 300, start);
        let mut summaries = 0;
        let mut logged = 0;
        // Ten lines every 10 ms for a second: one in ten fits.
        for tick in 1..=100 {
            let now = start + Duration::from_millis(10 * tick);
            for _ in 0..10 {
                match bucket.admit(now) {
                    Admission::Log { dropped_before } => {
                        logged += 1;
                        summaries += usize::from(dropped_before > 0);
                    }
                    Admission::Drop => {}
                }
            }
        }
        assert_eq!(logged, 100);
        assert_eq!(summaries, 1);
        assert_eq!(bucket.take_dropped(), 300 + 1_000 - 200 - 100 - 100);
    }
}
