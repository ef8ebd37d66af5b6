//! A guest that runs each message it receives as a little program of host calls, and the same
//! guest in Rust ([`Model`]), for the `guest_abi` target.
//!
//! A program is a sequence of 13-byte records `[op, a, b, c]` (`a`, `b`, `c` little-endian
//! `u32`s; a trailing partial record is ignored):
//!
//! | `op % 5` | the guest does |
//! |---|---|
//! | 0 | `send_message(recipient a, ptr b, len c)` |
//! | 1 | `send_binary(recipient a, ptr b, len c)` |
//! | 2 | `set_timer(a)` |
//! | 3 | stores `a` (4 bytes) at `b % (memory size - 3)` |
//! | 4 | grows its memory by `a % 8` pages |
//!
//! Records are read from guest memory as they run, so a store can rewrite the rest of the
//! program. The program has no loops, so a call cannot hang.

use jamsocket::abi::{decode_recipient, exports, imports, ABI_VERSION};
use jamsocket::MessageRecipient;
use jamsocket_wasm_host::GuestFailure;

/// The WebAssembly page size.
pub const PAGE: usize = 64 * 1024;
/// The memory limit the model assumes: the guest starts with one page and may grow to four.
pub const MAX_MEMORY: usize = 4 * PAGE;
/// The limit on bytes sent per call the model assumes; small, so the fuzzer reaches it.
pub const MAX_SENT: usize = 16 * 1024;
/// Where `jamsocket_buffer` puts every input.
pub const BUFFER: usize = 1024;
/// Bytes per program record.
pub const RECORD: usize = 13;
/// What `jamsocket_connect` sends the client, from the first data segment.
pub const GREETING: &str = "hello";
/// The guest's data segments: the greeting, multi-byte UTF-8, invalid and truncated UTF-8, and
/// bytes right at the end of the first page.
const DATA: [(usize, &[u8]); 4] = [
    (16, GREETING.as_bytes()),
    (32, "café € 😀".as_bytes()),
    (64, b"ok\xff\xfe ok \xe2\x82"),
    (PAGE - 4, b"end!"),
];

/// The guest's WAT text.
pub fn wat() -> String {
    let data: String = DATA
        .iter()
        .map(|(offset, bytes)| {
            let escaped: String = bytes.iter().map(|byte| format!("\\{byte:02x}")).collect();
            format!("(data (i32.const {offset}) \"{escaped}\")\n")
        })
        .collect();
    format!(
        r#"(module
  {imports}
  (memory (export "{memory}") 1)
  {data}
  (func (export "{abi_version}") (result i32) i32.const {ABI_VERSION})
  (func (export "{buffer}") (param i32) (result i32) i32.const {BUFFER})
  (func (export "{initialize}") (param i32 i32))
  (func (export "{connect}") (param $client i32)
    (call $send_message (local.get $client) (i32.const 16) (i32.const {greeting_len})))
  (func (export "{disconnect}") (param i32))
  (func (export "{message}") (param $client i32) (param $ptr i32) (param $len i32)
    (call $run (local.get $ptr) (local.get $len)))
  (func (export "{binary}") (param $client i32) (param $ptr i32) (param $len i32)
    (call $run (local.get $ptr) (local.get $len)))
  (func (export "{timer}"))

  ;; Runs the records in [at, at + len).
  (func $run (param $at i32) (param $len i32)
    (local $end i32) (local $a i32) (local $b i32) (local $c i32)
    (local.set $end (i32.add (local.get $at) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (i32.add (local.get $at) (i32.const {RECORD})) (local.get $end)))
        (local.set $a (i32.load offset=1 align=1 (local.get $at)))
        (local.set $b (i32.load offset=5 align=1 (local.get $at)))
        (local.set $c (i32.load offset=9 align=1 (local.get $at)))
        (block $op_done
          (block $grow
            (block $store
              (block $timer
                (block $binary
                  (block $message
                    (br_table $message $binary $timer $store $grow
                      (i32.rem_u (i32.load8_u (local.get $at)) (i32.const 5))))
                  (call $send_message (local.get $a) (local.get $b) (local.get $c))
                  (br $op_done))
                (call $send_binary (local.get $a) (local.get $b) (local.get $c))
                (br $op_done))
              (call $set_timer (local.get $a))
              (br $op_done))
            (i32.store align=1
              (i32.rem_u (local.get $b)
                (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 3)))
              (local.get $a))
            (br $op_done))
          (drop (memory.grow (i32.rem_u (local.get $a) (i32.const 8)))))
        (local.set $at (i32.add (local.get $at) (i32.const {RECORD})))
        (br $next))))
)"#,
        imports = crate::abi_imports_wat(),
        memory = exports::MEMORY,
        abi_version = exports::ABI_VERSION,
        buffer = exports::BUFFER,
        initialize = exports::INITIALIZE,
        connect = exports::CONNECT,
        disconnect = exports::DISCONNECT,
        message = exports::MESSAGE,
        binary = exports::BINARY,
        timer = exports::TIMER,
        greeting_len = GREETING.len(),
    )
}

/// The guest in Rust: its memory, and what the host should have recorded.
pub struct Model {
    memory: Vec<u8>,
    sent: usize,
    /// Text messages sent, oldest first.
    pub messages: Vec<(MessageRecipient, String)>,
    /// Binary messages sent, oldest first.
    pub binaries: Vec<(MessageRecipient, Vec<u8>)>,
    /// The last `set_timer` delay.
    pub timer: Option<u32>,
}

impl Model {
    /// A new room's guest: its data segments, then the room id, which `jamsocket_initialize`
    /// received in the buffer.
    pub fn new(room_id: &str) -> Self {
        let mut memory = vec![0; PAGE];
        for (offset, bytes) in DATA {
            memory[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
        memory[BUFFER..BUFFER + room_id.len()].copy_from_slice(room_id.as_bytes());
        Model {
            memory,
            sent: 0,
            messages: Vec::new(),
            binaries: Vec::new(),
            timer: None,
        }
    }

    /// Delivers `input` as a message to the export `export`. On failure, returns the export
    /// the host must blame and the failure.
    pub fn deliver(
        &mut self,
        export: &'static str,
        input: &[u8],
    ) -> Result<(), (&'static str, GuestFailure)> {
        let len = u32::try_from(input.len()).expect("fuzz inputs are small");
        if len == 0 {
            // The host passes (0, 0) without asking for a buffer.
            return Ok(());
        }
        if BUFFER + input.len() > self.memory.len() {
            let failure = GuestFailure::BadBuffer {
                ptr: BUFFER as u32,
                len,
                memory_size: self.memory.len(),
            };
            return Err((exports::BUFFER, failure));
        }
        self.memory[BUFFER..BUFFER + input.len()].copy_from_slice(input);
        let end = BUFFER + input.len();
        let mut at = BUFFER;
        while at + RECORD <= end {
            let op = self.memory[at];
            let [a, b, c] = [1, 5, 9].map(|offset| self.load(at + offset));
            self.step(op, a, b, c)
                .map_err(|failure| (export, failure))?;
            at += RECORD;
        }
        Ok(())
    }

    fn load(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.memory[at..at + 4].try_into().expect("four bytes"))
    }

    fn step(&mut self, op: u8, a: u32, b: u32, c: u32) -> Result<(), GuestFailure> {
        match op % 5 {
            0 => {
                let bytes = self.bytes(imports::SEND_MESSAGE, b, c)?;
                let text = String::from_utf8(bytes).map_err(|error| GuestFailure::InvalidUtf8 {
                    valid_up_to: error.utf8_error().valid_up_to(),
                })?;
                self.charge(text.len())?;
                self.messages.push((decode_recipient(a), text));
            }
            1 => {
                let bytes = self.bytes(imports::SEND_BINARY, b, c)?;
                self.charge(bytes.len())?;
                self.binaries.push((decode_recipient(a), bytes));
            }
            2 => self.timer = Some(a),
            3 => {
                let at = b as usize % (self.memory.len() - 3);
                self.memory[at..at + 4].copy_from_slice(&a.to_le_bytes());
            }
            _ => {
                let requested = self.memory.len() + (a % 8) as usize * PAGE;
                if requested > MAX_MEMORY {
                    return Err(GuestFailure::MemoryLimit {
                        limit: MAX_MEMORY,
                        requested,
                    });
                }
                self.memory.resize(requested, 0);
            }
        }
        Ok(())
    }

    /// The bytes an import reads, or the failure for a range outside memory.
    fn bytes(&self, import: &'static str, ptr: u32, len: u32) -> Result<Vec<u8>, GuestFailure> {
        let out_of_bounds = GuestFailure::OutOfBounds {
            import,
            ptr,
            len,
            memory_size: self.memory.len(),
        };
        let start = ptr as usize;
        let end = start
            .checked_add(len as usize)
            .ok_or(out_of_bounds.clone())?;
        Ok(self.memory.get(start..end).ok_or(out_of_bounds)?.to_vec())
    }

    fn charge(&mut self, len: usize) -> Result<(), GuestFailure> {
        let attempted = self.sent + len;
        if attempted > MAX_SENT {
            return Err(GuestFailure::SendLimit {
                limit: MAX_SENT,
                attempted,
            });
        }
        self.sent = attempted;
        Ok(())
    }
}
