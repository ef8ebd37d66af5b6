//! Per-call budgets: CPU time (counted on epoch ticks) and bytes sent.

use crate::lock::lock;
use crate::GuestFailure;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::UpdateDeadline;

/// CPU time used by the current call, counted between epoch ticks while the guest runs.
pub(crate) struct CpuBudget {
    limit: Duration,
    used: Duration,
    /// When the guest last started running: the call's start, or the end of its last yield.
    /// Shared with the yield future, which sets it when the executor resumes the call.
    running_since: Arc<Mutex<Instant>>,
}

impl CpuBudget {
    pub(crate) fn new(limit: Duration) -> Self {
        CpuBudget {
            limit,
            used: Duration::ZERO,
            running_since: Arc::new(Mutex::new(Instant::now())),
        }
    }

    pub(crate) fn start(&mut self) {
        self.used = Duration::ZERO;
        *lock(&self.running_since) = Instant::now();
    }

    /// Called on each epoch tick while the guest runs: charges the time since it started
    /// running, then traps if the budget is spent, or yields to the executor for one tick.
    pub(crate) fn on_tick(&mut self) -> wasmtime::Result<UpdateDeadline> {
        let now = Instant::now();
        self.used += now.saturating_duration_since(*lock(&self.running_since));
        if self.used >= self.limit {
            return Err(GuestFailure::CpuLimit { limit: self.limit }.into());
        }
        let running_since = self.running_since.clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                // Tokio's yield also lets a current-thread runtime poll its I/O and timers
                // before resuming this call (outside tokio it is a plain yield).
                tokio::task::yield_now().await;
                *lock(&running_since) = Instant::now();
            }),
        ))
    }
}

/// Bytes sent by the current call.
pub(crate) struct SendBudget {
    limit: usize,
    sent: usize,
}

impl SendBudget {
    pub(crate) fn new(limit: usize) -> Self {
        SendBudget { limit, sent: 0 }
    }

    pub(crate) fn start(&mut self) {
        self.sent = 0;
    }

    /// Counts `len` more bytes, or fails if that goes over the limit.
    pub(crate) fn charge(&mut self, len: usize) -> Result<(), GuestFailure> {
        let attempted = self.sent.saturating_add(len);
        if attempted > self.limit {
            return Err(GuestFailure::SendLimit {
                limit: self.limit,
                attempted,
            });
        }
        self.sent = attempted;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_budget_counts_per_call() {
        let mut budget = SendBudget { limit: 10, sent: 0 };
        assert!(budget.charge(6).is_ok());
        assert_eq!(
            budget.charge(5),
            Err(GuestFailure::SendLimit {
                limit: 10,
                attempted: 11
            })
        );
        assert!(budget.charge(4).is_ok());
        assert!(budget.charge(usize::MAX).is_err());
    }

    #[test]
    fn cpu_budget_traps_once_spent() {
        // Wall-clock time: the limit leaves room for this thread being descheduled between
        // `start` and the first tick while other tests load the machine.
        let limit = Duration::from_millis(300);
        let mut budget = CpuBudget::new(limit);
        let started = Instant::now();
        budget.start();
        let first = budget.on_tick();
        // Checked only if this thread really ticked within the limit: a loaded machine (CI runs
        // every test at once) may deschedule it for longer, and then the trap is right.
        if started.elapsed() < limit {
            assert!(matches!(first, Ok(UpdateDeadline::YieldCustom(1, _))));
        }
        std::thread::sleep(Duration::from_millis(350));
        let err = budget.on_tick().err().expect("over budget");
        assert!(matches!(
            err.downcast_ref::<GuestFailure>(),
            Some(GuestFailure::CpuLimit { .. })
        ));
        // A new call starts with a fresh budget.
        budget.start();
        assert!(budget.on_tick().is_ok());
    }
}
