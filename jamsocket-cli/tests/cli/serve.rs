use crate::common::*;
use std::time::{Duration, Instant};

#[test]
fn bad_flag_values_list_the_accepted_forms() {
    let cases: [(&[&str], &str); 7] = [
        (&["--rooms", "lots"], "implicit"),
        (&["--host", "localhost"], "--host"),
        (&["--trusted-proxies", "10.0.0.0/8,proxy"], "10.0.0.0/8"),
        (
            &["--allowed-origins", "https://app.example/page"],
            "scheme://host",
        ),
        (&["--shutdown-policy", "5min"], "immediate"),
        (
            &["--heartbeat-interval-secs", "0"],
            "heartbeat-interval-secs",
        ),
        (&["--guest-memory-mib", "1"], "guest-memory-mib"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["serve", "module.wasm"];
        args.extend_from_slice(flags);
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        let err = stderr(&output);
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
}

#[test]
fn every_subcommand_has_help_and_there_is_a_version() {
    for sub in ["dev", "serve", "build", "new"] {
        let output = run(&[sub, "--help"]);
        assert!(output.status.success(), "{sub}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{sub}"
        );
    }
    let output = run(&["--version"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
    let output = run(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--port",
        "--rooms",
        "--shutdown-policy",
        "--static",
        "--max-message-bytes",
        "--max-clients-per-room",
        "--guest-memory-mib",
        "--guest-cpu-ms-per-call",
        "--host",
        "--max-connections",
        "--max-connections-per-ip",
        "--max-new-rooms-per-ip-per-sec",
        "--message-deadline-secs",
        "--max-frames-per-sec",
        "--max-bytes-per-sec",
        "--trusted-proxies",
        "--allowed-origins",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_built_module_and_exits_0_on_sigterm() {
    let (_temp, dir) = copy_example("echo-server");
    let output = run(&["build", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let wasm = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(wasm.ends_with(".wasm"), "{wasm}");
    let server = Running::start(&["serve", &wasm, "--port", "0", "--rooms", "implicit"]);
    let mut ws = server.ws("echo").await;
    ws.send("hello").await;
    assert_eq!(ws.recv().await, "hello");
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(ws.recv().await, "close 1001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_heavy_broadcast_closes_every_client_with_1001_within_the_grace_period() {
    const ROOMS: usize = 5;
    const CLIENTS_PER_ROOM: usize = 20;
    const GRACE: Duration = Duration::from_secs(3);
    let wasm = build_example("conformance-service");
    let server = Running::start(&[
        "serve",
        &wasm,
        "--port",
        "0",
        "--shutdown-grace-secs",
        &GRACE.as_secs().to_string(),
    ]);
    let mut clients = Vec::new();
    for room in 0..ROOMS {
        for _ in 0..CLIENTS_PER_ROOM {
            clients.push(server.ws(&format!("busy-{room}")).await);
        }
    }
    // Every client broadcasts closed-loop (its next message after its own came back) and reads
    // everything until the server's close frame.
    let (busy_tx, mut busy_rx) = tokio::sync::mpsc::channel(clients.len());
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let busy = busy_tx.clone();
            tokio::spawn(async move {
                let mut seq = 0_u64;
                let mut received = 0_u64;
                ws.send(&format!("all:{i}:{seq}")).await;
                loop {
                    let text = ws.recv().await;
                    if text.starts_with("close ") {
                        return (text, received);
                    }
                    received += 1;
                    if received == 50 {
                        let _ = busy.send(()).await;
                    }
                    if text == format!("{i}:{seq}") {
                        seq += 1;
                        ws.send(&format!("all:{i}:{seq}")).await;
                    }
                }
            })
        })
        .collect();
    for _ in 0..tasks.len() {
        tokio::time::timeout(TIMEOUT, busy_rx.recv())
            .await
            .expect("every client is receiving broadcasts");
    }
    let asked = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let took = asked.elapsed();
    assert!(status.success(), "{status}");
    eprintln!("exit {took:?} after SIGTERM");
    assert!(took < GRACE, "exit took {took:?}, over the grace period");
    for task in tasks {
        let (close, received) = tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("client ended")
            .unwrap();
        assert_eq!(close, "close 1001", "after {received} messages");
    }
}

#[test]
fn serve_listens_on_every_interface_for_every_origin_by_default_and_says_so() {
    let wasm = build_example("conformance-service");
    let mut server = Running::start(&["serve", &wasm, "--port", "0"]);
    let listening = server.wait_for_line("listening:", TIMEOUT);
    assert!(
        listening.contains(&format!("0.0.0.0:{}", server.port))
            && listening.contains("every network interface"),
        "{listening}"
    );
    match non_loopback_ip() {
        Some(ip) => assert!(accepts_connections(ip, server.port), "unreachable at {ip}"),
        None => eprintln!("this machine has no address but loopback: not tried from outside"),
    }
    let origins = server.wait_for_line("origins:", TIMEOUT);
    assert!(origins.contains("any site"), "{origins}");
    assert_eq!(server.handshake("open", Some("https://evil.example")), 101);
    // The log warns once (stderr is collected by a thread of its own: give it time).
    let deadline = Instant::now() + TIMEOUT;
    while !server.stderr().contains("--allowed-origins") {
        assert!(Instant::now() < deadline, "no warning: {}", server.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let warnings = server.stderr().matches("--allowed-origins").count();
    assert_eq!(warnings, 1, "{}", server.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_listens_only_on_the_host_it_is_given() {
    let wasm = build_example("conformance-service");
    let mut server = Running::start(&["serve", &wasm, "--port", "0", "--host", "127.0.0.1"]);
    let listening = server.wait_for_line("listening:", TIMEOUT);
    assert!(
        listening.contains(&format!("127.0.0.1:{}", server.port))
            && listening.contains("this machine only"),
        "{listening}"
    );
    let mut ws = server.ws("local").await;
    assert_eq!(ws.recv().await, "welcome local 1");
    match non_loopback_ip() {
        Some(ip) => assert!(!accepts_connections(ip, server.port), "reachable at {ip}"),
        None => eprintln!("this machine has no address but loopback: not tried from outside"),
    }
}

#[test]
fn serve_refuses_pages_of_origins_not_allowed_with_403() {
    let wasm = build_example("conformance-service");
    let mut server = Running::start(&[
        "serve",
        &wasm,
        "--port",
        "0",
        "--allowed-origins",
        "https://app.example,http://localhost:*",
    ]);
    let origins = server.wait_for_line("origins:", TIMEOUT);
    assert!(origins.contains("https://app.example"), "{origins}");
    for (origin, status) in [
        (Some("https://evil.example"), 403),
        (Some("null"), 403),
        (Some("https://app.example.evil.example"), 403),
        (Some("https://app.example"), 101),
        (Some("http://localhost:5173"), 101),
        (None, 101),
    ] {
        assert_eq!(server.handshake("shop", origin), status, "{origin:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_websockets_over_max_connections_with_503() {
    let wasm = build_example("conformance-service");
    let server = Running::start(&["serve", &wasm, "--port", "0", "--max-connections", "2"]);
    let mut first = server.ws("full").await;
    assert_eq!(first.recv().await, "welcome full 1");
    let mut second = server.ws("other").await;
    assert_eq!(second.recv().await, "welcome other 1");
    assert_eq!(server.handshake("third", None), 503);
    // A place that frees up is given to the next client.
    drop(first);
    let deadline = Instant::now() + TIMEOUT;
    while server.handshake("third", None) != 101 {
        assert!(Instant::now() < deadline, "the first place was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.send("still here").await;
    assert_eq!(second.recv().await, "echo:still here");
}
