//! Bytes an export hands back to the host as `(ptr << 32) | len` (`jamsocket_snapshot`,
//! `jamsocket_request`): kept alive until the host has read them, that is until the next
//! handler call releases them.

use crate::buffer::address;
use crate::lock::lock;
use std::sync::Mutex;

static KEPT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Keeps `bytes` for the host and returns them as `(ptr << 32) | len`. Panics (trapping the
/// instance) if they are longer than the ABI's 32-bit length.
pub(crate) fn keep(export: &str, bytes: Vec<u8>) -> i64 {
    let mut kept = lock(&KEPT);
    *kept = bytes;
    let len = u32::try_from(kept.len())
        .unwrap_or_else(|_| panic!("`{export}`: {} bytes do not fit the ABI", kept.len()));
    pack(address(&mut kept), len)
}

/// `(ptr << 32) | len`, as the host reads it.
fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// Frees the bytes kept by the last [`keep`].
pub(crate) fn release() {
    let mut kept = lock(&KEPT);
    if kept.capacity() > 0 {
        *kept = Vec::new();
    }
}

/// Helpers for tests that read what an export kept.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// The kept bytes behind a packed result, checking that it points at them.
    pub(crate) fn kept(packed: i64) -> Vec<u8> {
        let (ptr, len) = ((packed as u64 >> 32) as u32, packed as u32);
        let mut kept = lock(&KEPT);
        assert_eq!(address(&mut kept), ptr);
        assert_eq!(kept.len(), len as usize);
        kept.clone()
    }

    /// Whether nothing is kept (the bytes were released).
    pub(crate) fn released() -> bool {
        lock(&KEPT).capacity() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_and_lengths_pack_into_one_i64() {
        assert_eq!(pack(0, 0), 0);
        assert_eq!(pack(0x10, 3), 0x10_0000_0003);
        let high = pack(u32::MAX, 7);
        // Never the `-1` of "no snapshot", whatever the pointer.
        assert_ne!(high, -1);
        assert_eq!(((high as u64 >> 32) as u32, high as u32), (u32::MAX, 7));
    }
}
