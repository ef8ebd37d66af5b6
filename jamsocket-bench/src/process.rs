//! What a process costs, from Linux's `/proc/<pid>`: resident memory and CPU time. Used for
//! the server under test (`--server-pid`) and for the bench itself.

use anyhow::Context;
use serde::Serialize;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`) when `sysconf` cannot
/// say: Linux reports these in 1/100 s on every architecture this bench runs on, whatever the
/// kernel's own tick rate.
const DEFAULT_USER_HZ: u64 = 100;

/// `sysconf`'s name for the clock tick (`_SC_CLK_TCK`): 2 in Linux's glibc, musl and bionic.
/// Declared here rather than through the libc crate, which the bench does not otherwise need.
const SC_CLK_TCK: std::ffi::c_int = 2;

extern "C" {
    fn sysconf(name: std::ffi::c_int) -> std::ffi::c_long;
}

/// Clock ticks per second of `/proc/<pid>/stat` times, from `sysconf(_SC_CLK_TCK)`.
fn user_hz() -> u64 {
    // SAFETY: sysconf only reads its integer argument and returns a value or -1.
    let hz = unsafe { sysconf(SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|hz| *hz > 0)
        .unwrap_or(DEFAULT_USER_HZ)
}

/// CPU time a process spent in user mode and in the kernel, all threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The times spent since `earlier`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// A process, by pid.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pid: u32,
}

impl Process {
    /// Checks that `/proc/<pid>` can be read.
    pub fn new(pid: u32) -> anyhow::Result<Self> {
        let process = Process { pid };
        process.resident_kib()?;
        Ok(process)
    }

    /// This process.
    pub fn this() -> anyhow::Result<Self> {
        Self::new(std::process::id())
    }

    /// Resident memory (`VmRSS`), in KiB.
    pub fn resident_kib(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_vm_rss_kib(&status).with_context(|| format!("no VmRSS line in {path}"))
    }

    /// User plus system CPU time used so far, all threads.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        self.cpu_times().map(|times| times.total())
    }

    /// User and system CPU time used so far, all threads (`utime` and `stime`).
    pub fn cpu_times(&self) -> anyhow::Result<CpuTimes> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let (user, system) =
            parse_cpu_ticks(&stat).with_context(|| format!("unexpected format of {path}"))?;
        let hz = user_hz();
        Ok(CpuTimes {
            user: ticks_to_duration(user, hz),
            system: ticks_to_duration(system, hz),
        })
    }
}

/// Counts CPU time of the server (when its pid is known) and of the bench from when it
/// starts.
pub struct CpuMeter {
    server: Option<(Process, CpuTimes)>,
    bench: Option<(Process, Duration)>,
}

/// CPU seconds (user + system, all threads) over part of a run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuSecs {
    pub server_cpu_secs: Option<f64>,
    /// The bench's own CPU: near the machine's core count, the bench was the bottleneck.
    pub bench_cpu_secs: Option<f64>,
}

impl CpuMeter {
    /// Fails only if the server's times cannot be read; the bench's are best effort.
    pub fn start(server: Option<Process>) -> anyhow::Result<Self> {
        let server = server
            .map(|process| process.cpu_times().map(|times| (process, times)))
            .transpose()?;
        let bench = Process::this()
            .and_then(|process| Ok((process, process.cpu_time()?)))
            .ok();
        Ok(CpuMeter { server, bench })
    }

    /// CPU used since [`start`](CpuMeter::start).
    pub fn read(&self) -> anyhow::Result<CpuSecs> {
        self.read_split().map(|(secs, _)| secs)
    }

    /// CPU used since [`start`](CpuMeter::start), and the server's split into user and
    /// system time (from the same reading).
    pub fn read_split(&self) -> anyhow::Result<(CpuSecs, Option<CpuTimes>)> {
        let server = self
            .server
            .as_ref()
            .map(|(process, start)| process.cpu_times().map(|now| now.since(start)))
            .transpose()?;
        let bench = self.bench.as_ref().and_then(|(process, start)| {
            process
                .cpu_time()
                .map(|now| now.saturating_sub(*start).as_secs_f64())
                .ok()
        });
        let secs = CpuSecs {
            server_cpu_secs: server.map(|times| times.total().as_secs_f64()),
            bench_cpu_secs: bench,
        };
        Ok((secs, server))
    }
}

impl CpuSecs {
    /// `cpu             server 1.20 s (60% of a core), bench 1.90 s (95%)` over `elapsed_secs`.
    pub fn over(&self, elapsed_secs: f64) -> String {
        let share = |secs: f64| 100.0 * secs / elapsed_secs.max(f64::MIN_POSITIVE);
        let mut parts = Vec::new();
        if let Some(secs) = self.server_cpu_secs {
            parts.push(format!(
                "server {secs:.2} s ({:.0}% of a core)",
                share(secs)
            ));
        }
        if let Some(secs) = self.bench_cpu_secs {
            parts.push(format!("bench {secs:.2} s ({:.0}% of a core)", share(secs)));
        }
        if parts.is_empty() {
            parts.push("unknown".to_string());
        }
        format!("cpu             {}", parts.join(", "))
    }
}

/// The `VmRSS:   1234 kB` line of `/proc/<pid>/status`, in KiB.
fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let mut words = line.split_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(value)
}

/// `ticks` clock ticks at `hz` ticks a second.
fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// `(utime, stime)` (fields 14 and 15) of `/proc/<pid>/stat`, in clock ticks. The command name
/// in field 2 is in parentheses and may itself hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // After the name come fields 3 (state), 4, ...; utime is field 14.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tserve\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_kib(status), Some(12_345));
        assert_eq!(parse_vm_rss_kib("Name:\tserve\n"), None);
        assert_eq!(parse_vm_rss_kib("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_past_awkward_names() {
        let stat = "4242 (my (odd) srv) S 1 4242 4242 0 -1 4194560 3000 0 0 0 150 27 0 0 20 0 5 0 \
                    100 2000000 700 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some((150, 27)));
        assert_eq!(parse_cpu_ticks("4242 (srv) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn converts_ticks_at_the_system_rate() {
        assert_eq!(ticks_to_duration(150, 100), Duration::from_millis(1_500));
        assert_eq!(ticks_to_duration(3, 1_000), Duration::from_millis(3));
        assert_eq!(ticks_to_duration(1, 0), Duration::from_secs(1));
        assert!(user_hz() > 0);
    }

    #[test]
    fn splits_cpu_time_since_a_reading() {
        let before = CpuTimes {
            user: Duration::from_millis(100),
            system: Duration::from_millis(50),
        };
        let after = CpuTimes {
            user: Duration::from_millis(400),
            system: Duration::from_millis(60),
        };
        let spent = after.since(&before);
        assert_eq!(spent.user, Duration::from_millis(300));
        assert_eq!(spent.system, Duration::from_millis(10));
        assert_eq!(spent.total(), Duration::from_millis(310));
        assert_eq!(before.since(&after), CpuTimes::default());
    }

    #[test]
    fn describes_cpu_use() {
        let cpu = CpuSecs {
            server_cpu_secs: Some(1.0),
            bench_cpu_secs: Some(3.0),
        };
        assert_eq!(
            cpu.over(2.0),
            "cpu             server 1.00 s (50% of a core), bench 3.00 s (150% of a core)"
        );
        assert_eq!(CpuSecs::default().over(2.0), "cpu             unknown");
    }

    #[test]
    fn meters_this_process() {
        let meter = CpuMeter::start(None).unwrap();
        let cpu = meter.read().unwrap();
        assert_eq!(cpu.server_cpu_secs, None);
        assert!(cpu.bench_cpu_secs.unwrap() >= 0.0);
    }

    #[test]
    fn reads_this_process() {
        let me = Process::this().unwrap();
        assert!(me.resident_kib().unwrap() > 0);
        me.cpu_time().unwrap();
    }
}
