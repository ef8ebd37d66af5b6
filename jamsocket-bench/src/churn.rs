//! The churn scenario: visit many new rooms, each with one client that connects, sends one
//! message, waits for the service's reply and leaves.

use crate::connect::{close, connect};
use crate::message::{self, Stamp};
use crate::process::{CpuMeter, CpuSecs};
use crate::run_context::RunContext;
use crate::stats::{nanos, rate, Percentiles};
use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args, Debug)]
pub struct ChurnArgs {
    /// New rooms to visit.
    #[arg(long, default_value_t = 100)]
    pub rooms: u64,
    /// Rooms visited at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Text put before the message. The service must answer with a text containing the
    /// message; examples/conformance-service echoes unprefixed text as `echo:<text>`.
    #[arg(long, default_value = "")]
    pub prefix: String,
}

#[derive(Debug, Serialize)]
pub struct ChurnReport {
    pub scenario: &'static str,
    pub url: String,
    pub rooms: u64,
    pub concurrency: usize,
    pub completed: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub elapsed_secs: f64,
    pub rooms_per_sec: f64,
    /// Handshake time (which creates the room).
    pub connect: Percentiles,
    /// From starting to connect to the service's reply.
    pub first_reply: Percentiles,
    /// CPU used during the run.
    #[serde(flatten)]
    pub cpu: CpuSecs,
    pub timed_out: bool,
}

/// Timings of one room's visit.
struct Visit {
    connect: Duration,
    first_reply: Duration,
}

pub async fn run(args: ChurnArgs, context: &RunContext) -> anyhow::Result<ChurnReport> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let room_urls: Arc<[String]> = (0..args.rooms)
        .map(|index| context.room_url("churn", index))
        .collect();
    let cpu = CpuMeter::start(context.server)?;
    let started = Instant::now();
    let next_room = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let room_urls = room_urls.clone();
            let next_room = next_room.clone();
            let prefix = args.prefix.clone();
            let deadline = context.deadline;
            tokio::spawn(async move {
                let mut visits = Vec::new();
                while Instant::now() < deadline {
                    let index = next_room.fetch_add(1, Ordering::Relaxed);
                    let Some(url) = room_urls.get(index) else {
                        break;
                    };
                    visits.push(visit(url, index as u64, &prefix, started, deadline).await);
                }
                visits
            })
        })
        .collect();

    let mut connect_times = Vec::new();
    let mut reply_times = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    for worker in workers {
        let visits = worker
            .await
            .unwrap_or_else(|err| vec![Err(format!("churn task failed: {err}"))]);
        for result in visits {
            match result {
                Ok(visit) => {
                    connect_times.push(visit.connect);
                    reply_times.push(visit.first_reply);
                }
                Err(err) => {
                    failed += 1;
                    first_error.get_or_insert(err);
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu.read()?;
    let completed = reply_times.len() as u64;
    Ok(ChurnReport {
        scenario: "churn",
        url: context.url.to_string(),
        rooms: args.rooms,
        concurrency: args.concurrency,
        completed,
        failed,
        first_error,
        elapsed_secs: elapsed.as_secs_f64(),
        rooms_per_sec: rate(completed, elapsed),
        connect: Percentiles::from_durations(&connect_times),
        first_reply: Percentiles::from_durations(&reply_times),
        cpu,
        timed_out: completed + failed < args.rooms,
    })
}

/// Connects to a new room, sends one message, waits for the reply that carries it (skipping
/// greetings and anything else), and closes.
async fn visit(
    url: &str,
    index: u64,
    prefix: &str,
    epoch: Instant,
    deadline: Instant,
) -> Result<Visit, String> {
    let begun = Instant::now();
    let mut ws = connect(url, None, deadline).await?;
    let connect_time = begun.elapsed();
    let body = message::encode(
        Stamp {
            client: index,
            seq: 0,
            nanos: nanos(epoch.elapsed()),
        },
        0,
    );
    let text = format!("{prefix}{body}");
    match tokio::time::timeout_at(deadline, ws.send(Message::text(text))).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(format!("sending to {url}: {err}")),
        Err(_) => return Err(format!("sending to {url}: timed out")),
    }
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(reply)))) if message::is_reply_to(&reply, &body) => break,
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(format!("{url} closed before replying: {frame:?}"))
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(err))) => return Err(format!("receiving from {url}: {err}")),
            Ok(None) => return Err(format!("{url} ended before replying")),
            Err(_) => return Err(format!("{url}: no reply before the deadline")),
        }
    }
    let first_reply = begun.elapsed();
    close(ws, deadline).await;
    Ok(Visit {
        connect: connect_time,
        first_reply,
    })
}

impl fmt::Display for ChurnReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "churn           {} rooms, {} at a time, {}",
            self.rooms, self.concurrency, self.url
        )?;
        writeln!(
            f,
            "rooms           {} completed, {} failed, {:.0} rooms/s over {:.3} s",
            self.completed, self.failed, self.rooms_per_sec, self.elapsed_secs
        )?;
        writeln!(f, "connect time    {}", self.connect)?;
        writeln!(f, "first reply     {}", self.first_reply)?;
        writeln!(f, "{}", self.cpu.over(self.elapsed_secs))?;
        if let Some(err) = &self.first_error {
            writeln!(f, "first failure   {err}")?;
        }
        if self.timed_out {
            writeln!(f, "TIMED OUT       the run hit --timeout-secs")?;
        }
        Ok(())
    }
}
