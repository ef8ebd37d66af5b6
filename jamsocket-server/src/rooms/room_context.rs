use crate::sync::lock;
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
/// shares one buffer among all recipients. The payload is an `Arc`, allocated once with its
/// count (a `Bytes` made from a copy allocates again when first cloned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outbound {
    Text(Arc<str>),
    Binary(Arc<[u8]>),
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
        let message = Outbound::Text(Arc::from(message));
        self.outbox().messages.push((recipient.into(), message));
    }

    fn send_binary(&self, recipient: impl Into<MessageRecipient>, message: &[u8]) {
        let message = Outbound::Binary(Arc::from(message));
        self.outbox().messages.push((recipient.into(), message));
    }

    fn set_timer(&self, ms_delay: u32) {
        self.outbox().timer_ms = Some(ms_delay);
    }

    fn user(&self, client: ClientId) -> Option<User> {
        self.outbox().users.get(&client).cloned()
    }
}
