//! What each room's store holds: its context, WASI state, limits and per-call accounting.

use crate::call_budget::{CpuBudget, SendBudget};
use crate::erased_context::ErasedContext;
use crate::guest_limiter::GuestLimiter;
use crate::guest_log::{GuestLog, Stream};
use crate::output_budget::{OutputBudget, ServerOutputBudget};
use crate::WasmHostConfig;
use std::sync::Arc;
use wasmtime::Memory;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::WasiCtxBuilder;

/// The data of a room's `Store`.
pub(crate) struct HostState {
    pub(crate) context: Box<dyn ErasedContext>,
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: GuestLimiter,
    /// The guest's exported memory, set right after instantiation.
    pub(crate) memory: Option<Memory>,
    pub(crate) budget: CpuBudget,
    pub(crate) sent: SendBudget,
}

impl HostState {
    pub(crate) fn new(
        room_id: Arc<str>,
        context: Box<dyn ErasedContext>,
        config: &WasmHostConfig,
        server_output: Arc<ServerOutputBudget>,
    ) -> Self {
        // Defaults kept: no args, env, files or sockets; host clocks; a CSPRNG seeded from the
        // OS for `random_get`. Stdout and stderr share one output budget.
        let output = Arc::new(OutputBudget::new(
            room_id,
            config.guest_output_lines_per_sec(),
            server_output,
        ));
        let line_bytes = config.max_guest_output_line_bytes();
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestLog::new(output.clone(), Stream::Stdout, line_bytes))
            .stderr(GuestLog::new(output, Stream::Stderr, line_bytes))
            .build_p1();
        HostState {
            context,
            wasi,
            limiter: GuestLimiter::new(config.memory_limit()),
            memory: None,
            budget: CpuBudget::new(config.cpu_time_per_call()),
            sent: SendBudget::new(config.max_sent_bytes_per_call()),
        }
    }

    /// Resets the per-call budgets before a call.
    pub(crate) fn start_call(&mut self) {
        self.budget.start();
        self.sent.start();
    }
}
