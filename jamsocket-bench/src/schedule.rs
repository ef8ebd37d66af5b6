//! Open-loop send times for `broadcast --rate`: when each message is due, on a clock that
//! replies do not move.
//!
//! `rate` messages per second are offered in total by `senders` senders. Each sender sends
//! every `senders / rate` seconds, and sender `s` starts `s / rate` seconds after sender 0, so
//! the sends of all senders interleave into one even stream: send `i` of sender `s` is number
//! `i * senders + s` of the run and is due at `(i * senders + s) / rate` seconds. A sender
//! that falls behind sends what is due at once, and latency is measured from the due time (as
//! wrk2 does), so time spent queued behind a slow server is counted rather than hidden.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The send times of an open-loop run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Messages per second, all senders together (at least 1).
    rate: u64,
    /// Senders sharing the rate (at least 1).
    senders: u64,
    /// Messages each sender sends.
    messages: u64,
}

impl Schedule {
    /// `None` if `rate` or `senders` is 0.
    pub fn new(rate: u64, senders: u64, messages: u64) -> Option<Self> {
        (rate > 0 && senders > 0).then_some(Schedule {
            rate,
            senders,
            messages,
        })
    }

    /// Messages per second offered in total.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// How long after the start the `i`th message (from 0) of `sender` is due, rounded up to
    /// the nanosecond so that [`due_count`](Schedule::due_count) at that time includes it.
    pub fn due(&self, sender: u64, i: u64) -> Duration {
        let number = u128::from(i) * u128::from(self.senders) + u128::from(sender);
        nanos_to_duration((number * NANOS_PER_SEC).div_ceil(u128::from(self.rate)))
    }

    /// The time between two messages of one sender.
    pub fn interval(&self) -> Duration {
        nanos_to_duration(u128::from(self.senders) * NANOS_PER_SEC / u128::from(self.rate))
    }

    /// How many of `sender`'s messages are due `elapsed` after the start (never more than
    /// it sends): the catch-up point of a sender that fell behind.
    pub fn due_count(&self, sender: u64, elapsed: Duration) -> u64 {
        // The number of the last message due is floor(elapsed * rate); sender's messages are
        // the numbers congruent to `sender` modulo `senders`.
        let last = elapsed.as_nanos().saturating_mul(u128::from(self.rate)) / NANOS_PER_SEC;
        let count = match last.checked_sub(u128::from(sender)) {
            Some(past_first) => past_first / u128::from(self.senders) + 1,
            None => 0,
        };
        u64::try_from(count).unwrap_or(u64::MAX).min(self.messages)
    }

    /// When the last message of the run is due.
    pub fn last_due(&self) -> Duration {
        match self.messages {
            0 => Duration::ZERO,
            messages => self.due(self.senders - 1, messages - 1),
        }
    }
}

/// Latency of a message due at `scheduled` and received at `received` (both since the same
/// start, in nanoseconds): from the scheduled time, not from the write, so a late send counts
/// its wait. Zero if it somehow arrived before it was due.
pub fn latency_nanos(scheduled: u64, received: u64) -> u64 {
    received.saturating_sub(scheduled)
}

fn nanos_to_duration(nanos: u128) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_zero_rate_or_senders() {
        assert_eq!(Schedule::new(0, 10, 5), None);
        assert_eq!(Schedule::new(100, 0, 5), None);
        assert!(Schedule::new(1, 1, 0).is_some());
    }

    #[test]
    fn each_sender_sends_at_senders_over_rate() {
        // 2000 senders sharing 10 000 messages/s: each sends every 0.2 s.
        let schedule = Schedule::new(10_000, 2_000, 100).unwrap();
        assert_eq!(schedule.interval(), Duration::from_millis(200));
        for sender in [0, 1, 1_999] {
            for i in 0..99 {
                let gap = schedule.due(sender, i + 1) - schedule.due(sender, i);
                assert_eq!(
                    gap,
                    Duration::from_millis(200),
                    "sender {sender}, message {i}"
                );
            }
        }
    }

    #[test]
    fn senders_are_staggered_by_one_over_rate() {
        let schedule = Schedule::new(10_000, 2_000, 100).unwrap();
        assert_eq!(schedule.due(0, 0), Duration::ZERO);
        assert_eq!(schedule.due(1, 0), Duration::from_micros(100));
        assert_eq!(schedule.due(1_999, 0), Duration::from_micros(199_900));
        // The last sender's first message comes just before sender 0's second one.
        assert!(schedule.due(1_999, 0) < schedule.due(0, 1));
    }

    #[test]
    fn all_sends_together_are_evenly_spaced_at_the_total_rate() {
        let schedule = Schedule::new(3_000, 7, 11).unwrap();
        let mut times: Vec<Duration> = (0..7)
            .flat_map(|sender| (0..11).map(move |i| schedule.due(sender, i)))
            .collect();
        times.sort();
        assert_eq!(times.len(), 77);
        // Consecutive sends are 1/3000 s apart (give or take the nanosecond rounding).
        for pair in times.windows(2) {
            let gap = (pair[1] - pair[0]).as_nanos();
            assert!((333_333..=333_334).contains(&gap), "gap {gap} ns");
        }
        // 77 sends at 3000/s: the last is due 76/3000 s after the first.
        assert_eq!(schedule.last_due(), Duration::from_nanos(25_333_334));
        let offered = 76.0 / schedule.last_due().as_secs_f64();
        assert!((offered - 3_000.0).abs() < 0.01, "{offered}");
    }

    #[test]
    fn counts_what_is_due_for_catch_up() {
        let schedule = Schedule::new(1_000, 4, 3).unwrap();
        // Sender 2's messages are due at 2 ms, 6 ms and 10 ms.
        assert_eq!(schedule.due_count(2, Duration::ZERO), 0);
        assert_eq!(schedule.due_count(2, Duration::from_micros(1_999)), 0);
        assert_eq!(schedule.due_count(2, Duration::from_millis(2)), 1);
        // A sender stalled until 7 ms owes two messages at once.
        assert_eq!(schedule.due_count(2, Duration::from_millis(7)), 2);
        // Never more than it sends.
        assert_eq!(schedule.due_count(2, Duration::from_secs(60)), 3);
        assert_eq!(schedule.due_count(0, Duration::ZERO), 1);
        for i in 0..3 {
            assert_eq!(schedule.due_count(2, schedule.due(2, i)), i + 1);
        }
        // Due times that are not whole nanoseconds: a message is due at its own due time, and
        // not a nanosecond before (else a sender's timer would wake to find nothing due).
        let uneven = Schedule::new(3_000, 7, 11).unwrap();
        for sender in 0..7 {
            for i in 0..11 {
                let due = uneven.due(sender, i);
                assert_eq!(uneven.due_count(sender, due), i + 1);
                if let Some(just_before) = due.checked_sub(Duration::from_nanos(1)) {
                    assert_eq!(uneven.due_count(sender, just_before), i, "{sender} {i}");
                }
            }
        }
    }

    #[test]
    fn latency_runs_from_the_scheduled_time_not_the_write() {
        let schedule = Schedule::new(1_000, 1, 10).unwrap();
        let scheduled = schedule.due(0, 5).as_nanos() as u64; // 5 ms
        let written = 9_000_000; // the socket was blocked: written 4 ms late
        let received = 9_500_000;
        assert_eq!(latency_nanos(scheduled, received), 4_500_000);
        assert_ne!(latency_nanos(scheduled, received), received - written);
        assert_eq!(latency_nanos(scheduled, scheduled - 1), 0);
    }
}
