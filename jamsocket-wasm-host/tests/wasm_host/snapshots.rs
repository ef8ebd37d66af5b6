//! Snapshots and restores: memory images of a guest without its own snapshot
//! (`counter-service`), the service's own snapshot across two builds (`durable-counter` and its
//! `v2`), and corrupt bytes, odd guests and limits (WAT).

use crate::common::{
    example_factory, example_wasm, guest_failure, room, test_config, within, LogCapture, Recorder,
    WatGuest,
};
use jamsocket::{
    ClientId, JamsocketService, JamsocketServiceFactory, MessageRecipient, RestoreError,
    ServiceError,
};
use jamsocket_wasm_host::{GuestFailure, WasmHost, WasmHostError, WasmHostFactory};
use std::time::Duration;

const PAGE: usize = 64 * 1024;
/// The granularity of a memory image.
const CHUNK: usize = 4 * 1024;
/// Magic, version, kind and module hash.
const HEADER: usize = 4 + 1 + 1 + 32;
const MEMORY_KIND: u8 = 1;
const EXPLICIT_KIND: u8 = 2;

fn client(id: u32) -> ClientId {
    ClientId::from(id)
}

async fn restore(
    factory: &WasmHostFactory,
    room_id: &str,
    bytes: &[u8],
) -> Result<(WasmHost, Recorder), RestoreError> {
    let recorder = Recorder::default();
    let host = within(factory.restore(room_id, recorder.clone(), bytes)).await?;
    Ok((host, recorder))
}

async fn snapshot(host: &mut WasmHost) -> Vec<u8> {
    within(host.snapshot())
        .await
        .expect("snapshot")
        .expect("a wasm room always has a snapshot")
}

async fn send(host: &mut WasmHost, message: &str) {
    within(host.message(client(1), message)).await.unwrap();
}

fn texts(recorder: &Recorder) -> Vec<String> {
    recorder
        .take_messages()
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

fn short(hash: [u8; 32]) -> String {
    hash[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The message of a `Corrupt` refusal, checking that it names the room.
fn corrupt(result: Result<(WasmHost, Recorder), RestoreError>, room_id: &str) -> String {
    match result {
        Err(RestoreError::Corrupt(cause)) => {
            let message = cause.to_string();
            assert!(message.contains(room_id), "{message} should name {room_id}");
            message
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, got a room"),
    }
}

/// The message of an `Unsupported` refusal, checking that it names the room.
fn unsupported(result: Result<(WasmHost, Recorder), RestoreError>, room_id: &str) -> String {
    match result {
        Err(RestoreError::Unsupported(cause)) => {
            let message = cause.to_string();
            assert!(message.contains(room_id), "{message} should name {room_id}");
            message
        }
        Err(other) => panic!("expected Unsupported, got {other}"),
        Ok(_) => panic!("expected Unsupported, got a room"),
    }
}

/// A snapshot written from the README's description of the format (not with the host's
/// encoder): `kind`, `module_hash`, then `body`, then the CRC-32.
fn encode(kind: u8, module_hash: [u8; 32], body: &[u8]) -> Vec<u8> {
    let mut bytes = b"JSWM\x01".to_vec();
    bytes.push(kind);
    bytes.extend_from_slice(&module_hash);
    bytes.extend_from_slice(body);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// A memory image body: a memory of `pages`, `i32` and `i64` globals, and the 4 KiB chunks
/// `chunks` (by index, in increasing order).
fn memory_body(
    pages: usize,
    globals: &[(&str, Global)],
    chunks: &[(usize, [u8; CHUNK])],
) -> Vec<u8> {
    let mut body = (pages as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&(globals.len() as u32).to_le_bytes());
    for (name, value) in globals {
        body.extend_from_slice(&(name.len() as u32).to_le_bytes());
        body.extend_from_slice(name.as_bytes());
        match value {
            Global::I32(value) => {
                body.push(0x7f);
                body.extend_from_slice(&value.to_le_bytes());
            }
            Global::I64(value) => {
                body.push(0x7e);
                body.extend_from_slice(&value.to_le_bytes());
            }
        }
    }
    let mut bitmap = vec![0u8; pages * PAGE / CHUNK / 8];
    for (index, _) in chunks {
        bitmap[index / 8] |= 1 << (index % 8);
    }
    body.extend_from_slice(&bitmap);
    for (_, chunk) in chunks {
        body.extend_from_slice(chunk);
    }
    body
}

/// A global's value in [`memory_body`].
#[derive(Clone, Copy)]
enum Global {
    I32(i32),
    I64(i64),
}

/// The layout of a memory image without globals (checked against its length): its pages and
/// the indexes of its stored chunks.
fn image_chunks(image: &[u8], globals_len: usize) -> (usize, Vec<usize>) {
    let pages_at = HEADER;
    let pages = u32::from_le_bytes(image[pages_at..pages_at + 4].try_into().unwrap()) as usize;
    let bitmap_at = HEADER + 8 + globals_len;
    let bitmap = &image[bitmap_at..bitmap_at + pages * 2];
    let stored: Vec<usize> = (0..pages * 16)
        .filter(|index| bitmap[index / 8] >> (index % 8) & 1 == 1)
        .collect();
    assert_eq!(
        image.len(),
        bitmap_at + pages * 2 + stored.len() * CHUNK + 4
    );
    (pages, stored)
}

/// `(pages, chunks_written)` of the last "restored a memory image" line in the log.
fn chunks_written(log: &LogCapture) -> (usize, usize) {
    let line = log
        .lines_with(&["restored a memory image"])
        .pop()
        .expect("a restore logged");
    let field = |name: &str| -> usize {
        let start = line.find(&format!(" {name}=")).expect(name) + name.len() + 2;
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    (field("pages"), field("chunks_written"))
}

#[tokio::test]
async fn a_counter_restored_from_its_memory_image_continues_the_count() {
    let factory = example_factory("counter-service");
    let (mut counter, sent) = room(&factory, "durable-room").await;
    for _ in 0..3 {
        send(&mut counter, "increment").await;
    }
    assert_eq!(texts(&sent).last().unwrap(), "new value: 3");

    let saved = snapshot(&mut counter).await;
    // A memory image (the counter keeps no snapshot of its own) of this very module, with no
    // globals: the header, the page count, a zero global count, the chunk bitmap, the chunks
    // that changed since the instance was created, the checksum.
    assert_eq!(&saved[..6], b"JSWM\x01\x01");
    assert_eq!(saved[6..HEADER], factory.module_hash());
    assert_eq!(saved[HEADER + 4..HEADER + 8], [0; 4]);
    let (pages, stored) = image_chunks(&saved, 0);
    // The counter changes a few 4 KiB chunks of its 17 pages (the stack, the heap, its state).
    assert!(pages >= 17, "{pages}");
    assert!(!stored.is_empty() && stored.len() <= 8, "{stored:?}");

    let log = LogCapture::start();
    let (mut restored, restored_sent) = restore(&factory, "durable-room", &saved).await.unwrap();
    // Only the stored chunks are written; the rest stay shared with the module's copy-on-write
    // image.
    assert_eq!(chunks_written(&log), (pages, stored.len()));
    // Nothing ran in between: the restored room's memory and image are the saved ones.
    assert_eq!(snapshot(&mut restored).await, saved);

    send(&mut restored, "increment").await;
    assert_eq!(texts(&restored_sent), ["new value: 4"]);
    // The original goes on by itself.
    send(&mut counter, "decrement").await;
    assert_eq!(texts(&sent).last().unwrap(), "new value: 2");
    // A snapshot can be restored again, into as many rooms as wanted.
    let (mut again, again_sent) = restore(&factory, "durable-room", &saved).await.unwrap();
    send(&mut again, "increment").await;
    assert_eq!(texts(&again_sent), ["new value: 4"]);
}

#[tokio::test]
async fn a_memory_image_is_refused_by_a_changed_module() {
    let counter = example_factory("counter-service");
    let other = example_factory("durable-counter");
    let (mut room_before, _) = room(&counter, "moved-room").await;
    let saved = snapshot(&mut room_before).await;
    assert_eq!(saved[5], MEMORY_KIND);

    let message = unsupported(restore(&other, "moved-room", &saved).await, "moved-room");
    assert!(message.contains(&short(counter.module_hash())), "{message}");
    assert!(message.contains(&short(other.module_hash())), "{message}");
    assert!(message.contains("module changed"), "{message}");
}

#[tokio::test]
async fn the_durable_counter_s_own_snapshot_survives_a_code_change() {
    let v1 = example_factory("durable-counter");
    let v2 = example_factory("durable-counter-v2");
    assert_ne!(v1.module_hash(), v2.module_hash());

    let (mut before, sent) = room(&v1, "shared").await;
    within(before.connect(client(1))).await.unwrap();
    send(&mut before, "increment").await;
    send(&mut before, "increment").await;
    assert_eq!(
        texts(&sent),
        ["new value: 0", "new value: 1", "new value: 2"]
    );
    let saved = snapshot(&mut before).await;
    assert_eq!(saved[5], EXPLICIT_KIND);
    assert_eq!(saved[6..HEADER], v1.module_hash());
    // `Durable`'s format: a version byte, then the JSON of the counter.
    assert_eq!(&saved[HEADER..saved.len() - 4], b"\x01{\"value\":2}");

    let (mut after, after_sent) = restore(&v2, "shared", &saved).await.unwrap();
    within(after.connect(client(2))).await.unwrap();
    send(&mut after, "increment").await;
    assert_eq!(texts(&after_sent), ["count: 2", "count: 3"]);

    // And back.
    let saved = snapshot(&mut after).await;
    let (mut back, back_sent) = restore(&v1, "shared", &saved).await.unwrap();
    send(&mut back, "decrement").await;
    assert_eq!(texts(&back_sent), ["new value: 2"]);
}

#[tokio::test]
async fn a_service_s_own_snapshot_needs_a_service_that_reads_it() {
    let durable = example_factory("durable-counter");
    let (mut counter, _) = room(&durable, "r1").await;
    let saved = snapshot(&mut counter).await;

    // counter-service has `jamsocket_restore` (every `#[jamsocket_wasm]` module does), but its
    // service keeps no snapshots.
    let plain = example_factory("counter-service");
    let message = unsupported(restore(&plain, "r1", &saved).await, "r1");
    assert!(message.contains("cannot read snapshots"), "{message}");

    // A module without the export.
    let wat = WatGuest::default().factory();
    let message = unsupported(restore(&wat, "r1", &saved).await, "r1");
    assert!(message.contains("no `jamsocket_restore`"), "{message}");

    // Bytes in the right frame that the service cannot decode: the guest says corrupt.
    let garbled = encode(EXPLICIT_KIND, durable.module_hash(), b"\x01{\"value\":");
    let message = corrupt(restore(&durable, "r1", &garbled).await, "r1");
    assert!(
        message.contains("reports the snapshot corrupt"),
        "{message}"
    );
}

#[tokio::test]
async fn corrupt_snapshots_are_refused_without_a_panic() {
    let durable = example_factory("durable-counter");
    let (mut counter, _) = room(&durable, "c").await;
    send(&mut counter, "increment").await;
    let explicit = snapshot(&mut counter).await;

    // Every truncation and every flipped byte of the service's own snapshot.
    for len in 0..explicit.len() {
        corrupt(restore(&durable, "c", &explicit[..len]).await, "c");
    }
    for i in 0..explicit.len() {
        let mut garbled = explicit.clone();
        garbled[i] ^= 0x01;
        corrupt(restore(&durable, "c", &garbled).await, "c");
    }

    // Truncations and flipped bytes of a memory image: every one in the header, the bitmap
    // and the checksum, a sample of those in the chunks.
    let counter_factory = example_factory("counter-service");
    let (mut plain, _) = room(&counter_factory, "m").await;
    send(&mut plain, "increment").await;
    let image = snapshot(&mut plain).await;
    let (pages, stored) = image_chunks(&image, 0);
    assert!(!stored.is_empty());
    let chunks_at = HEADER + 8 + pages * 2;
    let positions = (0..image.len())
        .filter(|i| *i < chunks_at + 8 || image.len() - i <= 8 || i % 241 == 0)
        .collect::<Vec<_>>();
    for &len in &positions {
        let message = corrupt(restore(&counter_factory, "m", &image[..len]).await, "m");
        assert!(message.contains("corrupt"), "{message}");
    }
    for &i in &positions {
        let mut garbled = image.clone();
        garbled[i] ^= 0x08;
        corrupt(restore(&counter_factory, "m", &garbled).await, "m");
    }

    // Random bytes, some behind a valid-looking header.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        let len = (next() % 400) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && len >= 6 {
            bytes[..6].copy_from_slice(b"JSWM\x01\x01");
        }
        corrupt(restore(&counter_factory, "x", &bytes).await, "x");
    }

    // The factory still builds and restores rooms.
    let (mut fine, fine_sent) = restore(&durable, "c", &explicit).await.unwrap();
    send(&mut fine, "increment").await;
    assert_eq!(texts(&fine_sent), ["new value: 2"]);
}

#[tokio::test]
async fn memory_images_that_do_not_fit_the_module_are_corrupt() {
    let path = example_wasm("counter-service");
    let factory = WasmHostFactory::with_config(&path, test_config().with_max_memory_bytes(2 << 20))
        .expect("load");
    let hash = factory.module_hash();
    let mut more_bits_than_chunks = memory_body(17, &[], &[(3, [1; CHUNK])]);
    more_bits_than_chunks[8] |= 0x80;
    let cases = [
        (
            MEMORY_KIND,
            memory_body(40, &[], &[]),
            "over the limit of 2097152 bytes",
        ),
        (
            MEMORY_KIND,
            memory_body(17, &[("nope", Global::I32(1))], &[]),
            "global `nope`",
        ),
        (
            MEMORY_KIND,
            memory_body(1, &[], &[(15, [1; CHUNK])]),
            "smaller than the module's initial",
        ),
        (
            MEMORY_KIND,
            more_bits_than_chunks,
            "marks 2 chunks (8192 bytes), but 4096 bytes of chunks follow",
        ),
        (
            MEMORY_KIND,
            memory_body(70_000, &[], &[]),
            "announces 70000 pages",
        ),
        (9, Vec::new(), "unknown snapshot kind 9"),
    ];
    for (kind, body, expected) in cases {
        let bytes = encode(kind, hash, &body);
        let message = corrupt(restore(&factory, "misfit", &bytes).await, "misfit");
        assert!(
            message.contains(expected),
            "{message} should contain {expected}"
        );
    }
}

/// A guest with exported mutable globals: each message counts in both and replies with their
/// values (12 bytes); the timer grows the memory by two pages and writes to the last one.
fn counting_guest() -> WatGuest {
    WatGuest::default()
        .extra(r#"(global $count (export "count") (mut i32) (i32.const 0))"#)
        .extra(r#"(global $wide (export "wide") (mut i64) (i64.const 0))"#)
        .body(
            "jamsocket_message",
            "(global.set $count (i32.add (global.get $count) (i32.const 1)))
             (global.set $wide (i64.add (global.get $wide) (i64.const 0x100000000)))
             (i32.store (i32.const 32) (global.get $count))
             (i64.store (i32.const 36) (global.get $wide))
             (call $send_binary (local.get $client) (i32.const 32) (i32.const 12))",
        )
        .body(
            "jamsocket_timer",
            "(drop (memory.grow (i32.const 2)))
             (i32.store (i32.const 131080) (i32.const 77))",
        )
}

fn counts(recorder: &Recorder) -> Vec<(i32, i64)> {
    recorder
        .take_binaries()
        .into_iter()
        .map(|(_, bytes)| {
            let count = i32::from_le_bytes(bytes[..4].try_into().unwrap());
            let wide = i64::from_le_bytes(bytes[4..12].try_into().unwrap());
            (count, wide)
        })
        .collect()
}

#[tokio::test]
async fn exported_mutable_globals_and_grown_memory_round_trip() {
    let factory = counting_guest().factory();
    let (mut guest, sent) = room(&factory, "globals").await;
    send(&mut guest, "a").await;
    send(&mut guest, "b").await;
    within(guest.timer()).await.unwrap();
    assert_eq!(counts(&sent), [(1, 1 << 32), (2, 2 << 32)]);

    let saved = snapshot(&mut guest).await;
    assert_eq!(saved[5], MEMORY_KIND);
    assert_eq!(saved[HEADER..HEADER + 8], [3, 0, 0, 0, 2, 0, 0, 0]);
    // The globals: "count" (i32) and "wide" (i64), each with its name's length and type.
    let globals_len = (4 + 5 + 1 + 4) + (4 + 4 + 1 + 8);
    // Chunk 0 (the message buffer at 1024, the reply written at 32) and chunk 32 (the timer's
    // 77 at 131080, in the grown memory); the rest of the grown memory is zero, so not stored.
    assert_eq!(image_chunks(&saved, globals_len), (3, vec![0, 32]));

    let log = LogCapture::start();
    let (mut restored, restored_sent) = restore(&factory, "globals", &saved).await.unwrap();
    assert_eq!(chunks_written(&log), (3, 2));
    assert_eq!(snapshot(&mut restored).await, saved);
    send(&mut restored, "c").await;
    assert_eq!(counts(&restored_sent), [(3, 3 << 32)]);

    // Globals the module has but the image lacks, or of another type, are corrupt.
    let hash = factory.module_hash();
    for (globals, expected) in [
        (
            &[("count", Global::I32(1))][..],
            "no value for global `wide`",
        ),
        (
            &[("count", Global::I32(1)), ("wide", Global::I32(2))][..],
            "of type i64",
        ),
    ] {
        let bytes = encode(MEMORY_KIND, hash, &memory_body(3, globals, &[]));
        let message = corrupt(restore(&factory, "globals", &bytes).await, "globals");
        assert!(message.contains(expected), "{message}");
    }
}

/// An image written from the README's description (not by the host) is restored exactly: its
/// globals, its stored chunks, and everything else as the module starts.
#[tokio::test]
async fn a_hand_written_memory_image_is_restored_chunk_by_chunk() {
    let factory = counting_guest().factory();
    let mut grown = [0u8; CHUNK];
    grown[131080 % CHUNK..][..4].copy_from_slice(&5i32.to_le_bytes());
    let body = memory_body(
        3,
        &[("count", Global::I32(41)), ("wide", Global::I64(9 << 32))],
        &[(32, grown), (47, [0x5a; CHUNK])],
    );
    let bytes = encode(MEMORY_KIND, factory.module_hash(), &body);
    let log = LogCapture::start();
    let (mut restored, sent) = restore(&factory, "crafted", &bytes).await.unwrap();
    assert_eq!(chunks_written(&log), (3, 2));
    send(&mut restored, "m").await;
    assert_eq!(counts(&sent), [(42, 10 << 32)]);
    // The guest wrote chunk 0 (its reply, the message); chunks 32 and 47 are as restored.
    let globals_len = (4 + 5 + 1 + 4) + (4 + 4 + 1 + 8);
    let saved = snapshot(&mut restored).await;
    assert_eq!(image_chunks(&saved, globals_len), (3, vec![0, 32, 47]));
    let chunk = |n: usize| {
        let at = saved.len() - 4 - (3 - n) * CHUNK;
        &saved[at..at + CHUNK]
    };
    assert_eq!(chunk(1), grown);
    assert_eq!(chunk(2), [0x5a; CHUNK]);
}

/// A chunk that the guest set back to zero differs from the module's data segment there, so it
/// is stored, and restored as zero.
#[tokio::test]
async fn a_chunk_the_guest_zeroed_is_stored() {
    let factory = WatGuest::default()
        .memory(r#"(memory (export "memory") 2)"#)
        .extra(r#"(data (i32.const 70000) "hello")"#)
        .body(
            "jamsocket_message",
            "(call $send_message (local.get $client) (i32.const 70000) (i32.const 5))",
        )
        .body(
            "jamsocket_timer",
            "(i32.store (i32.const 70000) (i32.const 0)) (i32.store8 (i32.const 70004) (i32.const 0))",
        )
        .factory();
    let (mut guest, sent) = room(&factory, "zeroed").await;
    send(&mut guest, "a").await;
    assert_eq!(texts(&sent), ["hello"]);
    let fresh = snapshot(&mut guest).await;
    // Only chunk 0 (the message buffer at 1024); the data segment's chunk 17 is as it started.
    assert_eq!(image_chunks(&fresh, 0), (2, vec![0]));

    within(guest.timer()).await.unwrap();
    let saved = snapshot(&mut guest).await;
    assert_eq!(image_chunks(&saved, 0), (2, vec![0, 17]));
    let (mut restored, restored_sent) = restore(&factory, "zeroed", &saved).await.unwrap();
    send(&mut restored, "b").await;
    assert_eq!(texts(&restored_sent), ["\0\0\0\0\0"]);
    // The fresh image restores the data segment.
    let (mut again, again_sent) = restore(&factory, "zeroed", &fresh).await.unwrap();
    send(&mut again, "c").await;
    assert_eq!(texts(&again_sent), ["hello"]);
}

/// A guest whose `jamsocket_snapshot` has `body` (returning an `i64`), with a `jamsocket_restore`
/// that broadcasts the frame it receives and returns `status`.
fn snapshotting_guest(body: &str, status: i32) -> WatGuest {
    WatGuest::default()
        .extra(&format!(
            r#"(func (export "jamsocket_snapshot") (result i64) {body})"#
        ))
        .extra(&format!(
            r#"(func (export "jamsocket_restore") (param $ptr i32) (param $len i32) (result i32)
                 (call $send_binary (i32.const 0) (local.get $ptr) (local.get $len))
                 i32.const {status})"#
        ))
}

#[tokio::test]
async fn the_guest_s_snapshot_export_is_called_like_any_other() {
    // (ptr 16, len 2): the "ok" of the guest's data segment.
    let factory = snapshotting_guest("i64.const 0x10_0000_0002", 0).factory();
    let (mut guest, _) = room(&factory, "explicit").await;
    let saved = snapshot(&mut guest).await;
    assert_eq!(saved[5], EXPLICIT_KIND);
    assert_eq!(&saved[HEADER..saved.len() - 4], b"ok");
    // The restore export gets the room id's length, the room id, then the snapshot.
    let (_, restored_sent) = restore(&factory, "explicit", &saved).await.unwrap();
    assert_eq!(
        restored_sent.take_binaries(),
        [(
            MessageRecipient::Broadcast,
            b"\x08\0\0\0explicitok".to_vec()
        )]
    );

    // -1: no snapshot of its own, so a memory image.
    let factory = snapshotting_guest("i64.const -1", 0).factory();
    let (mut guest, _) = room(&factory, "image").await;
    assert_eq!(snapshot(&mut guest).await[5], MEMORY_KIND);

    // A statuses outside the ABI fails the restore like a trap.
    let factory = snapshotting_guest("i64.const 0x10_0000_0002", 7).factory();
    let (mut guest, _) = room(&factory, "status").await;
    let saved = snapshot(&mut guest).await;
    match restore(&factory, "status", &saved).await {
        Err(RestoreError::Service(error)) => {
            let failure = guest_failure(&error, "status", "jamsocket_restore");
            assert!(
                matches!(failure, GuestFailure::BadReturn { value: 7, .. }),
                "{failure}"
            );
        }
        other => panic!("expected a failed restore, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn a_failing_snapshot_export_fails_the_room() {
    let cases = [
        ("unreachable", "trapped"),
        (
            "i64.const 0x10_0001_0000",
            "not inside the guest's 65536-byte memory",
        ),
        ("(loop (br 0)) i64.const -1", "CPU time"),
    ];
    for (body, expected) in cases {
        let factory = snapshotting_guest(body, 0)
            .load(test_config().with_cpu_time_per_call(Duration::from_millis(100)))
            .unwrap();
        let (mut guest, _) = room(&factory, "failing").await;
        let error = within(guest.snapshot()).await.unwrap_err();
        let failure = guest_failure(&error, "failing", "jamsocket_snapshot");
        assert!(failure.to_string().contains(expected), "{failure}");
        // The room is closed: later calls, and snapshots, are refused.
        let refused = within(guest.message(client(1), "hi")).await.unwrap_err();
        assert!(refused.to_string().contains("already failed"), "{refused}");
        let refused = within(guest.snapshot()).await.unwrap_err();
        assert!(refused.to_string().contains("already failed"), "{refused}");
    }
}

#[tokio::test]
async fn a_failed_room_has_no_memory_image() {
    let factory = WatGuest::default()
        .body("jamsocket_message", "unreachable")
        .factory();
    let (mut guest, _) = room(&factory, "broken").await;
    assert!(within(guest.message(client(1), "x")).await.is_err());
    let error = within(guest.snapshot()).await.unwrap_err();
    assert!(error.to_string().contains("already failed"), "{error}");
}

#[tokio::test]
async fn restoring_past_the_room_limit_is_unavailable() {
    for guest in [
        WatGuest::default(),
        snapshotting_guest("i64.const 0x10_0000_0002", 0),
    ] {
        let factory = guest.load(test_config().with_max_rooms(1)).unwrap();
        let (mut only, _) = room(&factory, "only").await;
        let saved = snapshot(&mut only).await;
        match restore(&factory, "second", &saved).await {
            Err(RestoreError::Service(ServiceError::Unavailable(cause))) => {
                assert!(cause.to_string().contains("second"), "{cause}");
            }
            other => panic!("expected Unavailable, got {:?}", other.err()),
        }
    }
}

#[test]
fn optional_exports_with_the_wrong_signature_are_refused_at_load() {
    let cases = [
        (
            WatGuest::default()
                .extra(r#"(func (export "jamsocket_snapshot") (result i32) i32.const 0)"#),
            "jamsocket_snapshot",
            "a function () -> (i64)",
        ),
        (
            WatGuest::default().extra(
                r#"(func (export "jamsocket_restore") (param i32) (result i32) i32.const 0)"#,
            ),
            "jamsocket_restore",
            "a function (i32, i32) -> (i32)",
        ),
    ];
    for (guest, name, signature) in cases {
        match guest.load(test_config()) {
            Err(WasmHostError::ExportSignature {
                export, expected, ..
            }) => {
                assert_eq!(export, name);
                assert_eq!(expected, signature);
            }
            other => panic!("{name}: expected a signature error, got {other:?}"),
        }
    }
}
