//! What a store keeps of a room: the service's own snapshot plus what the room itself knows
//! (the next client id, the pending timer, the clients connected when it was taken), in a
//! versioned binary envelope.

use jamsocket::ClientId;

const MAGIC: &[u8; 4] = b"JSRM";
const VERSION: u8 = 1;

/// A room as saved in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomSnapshot {
    /// The id the room gives its next client: ids are never reused in a room, across restores
    /// too.
    pub next_client: u32,
    /// Time left on the room's pending timer, if one was set.
    pub timer_ms: Option<u32>,
    /// Clients connected when the snapshot was taken; after a restore the service hears that
    /// they left.
    pub clients: Vec<ClientId>,
    /// What the service's `snapshot` returned.
    pub service: Vec<u8>,
}

/// Why stored bytes are not a room snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SnapshotDecodeError {
    #[error("not a room snapshot (starts with {found:02x?}, expected {MAGIC:02x?})")]
    Magic { found: Vec<u8> },
    #[error("room snapshot version {found} is newer than this server's ({VERSION})")]
    Version { found: u8 },
    #[error("room snapshot cut short: {len} bytes")]
    Truncated { len: usize },
}

impl RoomSnapshot {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + 4 * self.clients.len() + self.service.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.next_client.to_le_bytes());
        match self.timer_ms {
            Some(ms) => {
                out.push(1);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            None => out.push(0),
        }
        // A room holds at most `max_clients_per_room` clients, far below u32::MAX.
        let count = u32::try_from(self.clients.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for client in self.clients.iter().take(count as usize) {
            out.extend_from_slice(&u32::from(*client).to_le_bytes());
        }
        out.extend_from_slice(&self.service);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<RoomSnapshot, SnapshotDecodeError> {
        let truncated = || SnapshotDecodeError::Truncated { len: bytes.len() };
        let mut reader = Reader(bytes);
        let magic = reader
            .take(MAGIC.len())
            .ok_or_else(|| SnapshotDecodeError::Magic {
                found: bytes.iter().take(MAGIC.len()).copied().collect(),
            })?;
        if magic != MAGIC {
            return Err(SnapshotDecodeError::Magic {
                found: magic.to_vec(),
            });
        }
        let version = reader.u8().ok_or_else(truncated)?;
        if version != VERSION {
            return Err(SnapshotDecodeError::Version { found: version });
        }
        let next_client = reader.u32().ok_or_else(truncated)?;
        let timer_ms = match reader.u8().ok_or_else(truncated)? {
            0 => None,
            _ => Some(reader.u32().ok_or_else(truncated)?),
        };
        let count = reader.u32().ok_or_else(truncated)? as usize;
        // Each id takes 4 bytes: a count larger than what is left is a lie.
        if count > reader.0.len() / 4 {
            return Err(truncated());
        }
        let clients = (0..count)
            .map(|_| reader.u32().map(ClientId::from).ok_or_else(truncated))
            .collect::<Result<_, _>>()?;
        Ok(RoomSnapshot {
            next_client,
            timer_ms,
            clients,
            service: reader.0.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RoomSnapshot {
        RoomSnapshot {
            next_client: 42,
            timer_ms: Some(1500),
            clients: vec![ClientId::from(3), ClientId::from(41)],
            service: b"state".to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        for snapshot in [
            sample(),
            RoomSnapshot {
                next_client: 1,
                timer_ms: None,
                clients: vec![],
                service: vec![],
            },
        ] {
            assert_eq!(RoomSnapshot::decode(&snapshot.encode()), Ok(snapshot));
        }
    }

    #[test]
    fn every_truncation_and_foreign_bytes_are_refused_without_panicking() {
        let bytes = sample().encode();
        // Cutting into the service's bytes still decodes (they are opaque here); cutting the
        // header does not.
        let header = bytes.len() - b"state".len();
        for len in 0..header {
            assert!(RoomSnapshot::decode(&bytes[..len]).is_err(), "{len}");
        }
        assert!(matches!(
            RoomSnapshot::decode(b"JSON{}"),
            Err(SnapshotDecodeError::Magic { .. })
        ));
        let mut newer = bytes.clone();
        newer[4] = 9;
        assert_eq!(
            RoomSnapshot::decode(&newer),
            Err(SnapshotDecodeError::Version { found: 9 })
        );
        let mut lying_count = bytes[..header - 8].to_vec();
        lying_count.splice(header - 12..header - 8, u32::MAX.to_le_bytes());
        assert!(RoomSnapshot::decode(&lying_count).is_err());
    }
}
