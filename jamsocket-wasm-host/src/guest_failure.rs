use std::time::Duration;

/// What went wrong in a guest call. Carried by
/// [`WasmHostError::GuestFailed`](crate::WasmHostError::GuestFailed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestFailure {
    /// The call ran for longer than its CPU time budget.
    #[error("the guest used more than {limit:?} of CPU time in one call (the per-call limit)")]
    CpuLimit {
        /// [`WasmHostConfig::cpu_time_per_call`](crate::WasmHostConfig::cpu_time_per_call).
        limit: Duration,
    },

    /// The guest tried to grow its memory past the per-instance limit.
    #[error(
        "the guest tried to grow its memory to {requested} bytes, over the limit of {limit} bytes"
    )]
    MemoryLimit {
        /// [`WasmHostConfig::max_memory_bytes`](crate::WasmHostConfig::max_memory_bytes).
        limit: usize,
        /// The size it asked for.
        requested: usize,
    },

    /// The guest sent more bytes in one call than allowed.
    #[error(
        "the guest tried to send more than {limit} bytes in one call (sent {attempted} bytes)"
    )]
    SendLimit {
        /// [`WasmHostConfig::max_sent_bytes_per_call`](crate::WasmHostConfig::max_sent_bytes_per_call).
        limit: usize,
        /// The total including the refused message.
        attempted: usize,
    },

    /// The guest passed a `(ptr, len)` outside its memory to an import (for `user`, the
    /// `(ptr, cap)` of its buffer).
    #[error("the guest passed (ptr {ptr:#x}, len {len}) to `{import}`, outside its {memory_size}-byte memory")]
    OutOfBounds {
        /// The import.
        import: &'static str,
        /// The pointer.
        ptr: u32,
        /// The length.
        len: u32,
        /// The memory's size when it was called.
        memory_size: usize,
    },

    /// `jamsocket_buffer` returned a buffer that does not fit in the guest's memory.
    #[error("`jamsocket_buffer({len})` returned pointer {ptr:#x}, which does not fit in the guest's {memory_size}-byte memory")]
    BadBuffer {
        /// The pointer returned.
        ptr: u32,
        /// The length asked for.
        len: u32,
        /// The memory's size.
        memory_size: usize,
    },

    /// An export returned a value the ABI does not allow: a `jamsocket_snapshot` or
    /// `jamsocket_request` `(ptr, len)` outside the guest's memory, a `jamsocket_request`
    /// response that does not decode (shorter than its status, or a status outside
    /// `100..=599`), or an unknown `jamsocket_restore` status.
    #[error("`{export}` returned {value:#x}, which {problem}")]
    BadReturn {
        /// The export.
        export: &'static str,
        /// What it returned.
        value: i64,
        /// Why the value is wrong.
        problem: String,
    },

    /// The input does not fit in the ABI's 32-bit length.
    #[error("the input is {len} bytes, more than a 32-bit guest can address")]
    InputTooLarge {
        /// The input's length.
        len: usize,
    },

    /// The guest passed text that is not UTF-8 to `send_message`.
    #[error("the guest passed text to `send_message` that is not valid UTF-8 (invalid at byte {valid_up_to})")]
    InvalidUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },

    /// The guest tried to sleep (WASI `poll_oneoff`, e.g. `std::thread::sleep`), which would
    /// block its room.
    #[error("the guest called WASI `poll_oneoff` (e.g. `std::thread::sleep`), which Jamsocket guests cannot use: set a timer with the context's `set_timer` instead")]
    Sleep,

    /// The guest called WASI `proc_exit`.
    #[error("the guest exited with status {code}")]
    Exit {
        /// The exit status.
        code: i32,
    },

    /// The guest trapped. A Rust guest traps with `unreachable` when it panics; its panic message
    /// is in the log (the guest's stderr, tagged with the room id).
    #[error("the guest trapped: {trap}")]
    Trap {
        /// The trap.
        trap: wasmtime::Trap,
    },

    /// A call was abandoned (its future dropped) before it finished, so the guest may be in an
    /// inconsistent state.
    #[error(
        "an earlier call was cancelled before it finished, leaving the guest in an unknown state"
    )]
    Cancelled,

    /// Anything else wasmtime reported.
    #[error("{message}")]
    Other {
        /// wasmtime's error, with its causes.
        message: String,
    },
}

impl GuestFailure {
    /// Every [`kind`](Self::kind), in the order of the variants.
    pub(crate) const KINDS: [&'static str; 13] = [
        "cpu_limit",
        "memory_limit",
        "send_limit",
        "out_of_bounds",
        "bad_buffer",
        "bad_return",
        "input_too_large",
        "invalid_utf8",
        "sleep",
        "exit",
        "trap",
        "cancelled",
        "other",
    ];

    /// The kind of failure, in snake case (`"trap"`, `"cpu_limit"`, ...): the variant's name,
    /// one of a small fixed set. The `kind` label of the `jamsocket_guest_failures_total` metric
    /// (see [`HostMetrics`](crate::HostMetrics)).
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }

    /// The position of [`kind`](Self::kind) in [`KINDS`](Self::KINDS).
    pub(crate) fn kind_index(&self) -> usize {
        match self {
            GuestFailure::CpuLimit { .. } => 0,
            GuestFailure::MemoryLimit { .. } => 1,
            GuestFailure::SendLimit { .. } => 2,
            GuestFailure::OutOfBounds { .. } => 3,
            GuestFailure::BadBuffer { .. } => 4,
            GuestFailure::BadReturn { .. } => 5,
            GuestFailure::InputTooLarge { .. } => 6,
            GuestFailure::InvalidUtf8 { .. } => 7,
            GuestFailure::Sleep => 8,
            GuestFailure::Exit { .. } => 9,
            GuestFailure::Trap { .. } => 10,
            GuestFailure::Cancelled => 11,
            GuestFailure::Other { .. } => 12,
        }
    }

    /// Finds the failure behind an error returned by a guest call.
    pub(crate) fn from_error(error: &wasmtime::Error) -> GuestFailure {
        if let Some(failure) = error.downcast_ref::<GuestFailure>() {
            failure.clone()
        } else if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            GuestFailure::Exit { code: exit.0 }
        } else if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
            GuestFailure::Trap { trap: *trap }
        } else {
            GuestFailure::Other {
                message: format!("{:#}", error.root_cause()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_own_snake_case_kind() {
        let failures = [
            GuestFailure::CpuLimit {
                limit: Duration::ZERO,
            },
            GuestFailure::MemoryLimit {
                limit: 0,
                requested: 0,
            },
            GuestFailure::SendLimit {
                limit: 0,
                attempted: 0,
            },
            GuestFailure::OutOfBounds {
                import: "send_message",
                ptr: 0,
                len: 0,
                memory_size: 0,
            },
            GuestFailure::BadBuffer {
                ptr: 0,
                len: 0,
                memory_size: 0,
            },
            GuestFailure::BadReturn {
                export: "jamsocket_request",
                value: 0,
                problem: String::new(),
            },
            GuestFailure::InputTooLarge { len: 0 },
            GuestFailure::InvalidUtf8 { valid_up_to: 0 },
            GuestFailure::Sleep,
            GuestFailure::Exit { code: 1 },
            GuestFailure::Trap {
                trap: wasmtime::Trap::UnreachableCodeReached,
            },
            GuestFailure::Cancelled,
            GuestFailure::Other {
                message: String::new(),
            },
        ];
        let kinds: Vec<_> = failures.iter().map(GuestFailure::kind).collect();
        assert_eq!(kinds, GuestFailure::KINDS);
        for kind in kinds {
            assert!(
                kind.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{kind}"
            );
        }
        assert_eq!(failures[10].kind(), "trap");
    }
}
