use crate::common::*;
use std::time::{Duration, Instant};

#[test]
fn bad_flag_values_list_the_accepted_forms() {
    let cases: [(&[&str], &str); 4] = [
        (&["--rooms", "lots"], "implicit"),
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
