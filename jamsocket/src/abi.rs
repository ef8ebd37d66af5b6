//! The WebAssembly ABI between a guest module (`jamsocket-wasm`) and its host
//! (`jamsocket-wasm-host`), defined once for both sides.
//!
//! All integers are wasm `i32`, read as unsigned. Strings and byte strings cross the boundary as
//! a `(pointer, length)` pair into the guest's exported `memory`.
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `jamsocket_abi_version` | `() -> i32` | the version the module was built for: [`ABI_VERSION`] (older modules report an older one, see *Versions*); checked before anything else |
//! | `jamsocket_buffer` | `(len) -> ptr` | a guest buffer of at least `len` bytes, valid until the next call |
//! | `jamsocket_initialize` | `(room_ptr, room_len)` | build the service for the room id in the buffer |
//! | `jamsocket_connect` | `(client)` | a client joined |
//! | `jamsocket_disconnect` | `(client)` | a client left |
//! | `jamsocket_message` | `(client, ptr, len)` | a text message (UTF-8) in the buffer |
//! | `jamsocket_binary` | `(client, ptr, len)` | a binary message in the buffer |
//! | `jamsocket_timer` | `()` | the timer fired |
//!
//! Optional exports (a module without them is served as before; `#[jamsocket_wasm]` always
//! emits them):
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `jamsocket_snapshot` | `() -> i64` | the service's own snapshot: `(ptr << 32) \| len` of bytes valid until the next call, or `-1` if the service keeps none (the host then saves the whole linear memory) |
//! | `jamsocket_restore` | `(ptr, len) -> i32` | build the service from the buffer instead of `jamsocket_initialize`; the buffer holds the room id's length (u32, little-endian), the room id, then the snapshot. Returns [`RESTORE_OK`], [`RESTORE_UNSUPPORTED`] or [`RESTORE_CORRUPT`] |
//! | `jamsocket_request` | `(ptr, len) -> i64` | a request from the server side, its body in the buffer; returns `(ptr << 32) \| len` of bytes valid until the next call: the response as [`encode_response`] writes it (the status as u16 little-endian, then the body). A module without it answers every request with [`Response::not_found`]. Since version 3 |
//!
//! | import (module `jamsocket`) | signature | meaning |
//! |---|---|---|
//! | `send_message` | `(recipient, ptr, len)` | send UTF-8 text |
//! | `send_binary` | `(recipient, ptr, len)` | send bytes |
//! | `set_timer` | `(ms_delay)` | replace the room's pending timer |
//! | `user` | `(client, ptr, cap) -> i32` | who `client` is: `-1` ([`USER_NONE`]) if it has no user (anonymous, or not in the room), else the length `L` of its [`User::encode`](crate::User::encode); the host writes those `L` bytes at `ptr` only if `L <= cap`, so a guest whose buffer was too small calls again with `L` bytes. `(ptr, cap)` must lie in the guest's memory. Since version 2 |
//!
//! A recipient is encoded by [`encode_recipient`]: 0 means broadcast, any other value is a client
//! id (hosts assign client ids from 1).
//!
//! # Versions
//!
//! | version | change |
//! |---|---|
//! | 1 | the exports and imports above, without `user` |
//! | 2 | the `user` import |
//! | 3 | the optional `jamsocket_request` export |
//!
//! A host serves modules reporting any version from [`OLDEST_ABI_VERSION`] to [`ABI_VERSION`]:
//! each version only adds imports or optional exports, so an older module (which does not use
//! them) runs unchanged.

use crate::{ClientId, MessageRecipient, Response};
use std::fmt;

/// The version of this ABI, which guests built against it report. A host refuses a module that
/// reports a version outside [`OLDEST_ABI_VERSION`]`..=`[`ABI_VERSION`].
pub const ABI_VERSION: u32 = 3;

/// The oldest ABI version a host still serves: version 1 modules lack only the `user` import
/// (and the optional `jamsocket_request` export).
pub const OLDEST_ABI_VERSION: u32 = 1;

const _: () = assert!(OLDEST_ABI_VERSION <= ABI_VERSION);

/// What the `user` import returns for a client without a user.
pub const USER_NONE: i32 = -1;

/// The module name of the host's imports.
pub const IMPORT_MODULE: &str = "jamsocket";

/// Names of the functions a guest imports from the host.
pub mod imports {
    /// `(recipient: i32, ptr: i32, len: i32)`: send UTF-8 text.
    pub const SEND_MESSAGE: &str = "send_message";
    /// `(recipient: i32, ptr: i32, len: i32)`: send bytes.
    pub const SEND_BINARY: &str = "send_binary";
    /// `(ms_delay: i32)`: replace the room's pending timer.
    pub const SET_TIMER: &str = "set_timer";
    /// `(client: i32, ptr: i32, cap: i32) -> i32`: the length of `client`'s encoded user,
    /// written at `ptr` if it fits in `cap` bytes, or [`USER_NONE`](super::USER_NONE). Since
    /// ABI version 2.
    pub const USER: &str = "user";
    /// Every function import with its parameter count and result count (all `i32`), in the
    /// order above.
    pub const FUNCTIONS: [(&str, usize, usize); 4] = [
        (SEND_MESSAGE, 3, 0),
        (SEND_BINARY, 3, 0),
        (SET_TIMER, 1, 0),
        (USER, 3, 1),
    ];
}

/// `jamsocket_restore` rebuilt the service.
pub const RESTORE_OK: i32 = 0;
/// `jamsocket_restore`: the service keeps no snapshots.
pub const RESTORE_UNSUPPORTED: i32 = 1;
/// `jamsocket_restore`: the snapshot could not be decoded.
pub const RESTORE_CORRUPT: i32 = 2;

/// Names of the functions a guest exports.
pub mod exports {
    /// `() -> i32`: the guest's ABI version.
    pub const ABI_VERSION: &str = "jamsocket_abi_version";
    /// `(len: i32) -> i32`: pointer to a guest buffer of at least `len` bytes.
    pub const BUFFER: &str = "jamsocket_buffer";
    /// `(room_ptr: i32, room_len: i32)`: build the service.
    pub const INITIALIZE: &str = "jamsocket_initialize";
    /// `(client: i32)`: a client joined.
    pub const CONNECT: &str = "jamsocket_connect";
    /// `(client: i32)`: a client left.
    pub const DISCONNECT: &str = "jamsocket_disconnect";
    /// `(client: i32, ptr: i32, len: i32)`: a text message.
    pub const MESSAGE: &str = "jamsocket_message";
    /// `(client: i32, ptr: i32, len: i32)`: a binary message.
    pub const BINARY: &str = "jamsocket_binary";
    /// `()`: the timer fired.
    pub const TIMER: &str = "jamsocket_timer";
    /// `() -> i64`, optional: the service's own snapshot as `(ptr << 32) | len`, or `-1`.
    pub const SNAPSHOT: &str = "jamsocket_snapshot";
    /// `(ptr: i32, len: i32) -> i32`, optional: build the service from a snapshot.
    pub const RESTORE: &str = "jamsocket_restore";
    /// `(ptr: i32, len: i32) -> i64`, optional: a request from the server side; returns
    /// `(ptr << 32) | len` of its [encoded](super::encode_response) response. Since ABI
    /// version 3.
    pub const REQUEST: &str = "jamsocket_request";
    /// The guest's linear memory.
    pub const MEMORY: &str = "memory";
    /// Every function export with its parameter count and result count (all `i32`).
    pub const FUNCTIONS: [(&str, usize, usize); 8] = [
        (ABI_VERSION, 0, 1),
        (BUFFER, 1, 1),
        (INITIALIZE, 2, 0),
        (CONNECT, 1, 0),
        (DISCONNECT, 1, 0),
        (MESSAGE, 3, 0),
        (BINARY, 3, 0),
        (TIMER, 0, 0),
    ];
    /// The optional function exports, with their parameter and result types as wasm type names
    /// (they return `i64`, which [`FUNCTIONS`] cannot describe). A module may leave each out;
    /// a host checks the signature of those it has.
    pub const OPTIONAL_FUNCTIONS: [(&str, &[&str], &[&str]); 3] = [
        (SNAPSHOT, &[], &["i64"]),
        (RESTORE, &["i32", "i32"], &["i32"]),
        (REQUEST, &["i32", "i32"], &["i64"]),
    ];
}

/// Encodes a recipient as the `i32` passed to `send_message` / `send_binary`.
pub fn encode_recipient(recipient: MessageRecipient) -> u32 {
    match recipient {
        MessageRecipient::Broadcast => 0,
        MessageRecipient::Client(client) => client.into(),
    }
}

/// Decodes a recipient encoded by [`encode_recipient`].
pub fn decode_recipient(encoded: u32) -> MessageRecipient {
    match encoded {
        0 => MessageRecipient::Broadcast,
        id => MessageRecipient::Client(ClientId::from(id)),
    }
}

/// The statuses a response may have (as in HTTP).
pub const RESPONSE_STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

/// Encodes a response as `jamsocket_request` returns it: the status as u16 little-endian, then
/// the body.
///
/// ```
/// use jamsocket::abi::{decode_response, encode_response};
/// use jamsocket::Response;
///
/// let bytes = encode_response(&Response::ok("hi"));
/// assert_eq!(bytes, b"\xc8\x00hi");
/// assert_eq!(decode_response(&bytes), Ok(Response::ok("hi")));
/// ```
pub fn encode_response(response: &Response) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2 + response.body.len());
    bytes.extend_from_slice(&response.status.to_le_bytes());
    bytes.extend_from_slice(&response.body);
    bytes
}

/// Decodes a response encoded by [`encode_response`]; fails on fewer than 2 bytes or a status
/// outside [`RESPONSE_STATUSES`].
pub fn decode_response(bytes: &[u8]) -> Result<Response, ResponseError> {
    let (status, body) = bytes
        .split_first_chunk::<2>()
        .ok_or(ResponseError::TooShort { len: bytes.len() })?;
    let status = u16::from_le_bytes(*status);
    if !RESPONSE_STATUSES.contains(&status) {
        return Err(ResponseError::Status { status });
    }
    Ok(Response::new(status, body))
}

/// Why bytes are not an encoded response (see [`decode_response`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// Fewer than the 2 bytes of the status.
    TooShort {
        /// How many bytes there were.
        len: usize,
    },
    /// A status outside [`RESPONSE_STATUSES`].
    Status {
        /// The status.
        status: u16,
    },
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::TooShort { len } => write!(
                f,
                "the response is {len} bytes, too short for its 2-byte status"
            ),
            ResponseError::Status { status } => write!(
                f,
                "the response's status {status} is outside {}..={}",
                RESPONSE_STATUSES.start(),
                RESPONSE_STATUSES.end()
            ),
        }
    }
}

impl std::error::Error for ResponseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_round_trip() {
        for recipient in [
            MessageRecipient::Broadcast,
            MessageRecipient::Client(ClientId::from(1)),
            MessageRecipient::Client(ClientId::from(u32::MAX)),
        ] {
            assert_eq!(decode_recipient(encode_recipient(recipient)), recipient);
        }
        assert_eq!(encode_recipient(MessageRecipient::Broadcast), 0);
    }

    #[test]
    fn responses_round_trip() {
        for response in [
            Response::ok(""),
            Response::not_found(),
            Response::new(100, vec![0, 255]),
            Response::new(599, "last"),
        ] {
            assert_eq!(decode_response(&encode_response(&response)), Ok(response));
        }
        assert_eq!(encode_response(&Response::new(404, "x")), b"\x94\x01x");
    }

    #[test]
    fn malformed_responses_name_the_value() {
        for (bytes, error) in [
            (&b""[..], ResponseError::TooShort { len: 0 }),
            (b"\xc8", ResponseError::TooShort { len: 1 }),
            (b"\x63\x00", ResponseError::Status { status: 99 }),
            (b"\x58\x02body", ResponseError::Status { status: 600 }),
            (b"\xff\xff", ResponseError::Status { status: 65535 }),
        ] {
            assert_eq!(decode_response(bytes), Err(error.clone()));
        }
        let message = ResponseError::Status { status: 600 }.to_string();
        assert!(
            message.contains("600") && message.contains("100..=599"),
            "{message}"
        );
        assert!(ResponseError::TooShort { len: 1 }
            .to_string()
            .contains("1 bytes"));
    }
}
