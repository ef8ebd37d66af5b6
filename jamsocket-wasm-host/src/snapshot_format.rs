//! The bytes of a room snapshot, as [`WasmHost::snapshot`](crate::WasmHost) returns them and
//! [`WasmHostFactory::restore`](crate::WasmHostFactory) reads them back.
//!
//! ```text
//! magic        4 bytes   "JSWM"
//! version      u8        1
//! kind         u8        1 = memory image, 2 = explicit
//! module hash  32 bytes  SHA-256 of the module that took the snapshot
//! body         ...       by kind, below
//! crc32        u32 LE    CRC-32 (IEEE) of every byte before it
//!
//! explicit:     the bytes the guest's `jamsocket_snapshot` returned
//! memory image: pages   u32 LE  the linear memory's size in 64 KiB pages (at most 65536)
//!               globals u32 LE  how many exported mutable globals follow
//!               per global: name length u32 LE, name (UTF-8), type u8 (the wasm binary
//!                           code: 0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64, 0x7b v128),
//!                           value (4, 8, 4, 8 or 16 bytes, little-endian)
//!               bitmap  pages × 2 bytes: one bit per 4 KiB chunk of the memory (chunk i is
//!                       bytes i × 4096 up to (i + 1) × 4096), bit i in byte i / 8 at
//!                       i % 8 counted from the least significant bit: set if the chunk is stored
//!               data    4096 bytes per set bit, in increasing order of chunk
//! ```
//!
//! A memory image is sparse: it holds only the chunks that differ from the module's initial
//! memory (a fresh instance's: data segments applied, before any export ran), and, past the
//! initial memory's size, only the chunks that are not zero. Every chunk it leaves out equals
//! that initial memory, or zero.
//!
//! Integers are little-endian. Decoding never panics and never allocates by a count read from
//! the bytes: they come from a store and may be truncated or garbled.

use std::fmt;

/// The first bytes of every snapshot.
pub(crate) const MAGIC: [u8; 4] = *b"JSWM";
/// The format version written, and the only one read.
pub(crate) const VERSION: u8 = 1;
/// A wasm page.
pub(crate) const PAGE: usize = 64 * 1024;
/// The granularity of a memory image: an OS page. (64 KiB chunks, one per wasm page, made the
/// counter example's image 10 times larger, 3 times slower to compress and 6 times slower to
/// restore; see the README's *Snapshots*.)
pub(crate) const CHUNK: usize = 4 * 1024;
/// Chunks per wasm page.
const CHUNKS_PER_PAGE: usize = PAGE / CHUNK;
// A page's bits fill whole bytes of the bitmap, so no bit of it lies past the memory.
const _: () = assert!(CHUNKS_PER_PAGE.is_multiple_of(8));
/// The most pages a 32-bit memory has.
const MAX_PAGES: u32 = 65536;

const KIND_MEMORY: u8 = 1;
const KIND_EXPLICIT: u8 = 2;
const HEADER: usize = MAGIC.len() + 1 + 1 + 32;
const CRC: usize = 4;

/// The value of an exported mutable global, by wasm type. Floats are kept as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalValue {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
}

impl GlobalValue {
    /// The wasm binary type code.
    fn code(self) -> u8 {
        match self {
            GlobalValue::I32(_) => 0x7f,
            GlobalValue::I64(_) => 0x7e,
            GlobalValue::F32(_) => 0x7d,
            GlobalValue::F64(_) => 0x7c,
            GlobalValue::V128(_) => 0x7b,
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        out.push(self.code());
        match self {
            GlobalValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            GlobalValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            GlobalValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            GlobalValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            GlobalValue::V128(v) => out.extend_from_slice(&v.to_le_bytes()),
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, FormatError> {
        Ok(match reader.u8("a global's type")? {
            0x7f => GlobalValue::I32(i32::from_le_bytes(reader.array("an i32 global")?)),
            0x7e => GlobalValue::I64(i64::from_le_bytes(reader.array("an i64 global")?)),
            0x7d => GlobalValue::F32(u32::from_le_bytes(reader.array("an f32 global")?)),
            0x7c => GlobalValue::F64(u64::from_le_bytes(reader.array("an f64 global")?)),
            0x7b => GlobalValue::V128(u128::from_le_bytes(reader.array("a v128 global")?)),
            other => return Err(FormatError(format!("unknown global type {other:#04x}"))),
        })
    }
}

/// A decoded snapshot, borrowing its data from the bytes.
#[derive(Debug, PartialEq)]
pub(crate) struct Snapshot<'a> {
    /// SHA-256 of the module that took it.
    pub(crate) module_hash: [u8; 32],
    pub(crate) body: Body<'a>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Body<'a> {
    /// What the guest's `jamsocket_snapshot` returned.
    Explicit(&'a [u8]),
    /// The guest's exported mutable globals, the size of its linear memory, and the chunks of
    /// the memory that differ from the module's initial memory.
    Memory {
        /// The memory's size in 64 KiB pages (at most 65536).
        pages: u32,
        globals: Vec<(&'a str, GlobalValue)>,
        chunks: Chunks<'a>,
    },
}

/// The stored chunks of a memory image: a bitmap of one bit per chunk of the memory, and
/// `CHUNK` bytes per set bit (checked by [`decode`]).
#[derive(Debug, PartialEq)]
pub(crate) struct Chunks<'a> {
    bitmap: &'a [u8],
    data: &'a [u8],
}

impl<'a> Chunks<'a> {
    /// How many chunks are stored.
    pub(crate) fn len(&self) -> usize {
        self.data.len() / CHUNK
    }

    /// Each stored chunk: its index (chunk `i` starts at byte `i × CHUNK` of the memory) and
    /// its bytes, in increasing order of index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &'a [u8])> + 'a {
        let indexes = self
            .bitmap
            .iter()
            .enumerate()
            .flat_map(|(byte_index, &byte)| {
                (0..8)
                    .filter(move |bit| byte >> bit & 1 == 1)
                    .map(move |bit| byte_index * 8 + bit)
            });
        indexes.zip(self.data.chunks_exact(CHUNK))
    }
}

/// Why bytes are not a snapshot this host can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormatError(String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An explicit snapshot: the header, then `guest_bytes`.
pub(crate) fn encode_explicit(module_hash: &[u8; 32], guest_bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + guest_bytes.len() + CRC);
    write_header(&mut out, KIND_EXPLICIT, module_hash);
    out.extend_from_slice(guest_bytes);
    finish(out)
}

/// A memory image of `memory` (whole pages, as a wasm memory always is) holding its chunks
/// `changed` (strictly increasing chunk indexes, each inside `memory`), copied once, straight
/// into the result.
pub(crate) fn encode_memory(
    module_hash: &[u8; 32],
    globals: &[(&str, GlobalValue)],
    memory: &[u8],
    changed: &[u32],
) -> Vec<u8> {
    debug_assert_eq!(memory.len() % PAGE, 0, "a memory is whole pages");
    debug_assert!(
        changed.windows(2).all(|pair| pair[0] < pair[1]),
        "increasing"
    );
    let pages =
        u32::try_from(memory.len() / PAGE).expect("a 32-bit memory has at most 65536 pages");
    let globals_len: usize = globals
        .iter()
        .map(|(name, _)| 4 + name.len() + 1 + 16)
        .sum();
    let mut bitmap = vec![0u8; bitmap_len(pages)];
    for &index in changed {
        bitmap[index as usize / 8] |= 1 << (index % 8);
    }
    let chunks_len = changed.len() * CHUNK;
    let mut out = Vec::with_capacity(HEADER + 8 + globals_len + bitmap.len() + chunks_len + CRC);
    write_header(&mut out, KIND_MEMORY, module_hash);
    out.extend_from_slice(&pages.to_le_bytes());
    out.extend_from_slice(&len_u32(globals.len()).to_le_bytes());
    for (name, value) in globals {
        out.extend_from_slice(&len_u32(name.len()).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        value.write(&mut out);
    }
    out.extend_from_slice(&bitmap);
    for &index in changed {
        let start = index as usize * CHUNK;
        out.extend_from_slice(&memory[start..start + CHUNK]);
    }
    finish(out)
}

/// The bitmap's length for a memory of `pages`: a bit per chunk.
fn bitmap_len(pages: u32) -> usize {
    pages as usize * CHUNKS_PER_PAGE / 8
}

/// Export names and counts of a loaded module fit in 32 bits (wasmtime limits them far below).
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("a module's export names and counts fit in 32 bits")
}

fn write_header(out: &mut Vec<u8>, kind: u8, module_hash: &[u8; 32]) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(module_hash);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a snapshot, checking its magic, version, checksum and layout.
pub(crate) fn decode(bytes: &[u8]) -> Result<Snapshot<'_>, FormatError> {
    if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(FormatError(
            "it does not start with the `JSWM` magic bytes of a WebAssembly room snapshot"
                .to_string(),
        ));
    }
    if let Some(&version) = bytes.get(MAGIC.len()) {
        if version != VERSION {
            return Err(FormatError(format!(
                "it is in snapshot format version {version}; this host reads version {VERSION}"
            )));
        }
    }
    if bytes.len() < HEADER + CRC {
        return Err(FormatError(format!(
            "it is {} bytes, shorter than the {} bytes of an empty snapshot",
            bytes.len(),
            HEADER + CRC
        )));
    }
    let (content, crc) = bytes.split_at(bytes.len() - CRC);
    let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    let computed = crc32fast::hash(content);
    if stored != computed {
        return Err(FormatError(format!(
            "its checksum does not match (stored {stored:#010x}, computed {computed:#010x}): \
             the bytes were truncated or changed"
        )));
    }

    let mut reader = Reader(&content[MAGIC.len() + 1..]);
    let kind = reader.u8("the kind")?;
    let module_hash = reader.array("the module hash")?;
    let body = match kind {
        KIND_EXPLICIT => Body::Explicit(reader.0),
        KIND_MEMORY => decode_memory(&mut reader)?,
        other => return Err(FormatError(format!("unknown snapshot kind {other}"))),
    };
    Ok(Snapshot { module_hash, body })
}

/// A memory image's body (after the header, before the checksum).
fn decode_memory<'a>(reader: &mut Reader<'a>) -> Result<Body<'a>, FormatError> {
    let pages = u32::from_le_bytes(reader.array("the memory size")?);
    if pages > MAX_PAGES {
        return Err(FormatError(format!(
            "it announces {pages} pages of memory; a 32-bit memory has at most {MAX_PAGES}"
        )));
    }
    let count = u32::from_le_bytes(reader.array("the global count")?);
    let mut globals = Vec::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(reader.array("a global's name length")?);
        let name = std::str::from_utf8(reader.bytes(len as usize, "a global's name")?)
            .map_err(|_| FormatError("a global's name is not UTF-8".to_string()))?;
        globals.push((name, GlobalValue::read(reader)?));
    }

    // Every bit is a chunk inside the memory: the bitmap has no bits to spare.
    let bitmap = reader.bytes(bitmap_len(pages), "the chunk bitmap")?;
    let stored: u64 = bitmap.iter().map(|byte| u64::from(byte.count_ones())).sum();
    let stored_len = stored * CHUNK as u64;
    if stored_len != reader.0.len() as u64 {
        return Err(FormatError(format!(
            "its chunk bitmap marks {stored} chunks ({stored_len} bytes), but {} bytes of \
             chunks follow",
            reader.0.len()
        )));
    }
    Ok(Body::Memory {
        pages,
        globals,
        chunks: Chunks {
            bitmap,
            data: reader.0,
        },
    })
}

/// Reads from the front of a byte slice, naming what was missing when it runs out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, len: usize, what: &str) -> Result<&'a [u8], FormatError> {
        if len > self.0.len() {
            return Err(FormatError(format!("it ends inside {what}")));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], FormatError> {
        Ok(self.bytes(N, what)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self, what: &str) -> Result<u8, FormatError> {
        Ok(self.array::<1>(what)?[0])
    }
}

/// The first 8 hex digits of a hash, as messages show it.
pub(crate) fn short_hex(hash: &[u8; 32]) -> String {
    hash[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: [u8; 32] = [7; 32];

    /// Two pages with bytes set in chunks 0, 16 and 31, all three stored.
    fn memory() -> Vec<u8> {
        let mut memory = vec![0u8; 2 * PAGE];
        memory[5] = 1;
        memory[PAGE + 9] = 2;
        memory[2 * PAGE - 1] = 3;
        memory
    }

    const CHANGED: [u32; 3] = [0, 16, 31];

    fn memory_image() -> Vec<u8> {
        let globals = [
            ("counter", GlobalValue::I32(-3)),
            ("big", GlobalValue::I64(1 << 40)),
            ("pi", GlobalValue::F64(std::f64::consts::PI.to_bits())),
            ("half", GlobalValue::F32(0.5f32.to_bits())),
            ("lanes", GlobalValue::V128(u128::MAX - 1)),
        ];
        encode_memory(&HASH, &globals, &memory(), &CHANGED)
    }

    #[test]
    fn memory_images_round_trip() {
        let bytes = memory_image();
        let snapshot = decode(&bytes).unwrap();
        assert_eq!(snapshot.module_hash, HASH);
        let Body::Memory {
            pages,
            globals,
            chunks,
        } = snapshot.body
        else {
            panic!("a memory image");
        };
        assert_eq!(pages, 2);
        assert_eq!(globals[0], ("counter", GlobalValue::I32(-3)));
        assert_eq!(globals[4], ("lanes", GlobalValue::V128(u128::MAX - 1)));
        assert_eq!(globals.len(), 5);
        let memory = memory();
        assert_eq!(chunks.len(), 3);
        let stored: Vec<_> = chunks.iter().collect();
        assert_eq!(
            stored,
            [
                (0, &memory[..CHUNK]),
                (16, &memory[PAGE..PAGE + CHUNK]),
                (31, &memory[2 * PAGE - CHUNK..]),
            ]
        );
        assert_eq!(&bytes[..6], b"JSWM\x01\x01");
        let globals_len = 5 * (4 + 1) + "counterbigpihalflanes".len() + 4 + 8 + 8 + 4 + 16;
        assert_eq!(
            bytes.len(),
            HEADER + 4 + 4 + globals_len + 2 * 2 + 3 * CHUNK + CRC
        );
        // The bitmap: chunk 0 (bit 0 of byte 0), 16 (bit 0 of byte 2) and 31 (bit 7 of byte 3).
        let bitmap = bytes.len() - CRC - 3 * CHUNK - 4;
        assert_eq!(bytes[bitmap..bitmap + 4], [0x01, 0x00, 0x01, 0x80]);
    }

    #[test]
    fn an_image_may_hold_no_chunks() {
        let bytes = encode_memory(&HASH, &[], &[0; 3 * PAGE], &[]);
        assert_eq!(bytes.len(), HEADER + 8 + 3 * 2 + CRC);
        assert!(bytes[HEADER + 8..HEADER + 14].iter().all(|byte| *byte == 0));
        let Body::Memory {
            pages,
            globals,
            chunks,
        } = decode(&bytes).unwrap().body
        else {
            panic!("a memory image");
        };
        assert_eq!((pages, globals.len(), chunks.len()), (3, 0, 0));
        assert_eq!(chunks.iter().count(), 0);
    }

    #[test]
    fn explicit_snapshots_round_trip() {
        for guest in [&b""[..], b"{\"value\":3}"] {
            let bytes = encode_explicit(&HASH, guest);
            assert_eq!(bytes.len(), HEADER + guest.len() + CRC);
            let snapshot = decode(&bytes).unwrap();
            assert_eq!(
                snapshot,
                Snapshot {
                    module_hash: HASH,
                    body: Body::Explicit(guest)
                }
            );
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error() {
        for bytes in [memory_image(), encode_explicit(&HASH, b"state")] {
            // Every position in the header, the globals, the indexes and the checksum; a
            // sample of the chunks (each decode checksums the whole input).
            let positions =
                || (0..bytes.len()).filter(|i| *i < 400 || bytes.len() - i <= 8 || i % 97 == 0);
            for len in positions() {
                assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
            }
            for i in positions() {
                let mut garbled = bytes.clone();
                garbled[i] ^= 0x40;
                assert!(decode(&garbled).is_err(), "byte {i} flipped");
            }
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let message = |bytes: &[u8]| decode(bytes).unwrap_err().to_string();
        assert!(message(b"").contains("magic"));
        assert!(message(b"\0asm\x01\0\0\0").contains("magic"));
        assert!(message(b"JSWM\x02").contains("version 2"));
        assert!(message(b"JSWM\x01\x01").contains("shorter"));
        let mut bytes = encode_explicit(&HASH, b"x");
        bytes[5] = 9;
        let len = bytes.len();
        let crc = crc32fast::hash(&bytes[..len - CRC]);
        bytes[len - CRC..].copy_from_slice(&crc.to_le_bytes());
        assert!(message(&bytes).contains("unknown snapshot kind 9"));
        bytes.push(0);
        assert!(message(&bytes).contains("checksum"));
    }

    /// A memory image's body: `pages`, no globals, the chunk bitmap `bitmap`, then
    /// `data_chunks` chunks of data.
    fn image_body(pages: u32, bitmap: &[u8], data_chunks: usize) -> Vec<u8> {
        let mut body = pages.to_le_bytes().to_vec();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(bitmap);
        body.resize(body.len() + data_chunks * CHUNK, 0xab);
        body
    }

    /// Layout errors behind a valid checksum: counts and lengths that overrun the bytes, and
    /// bitmaps that do not match the chunks.
    #[test]
    fn lying_counts_and_bitmaps_are_errors_not_allocations() {
        let with_body = |body: &[u8]| {
            let mut out = Vec::new();
            write_header(&mut out, KIND_MEMORY, &HASH);
            out.extend_from_slice(body);
            finish(out)
        };
        let cases: [(Vec<u8>, &str); 10] = [
            (b"\0\0\0\0\xff\xff\xff\xff".to_vec(), "global's name length"),
            (
                b"\0\0\0\0\x01\0\0\0\xff\xff\xff\x7fname".to_vec(),
                "global's name",
            ),
            (
                b"\0\0\0\0\x01\0\0\0\x01\0\0\0a\x01".to_vec(),
                "unknown global type",
            ),
            (
                image_body(65537, &[], 0),
                "announces 65537 pages of memory; a 32-bit memory has at most 65536",
            ),
            (image_body(1, &[0xff], 0), "ends inside the chunk bitmap"),
            (
                image_body(65536, &[0xff; 1000], 0),
                "ends inside the chunk bitmap",
            ),
            (
                image_body(1, &[0x03, 0x00], 1),
                "marks 2 chunks (8192 bytes), but 4096 bytes of chunks follow",
            ),
            (image_body(1, &[0x00, 0x80], 2), "but 8192 bytes"),
            (
                image_body(1, &[0, 0], 1),
                "marks 0 chunks (0 bytes), but 4096",
            ),
            (image_body(0, &[], 1), "marks 0 chunks (0 bytes), but 4096"),
        ];
        for (body, expected) in cases {
            let error = decode(&with_body(&body)).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error} should contain {expected}"
            );
        }
        // The largest memory with its last chunk stored is fine.
        let mut bitmap = vec![0; 65536 * 2];
        bitmap[65536 * 2 - 1] = 0x80;
        let bytes = with_body(&image_body(65536, &bitmap, 1));
        let Body::Memory { chunks, .. } = decode(&bytes).unwrap().body else {
            panic!("a memory image");
        };
        let stored: Vec<_> = chunks.iter().map(|(index, _)| index).collect();
        assert_eq!(stored, [65536 * 16 - 1]);
    }

    #[test]
    fn random_bytes_are_errors() {
        // xorshift: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let len = (next() % 300) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 2 == 0 && len >= 6 {
                bytes[..6].copy_from_slice(b"JSWM\x01\x01");
            }
            assert!(decode(&bytes).is_err());
        }
    }

    #[test]
    fn hashes_are_shown_by_their_first_8_hex_digits() {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&[0xde, 0xad, 0x0b, 0xef]);
        assert_eq!(short_hex(&hash), "dead0bef");
    }
}
