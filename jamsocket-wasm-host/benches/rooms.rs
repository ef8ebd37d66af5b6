//! Room creation and idle memory, with the counter-service example guest.
//!
//! `cargo bench -p jamsocket-wasm-host --bench rooms` (release). Prints rooms/s, the time from
//! `build()` to the first reply of a new room (p50/p99), the time of a call on a warm room,
//! resident memory per idle room at 1,000 and 10,000 rooms (from `/proc/self/status`), and the
//! throughput of the same counter compiled natively, for the wasm/native ratio.
//! `ROOMS=n` changes the number of rooms (default 10,000, the default room limit).

#[path = "../tests/wasm_host/guests.rs"]
mod guests;

use jamsocket::{
    ClientId, JamsocketContext, JamsocketService, JamsocketServiceFactory, MessageRecipient,
};
use jamsocket_wasm_host::{WasmHost, WasmHostConfig, WasmHostFactory};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts the messages of every room (one shared counter, so the context costs 8 bytes).
#[derive(Clone)]
struct Counting(Arc<AtomicU64>);

impl JamsocketContext for Counting {
    fn send_message(&self, _: impl Into<MessageRecipient>, _: &str) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn send_binary(&self, _: impl Into<MessageRecipient>, _: &[u8]) {}
    fn set_timer(&self, _: u32) {}
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Resident memory by mapping size, largest first: (mapping size KiB, mappings, total RSS KiB,
/// a name). Pool slots show up as many mappings of one size.
fn resident_by_mapping_size(count: usize) -> Vec<(u64, usize, u64, String)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut mappings: Vec<(u64, u64, String)> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        let kib = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let name = line
                .split_whitespace()
                .nth(5)
                .unwrap_or("[anonymous]")
                .to_string();
            mappings.push((0, 0, name));
        } else if let Some(mapping) = mappings.last_mut() {
            match first {
                "Size:" => mapping.0 = kib,
                "Rss:" => mapping.1 = kib,
                _ => {}
            }
        }
    }
    let mut groups: std::collections::HashMap<(u64, String), (usize, u64)> = Default::default();
    for (size, rss, name) in mappings {
        let group = groups.entry((size, name)).or_default();
        group.0 += 1;
        group.1 += rss;
    }
    let mut groups: Vec<_> = groups
        .into_iter()
        .map(|((size, name), (n, rss))| (size, n, rss, name))
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.2));
    groups.truncate(count);
    groups
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let rooms: usize = std::env::var("ROOMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let path = guests::example_wasm("counter-service");
    let wasm_size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let rss_before_load = status_kib("VmRSS:");
    let started = Instant::now();
    let config = WasmHostConfig::default().with_max_rooms(rooms.max(1) as u32);
    let factory = WasmHostFactory::with_config(&path, config.clone()).expect("load the guest");
    let load = started.elapsed();
    let rss_base = status_kib("VmRSS:");
    println!("guest: {} ({} KiB)", path.display(), wasm_size / 1024);
    println!("config: {config:?}");
    println!(
        "load (compile + checks): {load:.1?}; RSS {} -> {} MiB; virtual size {} GiB",
        rss_before_load / 1024,
        rss_base / 1024,
        status_kib("VmSize:") / 1024 / 1024
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let replies = Arc::new(AtomicU64::new(0));
        let mut hosts: Vec<WasmHost> = Vec::with_capacity(rooms);
        let mut first_reply = Vec::with_capacity(rooms);
        let started = Instant::now();
        for i in 0..rooms {
            let before = replies.load(Ordering::Relaxed);
            let t0 = Instant::now();
            let mut host = factory
                .build(&format!("room-{i}"), Counting(replies.clone()))
                .await
                .expect("build");
            host.message(ClientId::from(1), "increment")
                .await
                .expect("message");
            first_reply.push(t0.elapsed());
            assert_eq!(replies.load(Ordering::Relaxed), before + 1);
            hosts.push(host);
            if hosts.len() == 1_000 || hosts.len() == rooms {
                let rss = status_kib("VmRSS:");
                println!(
                    "{:>6} idle rooms: RSS {} MiB, {:.1} KiB per room above the loaded factory",
                    hosts.len(),
                    rss / 1024,
                    (rss - rss_base) as f64 / hosts.len() as f64
                );
            }
        }
        let total = started.elapsed();
        println!("resident memory by mapping size (size, mappings, total RSS, name):");
        for (size, n, rss, name) in resident_by_mapping_size(8) {
            println!("  {size:>12} KiB x {n:>6}: {:>6} MiB  {name}", rss / 1024);
        }
        first_reply.sort_unstable();
        println!(
            "created {rooms} rooms (build + first message) in {total:.2?}: {:.0} rooms/s",
            rooms as f64 / total.as_secs_f64()
        );
        println!(
            "build() to first reply: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
            percentile(&first_reply, 0.50),
            percentile(&first_reply, 0.99),
            first_reply[first_reply.len() - 1]
        );

        // A call on a warm room.
        let calls = 100_000;
        let host = &mut hosts[0];
        let started = Instant::now();
        for _ in 0..calls {
            host.message(ClientId::from(1), "increment")
                .await
                .expect("message");
        }
        let wasm_per_call = started.elapsed() / calls;
        println!("message on a warm room: {wasm_per_call:.2?} per call");

        // The same service compiled natively, driven the same way, for the ratio.
        let native_factory = jamsocket::SimpleJamsocketServiceFactory::<
            counter_service::SharedCounterServer,
        >::default();
        let mut native = native_factory
            .build("native-room", Counting(replies.clone()))
            .await
            .expect("build");
        let started = Instant::now();
        for _ in 0..calls {
            native
                .message(ClientId::from(1), "increment")
                .await
                .expect("message");
        }
        let native_per_call = started.elapsed() / calls;
        println!(
            "same counter native: {native_per_call:.2?} per call; wasm throughput is {:.2}x native \
             ({:.0} vs {:.0} messages/s, each a broadcast of the new value)",
            native_per_call.as_secs_f64() / wasm_per_call.as_secs_f64(),
            1.0 / wasm_per_call.as_secs_f64(),
            1.0 / native_per_call.as_secs_f64()
        );

        let started = Instant::now();
        drop(hosts);
        println!(
            "dropped {rooms} rooms in {:.1?}; RSS {} MiB",
            started.elapsed(),
            status_kib("VmRSS:") / 1024
        );
    });
}
