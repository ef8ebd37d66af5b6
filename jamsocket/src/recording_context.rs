use crate::{ClientId, JamsocketContext, MessageRecipient, User};
use std::collections::HashMap;
use std::sync::Mutex;

/// A [`JamsocketContext`] that records what a service sent, for tests.
///
/// ```
/// use jamsocket::{ClientId, JamsocketContext, MessageRecipient, RecordingContext};
///
/// let ctx = RecordingContext::default();
/// ctx.send_message(ClientId::from(3), "hi");
/// ctx.send_binary(MessageRecipient::Broadcast, &[1, 2]);
/// ctx.set_timer(250);
/// assert_eq!(ctx.take_messages(), vec![(MessageRecipient::Client(ClientId::from(3)), "hi".to_string())]);
/// assert_eq!(ctx.take_binaries(), vec![(MessageRecipient::Broadcast, vec![1, 2])]);
/// assert_eq!(ctx.timer(), Some(250));
/// ```
#[derive(Debug, Default)]
pub struct RecordingContext {
    messages: Mutex<Vec<(MessageRecipient, String)>>,
    binaries: Mutex<Vec<(MessageRecipient, Vec<u8>)>>,
    timer: Mutex<Option<u32>>,
    users: Mutex<HashMap<ClientId, User>>,
}

impl RecordingContext {
    /// The text messages sent since the last call, oldest first.
    pub fn take_messages(&self) -> Vec<(MessageRecipient, String)> {
        std::mem::take(&mut *lock(&self.messages))
    }

    /// The binary messages sent since the last call, oldest first.
    pub fn take_binaries(&self) -> Vec<(MessageRecipient, Vec<u8>)> {
        std::mem::take(&mut *lock(&self.binaries))
    }

    /// The delay of the most recent `set_timer` call, if any.
    pub fn timer(&self) -> Option<u32> {
        *lock(&self.timer)
    }

    /// Makes [`JamsocketContext::user`] answer `user` for `client` (`None` makes it anonymous).
    pub fn set_user(&self, client: ClientId, user: Option<User>) {
        match user {
            Some(user) => lock(&self.users).insert(client, user),
            None => lock(&self.users).remove(&client),
        };
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl JamsocketContext for RecordingContext {
    fn send_message(&self, recipient: impl Into<MessageRecipient>, message: &str) {
        lock(&self.messages).push((recipient.into(), message.to_string()));
    }

    fn send_binary(&self, recipient: impl Into<MessageRecipient>, message: &[u8]) {
        lock(&self.binaries).push((recipient.into(), message.to_vec()));
    }

    fn set_timer(&self, ms_delay: u32) {
        *lock(&self.timer) = Some(ms_delay);
    }

    fn user(&self, client: ClientId) -> Option<User> {
        lock(&self.users).get(&client).cloned()
    }
}
