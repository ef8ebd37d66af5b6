/// Identifies a client within one room.
///
/// Hosts assign ids per room, starting at 1, and never reuse an id within a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(u32);

impl From<u32> for ClientId {
    fn from(id: u32) -> Self {
        ClientId(id)
    }
}

impl From<ClientId> for u32 {
    fn from(id: ClientId) -> Self {
        id.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Who a message goes to: every client in the room, or one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageRecipient {
    /// Every client connected to the room.
    Broadcast,
    /// One client. A message to a client that has left is dropped.
    Client(ClientId),
}

impl From<ClientId> for MessageRecipient {
    fn from(client: ClientId) -> Self {
        MessageRecipient::Client(client)
    }
}
