//! The idle scenario: open many connections, hold them without sending, and see what they
//! cost the server in resident memory.

use crate::connect::{close, connect_all, ConnectReport, Ws};
use crate::run_context::RunContext;
use anyhow::bail;
use futures_util::StreamExt;
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How often the server's memory is sampled while connections are held.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[derive(clap::Args, Debug)]
pub struct IdleArgs {
    /// Rooms to fill.
    #[arg(long, default_value_t = 10)]
    pub rooms: u64,
    /// Clients in each room.
    #[arg(long, default_value_t = 10)]
    pub clients: u64,
    /// How long to hold the connections once all are open.
    #[arg(long, default_value_t = 5)]
    pub hold_secs: u64,
}

impl IdleArgs {
    pub fn connections(&self) -> u64 {
        self.rooms.saturating_mul(self.clients)
    }
}

#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub scenario: &'static str,
    pub url: String,
    pub rooms: u64,
    pub clients_per_room: u64,
    pub hold_secs: u64,
    pub connect: ConnectReport,
    /// Connections still open at the end of the hold.
    pub held: u64,
    /// Connections the server closed or lost during the hold.
    pub dropped: u64,
    pub server_rss_before_kib: Option<u64>,
    /// At the end of the hold.
    pub server_rss_holding_kib: Option<u64>,
    pub server_rss_peak_kib: Option<u64>,
    /// `(holding - before) / opened`: everything the connections and their rooms cost.
    pub server_kib_per_connection: Option<f64>,
    pub timed_out: bool,
}

pub async fn run(args: IdleArgs, context: &RunContext) -> anyhow::Result<IdleReport> {
    if args.rooms == 0 || args.clients == 0 {
        bail!("--rooms and --clients must be at least 1");
    }
    let rss_before = context.server.map(|s| s.resident_kib()).transpose()?;
    let urls = (0..args.connections())
        .map(|index| context.room_url("idle", index / args.clients))
        .collect();
    let connected = connect_all(urls, None, context.connect_concurrency, context.deadline).await;
    let opened = connected.sockets.iter().flatten().count() as u64;

    let (stop_tx, stop_rx) = watch::channel(false);
    let holders: Vec<_> = connected
        .sockets
        .into_iter()
        .flatten()
        .map(|ws| tokio::spawn(hold(ws, stop_rx.clone(), context.deadline)))
        .collect();

    let hold_until = Instant::now() + Duration::from_secs(args.hold_secs);
    let timed_out = hold_until > context.deadline;
    let mut samples = Vec::new();
    loop {
        let now = Instant::now();
        let end = hold_until.min(context.deadline);
        if let Some(server) = &context.server {
            samples.push(server.resident_kib()?);
        }
        if now >= end {
            break;
        }
        tokio::time::sleep_until(end.min(now + SAMPLE_EVERY)).await;
    }
    let _ = stop_tx.send(true);
    let mut dropped = 0;
    for holder in holders {
        if !matches!(holder.await, Ok(true)) {
            dropped += 1;
        }
    }

    let rss_holding = samples.last().copied();
    Ok(IdleReport {
        scenario: "idle",
        url: context.url.to_string(),
        rooms: args.rooms,
        clients_per_room: args.clients,
        hold_secs: args.hold_secs,
        connect: connected.report,
        held: opened - dropped,
        dropped,
        server_rss_before_kib: rss_before,
        server_rss_holding_kib: rss_holding,
        server_rss_peak_kib: samples.iter().max().copied(),
        server_kib_per_connection: rss_before
            .zip(rss_holding)
            .filter(|_| opened > 0)
            .map(|(before, holding)| (holding as f64 - before as f64) / opened as f64),
        timed_out,
    })
}

/// Reads (answering the server's pings) until told to stop, then closes. True if the
/// connection was still open when told to stop.
async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>, deadline: Instant) -> bool {
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return false,
                Some(Ok(_)) => {}
            },
        }
    }
    close(ws, deadline).await;
    true
}

impl fmt::Display for IdleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "idle            {} rooms x {} clients held {} s, {}",
            self.rooms, self.clients_per_room, self.hold_secs, self.url
        )?;
        writeln!(f, "{}", self.connect)?;
        writeln!(
            f,
            "held            {} ({} dropped)",
            self.held, self.dropped
        )?;
        if let (Some(before), Some(holding), Some(peak)) = (
            self.server_rss_before_kib,
            self.server_rss_holding_kib,
            self.server_rss_peak_kib,
        ) {
            writeln!(
                f,
                "server rss      {before} KiB before, {holding} KiB holding (peak {peak} KiB)"
            )?;
        }
        if let Some(per) = self.server_kib_per_connection {
            writeln!(f, "per connection  {per:.1} KiB")?;
        }
        if self.timed_out {
            writeln!(
                f,
                "TIMED OUT       the hold was cut short by --timeout-secs"
            )?;
        }
        Ok(())
    }
}
