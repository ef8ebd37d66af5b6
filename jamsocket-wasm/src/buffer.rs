//! The buffer the host copies room ids and messages into.
//!
//! `jamsocket_buffer(len)` returns the address of a buffer of at least `len` bytes; the host
//! writes the input there and passes `(ptr, len)` to the next export. The same `Vec` is reused
//! across calls. Input is only ever read through that `Vec`: a `(ptr, len)` outside it is
//! rejected rather than dereferenced, so no pointer from the host is trusted.

use crate::lock::lock;
use std::sync::Mutex;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Above this capacity, a much smaller request gives memory back.
const SHRINK_ABOVE: usize = 1 << 20;

/// The address of a buffer of `len` bytes, valid until the next call (`jamsocket_buffer`).
pub fn buffer(len: u32) -> u32 {
    let mut buffer = lock(&BUFFER);
    let len = len as usize;
    if buffer.capacity() > SHRINK_ABOVE && len < buffer.capacity() / 4 {
        buffer.truncate(len);
        buffer.shrink_to(len);
    }
    // Only the new tail is zeroed: the host overwrites the first `len` bytes anyway.
    buffer.resize(len, 0);
    address(&mut buffer)
}

/// The guest address of `buffer` (or of any `Vec`), as passed across the ABI.
///
/// On `wasm32` this is the real address. Natively (where the runtime is only unit-tested) it is
/// truncated to 32 bits and serves as a token compared with what the caller passes back.
pub(crate) fn address(buffer: &mut Vec<u8>) -> u32 {
    buffer.as_mut_ptr().expose_provenance() as u32
}

/// Runs `f` on the `len` bytes at `ptr`, which must lie inside the buffer returned by the last
/// [`buffer`] call, or returns `Err` with a description of the mismatch.
///
/// An empty input is accepted with any `ptr`, so hosts may pass `(0, 0)` without asking for a
/// buffer.
pub(crate) fn with_input<R>(ptr: u32, len: u32, f: impl FnOnce(&[u8]) -> R) -> Result<R, String> {
    if len == 0 {
        return Ok(f(&[]));
    }
    // Take the buffer out while `f` runs, so nothing `f` does can observe or reenter the lock.
    let mut buffer = std::mem::take(&mut *lock(&BUFFER));
    let base = address(&mut buffer);
    let input = ptr
        .checked_sub(base)
        .and_then(|start| {
            let start = start as usize;
            buffer.get(start..start.checked_add(len as usize)?)
        })
        .map(f)
        .ok_or_else(|| {
            format!(
                "input (ptr {ptr:#x}, len {len}) is not inside the buffer returned by \
                 `jamsocket_buffer` (ptr {base:#x}, len {})",
                buffer.len()
            )
        });
    *lock(&BUFFER) = buffer;
    input
}

/// Helpers for tests that use the process-wide buffer.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::lock::lock;
    use std::sync::{Mutex, MutexGuard};

    static SERIAL: Mutex<()> = Mutex::new(());

    /// Tests that use the buffer hold this, so they do not run at the same time.
    pub(crate) fn serial() -> MutexGuard<'static, ()> {
        lock(&SERIAL)
    }

    /// Writes into the buffer the way a host does (after `buffer(bytes.len())`).
    pub(crate) fn write(bytes: &[u8]) {
        lock(&super::BUFFER).copy_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_must_lie_in_the_buffer() {
        let _serial = tests_support::serial();
        assert_eq!(with_input(0, 0, |b| b.len()), Ok(0));
        assert_eq!(with_input(12345, 0, |b| b.len()), Ok(0));

        let ptr = buffer(5);
        lock(&BUFFER).copy_from_slice(b"hello");
        assert_eq!(with_input(ptr, 5, |b| b.to_vec()), Ok(b"hello".to_vec()));
        assert_eq!(
            with_input(ptr.wrapping_add(1), 3, |b| b.to_vec()),
            Ok(b"ell".to_vec())
        );
        // Reading does not consume the buffer.
        assert_eq!(with_input(ptr, 5, |b| b.to_vec()), Ok(b"hello".to_vec()));

        for (p, l) in [
            (ptr, 6),
            (ptr.wrapping_add(4), 2),
            (ptr.wrapping_sub(1), 2),
            (u32::MAX, 1),
            (ptr, u32::MAX),
            (0, 1),
        ] {
            assert!(with_input(p, l, |_| ()).is_err(), "({p:#x}, {l}) accepted");
        }

        // Growing keeps working, and a big buffer shrinks again.
        let big = 4 * SHRINK_ABOVE as u32;
        let ptr = buffer(big);
        assert_eq!(with_input(ptr, big, |b| b.len()), Ok(big as usize));
        buffer(10);
        assert!(lock(&BUFFER).capacity() < SHRINK_ABOVE);
    }
}
