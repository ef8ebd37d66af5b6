//! Heartbeats: one timer per worker thread ticks every connection on that thread, rather than
//! a timer per connection. A connection's tick is a flag and a stored waker, so waiting for it
//! costs no timer registration each time the connection's task runs (polling a Tokio timer on
//! every wake-up was about 4% of the server's CPU at a moderate message rate), and an idle
//! connection holds no timer entry.
//!
//! The connections of a thread are ticked in groups spread over the interval. A connection's
//! first tick comes one to two intervals after it joined (the ticks before that are skipped, so
//! a new client gets no ping right after its handshake); later ticks are an interval apart.

use slab::Slab;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// How many groups a thread's connections are ticked in, spread over the interval.
const GROUPS: usize = 16;

thread_local! {
    /// This thread's tickers, by interval (a process may run servers with different ones).
    static TICKERS: RefCell<Vec<(Duration, Weak<Ticker>)>> = const { RefCell::new(Vec::new()) };
}

/// The connections one timer ticks.
#[derive(Default)]
struct Ticker {
    connections: RefCell<Slab<Beat>>,
}

#[derive(Default)]
struct Beat {
    waker: Option<Waker>,
    due: bool,
}

/// A connection's place on its thread's ticker; leaving it when dropped.
pub(crate) struct Heartbeat {
    ticker: Rc<Ticker>,
    key: usize,
    /// Until its first tick: ticks before this instant are skipped.
    not_before: Option<Instant>,
}

impl Heartbeat {
    /// Joins this thread's ticker for `interval`, starting it if there is none. Must be called
    /// from a task on a `LocalSet` (an Actix worker).
    pub(crate) fn join(interval: Duration) -> Heartbeat {
        let ticker = TICKERS.with(|tickers| {
            let mut tickers = tickers.borrow_mut();
            tickers.retain(|(_, ticker)| ticker.strong_count() > 0);
            if let Some(ticker) = tickers
                .iter()
                .find(|(every, _)| *every == interval)
                .and_then(|(_, ticker)| ticker.upgrade())
            {
                return ticker;
            }
            let ticker = Rc::new(Ticker::default());
            tickers.push((interval, Rc::downgrade(&ticker)));
            tokio::task::spawn_local(tick(Rc::downgrade(&ticker), interval));
            ticker
        });
        let key = ticker.connections.borrow_mut().insert(Beat::default());
        Heartbeat {
            ticker,
            key,
            not_before: Some(Instant::now() + interval),
        }
    }

    /// Ready once per tick.
    pub(crate) fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut connections = self.ticker.connections.borrow_mut();
        let beat = &mut connections[self.key];
        if std::mem::take(&mut beat.due)
            && self
                .not_before
                .is_none_or(|not_before| Instant::now() >= not_before)
        {
            self.not_before = None;
            return Poll::Ready(());
        }
        match &beat.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => beat.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.ticker.connections.borrow_mut().remove(self.key);
    }
}

/// Ticks every connection on `ticker` each `interval`, until none is left: one group of
/// connections each [`GROUPS`]th of the interval, so that a thousand connections do not all
/// write their pings at once (a burst that showed as a 4x higher p999 latency).
async fn tick(ticker: Weak<Ticker>, interval: Duration) {
    let step = (interval / GROUPS as u32).max(Duration::from_millis(1));
    let mut timer = interval_at(Instant::now() + step, step);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for group in (0..GROUPS).cycle() {
        timer.tick().await;
        let Some(ticker) = ticker.upgrade() else {
            return;
        };
        let mut connections = ticker.connections.borrow_mut();
        for (_, beat) in connections
            .iter_mut()
            .filter(|(key, _)| key % GROUPS == group)
        {
            beat.due = true;
            if let Some(waker) = &beat.waker {
                waker.wake_by_ref();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test(start_paused = true)]
    async fn every_connection_on_a_thread_ticks_until_it_leaves() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let every = Duration::from_secs(10);
                let mut a = Heartbeat::join(every);
                let mut b = Heartbeat::join(every);
                assert!(Rc::ptr_eq(&a.ticker, &b.ticker));
                let started = Instant::now();
                let step = every / GROUPS as u32;
                // a's group ticks at `step`, then every interval; the ticks before an interval
                // has passed are skipped.
                poll_fn(|cx| a.poll_tick(cx)).await;
                assert_eq!(started.elapsed(), every + step);
                poll_fn(|cx| a.poll_tick(cx)).await;
                assert_eq!(started.elapsed(), every * 2 + step);
                // b was not polled since its group's tick: it has one waiting.
                poll_fn(|cx| b.poll_tick(cx)).await;
                assert_eq!(started.elapsed(), every * 2 + step);
                drop((a, b));
                // The last connection gone, the next one starts a new ticker.
                let c = Heartbeat::join(every);
                assert_eq!(c.ticker.connections.borrow().len(), 1);
                let other = Heartbeat::join(Duration::from_secs(1));
                assert!(!Rc::ptr_eq(&c.ticker, &other.ticker));
            })
            .await;
    }
}
