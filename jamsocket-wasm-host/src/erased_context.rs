//! The server's context, behind a trait object.
//!
//! The linker is built once per module, so the store's data cannot be generic over the
//! server's context type: each room's store holds its context as a `dyn ErasedContext`.

use jamsocket::{ClientId, JamsocketContext, MessageRecipient, User};

/// The object-safe part of [`JamsocketContext`].
pub(crate) trait ErasedContext: Send {
    fn send_message(&self, recipient: MessageRecipient, message: &str);
    fn send_binary(&self, recipient: MessageRecipient, message: &[u8]);
    fn set_timer(&self, ms_delay: u32);
    fn user(&self, client: ClientId) -> Option<User>;
}

impl<C: JamsocketContext + Send> ErasedContext for C {
    fn send_message(&self, recipient: MessageRecipient, message: &str) {
        JamsocketContext::send_message(self, recipient, message);
    }

    fn send_binary(&self, recipient: MessageRecipient, message: &[u8]) {
        JamsocketContext::send_binary(self, recipient, message);
    }

    fn set_timer(&self, ms_delay: u32) {
        JamsocketContext::set_timer(self, ms_delay);
    }

    fn user(&self, client: ClientId) -> Option<User> {
        JamsocketContext::user(self, client)
    }
}
