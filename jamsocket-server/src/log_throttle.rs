//! Warnings a client can provoke at will (a refused handshake, a closed connection) are logged
//! at most once a second per call site, so an attacker cannot turn them into a flood of log
//! lines; the number left out rides along on the next line as `suppressed`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// One call site's budget: a line a second.
pub(crate) struct LogThrottle {
    /// The second (since the first throttled line of the process) of the last line logged.
    second: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    pub(crate) const fn new() -> Self {
        LogThrottle {
            second: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` if a line may be logged now.
    pub(crate) fn allow(&self) -> Option<u64> {
        static START: OnceLock<Instant> = OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_secs();
        let last = self.second.load(Ordering::Relaxed);
        if last != now
            && self
                .second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// `tracing::warn!`, at most once a second from this call site (see [`LogThrottle`]).
macro_rules! warn_throttled {
    ($($arg:tt)+) => {{
        static THROTTLE: $crate::log_throttle::LogThrottle = $crate::log_throttle::LogThrottle::new();
        if let Some(suppressed) = THROTTLE.allow() {
            tracing::warn!(suppressed, $($arg)+);
        }
    }};
}
pub(crate) use warn_throttled;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_and_a_count_of_the_rest() {
        let throttle = LogThrottle::new();
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        // Pretend a second went by.
        let second = throttle.second.load(Ordering::Relaxed);
        throttle
            .second
            .store(second.wrapping_sub(1), Ordering::Relaxed);
        assert_eq!(throttle.allow(), Some(2));
    }
}
