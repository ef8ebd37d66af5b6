//! The hibernate scenario: visit many new rooms one client at a time, let them hibernate (leave
//! memory for the server's store), then visit them again and see that each comes back with its
//! state, how long that takes and what the hibernated rooms cost in memory and on disk.
//!
//! Made for a server with a store and `--shutdown-policy immediate`, serving a counter
//! (`examples/counter-service`): each visit sends `increment`, so the reply to the second
//! visit says `new value: 2` when the first visit's state survived (`--expect-after`).

use crate::connect::{close, connect, Ws};
use crate::process::{CpuMeter, CpuSecs, Process};
use crate::run_context::RunContext;
use crate::stats::Percentiles;
use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How often the server's memory is sampled while rooms are visited.
const PEAK_SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How often the server's memory is sampled while it settles.
const SETTLE_SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Memory has settled when it moved by less than 1% over this many samples (one second).
const SETTLE_WINDOW: usize = 4;

#[derive(clap::Args, Debug)]
pub struct HibernateArgs {
    /// New rooms to create, let hibernate and restore.
    #[arg(long, default_value_t = 1000)]
    pub rooms: u64,
    /// Rooms visited at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// What each visit sends; the service's next message is taken as the reply.
    #[arg(long, default_value = "increment")]
    pub message: String,
    /// Longest wait for the server's memory to stop falling once the rooms are empty.
    #[arg(long, default_value_t = 10)]
    pub settle_secs: u64,
    /// The server's store (an SQLite file), whose size (with its `-wal` file) is reported once
    /// the rooms hibernated; start the server on a new file for a per-room figure.
    #[arg(long, value_name = "PATH")]
    pub store_file: Option<PathBuf>,
    /// Text the reply to the second visit's message must contain (`new value: 2` for the
    /// counter); a reply without it counts as lost state. Unchecked when absent.
    #[arg(long, value_name = "TEXT")]
    pub expect_after: Option<String>,
    /// Whether the service greets each client on connect (the counter sends its value);
    /// `false` for services that speak only when spoken to. Latency is measured to the first
    /// message either way.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub first_message_on_connect: bool,
}

#[derive(Debug, Serialize)]
pub struct HibernateReport {
    pub scenario: &'static str,
    pub url: String,
    pub rooms: u64,
    pub concurrency: usize,
    /// First visits, to rooms that do not exist yet.
    pub create: PhaseReport,
    /// Second visits, to the rooms the first visits created (each restored from the store).
    pub restore: PhaseReport,
    /// Restore over create, first-message p50.
    pub restore_vs_create_p50: Option<f64>,
    pub server_rss_empty_kib: Option<u64>,
    /// Highest resident memory seen while the rooms were created.
    pub server_rss_peak_kib: Option<u64>,
    /// Once memory stopped falling after the rooms emptied.
    pub server_rss_hibernated_kib: Option<u64>,
    pub hibernated_vs_empty: Option<f64>,
    /// How long memory took to settle, and whether it did within `--settle-secs`.
    pub settle_secs: f64,
    pub settled: bool,
    /// The store file and its `-wal` file, once the rooms hibernated.
    pub store_bytes: Option<u64>,
    pub store_wal_bytes: Option<u64>,
    /// Store bytes over rooms created: meaningful for a store that held nothing before.
    pub store_bytes_per_room: Option<f64>,
    /// Restored rooms whose reply lacked `--expect-after` (null when unchecked).
    pub lost_state: Option<u64>,
    pub first_lost: Option<String>,
    /// Visits that failed, both phases.
    pub errors: u64,
    pub first_error: Option<String>,
    pub timed_out: bool,
}

/// How one round of visits went.
#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub attempted: u64,
    pub completed: u64,
    pub failed: u64,
    pub elapsed_secs: f64,
    /// From starting to connect to the room's first message (its greeting, or its reply).
    pub first_message: Percentiles,
    #[serde(flatten)]
    pub cpu: CpuSecs,
}

/// One completed visit.
struct Visit {
    first_message: Duration,
    reply: String,
}

/// Visits by room index; `Err` where the visit failed.
type Visits = Vec<(usize, Result<Visit, String>)>;

pub async fn run(args: HibernateArgs, context: &RunContext) -> anyhow::Result<HibernateReport> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let args = Arc::new(args);
    let server = context.server;
    let rss_empty = server.map(|s| s.resident_kib()).transpose()?;

    let urls: Arc<[String]> = (0..args.rooms)
        .map(|index| context.room_url("hibernate", index))
        .collect();
    let all = (0..urls.len()).collect();
    let (create, rss_peak) = peak_while(
        server,
        visit_all(&urls, all, &args, server, context.deadline),
    )
    .await?;
    let (create, created) = create?;
    let created_rooms: Vec<usize> = created
        .iter()
        .filter_map(|(index, visit)| visit.is_ok().then_some(*index))
        .collect();

    let settling = Instant::now();
    let (rss_hibernated, settled) = match server {
        Some(server) => {
            let until = context
                .deadline
                .min(settling + Duration::from_secs(args.settle_secs));
            let (kib, settled) = settle(server, until).await?;
            (Some(kib), settled)
        }
        None => (None, true),
    };
    let settle_secs = settling.elapsed().as_secs_f64();
    let store = args.store_file.as_deref().map(store_size).transpose()?;

    let (restore, restored) =
        visit_all(&urls, created_rooms, &args, server, context.deadline).await?;
    let lost: Vec<String> = match &args.expect_after {
        Some(expected) => restored
            .iter()
            .filter_map(|(index, visit)| {
                let reply = &visit.as_ref().ok()?.reply;
                (!reply.contains(expected.as_str())).then(|| format!("{}: `{reply}`", urls[*index]))
            })
            .collect(),
        None => Vec::new(),
    };

    let first_error = created
        .into_iter()
        .chain(restored)
        .find_map(|(_, visit)| visit.err());
    let store_bytes = store.map(|(file, wal)| file + wal);
    Ok(HibernateReport {
        scenario: "hibernate",
        url: context.url.to_string(),
        rooms: args.rooms,
        concurrency: args.concurrency,
        restore_vs_create_p50: ratio(restore.first_message.p50_us, create.first_message.p50_us)
            .filter(|_| restore.completed > 0),
        server_rss_empty_kib: rss_empty,
        server_rss_peak_kib: rss_peak,
        server_rss_hibernated_kib: rss_hibernated,
        hibernated_vs_empty: rss_hibernated.zip(rss_empty).and_then(|(h, e)| ratio(h, e)),
        settle_secs,
        settled,
        store_bytes,
        store_wal_bytes: store.map(|(_, wal)| wal),
        store_bytes_per_room: store_bytes
            .filter(|_| create.completed > 0)
            .map(|bytes| bytes as f64 / create.completed as f64),
        lost_state: args.expect_after.as_ref().map(|_| lost.len() as u64),
        first_lost: lost.into_iter().next(),
        errors: create.failed + restore.failed,
        first_error,
        // Visits cut short by the deadline count as failed, so the clock decides.
        timed_out: Instant::now() >= context.deadline,
        create,
        restore,
    })
}

/// Visits the rooms at `indices` of `urls`, `--concurrency` at a time, until done or the
/// deadline.
async fn visit_all(
    urls: &Arc<[String]>,
    indices: Vec<usize>,
    args: &Arc<HibernateArgs>,
    server: Option<Process>,
    deadline: Instant,
) -> anyhow::Result<(PhaseReport, Visits)> {
    let indices: Arc<[usize]> = indices.into();
    let cpu = CpuMeter::start(server)?;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (urls, indices, next, args) =
                (urls.clone(), indices.clone(), next.clone(), args.clone());
            tokio::spawn(async move {
                let mut visits = Vec::new();
                while Instant::now() < deadline {
                    let Some(&index) = indices.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    visits.push((index, visit(&urls[index], &args, deadline).await));
                }
                visits
            })
        })
        .collect();
    let mut visits = Vec::with_capacity(indices.len());
    for worker in workers {
        visits.extend(worker.await.context("a visiting task failed")?);
    }
    let elapsed = started.elapsed();
    let times: Vec<Duration> = visits
        .iter()
        .filter_map(|(_, visit)| Some(visit.as_ref().ok()?.first_message))
        .collect();
    let report = PhaseReport {
        attempted: indices.len() as u64,
        completed: times.len() as u64,
        failed: (visits.len() - times.len()) as u64,
        elapsed_secs: elapsed.as_secs_f64(),
        first_message: Percentiles::from_durations(&times),
        cpu: cpu.read()?,
    };
    Ok((report, visits))
}

/// Connects, waits for the greeting (if the service sends one), sends the message, waits for
/// the next message as the reply, and closes.
async fn visit(url: &str, args: &HibernateArgs, deadline: Instant) -> Result<Visit, String> {
    let begun = Instant::now();
    let mut ws = connect(url, None, deadline).await?;
    let mut first_message = None;
    if args.first_message_on_connect {
        next_text(&mut ws, url, deadline).await?;
        first_message = Some(begun.elapsed());
    }
    match tokio::time::timeout_at(deadline, ws.send(Message::text(args.message.as_str()))).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(format!("sending to {url}: {err}")),
        Err(_) => return Err(format!("sending to {url}: timed out")),
    }
    let reply = next_text(&mut ws, url, deadline).await?;
    let first_message = first_message.unwrap_or_else(|| begun.elapsed());
    close(ws, deadline).await;
    Ok(Visit {
        first_message,
        reply,
    })
}

/// The next text message, skipping other frames.
async fn next_text(ws: &mut Ws, url: &str, deadline: Instant) -> Result<String, String> {
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.to_string()),
            Ok(Some(Ok(Message::Close(frame)))) => return Err(format!("{url} closed: {frame:?}")),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(err))) => return Err(format!("receiving from {url}: {err}")),
            Ok(None) => return Err(format!("{url} ended the connection")),
            Err(_) => return Err(format!("{url}: no message before the deadline")),
        }
    }
}

/// Runs `work` while sampling the server's memory; returns its output and the highest sample.
async fn peak_while<F: Future>(
    server: Option<Process>,
    work: F,
) -> anyhow::Result<(F::Output, Option<u64>)> {
    let Some(server) = server else {
        return Ok((work.await, None));
    };
    let mut peak = server.resident_kib()?;
    let mut tick = tokio::time::interval(PEAK_SAMPLE_EVERY);
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return Ok((output, Some(peak.max(server.resident_kib()?)))),
            _ = tick.tick() => peak = peak.max(server.resident_kib()?),
        }
    }
}

/// Samples the server's memory until it settles or `until`; the last sample and whether it
/// settled.
async fn settle(server: Process, until: Instant) -> anyhow::Result<(u64, bool)> {
    let mut samples = Vec::new();
    loop {
        samples.push(server.resident_kib()?);
        if has_settled(&samples) {
            return Ok((samples[samples.len() - 1], true));
        }
        let now = Instant::now();
        if now >= until {
            return Ok((samples[samples.len() - 1], false));
        }
        tokio::time::sleep_until(until.min(now + SETTLE_SAMPLE_EVERY)).await;
    }
}

/// Whether the last sample is within 1% of the one a window earlier.
fn has_settled(samples: &[u64]) -> bool {
    let Some(earlier) = samples.len().checked_sub(SETTLE_WINDOW + 1) else {
        return false;
    };
    let (earlier, last) = (samples[earlier], samples[samples.len() - 1]);
    last.abs_diff(earlier).saturating_mul(100) < earlier
}

/// Bytes of the store file and of its `-wal` file (0 when there is none).
fn store_size(path: &Path) -> anyhow::Result<(u64, u64)> {
    let size = |path: &Path| std::fs::metadata(path).map(|meta| meta.len());
    let file = size(path).with_context(|| format!("reading the size of {}", path.display()))?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok((file, size(Path::new(&wal)).unwrap_or(0)))
}

/// `a / b`, or `None` when `b` is zero.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl fmt::Display for HibernateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "hibernate       {} rooms, {} at a time, {}",
            self.rooms, self.concurrency, self.url
        )?;
        for (name, phase) in [("create", &self.create), ("restore", &self.restore)] {
            write!(
                f,
                "{name:<16}{} of {} rooms in {:.3} s, {} failed",
                phase.completed, phase.attempted, phase.elapsed_secs, phase.failed
            )?;
            match phase.cpu.server_cpu_secs {
                Some(secs) => writeln!(f, ", server CPU {secs:.2} s")?,
                None => writeln!(f)?,
            }
            writeln!(
                f,
                "{:<16}{}",
                format!("{name} latency"),
                phase.first_message
            )?;
        }
        if let Some(ratio) = self.restore_vs_create_p50 {
            writeln!(f, "restore/create  {ratio:.2}x (first-message p50)")?;
        }
        if let (Some(empty), Some(peak), Some(hibernated)) = (
            self.server_rss_empty_kib,
            self.server_rss_peak_kib,
            self.server_rss_hibernated_kib,
        ) {
            writeln!(
                f,
                "server rss      {empty} KiB empty, {peak} KiB peak, {hibernated} KiB hibernated \
                 ({:.2}x empty; {} after {:.1} s)",
                self.hibernated_vs_empty.unwrap_or(f64::NAN),
                if self.settled {
                    "settled"
                } else {
                    "still moving"
                },
                self.settle_secs
            )?;
        }
        if let (Some(bytes), Some(wal)) = (self.store_bytes, self.store_wal_bytes) {
            write!(f, "store           {bytes} bytes ({wal} in the WAL)")?;
            match self.store_bytes_per_room {
                Some(per) => writeln!(f, ", {per:.0} per room")?,
                None => writeln!(f)?,
            }
        }
        match self.lost_state {
            Some(lost) => writeln!(f, "lost state      {lost} rooms")?,
            None => writeln!(f, "lost state      not checked (no --expect-after)")?,
        }
        if let Some(lost) = &self.first_lost {
            writeln!(f, "first lost      {lost}")?;
        }
        writeln!(f, "errors          {}", self.errors)?;
        if let Some(err) = &self.first_error {
            writeln!(f, "first failure   {err}")?;
        }
        if self.timed_out {
            writeln!(f, "TIMED OUT       the run hit --timeout-secs")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_when_a_second_moves_memory_under_one_percent() {
        assert!(!has_settled(&[]));
        assert!(!has_settled(&[1000, 1000, 1000, 1000]));
        assert!(has_settled(&[1000, 1000, 1000, 1000, 1000]));
        assert!(has_settled(&[5000, 1000, 995, 992, 991, 991]));
        assert!(!has_settled(&[1000, 990, 980, 970, 960]));
        assert!(!has_settled(&[1000, 1000, 1000, 1000, 1010]));
    }

    #[test]
    fn measures_the_store_and_its_wal() {
        let dir = std::env::temp_dir().join(format!("hibernate-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("rooms.db");
        std::fs::write(&db, [0; 100]).unwrap();
        assert_eq!(store_size(&db).unwrap(), (100, 0));
        std::fs::write(dir.join("rooms.db-wal"), [0; 30]).unwrap();
        assert_eq!(store_size(&db).unwrap(), (100, 30));
        assert!(store_size(&dir.join("missing.db")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ratio(3, 2), Some(1.5));
        assert_eq!(ratio(3, 0), None);
    }
}
