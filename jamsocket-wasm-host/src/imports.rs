//! The host functions a guest imports from module `jamsocket`, plus the WASI overrides.
//!
//! Each import reads `(ptr, len)` from (or, for `user`, writes into `(ptr, cap)` of) the
//! guest's memory with checked bounds. A host function returning `Err` traps the guest, and the
//! room fails with that [`GuestFailure`].

use crate::host_state::HostState;
use crate::GuestFailure;
use jamsocket::abi::{decode_recipient, imports, IMPORT_MODULE, USER_NONE};
use jamsocket::ClientId;
use wasmtime::{Caller, Linker};

/// The WASI preview 1 module name.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Adds WASI preview 1 (async) and the `jamsocket` imports to `linker`: the functions of
/// [`imports::FUNCTIONS`], with the signatures it lists (a unit test checks them).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, |state: &mut HostState| &mut state.wasi)?;

    // Sleeping would block the room (and needs a tokio timer driver on the calling thread):
    // `poll_oneoff` traps with a message pointing to timers instead.
    linker.allow_shadowing(true);
    linker.func_wrap(
        WASI_MODULE,
        "poll_oneoff",
        |_: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<i32> {
            Err(GuestFailure::Sleep.into())
        },
    )?;
    linker.allow_shadowing(false);

    linker.func_wrap(IMPORT_MODULE, imports::SEND_MESSAGE, send_message)?;
    linker.func_wrap(IMPORT_MODULE, imports::SEND_BINARY, send_binary)?;
    linker.func_wrap(IMPORT_MODULE, imports::SET_TIMER, set_timer)?;
    linker.func_wrap(IMPORT_MODULE, imports::USER, user)?;
    Ok(())
}

fn send_message(
    mut caller: Caller<'_, HostState>,
    recipient: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    let (bytes, state) = guest_bytes(&mut caller, imports::SEND_MESSAGE, ptr, len)?;
    let text = std::str::from_utf8(bytes).map_err(|error| GuestFailure::InvalidUtf8 {
        valid_up_to: error.valid_up_to(),
    })?;
    state.sent.charge(bytes.len())?;
    state
        .context
        .send_message(decode_recipient(recipient), text);
    Ok(())
}

fn send_binary(
    mut caller: Caller<'_, HostState>,
    recipient: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    let (bytes, state) = guest_bytes(&mut caller, imports::SEND_BINARY, ptr, len)?;
    state.sent.charge(bytes.len())?;
    state
        .context
        .send_binary(decode_recipient(recipient), bytes);
    Ok(())
}

fn set_timer(caller: Caller<'_, HostState>, ms_delay: u32) {
    caller.data().context.set_timer(ms_delay);
}

/// `user(client, ptr, cap) -> len`: the length of `client`'s encoded user, or [`USER_NONE`];
/// the encoding is written at `ptr` if it fits in `cap` bytes. `(ptr, cap)` must lie in the
/// guest's memory whether or not anything is written, so a bad buffer fails every time.
fn user(
    mut caller: Caller<'_, HostState>,
    client: u32,
    ptr: u32,
    cap: u32,
) -> wasmtime::Result<i32> {
    let (buf, state) = guest_bytes_mut(&mut caller, imports::USER, ptr, cap)?;
    let Some(user) = state.context.user(ClientId::from(client)) else {
        return Ok(USER_NONE);
    };
    let bytes = user.encode();
    let len = i32::try_from(bytes.len()).map_err(|_| GuestFailure::Other {
        message: format!(
            "the user of client {client} is {} bytes encoded, more than `{}` can return",
            bytes.len(),
            imports::USER
        ),
    })?;
    if let Some(prefix) = buf.get_mut(..bytes.len()) {
        prefix.copy_from_slice(&bytes);
    }
    Ok(len)
}

/// The `len` bytes at `ptr` in the guest's memory, and the store's state.
fn guest_bytes<'a>(
    caller: &'a mut Caller<'_, HostState>,
    import: &'static str,
    ptr: u32,
    len: u32,
) -> Result<(&'a [u8], &'a mut HostState), GuestFailure> {
    let (bytes, state) = guest_bytes_mut(caller, import, ptr, len)?;
    Ok((bytes, state))
}

/// The `len` bytes at `ptr` in the guest's memory, writable, and the store's state.
fn guest_bytes_mut<'a>(
    caller: &'a mut Caller<'_, HostState>,
    import: &'static str,
    ptr: u32,
    len: u32,
) -> Result<(&'a mut [u8], &'a mut HostState), GuestFailure> {
    let memory = caller.data().memory.ok_or_else(|| GuestFailure::Other {
        message: format!("`{import}` was called before the guest's memory was known"),
    })?;
    let (data, state) = memory.data_and_store_mut(caller);
    let memory_size = data.len();
    let bytes = checked_range(memory_size, ptr, len)
        .map(|range| &mut data[range])
        .ok_or(GuestFailure::OutOfBounds {
            import,
            ptr,
            len,
            memory_size,
        })?;
    Ok((bytes, state))
}

/// `ptr..ptr + len` if it lies within `size` bytes.
pub(crate) fn checked_range(size: usize, ptr: u32, len: u32) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= size).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        assert_eq!(checked_range(10, 0, 10), Some(0..10));
        assert_eq!(checked_range(10, 10, 0), Some(10..10));
        assert_eq!(checked_range(10, 0, 0), Some(0..0));
        assert_eq!(checked_range(10, 5, 6), None);
        assert_eq!(checked_range(10, 11, 0), None);
        assert_eq!(checked_range(10, u32::MAX, u32::MAX), None);
        assert_eq!(checked_range(0, 0, 1), None);
    }

    #[test]
    fn the_linker_defines_every_abi_import_with_its_signature() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).unwrap();
        let state = HostState::new(
            std::sync::Arc::from("room"),
            Box::new(jamsocket::RecordingContext::default()),
            &crate::WasmHostConfig::default(),
            crate::output_budget::ServerOutputBudget::new(1),
        );
        let mut store = wasmtime::Store::new(&engine, state);
        for (name, params, results) in imports::FUNCTIONS {
            let import = linker.get(&mut store, IMPORT_MODULE, name).unwrap();
            let ty = import.into_func().expect("a function").ty(&store);
            assert!(
                crate::abi_check::is_i32_signature(&ty, params, results),
                "{name}: {ty}"
            );
        }
        let defined = linker
            .iter(&mut store)
            .filter(|(module, ..)| *module == IMPORT_MODULE)
            .count();
        assert_eq!(defined, imports::FUNCTIONS.len());
    }
}
