use crate::sync::lock;
use bytes::Bytes;
use bytestring::ByteString;
use jamsocket::{ClientId, JamsocketContext, MessageRecipient, User};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The [`JamsocketContext`] the server gives each room's service.
///
/// Messages a handler sends are queued and delivered, in order, as soon as the handler returns.
#[derive(Debug)]
pub struct RoomContext {
    outbox: Arc<Mutex<Outbox>>,
}

/// A message on its way to clients. Cloning it does not copy the payload, so a broadcast
/// shares one buffer among all recipients.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    Text(ByteString),
    Binary(Bytes),
    /// The room has handled this many of the session's messages from the client (for clients
    /// of the `jamsocket.v1` protocol; not an application message).
    Ack(u64),
}

/// What the service asked for during one handler call.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub messages: Vec<(MessageRecipient, Outbound)>,
    pub timer_ms: Option<u32>,
    /// Who each authenticated client in the room is.
    pub users: HashMap<ClientId, User>,
}

impl RoomContext {
    pub(crate) fn new() -> (RoomContext, Arc<Mutex<Outbox>>) {
        let outbox = Arc::new(Mutex::new(Outbox::default()));
        (
            RoomContext {
                outbox: outbox.clone(),
            },
            outbox,
        )
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        lock(&self.outbox)
    }
}

impl JamsocketContext for RoomContext {
    fn send_message(&self, recipient: impl Into<MessageRecipient>, message: &str) {
        let message = Outbound::Text(ByteString::from(message));
        self.outbox().messages.push((recipient.into(), message));
    }

    fn send_binary(&self, recipient: impl Into<MessageRecipient>, message: &[u8]) {
        let message = Outbound::Binary(Bytes::copy_from_slice(message));
        self.outbox().messages.push((recipient.into(), message));
    }

    fn set_timer(&self, ms_delay: u32) {
        self.outbox().timer_ms = Some(ms_delay);
    }

    fn user(&self, client: ClientId) -> Option<User> {
        self.outbox().users.get(&client).cloned()
    }
}
