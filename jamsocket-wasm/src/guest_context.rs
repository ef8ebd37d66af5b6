//! The context a guest service talks to: each call goes to a host import.

use jamsocket::abi::encode_recipient;
use jamsocket::{JamsocketContext, MessageRecipient};

// On `wasm32` the context calls the host's imports; elsewhere, the recorder in `mod host` below.
#[cfg(target_arch = "wasm32")]
use crate::imports as host;

/// The [`JamsocketContext`] of a service running as a WebAssembly guest.
///
/// On `wasm32` every call goes straight to the host (imports of module
/// [`jamsocket::abi::IMPORT_MODULE`]). On other targets, where the runtime is only exercised
/// by tests, calls are recorded per thread: see [`take_sent`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestContext;

impl JamsocketContext for GuestContext {
    fn send_message(&self, recipient: impl Into<MessageRecipient>, message: &str) {
        host::send_message(encode_recipient(recipient.into()), message.as_bytes());
    }

    fn send_binary(&self, recipient: impl Into<MessageRecipient>, message: &[u8]) {
        host::send_binary(encode_recipient(recipient.into()), message);
    }

    fn set_timer(&self, ms_delay: u32) {
        host::set_timer(ms_delay);
    }
}

/// What a [`GuestContext`] sent, on targets other than `wasm32`.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// `send_message`
    Message(MessageRecipient, String),
    /// `send_binary`
    Binary(MessageRecipient, Vec<u8>),
    /// `set_timer`
    Timer(u32),
}

/// What [`GuestContext`]s on this thread sent since the last call, oldest first (targets other
/// than `wasm32` only).
#[cfg(not(target_arch = "wasm32"))]
pub fn take_sent() -> Vec<Sent> {
    host::SENT.with(|sent| sent.take())
}

#[cfg(not(target_arch = "wasm32"))]
mod host {
    use super::Sent;
    use jamsocket::abi::decode_recipient;
    use std::cell::RefCell;

    thread_local! {
        pub(super) static SENT: RefCell<Vec<Sent>> = const { RefCell::new(Vec::new()) };
    }

    fn record(sent: Sent) {
        SENT.with(|log| log.borrow_mut().push(sent));
    }

    pub(super) fn send_message(recipient: u32, message: &[u8]) {
        let text = String::from_utf8_lossy(message).into_owned();
        record(Sent::Message(decode_recipient(recipient), text));
    }

    pub(super) fn send_binary(recipient: u32, message: &[u8]) {
        record(Sent::Binary(decode_recipient(recipient), message.to_vec()));
    }

    pub(super) fn set_timer(ms_delay: u32) {
        record(Sent::Timer(ms_delay));
    }
}
