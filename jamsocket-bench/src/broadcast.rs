//! The broadcast scenario: rooms full of clients that each send messages the service
//! broadcasts back to the whole room, closed loop or, with `--rate`, on a clock.

use crate::broadcast_client::{self, Client, ClientOutcome, Shared};
use crate::connect::{connect_all, ConnectReport};
use crate::flood::{Flood, FloodReport};
use crate::process::{CpuMeter, CpuSecs};
use crate::rate_report::{RateReport, RateRun};
use crate::run_context::RunContext;
use crate::schedule::Schedule;
use crate::stats::{rate, Percentiles};
use crate::tally::{expected_deliveries, lost_deliveries, Tally};
use anyhow::{bail, Context};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BroadcastArgs {
    /// Rooms to fill.
    #[arg(long, default_value_t = 1)]
    pub rooms: u64,
    /// Clients in each room.
    #[arg(long, default_value_t = 10)]
    pub clients: u64,
    /// Messages each client sends: each once its previous one came back, or with --rate on
    /// the client's clock.
    #[arg(long, default_value_t = 100)]
    pub messages: u64,
    /// Messages per second offered in total, open loop: every client sends one message every
    /// rooms x clients / RATE seconds, staggered so the total is even, whether or not replies
    /// came back. Latency then runs from each message's scheduled send time (as in wrk2).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Size of each message, `<client>:<seq>:<nanos>:` plus padding (prefix not counted).
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// Text put before every message, e.g. `all:` for examples/conformance-service.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// How long to wait, once every sender is done, for deliveries still on their way.
    #[arg(long, default_value_t = 500)]
    pub drain_ms: u64,
    /// Extra clients, each alone in a room of its own, that send as fast as they can for the
    /// whole run: compare the round trips with and without them.
    #[arg(long, default_value_t = 0)]
    pub flooders: u64,
    /// Speak `jamsocket.v1`, the TypeScript client's protocol (PROTOCOL.md): messages go as
    /// `m<text>`, and every client acknowledges what it received as often as the server's
    /// welcome asks.
    #[arg(long)]
    pub v1: bool,
}

impl BroadcastArgs {
    pub fn connections(&self) -> u64 {
        self.rooms.saturating_mul(self.clients)
    }
}

#[derive(Debug, Serialize)]
pub struct BroadcastReport {
    pub scenario: &'static str,
    pub url: String,
    pub rooms: u64,
    pub clients_per_room: u64,
    pub messages_per_client: u64,
    pub payload_bytes: usize,
    pub connect: ConnectReport,
    pub messages_sent: u64,
    pub expected_deliveries: u64,
    pub received_deliveries: u64,
    pub lost_deliveries: u64,
    /// Deliveries that skipped sequence numbers of their sender.
    pub gaps: u64,
    pub duplicate_deliveries: u64,
    /// Bench messages from another room's client: should never happen.
    pub foreign_deliveries: u64,
    /// From the first send to the last delivery.
    pub elapsed_secs: f64,
    pub deliveries_per_sec: f64,
    pub messages_per_sec: f64,
    /// Round trip of each client's own messages.
    pub round_trip: Percentiles,
    /// CPU used from the first send to the end of the drain.
    #[serde(flatten)]
    pub cpu: CpuSecs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodReport>,
    /// With `--rate` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateReport>,
    pub client_errors: usize,
    pub first_client_error: Option<String>,
    pub timed_out: bool,
}

pub async fn run(args: BroadcastArgs, context: &RunContext) -> anyhow::Result<BroadcastReport> {
    if args.rooms == 0 || args.clients == 0 {
        bail!("--rooms and --clients must be at least 1");
    }
    let clients = usize::try_from(args.clients).context("--clients is too large")?;
    let urls = (0..args.rooms)
        .flat_map(|room| {
            let url = context.room_url("broadcast", room);
            std::iter::repeat_n(url, clients)
        })
        .collect();
    let protocol = args.v1.then_some(broadcast_client::SEQUENCED_PROTOCOL);
    let connected = connect_all(
        urls,
        protocol,
        context.connect_concurrency,
        context.deadline,
    )
    .await;
    if connected.report.failed > 0 {
        bail!(
            "{} of {} connections failed, first: {}",
            connected.report.failed,
            connected.report.attempted,
            connected.report.first_error.as_deref().unwrap_or("unknown")
        );
    }
    let flood = if args.flooders > 0 {
        let urls = (0..args.flooders)
            .map(|i| context.room_url("flood", i))
            .collect();
        let flooders = connect_all(urls, None, context.connect_concurrency, context.deadline).await;
        let payload = format!("{}{}", args.prefix, "f".repeat(args.payload_bytes));
        Some(Flood::start(
            flooders.sockets.into_iter().flatten().collect(),
            payload,
        ))
    } else {
        None
    };
    let schedule = match args.rate {
        Some(rate) => Some(
            Schedule::new(rate, args.connections(), args.messages)
                .context("--rate and the number of clients must be at least 1")?,
        ),
        None => None,
    };
    let cpu = CpuMeter::start(context.server)?;

    let shared = Arc::new(Shared {
        messages: args.messages,
        payload_bytes: args.payload_bytes,
        prefix: format!("{}{}", if args.v1 { "m" } else { "" }, args.prefix),
        v1: args.v1,
        schedule,
        epoch: Instant::now(),
        deadline: context.deadline,
        clients_finished: AtomicU64::new(0),
        received: AtomicU64::new(0),
        last_delivery_nanos: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = connected
        .sockets
        .into_iter()
        .flatten()
        .zip(0..)
        .map(|(ws, id)| {
            let client = Client {
                id,
                first_client: id - id % args.clients,
                clients,
            };
            tokio::spawn(client.run(ws, shared.clone(), stop_rx.clone()))
        })
        .collect();

    let expected = expected_deliveries(args.rooms, args.clients, args.messages);
    let timed_out = !wait_for_deliveries(
        &shared,
        args.connections(),
        expected,
        args.drain_ms,
        context.deadline,
    )
    .await;
    let (cpu, server_cpu) = cpu.read_split()?;
    let _ = stop_tx.send(true);
    let flood = match flood {
        Some(flood) => Some(flood.stop().await),
        None => None,
    };

    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.unwrap_or_else(|err| ClientOutcome {
            tally: Tally::default(),
            sent: 0,
            round_trips: Vec::new(),
            latencies: Vec::new(),
            error: Some(format!("client task failed: {err}")),
        }));
    }
    let mut total = Tally::default();
    let mut round_trips = Vec::new();
    let mut latencies = Vec::new();
    let mut sent = 0;
    let mut errors = outcomes.iter().filter_map(|outcome| outcome.error.clone());
    let first_client_error = errors.next();
    let client_errors = usize::from(first_client_error.is_some()) + errors.count();
    for outcome in outcomes {
        total.absorb(&outcome.tally);
        sent += outcome.sent;
        round_trips.extend(outcome.round_trips);
        latencies.extend(outcome.latencies);
    }
    let elapsed = Duration::from_nanos(shared.last_delivery_nanos.load(Ordering::Relaxed));
    let rate_report = schedule.map(|schedule| {
        RateReport::new(RateRun {
            schedule,
            clients_per_room: args.clients,
            sent,
            received: total.received,
            elapsed,
            latencies,
            server_cpu,
        })
    });
    Ok(BroadcastReport {
        scenario: "broadcast",
        url: context.url.to_string(),
        rooms: args.rooms,
        clients_per_room: args.clients,
        messages_per_client: args.messages,
        payload_bytes: args.payload_bytes,
        connect: connected.report,
        messages_sent: sent,
        expected_deliveries: expected,
        received_deliveries: total.received,
        lost_deliveries: lost_deliveries(expected, total.received),
        gaps: total.gaps,
        duplicate_deliveries: total.duplicates,
        foreign_deliveries: total.foreign,
        elapsed_secs: elapsed.as_secs_f64(),
        deliveries_per_sec: rate(total.received, elapsed),
        messages_per_sec: rate(sent, elapsed),
        round_trip: Percentiles::from_nanos(round_trips),
        cpu,
        flood,
        rate: rate_report,
        client_errors,
        first_client_error,
        timed_out,
    })
}

/// Waits until every client finished (sent all its messages, or failed) and then until every
/// delivery arrived or `drain_ms` passed. False if the deadline came first.
async fn wait_for_deliveries(
    shared: &Shared,
    clients: u64,
    expected: u64,
    drain_ms: u64,
    deadline: Instant,
) -> bool {
    const POLL: Duration = Duration::from_millis(5);
    while shared.clients_finished.load(Ordering::Relaxed) < clients {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    let drained = Instant::now() + Duration::from_millis(drain_ms);
    while shared.received.load(Ordering::Relaxed) < expected && Instant::now() < drained {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

impl fmt::Display for BroadcastReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "broadcast       {} rooms x {} clients x {} messages of {} bytes, {}",
            self.rooms,
            self.clients_per_room,
            self.messages_per_client,
            self.payload_bytes,
            self.url
        )?;
        writeln!(f, "{}", self.connect)?;
        writeln!(
            f,
            "deliveries      {} of {} received, {} lost ({} gaps, {} duplicates, {} foreign)",
            self.received_deliveries,
            self.expected_deliveries,
            self.lost_deliveries,
            self.gaps,
            self.duplicate_deliveries,
            self.foreign_deliveries
        )?;
        writeln!(
            f,
            "throughput      {:.0} deliveries/s, {:.0} messages/s over {:.3} s",
            self.deliveries_per_sec, self.messages_per_sec, self.elapsed_secs
        )?;
        writeln!(f, "round trip      {}", self.round_trip)?;
        writeln!(f, "{}", self.cpu.over(self.elapsed_secs))?;
        if let Some(rate) = &self.rate {
            write!(f, "{rate}")?;
        }
        if let Some(flood) = &self.flood {
            writeln!(
                f,
                "flooders        {} sent {} messages ({:.0}/s); {} closed by the server",
                flood.flooders,
                flood.messages_sent,
                rate(
                    flood.messages_sent,
                    Duration::from_secs_f64(self.elapsed_secs)
                ),
                flood.closed_by_server
            )?;
        }
        if let Some(err) = &self.first_client_error {
            writeln!(f, "client errors   {}, first: {err}", self.client_errors)?;
        }
        if self.timed_out {
            writeln!(f, "TIMED OUT       the run hit --timeout-secs")?;
        }
        Ok(())
    }
}
