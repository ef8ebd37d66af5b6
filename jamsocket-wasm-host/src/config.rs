use crate::WasmHostError;
use std::time::Duration;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The WebAssembly page size.
const PAGE: usize = 64 * 1024;

/// Guard region after each linear memory. Linear memories are reserved at their limit (not
/// 4 GiB), so accesses are bounds-checked; the guard lets the compiler fold checks of nearby
/// constant offsets.
const MEMORY_GUARD_BYTES: u64 = 2 << 20;

/// Limits and sizing of a [`WasmHostFactory`](crate::WasmHostFactory).
///
/// ```
/// use jamsocket_wasm_host::WasmHostConfig;
/// use std::time::Duration;
///
/// let config = WasmHostConfig::default()
///     .with_max_memory_bytes(16 << 20)
///     .with_cpu_time_per_call(Duration::from_millis(200))
///     .with_max_rooms(1_000);
/// assert_eq!(config.max_memory_bytes(), 16 << 20);
/// assert_eq!(config.time_slice(), Duration::from_millis(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmHostConfig {
    max_memory_bytes: usize,
    cpu_time_per_call: Duration,
    max_rooms: u32,
    time_slice: Duration,
    max_sent_bytes_per_call: usize,
    guest_output_lines_per_sec: u32,
    guest_output_lines_per_sec_total: u32,
    max_guest_output_line_bytes: usize,
}

impl Default for WasmHostConfig {
    fn default() -> Self {
        WasmHostConfig {
            max_memory_bytes: 64 << 20,
            cpu_time_per_call: Duration::from_secs(1),
            max_rooms: 10_000,
            // 2 ms keeps healthy rooms answering within ~20 ms (p99) while eight guests spin on
            // two cores; 10 ms let that p99 grow to ~100 ms (jamsocket-bench's spin_latency).
            time_slice: Duration::from_millis(2),
            max_sent_bytes_per_call: 4 << 20,
            // The echo example logging each message turned 56 MB of input into 235 MB of log
            // in 10 s; this bounds a room's log to about 100 KiB/s.
            guest_output_lines_per_sec: 100,
            // Ten rooms' worth: at most about 1 MiB/s of guest log however many rooms print.
            guest_output_lines_per_sec_total: 1000,
            max_guest_output_line_bytes: 1024,
        }
    }
}

impl WasmHostConfig {
    /// The defaults: 64 MiB of memory per room, 1 s of CPU time per call, 10,000 rooms, 2 ms
    /// time slices, 4 MiB sent per call, 100 lines of guest output per second per room cut at
    /// 1 KiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// Linear memory limit of each room's instance, in bytes (default 64 MiB; rounded up to
    /// whole 64 KiB pages). A guest that grows past it traps. Rust guests start at about
    /// 1.1 MiB.
    #[must_use]
    pub fn with_max_memory_bytes(mut self, bytes: usize) -> Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// CPU time one guest call may use (default 1 s). Time the call spends suspended, while
    /// other rooms run, does not count. A call that uses it up traps, and its room fails.
    #[must_use]
    pub fn with_cpu_time_per_call(mut self, limit: Duration) -> Self {
        self.cpu_time_per_call = limit;
        self
    }

    /// How many rooms may exist at once (default 10,000). This sizes the instance pool:
    /// creating a room beyond it fails with
    /// [`ServiceError::Unavailable`](jamsocket::ServiceError::Unavailable).
    #[must_use]
    pub fn with_max_rooms(mut self, rooms: u32) -> Self {
        self.max_rooms = rooms;
        self
    }

    /// How long a guest call runs before it yields to other tasks on its thread (default
    /// 2 ms). Also the granularity of the CPU limit.
    #[must_use]
    pub fn with_time_slice(mut self, slice: Duration) -> Self {
        self.time_slice = slice;
        self
    }

    /// Total bytes a guest may send (text and binary) during one call (default 4 MiB). A guest
    /// that sends more traps, so a loop on `send_message` cannot grow the host's queues
    /// without bound.
    #[must_use]
    pub fn with_max_sent_bytes_per_call(mut self, bytes: usize) -> Self {
        self.max_sent_bytes_per_call = bytes;
        self
    }

    /// Lines of guest output (stdout and stderr together) each room may log per second
    /// (default 100), with bursts of up to two seconds' worth (200). Lines beyond it are
    /// dropped and counted; one warning per room, at most once a second, says how many:
    /// before the room's next logged line, and when the room ends.
    #[must_use]
    pub fn with_guest_output_lines_per_sec(mut self, lines: u32) -> Self {
        self.guest_output_lines_per_sec = lines;
        self
    }

    /// Lines of guest output every room together may log per second (default 1,000), with
    /// bursts of two seconds' worth: a line within its room's budget is still dropped (and
    /// counted in the room's warning) once all rooms together are over this one, so many
    /// rooms printing at once cannot fill the disk either.
    #[must_use]
    pub fn with_guest_output_lines_per_sec_total(mut self, lines: u32) -> Self {
        self.guest_output_lines_per_sec_total = lines;
        self
    }

    /// The longest line of guest output logged, in bytes (default 1 KiB). The rest of a longer
    /// line is left out and the logged line ends with `… (N bytes cut)`.
    #[must_use]
    pub fn with_max_guest_output_line_bytes(mut self, bytes: usize) -> Self {
        self.max_guest_output_line_bytes = bytes;
        self
    }

    /// See [`with_max_memory_bytes`](Self::with_max_memory_bytes).
    pub fn max_memory_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    /// See [`with_cpu_time_per_call`](Self::with_cpu_time_per_call).
    pub fn cpu_time_per_call(&self) -> Duration {
        self.cpu_time_per_call
    }

    /// See [`with_max_rooms`](Self::with_max_rooms).
    pub fn max_rooms(&self) -> u32 {
        self.max_rooms
    }

    /// See [`with_time_slice`](Self::with_time_slice).
    pub fn time_slice(&self) -> Duration {
        self.time_slice
    }

    /// See [`with_max_sent_bytes_per_call`](Self::with_max_sent_bytes_per_call).
    pub fn max_sent_bytes_per_call(&self) -> usize {
        self.max_sent_bytes_per_call
    }

    /// See [`with_guest_output_lines_per_sec`](Self::with_guest_output_lines_per_sec).
    pub fn guest_output_lines_per_sec(&self) -> u32 {
        self.guest_output_lines_per_sec
    }

    /// See [`with_guest_output_lines_per_sec_total`](Self::with_guest_output_lines_per_sec_total).
    pub fn guest_output_lines_per_sec_total(&self) -> u32 {
        self.guest_output_lines_per_sec_total
    }

    /// See [`with_max_guest_output_line_bytes`](Self::with_max_guest_output_line_bytes).
    pub fn max_guest_output_line_bytes(&self) -> usize {
        self.max_guest_output_line_bytes
    }

    /// The memory limit, rounded up to whole pages.
    pub(crate) fn memory_limit(&self) -> usize {
        self.max_memory_bytes.div_ceil(PAGE).saturating_mul(PAGE)
    }

    pub(crate) fn validate(&self) -> Result<(), WasmHostError> {
        let invalid = |setting, value: String, reason| {
            Err(WasmHostError::InvalidConfig {
                setting,
                value,
                reason,
            })
        };
        if self.max_memory_bytes == 0 || self.max_memory_bytes > (4 << 30) {
            return invalid(
                "with_max_memory_bytes",
                self.max_memory_bytes.to_string(),
                "must be between 1 byte and 4 GiB",
            );
        }
        if self.max_rooms == 0 || self.max_rooms == u32::MAX {
            return invalid(
                "with_max_rooms",
                self.max_rooms.to_string(),
                "must be at least 1 and less than u32::MAX",
            );
        }
        if self.time_slice.is_zero() || self.time_slice > Duration::from_secs(1) {
            return invalid(
                "with_time_slice",
                format!("{:?}", self.time_slice),
                "must be more than zero and at most 1 s",
            );
        }
        if self.cpu_time_per_call.is_zero() {
            return invalid(
                "with_cpu_time_per_call",
                format!("{:?}", self.cpu_time_per_call),
                "must be more than zero",
            );
        }
        if self.guest_output_lines_per_sec == 0 {
            return invalid(
                "with_guest_output_lines_per_sec",
                self.guest_output_lines_per_sec.to_string(),
                "must be at least 1",
            );
        }
        if self.guest_output_lines_per_sec_total == 0 {
            return invalid(
                "with_guest_output_lines_per_sec_total",
                self.guest_output_lines_per_sec_total.to_string(),
                "must be at least 1",
            );
        }
        if self.max_guest_output_line_bytes == 0 {
            return invalid(
                "with_max_guest_output_line_bytes",
                self.max_guest_output_line_bytes.to_string(),
                "must be at least 1",
            );
        }
        Ok(())
    }

    /// The engine configuration: async calls, epoch interruption, and a pooling allocator
    /// sized for `max_rooms` instances with copy-on-write memory images. (The load-time ABI
    /// check's instance is gone before the first room is created.)
    pub(crate) fn engine_config(&self) -> Config {
        let slots = self.max_rooms;
        let memory_limit = self.memory_limit();
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            // An idle store keeps the async stack of its last call, so each room may hold one.
            .total_stacks(slots)
            .max_memory_size(memory_limit)
            .max_memories_per_module(1)
            .max_tables_per_module(1);

        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            .memory_reservation(memory_limit as u64)
            .memory_guard_size(MEMORY_GUARD_BYTES)
            .memory_init_cow(true);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limit_is_whole_pages() {
        let config = WasmHostConfig::default().with_max_memory_bytes(PAGE + 1);
        assert_eq!(config.memory_limit(), 2 * PAGE);
        assert_eq!(WasmHostConfig::default().memory_limit(), 64 << 20);
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let err = WasmHostConfig::default()
            .with_time_slice(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("with_time_slice"), "{err}");
        let err = WasmHostConfig::default()
            .with_max_rooms(0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("with_max_rooms"), "{err}");
        let err = WasmHostConfig::default()
            .with_guest_output_lines_per_sec(0)
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("with_guest_output_lines_per_sec"),
            "{err}"
        );
        assert!(WasmHostConfig::default().validate().is_ok());
    }
}
