//! Attacks from the security review against the real `jamsocket serve`, with the server
//! process's resident memory read from `/proc/<pid>/status`: what an attack makes the server
//! hold, and that it is given back afterwards.

use crate::common::*;
use crate::raw_frames::{client_frame, client_frame_header, raw_close};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's resident memory, in KiB.
fn rss_kib(running: &Running) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", running.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// Opens a WebSocket by hand; returns the socket after the 101 response.
async fn raw_websocket(port: u16, room: &str) -> TcpStream {
    let (tcp, head) = handshake(port, room).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

fn serve_echo(extra: &[&str]) -> Running {
    let wasm = build_example("echo-server");
    let mut args = vec!["serve", wasm.as_str(), "--port", "0"];
    args.extend_from_slice(extra);
    Running::start(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_announcing_a_terabyte_is_closed_with_1009_and_costs_no_memory() {
    let server = serve_echo(&[]);
    let mut watcher = server.ws("room").await;
    watcher.send("warm up").await;
    watcher.recv().await;
    let before = rss_kib(&server);
    for announced in [1u64 << 40, 16 << 20] {
        let tcp = raw_websocket(server.port, "room").await;
        let (mut reader, mut writer) = tcp.into_split();
        let flood = tokio::spawn(async move {
            writer
                .write_all(&client_frame_header(true, 2, announced))
                .await?;
            let chunk = vec![0u8; 64 * 1024];
            loop {
                writer.write_all(&chunk).await?;
            }
            #[allow(unreachable_code)]
            std::io::Result::Ok(())
        });
        let started = Instant::now();
        assert_eq!(raw_close(&mut reader, Duration::from_secs(1)).await.0, 1009);
        assert!(started.elapsed() < Duration::from_secs(1));
        flood.abort();
    }
    let grown = rss_kib(&server).saturating_sub(before);
    eprintln!("resident memory grew by {grown} KiB");
    assert!(grown < 1024, "the server grew by {grown} KiB");
}

/// Connections that each hold an unfinished message of almost 64 KiB.
const SLOW_CONNECTIONS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_messages_are_closed_at_their_deadline_and_their_memory_comes_back() {
    let _ = rlimit::increase_nofile_limit(65_536);
    let server = serve_echo(&["--message-deadline-secs", "2"]);
    let rooms = 10;
    let mut watchers = Vec::new();
    for room in 0..rooms {
        let mut ws = server.ws(&format!("slow-{room}")).await;
        ws.send("warm up").await;
        ws.recv().await;
        watchers.push(ws);
    }
    let before = rss_kib(&server);
    let started = Instant::now();
    let attackers: Vec<_> = (0..SLOW_CONNECTIONS)
        .map(|i| {
            let port = server.port;
            tokio::spawn(async move {
                let tcp = raw_websocket(port, &format!("slow-{}", i % rooms)).await;
                let (mut reader, mut writer) = tcp.into_split();
                // A first fragment of 60 KiB, then a continuation of 4 KiB of which 2 KiB
                // arrive, then a byte every half second: never silent, never finished.
                let mut start = client_frame(false, 2, &[7u8; 60 * 1024]);
                start.extend(client_frame_header(true, 0, 4 * 1024));
                start.extend(vec![7u8; 2 * 1024]);
                writer.write_all(&start).await.unwrap();
                let trickle = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        if writer.write_all(b"x").await.is_err() {
                            return;
                        }
                    }
                });
                let (code, _) = raw_close(&mut reader, TIMEOUT).await;
                trickle.abort();
                code
            })
        })
        .collect();
    let mut peak = 0;
    let mut codes = Vec::new();
    for attacker in attackers {
        peak = peak.max(rss_kib(&server));
        codes.push(attacker.await.unwrap());
    }
    assert!(codes.iter().all(|&code| code == 1008), "{codes:?}");
    let closed_after = started.elapsed();
    // Once the connections are gone, their memory is given back (within 20%).
    let deadline = Instant::now() + TIMEOUT;
    let after = loop {
        let now = rss_kib(&server);
        if now * 10 <= before * 12 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "{SLOW_CONNECTIONS} slow messages: {before} KiB before, peak {peak} KiB, \
         all closed with 1008 after {closed_after:?}, {after} KiB after"
    );
    assert!(
        after * 10 <= before * 12,
        "{before} KiB before, {after} KiB after"
    );
    // The rooms carried on.
    for ws in &mut watchers {
        ws.send("still here").await;
        ws.recv().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_refused_with_503_before_the_server_runs_out_of_files() {
    let _ = rlimit::increase_nofile_limit(65_536);
    let files = 256;
    let wasm = build_example("echo-server");
    let server = Running::start_with_file_limit(files, &["serve", &wasm, "--port", "0"]);
    // The default cap leaves 64 files (a tenth, at least 64) for everything else.
    let cap = files as usize - 64;
    let mut held = Vec::new();
    let refused = loop {
        assert!(
            held.len() <= cap,
            "more than {cap} WebSockets were accepted"
        );
        let (tcp, head) = handshake(server.port, &format!("room-{}", held.len() % 8)).await;
        if head.starts_with("HTTP/1.1 101") {
            held.push(tcp);
            continue;
        }
        break head;
    };
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert_eq!(held.len(), cap);
    // Hundreds of connections that say nothing wait in the backlog instead of failing `accept`.
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(
            TcpStream::connect(("127.0.0.1", server.port))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = server.stderr();
    assert!(!log.contains("Too many open files"), "{log}");
    // Once the WebSockets and the silent connections go, the server serves again.
    drop(silent);
    drop(held);
    let started = Instant::now();
    while !handshake(server.port, "after")
        .await
        .1
        .starts_with("HTTP/1.1 101")
    {
        assert!(started.elapsed() < TIMEOUT, "the server never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebSocket handshake: the socket and the response head (empty if the connection ended).
async fn handshake(port: u16, room: &str) -> (TcpStream, String) {
    let mut tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("connect timed out")
        .unwrap();
    let request = format!(
        "GET /ws/{room} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(TIMEOUT, tcp.read_exact(&mut byte)).await {
            Ok(Ok(_)) => head.push(byte[0]),
            Ok(Err(_)) => break,
            Err(_) => panic!("handshake timed out"),
        }
    }
    (tcp, String::from_utf8_lossy(&head).into_owned())
}
