//! `jamsocket-bench`: a load generator for Jamsocket servers on this machine.
//!
//! ```text
//! jamsocket-bench --url ws://127.0.0.1:8080 broadcast --rooms 10 --clients 10 --prefix all:
//! jamsocket-bench broadcast --rooms 1000 --clients 2 --rate 10000 --server-pid 4242
//! jamsocket-bench idle --rooms 100 --clients 10 --hold-secs 3 --server-pid 4242
//! jamsocket-bench churn --rooms 2000 --concurrency 16 --json
//! jamsocket-bench hibernate --rooms 1000 --server-pid 4242 --expect-after "new value: 2"
//! jamsocket-bench chart bench/results/latest.json bench/results/latest.svg
//! ```
//!
//! Every run stops by itself within `--timeout-secs` and prints a table, or with `--json` one
//! JSON object. Exit status: 0 when the run completed, 2 when it was cut short by the timeout
//! (the report is still printed), 1 when it could not run. `chart` draws the broadcast results
//! of `bench/suite.py` as an SVG.

mod broadcast;
mod broadcast_client;
mod broadcast_summary;
mod chart;
mod churn;
mod connect;
mod flood;
mod hibernate;
mod idle;
mod message;
mod process;
mod rate_report;
mod run_context;
mod schedule;
mod server_url;
mod stats;
mod tally;

use anyhow::Context;
use clap::{Parser, Subcommand};
use process::Process;
use run_context::RunContext;
use serde::Serialize;
use server_url::ServerUrl;
use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration;

/// How long past `--timeout-secs` a run may take to tidy up before it is abandoned.
const TIDY_UP: Duration = Duration::from_secs(5);

/// File descriptors needed beyond the connections themselves.
const SPARE_FILES: u64 = 64;

/// Load a Jamsocket server on this machine and report throughput, loss, latency and cost.
#[derive(Parser, Debug)]
#[command(name = "jamsocket-bench", version, about)]
struct Cli {
    /// The server under test (loopback only); rooms are at <URL>/ws/<room>.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// The run stops by itself after this many seconds.
    #[arg(long, global = true, default_value_t = 60)]
    timeout_secs: u64,
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// The server's process id, to report its CPU time and resident memory (Linux /proc).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Most WebSocket handshakes in flight at once.
    #[arg(long, global = true, default_value_t = 64)]
    connect_concurrency: usize,
    /// Names this run's rooms (`bench-<id>-...`) [default: random]. Two runs with one id use
    /// the same rooms: a cluster benchmark creates them on one node, then loads them through
    /// another, which forwards every client.
    #[arg(long, global = true, value_parser = parse_run_id)]
    run_id: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Scenario(Scenario),
    /// Draw the broadcast results of bench/suite.py (its JSON) as an SVG chart: deliveries/s
    /// and round-trip p50/p99 per scenario and server.
    Chart(chart::ChartArgs),
}

/// The load scenarios.
#[derive(Subcommand, Debug)]
enum Scenario {
    /// Fill rooms with clients that each send messages the service broadcasts to the room,
    /// closed loop or at a fixed total --rate; report deliveries/s, lost deliveries and
    /// latency.
    Broadcast(broadcast::BroadcastArgs),
    /// Open connections and hold them; with --server-pid, report server memory per connection.
    Idle(idle::IdleArgs),
    /// Visit new rooms one client each: connect, send, await the reply, close; report rooms/s.
    Churn(churn::ChurnArgs),
    /// Visit new rooms, let them hibernate into the server's store, visit them again; report
    /// restore latency against creation, server memory before/after and the store's size.
    Hibernate(hibernate::HibernateArgs),
}

/// A run id: 1 to 32 letters, digits, `-` or `_`, so that room names stay valid.
fn parse_run_id(text: &str) -> Result<String, String> {
    let valid = (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match valid {
        true => Ok(text.to_string()),
        false => Err(format!("`{text}`: use 1 to 32 letters, digits, `-` or `_`")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let scenario = match cli.command {
        Command::Scenario(scenario) => scenario,
        Command::Chart(args) => return chart::run(&args).map(|()| ExitCode::SUCCESS),
    };
    let url = ServerUrl::parse(&cli.url)?;
    let server = cli.server_pid.map(Process::new).transpose()?;
    let connections = match &scenario {
        Scenario::Broadcast(args) => args.connections(),
        Scenario::Idle(args) => args.connections(),
        Scenario::Churn(args) => args.concurrency as u64,
        Scenario::Hibernate(args) => args.concurrency as u64,
    };
    raise_open_file_limit(connections.saturating_add(SPARE_FILES))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let timeout = Duration::from_secs(cli.timeout_secs);
    let json = cli.json;
    let connect_concurrency = cli.connect_concurrency;
    let run_id = cli.run_id;
    let result = runtime.block_on(async move {
        let context = RunContext {
            url,
            run_id: run_id.unwrap_or_else(run_context::new_run_id),
            deadline: tokio::time::Instant::now() + timeout,
            connect_concurrency,
            server,
        };
        let run = async {
            match scenario {
                Scenario::Broadcast(args) => broadcast::run(args, &context)
                    .await
                    .and_then(|report| emit(&report, report.timed_out, json)),
                Scenario::Idle(args) => idle::run(args, &context)
                    .await
                    .and_then(|report| emit(&report, report.timed_out, json)),
                Scenario::Churn(args) => churn::run(args, &context)
                    .await
                    .and_then(|report| emit(&report, report.timed_out, json)),
                Scenario::Hibernate(args) => hibernate::run(args, &context)
                    .await
                    .and_then(|report| emit(&report, report.timed_out, json)),
            }
        };
        tokio::time::timeout(timeout + TIDY_UP, run)
            .await
            .with_context(|| {
                format!(
                    "the run did not stop within --timeout-secs {} plus {} s",
                    timeout.as_secs(),
                    TIDY_UP.as_secs()
                )
            })?
    });
    // Leftover tasks (sockets still closing) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Prints the report; exit status 2 if the run was cut short.
fn emit<R: Serialize + Display>(
    report: &R,
    timed_out: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{report}");
    }
    Ok(if timed_out {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Raises the soft open-file limit to the hard one and checks it covers `needed`.
fn raise_open_file_limit(needed: u64) -> anyhow::Result<()> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    if limit < needed {
        anyhow::bail!(
            "the open-file limit is {limit} but this run needs about {needed}; raise the hard \
             limit (`ulimit -Hn`, systemd LimitNOFILE) or open fewer connections"
        );
    }
    Ok(())
}
