//! The guest's ABI functions, looked up once per room, and copying input into the guest.

use crate::abi_check::OptionalExports;
use crate::host_state::HostState;
use crate::memory_image::ImageLayout;
use crate::GuestFailure;
use jamsocket::abi::exports;
use wasmtime::{Global, Instance, Memory, Store, TypedFunc};

/// An error of a guest call, with the export it came from.
pub(super) type CallError = (&'static str, wasmtime::Error);

pub(super) struct GuestExports {
    pub(super) buffer: TypedFunc<u32, u32>,
    pub(super) initialize: TypedFunc<(u32, u32), ()>,
    pub(super) connect: TypedFunc<u32, ()>,
    pub(super) disconnect: TypedFunc<u32, ()>,
    pub(super) message: TypedFunc<(u32, u32, u32), ()>,
    pub(super) binary: TypedFunc<(u32, u32, u32), ()>,
    pub(super) timer: TypedFunc<(), ()>,
    /// `jamsocket_snapshot`, if the module exports it.
    pub(super) snapshot: Option<TypedFunc<(), i64>>,
    /// `jamsocket_restore`, if the module exports it.
    pub(super) restore: Option<TypedFunc<(u32, u32), i32>>,
    /// `jamsocket_request`, if the module exports it.
    pub(super) request: Option<TypedFunc<(u32, u32), i64>>,
    pub(super) memory: Memory,
    /// The exported mutable globals, in the order of [`ImageLayout::global_names`].
    pub(super) globals: Vec<Global>,
}

impl GuestExports {
    pub(super) fn new(
        instance: &Instance,
        store: &mut Store<HostState>,
        optional: OptionalExports,
        layout: &ImageLayout,
    ) -> wasmtime::Result<Self> {
        let memory = instance
            .get_memory(&mut *store, exports::MEMORY)
            .ok_or_else(|| wasmtime::format_err!("no `{}` export", exports::MEMORY))?;
        let globals = layout
            .global_names()
            .map(|name| {
                instance
                    .get_global(&mut *store, name)
                    .ok_or_else(|| wasmtime::format_err!("no global `{name}`"))
            })
            .collect::<wasmtime::Result<_>>()?;
        Ok(GuestExports {
            buffer: instance.get_typed_func(&mut *store, exports::BUFFER)?,
            initialize: instance.get_typed_func(&mut *store, exports::INITIALIZE)?,
            connect: instance.get_typed_func(&mut *store, exports::CONNECT)?,
            disconnect: instance.get_typed_func(&mut *store, exports::DISCONNECT)?,
            message: instance.get_typed_func(&mut *store, exports::MESSAGE)?,
            binary: instance.get_typed_func(&mut *store, exports::BINARY)?,
            timer: instance.get_typed_func(&mut *store, exports::TIMER)?,
            snapshot: optional
                .snapshot
                .then(|| instance.get_typed_func(&mut *store, exports::SNAPSHOT))
                .transpose()?,
            restore: optional
                .restore
                .then(|| instance.get_typed_func(&mut *store, exports::RESTORE))
                .transpose()?,
            request: optional
                .request
                .then(|| instance.get_typed_func(&mut *store, exports::REQUEST))
                .transpose()?,
            memory,
            globals,
        })
    }
}

/// Copies `input` into a buffer from `jamsocket_buffer`, returning its `(ptr, len)`. Empty
/// input is passed as `(0, 0)` without a call. Errors are attributed to `jamsocket_buffer`.
pub(super) async fn write_input(
    store: &mut Store<HostState>,
    exports: &GuestExports,
    input: &[u8],
) -> Result<(u32, u32), CallError> {
    let in_buffer = |error: wasmtime::Error| (exports::BUFFER, error);
    let len = u32::try_from(input.len())
        .map_err(|_| in_buffer(GuestFailure::InputTooLarge { len: input.len() }.into()))?;
    if len == 0 {
        return Ok((0, 0));
    }
    let ptr = exports
        .buffer
        .call_async(&mut *store, len)
        .await
        .map_err(in_buffer)?;
    let memory = exports.memory.data_mut(&mut *store);
    let memory_size = memory.len();
    let range = crate::imports::checked_range(memory_size, ptr, len).ok_or_else(|| {
        in_buffer(
            GuestFailure::BadBuffer {
                ptr,
                len,
                memory_size,
            }
            .into(),
        )
    })?;
    memory[range].copy_from_slice(input);
    Ok((ptr, len))
}

/// The bytes an export returned as `(ptr << 32) | len` (`jamsocket_snapshot`,
/// `jamsocket_request`), or a [`GuestFailure::BadReturn`] naming the value if they do not lie
/// in the guest's memory.
pub(super) fn returned_bytes<'m>(
    memory: &'m [u8],
    export: &'static str,
    packed: i64,
) -> Result<&'m [u8], CallError> {
    let (ptr, len) = ((packed as u64 >> 32) as u32, packed as u32);
    let range = crate::imports::checked_range(memory.len(), ptr, len).ok_or_else(|| {
        let failure = GuestFailure::BadReturn {
            export,
            value: packed,
            problem: format!(
                "as (ptr {ptr:#x}, len {len}) is not inside the guest's {}-byte memory",
                memory.len()
            ),
        };
        (export, failure.into())
    })?;
    Ok(&memory[range])
}
