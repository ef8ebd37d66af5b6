//! Runs the real `jamsocket-bench` binary, at tiny sizes, against examples/conformance-service
//! (and examples/broadcast-echo, which the suite measures) served in this process on
//! 127.0.0.1:0, and checks its JSON reports.

use jamsocket::SimpleJamsocketServiceFactory;
use jamsocket_server::{RunningServer, Server};
use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a bench run may take here; its own `--timeout-secs` is lower.
const WAIT: Duration = Duration::from_secs(60);

fn start_server() -> RunningServer {
    start_server_with(Server::new())
}

fn start_server_with(server: Server) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    server
        .start(
            listener,
            SimpleJamsocketServiceFactory::<conformance_service::ConformanceService>::default(),
        )
        .expect("starting the server")
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs the bench with `args` against `server` and waits (at most [`WAIT`]) for it to exit.
fn bench(server: &RunningServer, args: &[&str]) -> Finished {
    bench_at(&format!("ws://{}", server.local_addr()), args)
}

fn bench_at(url: &str, args: &[&str]) -> Finished {
    run_bench(&[&["--url", url], args].concat())
}

/// Runs the bench with exactly `args` and waits (at most [`WAIT`]) for it to exit.
fn run_bench(args: &[&str]) -> Finished {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jamsocket-bench"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting jamsocket-bench");
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let status = wait(&mut child);
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Runs the bench with `--json` and returns its report, asserting it completed.
fn bench_json(server: &RunningServer, args: &[&str]) -> Value {
    let finished = bench(
        server,
        &[args, &["--json", "--timeout-secs", "30"]].concat(),
    );
    assert!(
        finished.status.success(),
        "jamsocket-bench {args:?} failed ({}): {}{}",
        finished.status,
        finished.stdout,
        finished.stderr
    );
    serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", finished.stdout))
}

fn read_all(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn wait(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for jamsocket-bench") {
            return status;
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("jamsocket-bench did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn u64_at(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {report}"))
}

fn f64_at(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {report}"))
}

#[test]
fn broadcast_delivers_everything_to_every_client() {
    let server = start_server();
    let pid = std::process::id().to_string();
    let report = bench_json(
        &server,
        &[
            "broadcast",
            "--rooms",
            "2",
            "--clients",
            "3",
            "--messages",
            "5",
            "--payload-bytes",
            "100",
            "--prefix",
            "all:",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(report["scenario"], "broadcast");
    assert_eq!(u64_at(&report, "/connect/attempted"), 6);
    assert_eq!(u64_at(&report, "/connect/failed"), 0);
    assert_eq!(u64_at(&report, "/connect/handshake/count"), 6);
    assert_eq!(u64_at(&report, "/messages_sent"), 30);
    // 2 rooms x 3 clients x 5 messages, each to the 3 clients of its room.
    assert_eq!(u64_at(&report, "/expected_deliveries"), 90);
    assert_eq!(u64_at(&report, "/received_deliveries"), 90);
    assert_eq!(u64_at(&report, "/lost_deliveries"), 0);
    assert_eq!(u64_at(&report, "/gaps"), 0);
    assert_eq!(u64_at(&report, "/duplicate_deliveries"), 0);
    assert_eq!(u64_at(&report, "/foreign_deliveries"), 0);
    assert_eq!(u64_at(&report, "/client_errors"), 0);
    assert_eq!(report["timed_out"], false);
    assert_eq!(u64_at(&report, "/round_trip/count"), 30);
    let p50 = u64_at(&report, "/round_trip/p50_us");
    let p99 = u64_at(&report, "/round_trip/p99_us");
    let max = u64_at(&report, "/round_trip/max_us");
    assert!(p50 <= p99 && p99 <= max && max < 10_000_000, "{report}");
    assert!(f64_at(&report, "/deliveries_per_sec") > 0.0);
    assert!(f64_at(&report, "/elapsed_secs") > 0.0);
    assert!(f64_at(&report, "/server_cpu_secs") >= 0.0);
    // In 10 ms ticks, so a tiny run may read 0.
    assert!(f64_at(&report, "/bench_cpu_secs") >= 0.0);
    // Closed loop: no open-loop section.
    assert!(report.get("rate").is_none(), "{report}");
}

#[test]
fn broadcast_at_a_fixed_rate_sends_on_the_clock() {
    let server = start_server();
    let pid = std::process::id().to_string();
    let report = bench_json(
        &server,
        &[
            "broadcast",
            "--rooms",
            "2",
            "--clients",
            "3",
            "--messages",
            "5",
            "--prefix",
            "all:",
            "--rate",
            "100",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(u64_at(&report, "/messages_sent"), 30);
    assert_eq!(u64_at(&report, "/received_deliveries"), 90);
    assert_eq!(u64_at(&report, "/client_errors"), 0);
    assert_eq!(report["timed_out"], false);
    assert_eq!(u64_at(&report, "/rate/offered_messages_per_sec"), 100);
    assert_eq!(u64_at(&report, "/rate/offered_deliveries_per_sec"), 300);
    // 6 clients sharing 100 messages/s: each every 60 ms, the last message due at 0.29 s.
    assert_eq!(f64_at(&report, "/rate/send_interval_ms"), 60.0);
    assert_eq!(f64_at(&report, "/rate/schedule_secs"), 0.29);
    // The clock, not the replies, paced the run: it cannot end before the last send is due.
    assert!(f64_at(&report, "/elapsed_secs") >= 0.29, "{report}");
    assert!(
        f64_at(&report, "/rate/achieved_messages_per_sec") <= 105.0,
        "{report}"
    );
    assert_eq!(u64_at(&report, "/rate/latency/count"), 90);
    assert_eq!(u64_at(&report, "/round_trip/count"), 30);
    let p999 = u64_at(&report, "/rate/latency/p999_us");
    assert!(p999 <= u64_at(&report, "/rate/latency/max_us"), "{report}");
    assert!(f64_at(&report, "/rate/server_user_cpu_secs") >= 0.0);
    assert!(f64_at(&report, "/rate/server_kernel_cpu_secs") >= 0.0);
    assert!(f64_at(&report, "/rate/server_user_us_per_delivery") >= 0.0);
}

#[test]
fn broadcast_echo_needs_no_prefix() {
    // What bench/suite.py runs: the service broadcasts every message verbatim.
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    let server = Server::new()
        .start(
            listener,
            SimpleJamsocketServiceFactory::<broadcast_echo::BroadcastEcho>::default(),
        )
        .expect("starting the server");
    let report = bench_json(
        &server,
        &[
            "broadcast",
            "--rooms",
            "2",
            "--clients",
            "3",
            "--messages",
            "5",
        ],
    );
    assert_eq!(u64_at(&report, "/expected_deliveries"), 90);
    assert_eq!(u64_at(&report, "/received_deliveries"), 90);
    assert_eq!(u64_at(&report, "/client_errors"), 0);
    let report = bench_json(&server, &["churn", "--rooms", "5", "--concurrency", "2"]);
    assert_eq!(u64_at(&report, "/completed"), 5);
    assert_eq!(u64_at(&report, "/failed"), 0);
    // A flooder in a room of its own floods; the measured rooms still get everything.
    let report = bench_json(
        &server,
        &[
            "broadcast",
            "--rooms",
            "2",
            "--clients",
            "3",
            "--messages",
            "50",
            "--flooders",
            "1",
        ],
    );
    assert_eq!(u64_at(&report, "/received_deliveries"), 900);
    assert_eq!(u64_at(&report, "/flood/flooders"), 1);
    assert!(u64_at(&report, "/flood/messages_sent") > 0);
    // The server's frame budget (1,000 frames/s, bursts of 2,000) may close it with 1008.
    assert!(u64_at(&report, "/flood/closed_by_server") <= 1);
}

#[test]
fn broadcast_ends_early_when_the_server_drops_every_client() {
    // Every message is over the limit, so the server closes each client with 1009.
    let server = start_server_with(Server::new().with_max_message_bytes(50));
    let started = Instant::now();
    let report = bench_json(
        &server,
        &[
            "broadcast",
            "--rooms",
            "2",
            "--clients",
            "3",
            "--payload-bytes",
            "100",
            "--prefix",
            "all:",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the timeout"
    );
    assert_eq!(report["timed_out"], false);
    assert_eq!(u64_at(&report, "/client_errors"), 6);
    assert_eq!(u64_at(&report, "/received_deliveries"), 0);
    assert_eq!(
        u64_at(&report, "/lost_deliveries"),
        u64_at(&report, "/expected_deliveries")
    );
    let error = report["first_client_error"].as_str().unwrap_or_default();
    assert!(error.contains("Size"), "{error}");
}

#[test]
fn idle_holds_connections_and_reads_server_memory() {
    let server = start_server();
    let pid = std::process::id().to_string();
    let report = bench_json(
        &server,
        &[
            "idle",
            "--rooms",
            "2",
            "--clients",
            "3",
            "--hold-secs",
            "1",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(report["scenario"], "idle");
    assert_eq!(u64_at(&report, "/connect/failed"), 0);
    assert_eq!(u64_at(&report, "/held"), 6);
    assert_eq!(u64_at(&report, "/dropped"), 0);
    assert!(u64_at(&report, "/server_rss_before_kib") > 0);
    assert!(u64_at(&report, "/server_rss_peak_kib") >= u64_at(&report, "/server_rss_holding_kib"));
    f64_at(&report, "/server_kib_per_connection");
    assert_eq!(report["timed_out"], false);
}

#[test]
fn churn_gets_a_reply_from_every_room() {
    let server = start_server();
    let report = bench_json(&server, &["churn", "--rooms", "20", "--concurrency", "4"]);
    assert_eq!(report["scenario"], "churn");
    assert_eq!(u64_at(&report, "/completed"), 20);
    assert_eq!(u64_at(&report, "/failed"), 0);
    assert_eq!(u64_at(&report, "/first_reply/count"), 20);
    // Each visit's reply comes after its own connect.
    assert!(u64_at(&report, "/first_reply/p50_us") >= u64_at(&report, "/connect/p50_us"));
    assert!(f64_at(&report, "/rooms_per_sec") > 0.0);
    assert_eq!(report["timed_out"], false);
    assert!(server.room_count() >= 20);
}

#[test]
fn a_run_without_replies_stops_at_its_timeout() {
    let server = start_server();
    // `timer:<text>` is a command conformance-service never answers.
    let finished = bench(
        &server,
        &[
            "churn",
            "--rooms",
            "3",
            "--concurrency",
            "1",
            "--prefix",
            "timer:",
            "--timeout-secs",
            "1",
            "--json",
        ],
    );
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stderr);
    let report: Value = serde_json::from_str(&finished.stdout).expect("a JSON report");
    assert_eq!(report["timed_out"], true);
    assert_eq!(u64_at(&report, "/completed"), 0);
}

#[test]
fn refuses_servers_off_this_machine() {
    let finished = bench_at("ws://192.0.2.1:8080", &["churn"]);
    assert_eq!(finished.status.code(), Some(1));
    assert!(finished.stderr.contains("loopback"), "{}", finished.stderr);
}

#[test]
fn chart_draws_the_suite_results_as_svg() {
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/latest.json");
    let output =
        std::env::temp_dir().join(format!("jamsocket-bench-chart-{}.svg", std::process::id()));
    let finished = run_bench(&[
        "chart",
        input.to_str().expect("a UTF-8 path"),
        output.to_str().expect("a UTF-8 path"),
    ]);
    let svg = std::fs::read_to_string(&output);
    let _ = std::fs::remove_file(&output);
    assert!(finished.status.success(), "{}", finished.stderr);
    let svg = svg.expect("the chart was written");
    assert!(svg.starts_with("<svg"), "{svg}");
    for text in [
        "Deliveries per second",
        "Round-trip latency",
        "native",
        "wasm",
        "node",
    ] {
        assert!(svg.contains(text), "{text} missing from the chart");
    }
}

#[test]
fn chart_names_a_missing_input() {
    let finished = run_bench(&["chart", "no-such-results.json", "never-written.svg"]);
    assert_eq!(finished.status.code(), Some(1));
    assert!(
        finished
            .stderr
            .contains("error: reading no-such-results.json"),
        "{}",
        finished.stderr
    );
    assert!(!Path::new("never-written.svg").exists());
}
