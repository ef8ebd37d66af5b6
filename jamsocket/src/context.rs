use crate::{ClientId, MessageRecipient, User};

/// What a service can do to the outside world: send messages and set a timer.
///
/// A host passes a context to every handler of a
/// [`SimpleJamsocketService`](crate::SimpleJamsocketService). Messages are delivered in the
/// order they were sent.
pub trait JamsocketContext {
    /// Sends a text message to one client or to every client in the room.
    fn send_message(&self, recipient: impl Into<MessageRecipient>, message: &str);

    /// Sends a binary message to one client or to every client in the room.
    fn send_binary(&self, recipient: impl Into<MessageRecipient>, message: &[u8]);

    /// Asks the host to call the service's `timer` handler once, `ms_delay` milliseconds from now.
    ///
    /// A room has at most one pending timer: a new call replaces the pending one.
    fn set_timer(&self, ms_delay: u32);

    /// Who `client` is, if the host authenticated it (a verified token's `sub` and claims, or
    /// what a native admission hook attached); `None` for anonymous clients, for clients not in
    /// the room, and from hosts that know no users (the default).
    fn user(&self, client: ClientId) -> Option<User> {
        let _ = client;
        None
    }
}

/// A shared context is a context too, so whoever hands a room an `Arc` of one can keep a handle
/// to it (a test reading what a [`RecordingContext`](crate::RecordingContext) recorded, say).
impl<C: JamsocketContext> JamsocketContext for std::sync::Arc<C> {
    fn send_message(&self, recipient: impl Into<MessageRecipient>, message: &str) {
        (**self).send_message(recipient, message);
    }

    fn send_binary(&self, recipient: impl Into<MessageRecipient>, message: &[u8]) {
        (**self).send_binary(recipient, message);
    }

    fn set_timer(&self, ms_delay: u32) {
        (**self).set_timer(ms_delay);
    }

    fn user(&self, client: ClientId) -> Option<User> {
        (**self).user(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordingContext;
    use std::sync::Arc;

    #[test]
    fn a_shared_context_records_for_every_handle() {
        let recorder = Arc::new(RecordingContext::default());
        let given_to_a_room = recorder.clone();
        given_to_a_room.send_message(ClientId::from(1), "hi");
        given_to_a_room.set_timer(5);
        assert_eq!(recorder.timer(), Some(5));
        assert_eq!(
            recorder.take_messages(),
            vec![(
                MessageRecipient::Client(ClientId::from(1)),
                "hi".to_string()
            )]
        );
    }
}
