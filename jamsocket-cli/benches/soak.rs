//! The soak test: the real `jamsocket serve` under a mixed workload for ten minutes.
//!
//! ```text
//! cargo bench -p jamsocket-cli --bench soak                  # 600 s, release build
//! cargo test -p jamsocket-cli --bench soak -- --secs 60      # the CI smoke run (debug build)
//! ```
//!
//! The server hosts `examples/misbehaving-guest` (a broadcast echo, except in rooms whose name
//! asks it to fail) with the `immediate` shutdown policy. Workers loop over scenarios until the
//! time is up: healthy rooms of 2-6 clients broadcasting closed-loop while another client joins,
//! speaks and leaves; one-client rooms (churn); rooms with a client that never reads; clients
//! sending oversized messages, invalid UTF-8 or floods; guests that trap or spin.
//!
//! It passes when healthy clients lose no message and see every sender's messages in order,
//! every abuser and failed room is closed with its documented code, every room the server
//! created is closed again, the server's resident memory after the run is within 10% of its
//! level after the warm-up (both measured with no client connected; checked in runs of 300 s or
//! more), no error is logged but those the test provoked, and the server exits 0 on SIGTERM.

use anyhow::{bail, ensure, Context, Result};
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const TIMEOUT: Duration = Duration::from_secs(20);
/// The shortest run whose memory growth is checked.
const LEAK_CHECK_MIN: Duration = Duration::from_secs(300);
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);
const WORKERS: usize = 8;
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
const MAX_MESSAGES_PER_SEC: usize = 2000;
/// Messages (of 16 KiB) each of the two readers sends in a room with a client that never reads:
/// 48 MB for the sleeper, more than socket buffers and its queue (1,024 messages) hold. (Fewer
/// than the message rate limit's and the frame budget's bursts, and 24 MB each, within the byte
/// budget's burst, so the readers are never limited.)
const SLEEPER_ROOM_MESSAGES: usize = 1500;
const SLEEPER_ROOM_MESSAGE_BYTES: usize = 16 * 1024;

fn main() -> Result<()> {
    let secs = std::env::args()
        .skip_while(|arg| arg != "--secs")
        .nth(1)
        .map(|s| s.parse().context("--secs takes a whole number of seconds"))
        .transpose()?
        .unwrap_or(600_u64);
    let total = Duration::from_secs(secs);
    let warm_up = (total / 5).max(Duration::from_secs(5));
    let _ = rlimit::increase_nofile_limit(65_536);

    let wasm = build_guest()?;
    let mut server = ServerProcess::start(&wasm)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stats = Arc::new(Stats::default());

    println!(
        "soak: {secs} s against {} (pid {})",
        server.url,
        server.pid()
    );
    let started = Instant::now();
    runtime.block_on(run_workers(&server.url, warm_up, &stats))?;
    println!(
        "warm-up done: {}",
        stats.report(started.elapsed().as_secs_f64())
    );
    runtime.block_on(server.logs.all_rooms_closed())?;
    let rss_after_warm_up = server.rss_kib()?;
    runtime.block_on(run_workers(&server.url, total - warm_up, &stats))?;
    runtime.block_on(server.logs.all_rooms_closed())?;
    let rss_at_end = server.rss_kib()?;
    let peak_rss = server.peak_rss_kib()?;
    let elapsed = started.elapsed().as_secs_f64();
    let logs = server.logs.state.clone();
    let exit = server.terminate()?;

    println!("{}", stats.report(elapsed));
    println!(
        "server memory: {rss_after_warm_up} KiB after warm-up, {rss_at_end} KiB at the end ({:+.1}%), peak {peak_rss} KiB",
        (rss_at_end as f64 / rss_after_warm_up as f64 - 1.0) * 100.0,
    );
    let logs = logs.lock().unwrap();
    println!(
        "rooms: {} created, {} closed; error lines: {} provoked, {} other",
        logs.created,
        logs.closed,
        logs.provoked_errors,
        logs.other_errors.len()
    );

    let mut failures = stats.failures.lock().unwrap().clone();
    if stats.lost.load(Relaxed) > 0 {
        failures.push(format!("{} deliveries lost", stats.lost.load(Relaxed)));
    }
    if rss_at_end as f64 > rss_after_warm_up as f64 * 1.10 {
        if total >= LEAK_CHECK_MIN {
            failures.push("server memory grew more than 10% after the warm-up".to_string());
        } else {
            println!("(memory growth not checked: runs under {LEAK_CHECK_MIN:?} are too short to tell a leak from the allocator's warm-up)");
        }
    }
    failures.extend(logs.other_errors.iter().take(5).cloned());
    if !exit.success() {
        failures.push(format!("the server exited with {exit} on SIGTERM"));
    }
    ensure!(
        failures.is_empty(),
        "soak failed:\n  {}",
        failures.join("\n  ")
    );
    println!("soak passed");
    Ok(())
}

/// Counters shared by the workers.
#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    messages_sent: AtomicU64,
    deliveries: AtomicU64,
    lost: AtomicU64,
    scenarios: Mutex<BTreeMap<&'static str, u64>>,
    closes: Mutex<BTreeMap<String, u64>>,
    failures: Mutex<Vec<String>>,
}

impl Stats {
    fn count(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    fn close_seen(&self, what: &str, ending: Ending) {
        let key = format!("{what}: {ending:?}");
        *self.closes.lock().unwrap().entry(key).or_default() += 1;
    }

    fn report(&self, elapsed: f64) -> String {
        let per_sec = |c: &AtomicU64| c.load(Relaxed) as f64 / elapsed;
        let mut out = format!(
            "{:.0} s: {} connections ({:.0}/s), {} messages sent ({:.0}/s), {} deliveries to healthy clients ({:.0}/s), {} lost\n",
            elapsed,
            self.connections.load(Relaxed),
            per_sec(&self.connections),
            self.messages_sent.load(Relaxed),
            per_sec(&self.messages_sent),
            self.deliveries.load(Relaxed),
            per_sec(&self.deliveries),
            self.lost.load(Relaxed),
        );
        out += &format!("scenarios: {:?}\n", self.scenarios.lock().unwrap());
        out += &format!("closes: {:?}", self.closes.lock().unwrap());
        out
    }
}

async fn run_workers(url: &str, duration: Duration, stats: &Arc<Stats>) -> Result<()> {
    let deadline = Instant::now() + duration;
    let next_room = Arc::new(AtomicU64::new(rand::rng().random()));
    join_all((0..WORKERS).map(|_| {
        let (url, stats, next_room) = (url.to_string(), stats.clone(), next_room.clone());
        tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = next_room.fetch_add(1, Relaxed);
                let scenario = Scenario::pick();
                let outcome = tokio::time::timeout(SCENARIO_TIMEOUT, scenario.run(&url, n, &stats))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("hung in room soak-{n}")));
                let name = scenario.name();
                *stats.scenarios.lock().unwrap().entry(name).or_default() += 1;
                if let Err(err) = outcome {
                    let failure = format!("{name}: {err:#}");
                    eprintln!("soak: FAILED {failure}");
                    stats.failures.lock().unwrap().push(failure);
                }
            }
        })
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<()>, _>>()?;
    Ok(())
}

/// What one turn of a worker does.
#[derive(Clone, Copy)]
enum Scenario {
    HealthyRoom,
    OneClientRoom,
    Sleeper,
    Abuser(Abuse),
    GuestTrap,
    GuestSpin,
}

impl Scenario {
    /// A scenario at random, in the soak's proportions.
    fn pick() -> Scenario {
        match rand::rng().random_range(0..100) {
            0..42 => Scenario::HealthyRoom,
            42..74 => Scenario::OneClientRoom,
            74..78 => Scenario::Sleeper,
            78..84 => Scenario::Abuser(Abuse::Oversized),
            84..88 => Scenario::Abuser(Abuse::InvalidUtf8),
            88..94 => Scenario::Abuser(Abuse::Flood),
            94..99 => Scenario::GuestTrap,
            _ => Scenario::GuestSpin,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::HealthyRoom => "healthy room",
            Scenario::OneClientRoom => "one-client room",
            Scenario::Sleeper => "client that never reads",
            Scenario::Abuser(abuse) => abuse.name(),
            Scenario::GuestTrap => "guest trap",
            Scenario::GuestSpin => "guest spin",
        }
    }

    async fn run(self, url: &str, n: u64, stats: &Arc<Stats>) -> Result<()> {
        match self {
            Scenario::HealthyRoom => healthy_room(url, n, stats).await,
            Scenario::OneClientRoom => one_client_room(url, n, stats).await,
            Scenario::Sleeper => room_with_a_sleeper(url, n, stats).await,
            Scenario::Abuser(abuse) => abuser(url, n, abuse, stats).await,
            Scenario::GuestTrap => failing_guest(url, &format!("trap-message-{n}"), stats).await,
            Scenario::GuestSpin => failing_guest(url, &format!("loop-message-{n}"), stats).await,
        }
    }
}

/// 2-6 clients broadcast closed-loop; each must get every message of every client, each
/// sender's in order. Meanwhile another client joins, speaks and leaves.
async fn healthy_room(url: &str, n: u64, stats: &Arc<Stats>) -> Result<()> {
    let (clients, messages) = {
        let mut rng = rand::rng();
        (rng.random_range(2..=6), rng.random_range(10..=60))
    };
    let room = format!("soak-{n}");
    let sockets = join_all((0..clients).map(|_| connect(url, &room, stats))).await;
    let sockets = sockets.into_iter().collect::<Result<Vec<_>>>()?;
    let exchanges = sockets
        .into_iter()
        .enumerate()
        .map(|(me, ws)| tokio::spawn(exchange(ws, me, clients, messages, 16, stats.clone())));
    let passer_by = async {
        let mut ws = connect(url, &room, stats).await?;
        send(&mut ws, Message::text("passing by"), stats).await?;
        while next_text(&mut ws).await? != "passing by" {}
        close(ws).await
    };
    let (received, passer_by) = tokio::join!(join_all(exchanges), passer_by);
    passer_by.context("the client passing by")?;
    for received in received {
        received??;
    }
    Ok(())
}

/// One client of a healthy room: sends `messages` closed-loop, then reads until it has every
/// message of every sender. Loss, reordering and unexpected closes are errors.
async fn exchange(
    mut ws: Ws,
    me: usize,
    clients: usize,
    messages: usize,
    pad: usize,
    stats: Arc<Stats>,
) -> Result<()> {
    let stats = &*stats;
    let mut tally = Tally {
        me,
        next_from: vec![0; clients],
        received: 0,
    };
    let expected = clients * messages;
    let outcome = exchange_messages(&mut ws, &mut tally, expected, messages, pad, stats).await;
    Stats::count(&stats.deliveries, tally.received);
    Stats::count(&stats.lost, expected - tally.received);
    outcome.with_context(|| format!("client {me} got {} of {expected}", tally.received))?;
    close(ws).await
}

async fn exchange_messages(
    ws: &mut Ws,
    tally: &mut Tally,
    expected: usize,
    messages: usize,
    pad: usize,
    stats: &Stats,
) -> Result<()> {
    let padding = "p".repeat(pad);
    for seq in 0..messages {
        let text = format!("h{}:{seq}:{padding}", tally.me);
        send(ws, Message::text(text), stats).await?;
        while !tally.read(&next_text(ws).await?)? {}
    }
    while tally.received < expected {
        tally.read(&next_text(ws).await?)?;
    }
    Ok(())
}

/// What one healthy client has received.
struct Tally {
    me: usize,
    next_from: Vec<usize>,
    received: usize,
}

impl Tally {
    /// Checks one message's order; true when it was this client's own.
    fn read(&mut self, text: &str) -> Result<bool> {
        let Some((sender, seq)) = parse_healthy(text) else {
            return Ok(false); // from the client passing by
        };
        let next = &mut self.next_from[sender];
        ensure!(
            seq == *next,
            "from client {sender} got {seq}, expected {next}"
        );
        *next += 1;
        self.received += 1;
        Ok(sender == self.me)
    }
}

fn parse_healthy(text: &str) -> Option<(usize, usize)> {
    let mut parts = text.strip_prefix('h')?.split(':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A room for one visit: connect, one message, its echo, close.
async fn one_client_room(url: &str, n: u64, stats: &Stats) -> Result<()> {
    let mut ws = connect(url, &format!("soak-{n}"), stats).await?;
    send(&mut ws, Message::text("h0:0:"), stats).await?;
    ensure!(next_text(&mut ws).await? == "h0:0:", "wrong echo");
    Stats::count(&stats.deliveries, 1);
    close(ws).await
}

/// Two clients broadcast while a third never reads: the two must get everything; the sleeper
/// should be closed (1008) once its queue on the server (1,024 messages by default) is full.
async fn room_with_a_sleeper(url: &str, n: u64, stats: &Arc<Stats>) -> Result<()> {
    let room = format!("soak-{n}");
    let mut sleeper = connect_with_small_receive_buffer(url, &room, stats).await?;
    let a = connect(url, &room, stats).await?;
    let b = connect(url, &room, stats).await?;
    let exchange = |ws, me| {
        let pad = SLEEPER_ROOM_MESSAGE_BYTES;
        tokio::spawn(exchange(
            ws,
            me,
            2,
            SLEEPER_ROOM_MESSAGES,
            pad,
            stats.clone(),
        ))
    };
    let (a, b) = tokio::join!(exchange(a, 0), exchange(b, 1));
    a??;
    b??;
    // Its queue overflowed long ago, unless socket buffers took more than usual; either way it
    // is reported, and the two readers above got everything.
    let ending = ending(&mut sleeper).await;
    stats.close_seen("client that never reads", ending);
    Ok(())
}

/// A client whose kernel buffers hold little, so that what it does not read piles up in the
/// server's queue rather than in socket buffers.
async fn connect_with_small_receive_buffer(url: &str, room: &str, stats: &Stats) -> Result<Ws> {
    let addr = url.trim_start_matches("ws://");
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(64 * 1024)?;
    let stream = socket.connect(addr.parse()?).await?;
    let url = format!("{url}/ws/{room}");
    let (ws, _) = tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)),
    )
    .await
    .context("connecting timed out")??;
    Stats::count(&stats.connections, 1);
    Ok(ws)
}

#[derive(Clone, Copy)]
enum Abuse {
    Oversized,
    InvalidUtf8,
    Flood,
}

impl Abuse {
    fn name(self) -> &'static str {
        match self {
            Abuse::Oversized => "oversized message",
            Abuse::InvalidUtf8 => "invalid UTF-8",
            Abuse::Flood => "flood",
        }
    }
}

/// A client that breaks a limit must be closed with the documented code.
async fn abuser(url: &str, n: u64, abuse: Abuse, stats: &Stats) -> Result<()> {
    let mut ws = connect(url, &format!("soak-{n}"), stats).await?;
    let what = abuse.name();
    let expected = match abuse {
        Abuse::Oversized => {
            let _ = ws
                .send(Message::text("x".repeat(MAX_MESSAGE_BYTES + 1)))
                .await;
            1009
        }
        Abuse::InvalidUtf8 => {
            let frame = Frame::message(vec![0xff, 0xfe, 0x80], OpCode::Data(Data::Text), true);
            let _ = tokio::time::timeout(TIMEOUT, ws.send(Message::Frame(frame))).await;
            1007
        }
        Abuse::Flood => {
            let flood = async {
                for i in 0..MAX_MESSAGES_PER_SEC * 3 {
                    ws.feed(Message::text(format!("flood {i}"))).await?;
                }
                ws.flush().await
            };
            let _ = tokio::time::timeout(TIMEOUT, flood).await;
            1008
        }
    };
    let ending = ending(&mut ws).await;
    stats.close_seen(what, ending);
    // A flooder may not read the close frame before its connection is dropped.
    let dropped_is_fine = matches!(abuse, Abuse::Flood) && ending == Ending::Dropped;
    ensure!(
        ending == Ending::Closed(expected) || dropped_is_fine,
        "{what}: {ending:?}, expected close {expected}"
    );
    Ok(())
}

/// A guest that fails when it gets a message: its client is closed with 1011.
async fn failing_guest(url: &str, room: &str, stats: &Stats) -> Result<()> {
    let mut ws = connect(url, room, stats).await?;
    send(&mut ws, Message::text("fail"), stats).await?;
    let ending = ending(&mut ws).await;
    stats.close_seen("failed guest", ending);
    ensure!(
        ending == Ending::Closed(1011),
        "{room}: {ending:?}, expected close 1011"
    );
    Ok(())
}

async fn connect(url: &str, room: &str, stats: &Stats) -> Result<Ws> {
    let (ws, _) = tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::connect_async(format!("{url}/ws/{room}")),
    )
    .await
    .with_context(|| format!("connecting to {room} timed out"))?
    .with_context(|| format!("connecting to {room}"))?;
    Stats::count(&stats.connections, 1);
    Ok(ws)
}

async fn send(ws: &mut Ws, message: Message, stats: &Stats) -> Result<()> {
    tokio::time::timeout(TIMEOUT, ws.send(message))
        .await
        .context("send timed out")??;
    Stats::count(&stats.messages_sent, 1);
    Ok(())
}

async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .context("receive timed out")?
        {
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.into()),
            None => bail!("the connection ended"),
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// With a close frame carrying this code.
    Closed(u16),
    /// Without a close frame.
    Dropped,
    /// It had not ended by the timeout.
    StillOpen,
}

/// Reads until the connection ends.
async fn ending(ws: &mut Ws) -> Ending {
    let read = async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                return Ending::Closed(frame.map_or(1005, |f| u16::from(f.code)));
            }
        }
        Ending::Dropped
    };
    tokio::time::timeout(TIMEOUT, read)
        .await
        .unwrap_or(Ending::StillOpen)
}

async fn close(mut ws: Ws) -> Result<()> {
    tokio::time::timeout(TIMEOUT, ws.close(None))
        .await
        .context("closing timed out")??;
    Ok(())
}

/// Builds the guest with the real `jamsocket build`, as the CLI tests do.
fn build_guest() -> Result<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO_BIN_EXE_jamsocket"))
        .arg("build")
        .arg(root.join("examples/misbehaving-guest"))
        .env("CARGO_TARGET_DIR", root.join("target/cli-tests"))
        .stderr(Stdio::inherit())
        .output()?;
    ensure!(output.status.success(), "jamsocket build failed");
    Ok(String::from_utf8(output.stdout)?.trim().to_string())
}

/// `jamsocket serve` with the soak's limits, its log read as it is written.
struct ServerProcess {
    child: Child,
    url: String,
    logs: LogWatch,
}

impl ServerProcess {
    fn start(wasm: &str) -> Result<ServerProcess> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jamsocket"))
            .args([
                "serve",
                wasm,
                "--port",
                "0",
                "--shutdown-policy",
                "immediate",
            ])
            .args(["--max-message-bytes", &MAX_MESSAGE_BYTES.to_string()])
            .args(["--max-messages-per-sec", &MAX_MESSAGES_PER_SEC.to_string()])
            // Spinning guests are closed within a fifth of a second. The budget counts wall time
            // while a guest runs, and CI runs this against the debug binary on two loaded cores:
            // at 50 ms a healthy room's call was once charged past it (1 run in 2).
            .args(["--guest-cpu-ms-per-call", "200"])
            .env("RUST_LOG", "info,wasmtime=warn,cranelift=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Reads stdout to the end (the server must not find it closed) and reports the port.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(|line| line.ok()) {
                let port = line
                    .split_once("status:")
                    .and_then(|(_, rest)| rest.rsplit_once("localhost:"))
                    .and_then(|(_, rest)| rest.split('/').next()?.parse::<u16>().ok());
                if let Some(port) = port {
                    let _ = port_tx.send(port);
                }
            }
        });
        let port = port_rx
            .recv_timeout(TIMEOUT)
            .context("the server printed no port")?;
        let logs = LogWatch::start(child.stderr.take().unwrap());
        Ok(ServerProcess {
            child,
            url: format!("ws://127.0.0.1:{port}"),
            logs,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status_kib(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in /proc/{}/status", self.pid()))
    }

    fn rss_kib(&self) -> Result<u64> {
        self.status_kib("VmRSS:")
    }

    fn peak_rss_kib(&self) -> Result<u64> {
        self.status_kib("VmHWM:")
    }

    fn terminate(mut self) -> Result<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            ensure!(
                Instant::now() < deadline,
                "the server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Follows the server's log: which rooms are open, and which error lines were not provoked.
struct LogWatch {
    state: Arc<Mutex<LogState>>,
    open_rooms: watch::Receiver<usize>,
}

#[derive(Default)]
struct LogState {
    open: HashSet<String>,
    created: u64,
    closed: u64,
    provoked_errors: u64,
    other_errors: Vec<String>,
}

impl LogWatch {
    fn start(stderr: std::process::ChildStderr) -> LogWatch {
        let state = Arc::new(Mutex::new(LogState::default()));
        let (tx, open_rooms) = watch::channel(0);
        let shared = state.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|line| line.ok()) {
                let mut state = shared.lock().unwrap();
                state.read(&line);
                tx.send_replace(state.open.len());
            }
        });
        LogWatch { state, open_rooms }
    }

    /// Waits until every room the server created has closed.
    async fn all_rooms_closed(&mut self) -> Result<()> {
        let open = tokio::time::timeout(TIMEOUT, self.open_rooms.wait_for(|open| *open == 0)).await;
        if open.is_err() {
            let state = self.state.lock().unwrap();
            let some: Vec<_> = state.open.iter().take(5).collect();
            bail!(
                "{} rooms still open after the clients left, e.g. {some:?}",
                state.open.len()
            );
        }
        Ok(())
    }
}

impl LogState {
    fn read(&mut self, line: &str) {
        let room = line
            .split_once(" room=")
            .map(|(_, rest)| rest.split(' ').next().unwrap_or(rest).to_string());
        if line.contains(" ERROR ") {
            let provoked = room
                .as_deref()
                .is_some_and(|room| room.starts_with("trap-") || room.starts_with("loop-"));
            if provoked {
                self.provoked_errors += 1;
            } else {
                self.other_errors.push(line.to_string());
            }
        }
        let Some(room) = room else { return };
        if line.contains("room created") {
            self.created += 1;
            self.open.insert(room);
        } else if line.contains("room closed") {
            self.closed += 1;
            self.open.remove(&room);
        }
    }
}
