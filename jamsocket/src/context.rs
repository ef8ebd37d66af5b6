use crate::MessageRecipient;

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
}
