use crate::GuestFailure;
use wasmtime::ResourceLimiter;

/// Caps linear memory growth, trapping with [`GuestFailure::MemoryLimit`] (rather than
/// letting `memory.grow` return -1, which a Rust guest turns into an abort anyway).
pub(crate) struct GuestLimiter {
    max_memory_bytes: usize,
}

impl GuestLimiter {
    pub(crate) fn new(max_memory_bytes: usize) -> Self {
        GuestLimiter { max_memory_bytes }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            return Err(GuestFailure::MemoryLimit {
                limit: self.max_memory_bytes,
                requested: desired,
            }
            .into());
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}
