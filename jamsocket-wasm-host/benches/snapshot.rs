//! Snapshot size and the time of a snapshot and of a restore, for three guests: the
//! counter-service example (a memory image), the durable-counter example (the service's own
//! snapshot) and a WAT guest holding 1 MiB of state it wrote (a memory image with 257 stored
//! chunks, hardly compressible).
//!
//! `cargo bench -p jamsocket-wasm-host --bench snapshot` (release). Prints plain numbers: raw
//! snapshot bytes, and compressed as the store does (zstd level 1), µs per snapshot, µs to
//! compress it, µs per restore (decode, checksum, instantiate, write back; dropping the room is
//! not counted) and the 4 KiB chunks a restore wrote. `ROUNDS=n` changes the number of timed
//! rounds (default 200).

#[path = "../tests/wasm_host/guests.rs"]
mod guests;

use jamsocket::{
    ClientId, JamsocketContext, JamsocketService, JamsocketServiceFactory, MessageRecipient,
};
use jamsocket_wasm_host::{WasmHost, WasmHostConfig, WasmHostFactory};
use std::time::{Duration, Instant};

/// A context that drops everything.
struct Discard;

impl JamsocketContext for Discard {
    fn send_message(&self, _: impl Into<MessageRecipient>, _: &str) {}
    fn send_binary(&self, _: impl Into<MessageRecipient>, _: &[u8]) {}
    fn set_timer(&self, _: u32) {}
}

/// A guest that writes 1 MiB of non-repeating data (pages 1 to 16) when its room is created.
const MEBIBYTE_GUEST: &str = r#"(module
  (memory (export "memory") 17)
  (func (export "jamsocket_abi_version") (result i32) i32.const 1)
  (func (export "jamsocket_buffer") (param i32) (result i32) i32.const 1024)
  (func (export "jamsocket_initialize") (param i32 i32)
    (local $i i32)
    (loop $fill
      (i64.store
        (i32.add (i32.const 65536) (i32.shl (local.get $i) (i32.const 3)))
        (i64.add
          (i64.mul (i64.extend_i32_u (local.get $i)) (i64.const 0x9E3779B97F4A7C15))
          (i64.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 131072)))))
  (func (export "jamsocket_connect") (param i32))
  (func (export "jamsocket_disconnect") (param i32))
  (func (export "jamsocket_message") (param i32 i32 i32))
  (func (export "jamsocket_binary") (param i32 i32 i32))
  (func (export "jamsocket_timer")))
"#;

/// Collects the log of one restore.
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn rounds() -> u32 {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

fn micros(total: Duration, rounds: u32) -> f64 {
    total.as_secs_f64() * 1e6 / f64::from(rounds)
}

async fn measure(name: &str, factory: &WasmHostFactory, messages: &[&str]) {
    let rounds = rounds();
    let mut room: WasmHost = factory.build("bench-room", Discard).await.expect("build");
    for message in messages {
        room.message(ClientId::from(1), message)
            .await
            .expect("message");
    }

    let started = Instant::now();
    let mut saved = Vec::new();
    for _ in 0..rounds {
        saved = room.snapshot().await.expect("snapshot").expect("bytes");
    }
    let per_snapshot = micros(started.elapsed(), rounds);

    // What the store does with every snapshot, on its one store thread: one zstd frame at
    // level 1 from a reused context (jamsocket-store's `Compressor`). Into a reused buffer, so
    // that the allocator's handling of a fresh 1 MiB output buffer (page faults or not, by its
    // history) does not blur the compression's own cost.
    let mut compressor = zstd::bulk::Compressor::new(1).expect("zstd context");
    let mut compressed = Vec::with_capacity(zstd::zstd_safe::compress_bound(saved.len()));
    let started = Instant::now();
    for _ in 0..rounds {
        compressed.clear();
        compressor
            .compress_to_buffer(&saved, &mut compressed)
            .expect("compress");
    }
    let per_compress = micros(started.elapsed(), rounds);

    let mut restoring = Duration::ZERO;
    for _ in 0..rounds {
        let started = Instant::now();
        let restored = factory
            .restore("bench-room", Discard, &saved)
            .await
            .expect("restore");
        restoring += started.elapsed();
        drop(restored);
    }
    // Once more with the debug log captured, for the pages written back.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || Capture(writer.clone()))
        .finish();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        let _room = factory.restore("bench-room", Discard, &saved).await;
    }
    let log = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let written = log
        .lines()
        .find(|line| line.contains("restored a memory image"))
        .and_then(|line| {
            line.split_whitespace()
                .find(|f| f.starts_with("chunks_written="))
        })
        .map(|field| format!(", {field}"))
        .unwrap_or_default();

    let kind = match saved.get(5) {
        Some(1) => "memory image",
        Some(2) => "explicit",
        _ => "?",
    };
    println!(
        "{name}: {kind}, {} bytes raw, {} bytes zstd-1, {per_snapshot:.1} µs per snapshot, \
         {per_compress:.1} µs per compress, {:.1} µs per restore{written}",
        saved.len(),
        compressed.len(),
        micros(restoring, rounds)
    );
}

fn main() {
    let config = WasmHostConfig::default().with_max_rooms(16);
    let load = |name: &str| {
        let path = guests::example_wasm(name);
        WasmHostFactory::with_config(&path, config.clone()).expect("load")
    };
    let counter = load("counter-service");
    let durable = load("durable-counter");
    let wasm = wat::parse_str(MEBIBYTE_GUEST).expect("valid WAT");
    let mebibyte = WasmHostFactory::from_bytes(&wasm, config.clone()).expect("load");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let increments = ["increment"; 3];
        measure("counter-service", &counter, &increments).await;
        measure("durable-counter", &durable, &increments).await;
        measure("1 MiB guest (WAT)", &mebibyte, &[]).await;
    });
}
