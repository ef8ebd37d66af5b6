//! What an open-loop broadcast run (`--rate`) adds to the report: the offered and achieved
//! rates, latency from each message's scheduled send time, and the server's user and kernel
//! CPU per delivery.

use crate::process::CpuTimes;
use crate::schedule::Schedule;
use crate::stats::{rate, TailPercentiles};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct RateReport {
    /// Messages per second the clients were scheduled to send, all together.
    pub offered_messages_per_sec: u64,
    /// The deliveries per second that offered load makes when every message reaches its room.
    pub offered_deliveries_per_sec: u64,
    /// Time between two messages of one client.
    pub send_interval_ms: f64,
    /// When the last message was due, from the first.
    pub schedule_secs: f64,
    /// Messages sent and deliveries received over the run (first send to last delivery).
    pub achieved_messages_per_sec: f64,
    pub achieved_deliveries_per_sec: f64,
    /// Every delivery, to every client of the room, from the time its message was due.
    pub latency: TailPercentiles,
    /// The server's CPU from the first send to the end of the drain, in user mode and in the
    /// kernel (`utime` and `stime` of `/proc/<pid>/stat`); with `--server-pid` only.
    pub server_user_cpu_secs: Option<f64>,
    pub server_kernel_cpu_secs: Option<f64>,
    pub server_user_us_per_delivery: Option<f64>,
    pub server_kernel_us_per_delivery: Option<f64>,
}

/// What one open-loop run measured.
pub struct RateRun {
    pub schedule: Schedule,
    pub clients_per_room: u64,
    pub sent: u64,
    pub received: u64,
    pub elapsed: Duration,
    /// Nanoseconds from scheduled send to delivery, all deliveries.
    pub latencies: Vec<u64>,
    pub server_cpu: Option<CpuTimes>,
}

impl RateReport {
    pub fn new(run: RateRun) -> Self {
        let per_delivery = |time: Duration| {
            (run.received > 0).then(|| time.as_secs_f64() * 1e6 / run.received as f64)
        };
        RateReport {
            offered_messages_per_sec: run.schedule.rate(),
            offered_deliveries_per_sec: run.schedule.rate().saturating_mul(run.clients_per_room),
            send_interval_ms: run.schedule.interval().as_secs_f64() * 1e3,
            schedule_secs: run.schedule.last_due().as_secs_f64(),
            achieved_messages_per_sec: rate(run.sent, run.elapsed),
            achieved_deliveries_per_sec: rate(run.received, run.elapsed),
            latency: TailPercentiles::from_nanos(run.latencies),
            server_user_cpu_secs: run.server_cpu.map(|cpu| cpu.user.as_secs_f64()),
            server_kernel_cpu_secs: run.server_cpu.map(|cpu| cpu.system.as_secs_f64()),
            server_user_us_per_delivery: run.server_cpu.and_then(|cpu| per_delivery(cpu.user)),
            server_kernel_us_per_delivery: run.server_cpu.and_then(|cpu| per_delivery(cpu.system)),
        }
    }
}

impl fmt::Display for RateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "offered         {} messages/s ({} deliveries/s), one per client every {:.3} ms, \
             over {:.3} s",
            self.offered_messages_per_sec,
            self.offered_deliveries_per_sec,
            self.send_interval_ms,
            self.schedule_secs
        )?;
        writeln!(
            f,
            "achieved        {:.0} messages/s, {:.0} deliveries/s",
            self.achieved_messages_per_sec, self.achieved_deliveries_per_sec
        )?;
        writeln!(f, "latency         {}  from scheduled send", self.latency)?;
        if let (Some(user), Some(kernel)) = (self.server_user_cpu_secs, self.server_kernel_cpu_secs)
        {
            let per = |us: Option<f64>| match us {
                Some(us) => format!("{us:.2} us/delivery"),
                None => "no deliveries".to_string(),
            };
            writeln!(
                f,
                "server cpu      user {user:.2} s ({}), kernel {kernel:.2} s ({})",
                per(self.server_user_us_per_delivery),
                per(self.server_kernel_us_per_delivery)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_latency_and_cpu_per_delivery() {
        let report = RateReport::new(RateRun {
            schedule: Schedule::new(1_000, 10, 100).unwrap(),
            clients_per_room: 2,
            sent: 1_000,
            received: 2_000,
            elapsed: Duration::from_secs(1),
            latencies: vec![2_000_000, 1_000_000],
            server_cpu: Some(CpuTimes {
                user: Duration::from_millis(10),
                system: Duration::from_millis(30),
            }),
        });
        assert_eq!(report.offered_deliveries_per_sec, 2_000);
        assert_eq!(report.send_interval_ms, 10.0);
        assert_eq!(report.schedule_secs, 0.999);
        assert_eq!(report.achieved_deliveries_per_sec, 2_000.0);
        assert_eq!(report.latency.p50_us, 1_000);
        assert_eq!(report.server_user_us_per_delivery, Some(5.0));
        assert_eq!(report.server_kernel_us_per_delivery, Some(15.0));
        let text = report.to_string();
        assert!(
            text.contains("server cpu      user 0.01 s (5.00 us/delivery), kernel 0.03 s"),
            "{text}"
        );
    }
}
