//! Latency of healthy WebAssembly rooms while other rooms' guests spin.
//!
//! ```sh
//! cargo run --release -p jamsocket-cli -- build examples/cpu-hog     # prints the .wasm path
//! cargo run --release -p jamsocket-bench --example spin_latency -- path/to/cpu_hog.wasm
//! ```
//!
//! Serves the cpu-hog guest in-process (default limits: 1 s of CPU per call, 10 ms slices) and,
//! for 0, 1, 2 and 8 spinning rooms (each keeps asking its guest to compute for 30 s; the host
//! closes the room after 1 s and the spinner reconnects), measures the round trip of `0` (no
//! work) in 20 other rooms: p50/p99/max over 2,000 requests. With 8 spinners there are four
//! times more busy rooms than cores.

use futures_util::{SinkExt, StreamExt};
use jamsocket_server::Server;
use jamsocket_wasm_host::{WasmHostConfig, WasmHostFactory};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const HEALTHY_ROOMS: usize = 20;
const REQUESTS: usize = 2_000;

#[tokio::main]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: spin_latency <cpu_hog.wasm>");
    // SLICE_MS changes the host's time slice (default 10 ms) to compare.
    let mut config = WasmHostConfig::new();
    if let Some(ms) = std::env::var("SLICE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
    {
        config = config.with_time_slice(Duration::from_millis(ms));
    }
    println!("time slice {:?}", config.time_slice());
    let factory = WasmHostFactory::with_config(&path, config).expect("load the guest");
    let server = Server::new()
        .start(TcpListener::bind("127.0.0.1:0").unwrap(), factory)
        .expect("start the server");
    let url = format!("ws://{}/ws", server.local_addr());
    for spinners in [0, 1, 2, 8] {
        let stop = Arc::new(AtomicBool::new(false));
        let spinning: Vec<_> = (0..spinners)
            .map(|i| tokio::spawn(spin(format!("{url}/spin-{spinners}-{i}"), stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut clients = Vec::new();
        for room in 0..HEALTHY_ROOMS {
            let (ws, _) =
                tokio_tungstenite::connect_async(format!("{url}/healthy-{spinners}-{room}"))
                    .await
                    .expect("connect");
            clients.push(ws);
        }
        let mut latencies = Vec::with_capacity(REQUESTS);
        for i in 0..REQUESTS {
            let ws = &mut clients[i % HEALTHY_ROOMS];
            let started = Instant::now();
            ws.send(Message::text("0")).await.expect("send");
            loop {
                let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .expect("reply timed out")
                    .expect("connection ended")
                    .expect("receive");
                if matches!(reply, Message::Text(ref t) if t.starts_with("done")) {
                    break;
                }
            }
            latencies.push(started.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        for task in spinning {
            task.abort();
        }
        latencies.sort_unstable();
        let pick = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
        println!(
            "{spinners} spinning rooms: healthy round trip p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            pick(0.5),
            pick(0.99),
            latencies[latencies.len() - 1]
        );
    }
    server.stop().expect("stop");
}

/// Keeps one room's guest computing: ask for 30 s, get closed after the CPU limit, repeat.
async fn spin(url: String, stop: Arc<AtomicBool>) {
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(format!("{url}-{round}")).await
        else {
            continue;
        };
        if ws.send(Message::text("30")).await.is_err() {
            continue;
        }
        // Until the host closes the room (1011).
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(_) = message {
                break;
            }
        }
    }
}
