//! What an attacker on the open internet tries: frames announcing more than the limit,
//! messages that never finish, floods of control frames, connection and room exhaustion,
//! handshakes during shutdown. Each test would succeed as an attack without its protection.

use crate::common::*;
use crate::raw_frames::*;
use jamsocket_server::{Server, ShutdownPolicy};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;

/// Writes `chunk` over and over (ignoring errors once the server has closed) while the caller
/// reads; returns the socket's read half.
fn stream_forever(tcp: TcpStream, first: Vec<u8>, chunk: Vec<u8>) -> TcpStream {
    let std = tcp.into_std().unwrap();
    let writer = TcpStream::from_std(std.try_clone().unwrap()).unwrap();
    tokio::spawn(async move {
        let mut writer = writer;
        if writer.write_all(&first).await.is_err() {
            return;
        }
        while writer.write_all(&chunk).await.is_ok() {}
    });
    TcpStream::from_std(std).unwrap()
}

pub async fn frames_announcing_more_than_the_limit_are_closed_with_1009_after_their_header(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    for announced in [1u64 << 40, 16 << 20, 64 * 1024 + 1] {
        let tcp = raw_websocket(addr, "huge").await;
        let started = Instant::now();
        let header = client_frame_header(true, BINARY, announced);
        let mut tcp = stream_forever(tcp, header, vec![0u8; 64 * 1024]);
        let (code, reason) = raw_close(&mut tcp, Duration::from_secs(1)).await;
        assert_eq!(code, 1009, "{announced} bytes announced: {reason}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    // A continuation that would take a message over the limit is refused from its header too.
    let tcp = raw_websocket(addr, "huge").await;
    let mut first = client_frame(false, TEXT, &[b'a'; 60 * 1024]);
    first.extend(client_frame_header(true, CONTINUATION, 8 * 1024));
    let mut tcp = stream_forever(tcp, first, vec![b'a'; 1024]);
    assert_eq!(raw_close(&mut tcp, Duration::from_secs(1)).await.0, 1009);
    // A control frame longer than 125 bytes is a protocol error (1002), also from its header.
    let tcp = raw_websocket(addr, "huge").await;
    let header = client_frame_header(true, PING, 1 << 40);
    let mut tcp = stream_forever(tcp, header, vec![0u8; 64 * 1024]);
    assert_eq!(raw_close(&mut tcp, Duration::from_secs(1)).await.0, 1002);
}

pub async fn a_message_that_never_finishes_is_closed_with_1008_at_its_deadline(
    factory: impl ConformanceFactory,
) {
    let deadline = Duration::from_millis(500);
    let server = start(Server::new().with_message_deadline(deadline), factory);
    let addr = server.local_addr();
    // A first fragment, then silence.
    let mut fragment = raw_websocket(addr, "slow").await;
    fragment
        .write_all(&client_frame(false, TEXT, b"part"))
        .await
        .unwrap();
    // A frame whose payload trickles in, a byte at a time: it never looks silent.
    let trickle = raw_websocket(addr, "slow").await;
    let std = trickle.into_std().unwrap();
    let mut writer = TcpStream::from_std(std.try_clone().unwrap()).unwrap();
    let mut trickle = TcpStream::from_std(std).unwrap();
    tokio::spawn(async move {
        let header = client_frame_header(true, TEXT, 1000);
        if writer.write_all(&header).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writer.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
    let within = deadline + Duration::from_secs(2);
    let (code, reason) = raw_close(&mut fragment, within).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("not completed"), "{reason}");
    assert_eq!(raw_close(&mut trickle, within).await.0, 1008);
    // Whole messages, however slowly they come one after another, are fine.
    let (mut ws, _) = join(addr, "slow").await;
    for i in 0..3 {
        tokio::time::sleep(deadline / 2).await;
        send(&mut ws, &format!("hello {i}")).await;
        assert_eq!(recv_text(&mut ws).await, format!("echo:hello {i}"));
    }
}

pub async fn a_flood_of_pings_or_empty_continuations_is_closed_with_1008_within_a_second(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut healthy, _) = join(addr, "quiet").await;
    let ping = client_frame(true, PING, b"");
    let empty = client_frame(false, CONTINUATION, b"");
    let floods = [
        (Vec::new(), ping.repeat(4096)),
        (client_frame(false, BINARY, b"start"), empty.repeat(4096)),
    ];
    for (first, chunk) in floods {
        let tcp = raw_websocket(addr, "flood").await;
        let mut tcp = stream_forever(tcp, first, chunk);
        let (code, reason) = raw_close(&mut tcp, Duration::from_secs(1)).await;
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.contains("frame rate"), "{reason}");
        send(&mut healthy, "still here").await;
        assert_eq!(recv_text(&mut healthy).await, "echo:still here");
    }
}

pub async fn connections_over_the_server_limit_get_503_until_one_leaves(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new().with_max_connections(3), factory);
    let addr = server.local_addr();
    let (first, _) = join(addr, "capped").await;
    let (_second, _) = join(addr, "capped").await;
    let (_third, _) = join(addr, "elsewhere").await;
    let (_, head) = raw_handshake(addr, "/ws/capped", "").await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    drop(first);
    assert!(
        accepted_within_timeout(addr, "/ws/capped").await,
        "the freed place was never reused"
    );
}

pub async fn connections_over_the_per_address_limit_get_429_counting_forwarded_addresses_from_trusted_proxies_only(
    factory: impl ConformanceFactory,
) {
    let from = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    // X-Forwarded-For from an untrusted peer is ignored: every connection is 127.0.0.1's.
    let server = start(
        Server::new().with_max_connections_per_ip(2),
        factory.clone(),
    );
    let addr = server.local_addr();
    let (_a, head) = raw_handshake(addr, "/ws/r", &from("1.1.1.1")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_b, _) = raw_handshake(addr, "/ws/r", &from("2.2.2.2")).await;
    let (_, head) = raw_handshake(addr, "/ws/r", &from("3.3.3.3")).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    // Behind a trusted proxy, each forwarded client has its own count.
    let trusted = start(
        Server::new()
            .with_max_connections_per_ip(2)
            .with_trusted_proxies(["127.0.0.1/32".parse().unwrap()]),
        factory,
    );
    let addr = trusted.local_addr();
    let mut held = Vec::new();
    for _ in 0..2 {
        let (tcp, head) = raw_handshake(addr, "/ws/r", &from("1.1.1.1")).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        held.push(tcp);
    }
    let (_, head) = raw_handshake(addr, "/ws/r", &from("1.1.1.1")).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.to_lowercase().contains("content-type: text/plain"));
    let (_c, head) = raw_handshake(addr, "/ws/r", &from("2.2.2.2")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

pub async fn the_listen_backlog_holds_a_thousand_connections(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let port = server.local_addr().port();
    let output = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output();
    let Ok(output) = output else {
        eprintln!("`ss` is not installed; skipping");
        return;
    };
    let listing = String::from_utf8_lossy(&output.stdout);
    // State, Recv-Q, Send-Q (the backlog of a listening socket), ...
    let backlog: u32 = listing
        .split_whitespace()
        .nth(2)
        .and_then(|backlog| backlog.parse().ok())
        .unwrap_or_else(|| panic!("unexpected `ss` output: {listing}"));
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(4096);
    assert!(backlog >= 1024.min(somaxconn), "backlog {backlog}");
}

/// Rooms created by connecting and leaving at once.
const CONNECT_AND_DROP_ROOMS: usize = 20_000;

pub async fn connect_and_drop_to_new_rooms_cannot_keep_another_client_out(
    factory: impl ConformanceFactory,
) {
    let _guard = THOUSANDS_OF_CONNECTIONS.lock().await;
    let max_rooms = 500;
    // The victims read nothing until the attack is over (so they answer no pings): on a loaded
    // machine it can outlast the default heartbeat timeout, which this test is not about.
    let server = start(
        Server::new()
            .with_max_rooms(max_rooms)
            .with_heartbeat_timeout(Duration::from_secs(600)),
        factory,
    );
    let addr = server.local_addr();
    let started = Instant::now();
    let attackers: Vec<_> = (0..8)
        .map(|task| {
            tokio::spawn(async move {
                for i in (task..CONNECT_AND_DROP_ROOMS).step_by(8) {
                    let tcp = raw_websocket(addr, &format!("junk-{i}")).await;
                    drop(tcp);
                }
            })
        })
        .collect();
    // Meanwhile, and after, another client's new rooms always open.
    let mut victims = Vec::new();
    let mut i = 0;
    loop {
        let attack_over = attackers.iter().all(|attacker| attacker.is_finished());
        let (ws, _) = join(addr, &format!("victim-{i}")).await;
        victims.push(ws);
        i += 1;
        if attack_over {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for attacker in attackers {
        attacker.await.unwrap();
    }
    eprintln!(
        "{CONNECT_AND_DROP_ROOMS} rooms created and dropped in {:?}; {i} victim rooms opened",
        started.elapsed()
    );
    assert!(server.room_count() <= max_rooms);
    // The victims' rooms, which have clients, were never the ones closed.
    for ws in &mut victims {
        send(ws, "count").await;
        assert_eq!(recv_text(ws).await, "count 1");
    }
}

pub async fn room_creation_per_address_is_rate_limited_with_429(factory: impl ConformanceFactory) {
    let server = start(
        Server::new()
            .with_max_new_rooms_per_ip_per_sec(5)
            .with_shutdown_policy(ShutdownPolicy::Never),
        factory,
    );
    let addr = server.local_addr();
    let mut held = Vec::new();
    for i in 0..5 {
        held.push(join(addr, &format!("mine-{i}")).await.0);
    }
    let (_, head) = raw_handshake(addr, "/ws/one-too-many", "").await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    // Joining rooms that exist is not creating them.
    let (_again, _) = join(addr, "mine-0").await;
    // The budget refills.
    assert!(
        accepted_within_timeout(addr, "/ws/later").await,
        "the creation budget never refilled"
    );
}

pub async fn handshakes_after_shutdown_began_get_503_or_a_close_frame(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    // A client that never answers keeps the shutdown open a little while its close lingers.
    let _silent = raw_websocket(addr, "before").await;
    let stopping = std::thread::spawn(move || server.stop());
    let mut refused = 0;
    let started = Instant::now();
    while started.elapsed() < TIMEOUT {
        // `None` once the listener has closed.
        let Some((mut tcp, head)) = try_handshake(addr).await else {
            break;
        };
        if head.starts_with("HTTP/1.1 503") {
            refused += 1;
            continue;
        }
        // Accepted before shutdown began: it must be closed properly.
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let (code, _) = raw_close(&mut tcp, Duration::from_secs(5)).await;
        assert_eq!(code, 1001);
    }
    stopping.join().unwrap().unwrap();
    assert!(refused > 0, "no handshake was refused while shutting down");
}

/// A handshake to a server that may be closing: `None` if the connection is refused or ends
/// before a response head.
async fn try_handshake(addr: std::net::SocketAddr) -> Option<(TcpStream, String)> {
    use tokio::io::AsyncReadExt;
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    let request = "GET /ws/during HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(TIMEOUT, tcp.read_exact(&mut byte))
            .await
            .ok()?
            .ok()?;
        head.push(byte[0]);
    }
    Some((tcp, String::from_utf8_lossy(&head).into_owned()))
}

pub async fn partly_received_messages_share_a_server_wide_budget_and_the_excess_gets_1013(
    factory: impl ConformanceFactory,
) {
    let budget = 1024 * 1024;
    let server = start(
        Server::new()
            .with_max_pending_message_bytes(budget)
            .with_shutdown_policy(ShutdownPolicy::Never),
        factory,
    );
    let addr = server.local_addr();
    // Each slow sender holds a 60 KiB first fragment: about 64 KiB of the budget, or more.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut tcp = raw_websocket(addr, "slow").await;
        tcp.write_all(&client_frame(false, BINARY, &[7; 60 * 1024]))
            .await
            .unwrap();
        slow.push(tcp);
    }
    let mut busy = 0;
    let mut held = 0;
    for tcp in &mut slow {
        match tokio::time::timeout(Duration::from_millis(300), raw_close(tcp, TIMEOUT)).await {
            Ok((code, reason)) => {
                assert_eq!(code, 1013, "{reason}");
                busy += 1;
            }
            Err(_) => held += 1,
        }
    }
    assert!(busy > 0, "every slow sender was let through");
    assert!(held * 60 * 1024 <= budget, "{held} messages of 60 KiB held");
    // Whole small messages never count: the room still answers.
    let (mut ws, _) = join(addr, "slow").await;
    send(&mut ws, "small").await;
    assert_eq!(recv_text(&mut ws).await, "echo:small");
}
