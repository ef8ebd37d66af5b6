//! What a store keeps of a room: the service's own snapshot plus what the room itself knows
//! (the next client id, the pending timer, the clients it had and their sessions), in a
//! versioned binary envelope.

use super::room_context::Outbound;
use super::session::ResumeKey;
use jamsocket::{ClientId, User};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"JSRM";
/// Version 2 added sessions to the clients, version 3 the messages on their way to a client
/// that is away; older envelopes are still read.
const VERSION: u8 = 3;

/// A room as saved in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomSnapshot {
    /// The id the room gives its next client: ids are never reused in a room, across restores
    /// too.
    pub next_client: u32,
    /// Time left on the room's pending timer, if one was set.
    pub timer_ms: Option<u32>,
    /// Clients the room had when the snapshot was taken. After a restore, those with a session
    /// may resume it within the reconnect grace; the service hears that the others left.
    pub clients: Vec<SavedClient>,
    /// What the service's `snapshot` returned.
    pub service: Vec<u8>,
}

/// A client as saved with its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedClient {
    pub id: ClientId,
    pub session: Option<SavedSession>,
}

/// A client's session as saved: enough to recognise the client and tell it what the room
/// handled.
#[derive(Debug, Clone)]
pub(crate) struct SavedSession {
    pub key: ResumeKey,
    pub user: Option<User>,
    /// Messages from the client the room had handled.
    pub received: u64,
    /// What was on its way to the client, if it was away when the room was saved (and its
    /// messages fit the room's budget for them).
    pub delivery: Option<SavedDelivery>,
}

/// The messages of a session whose client was away: those written to its last connection and
/// not acknowledged, and those queued since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedDelivery {
    /// Messages of the session written to the client (`jamsocket.v1` counts them).
    pub sent: u64,
    /// The last of those, which the client had not acknowledged.
    pub unacked: Vec<Outbound>,
    /// Messages queued for the client and not yet written.
    pub queued: Vec<Outbound>,
}

impl SavedDelivery {
    /// Bytes the messages take in the envelope.
    pub(crate) fn encoded_len(&self) -> usize {
        let messages = self.unacked.iter().chain(&self.queued);
        8 + 8
            + messages
                .map(|m| 5 + payload(m).map_or(0, |(_, p)| p.len()))
                .sum::<usize>()
    }
}

impl PartialEq for SavedSession {
    fn eq(&self, other: &Self) -> bool {
        self.key.hash() == other.key.hash()
            && self.user == other.user
            && self.received == other.received
            && self.delivery == other.delivery
    }
}

impl Eq for SavedSession {}

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
        let mut out = Vec::with_capacity(18 + 5 * self.clients.len() + self.service.len());
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
            out.extend_from_slice(&u32::from(client.id).to_le_bytes());
            let Some(session) = &client.session else {
                out.push(0);
                continue;
            };
            out.push(1);
            out.extend_from_slice(session.key.hash());
            out.extend_from_slice(&session.received.to_le_bytes());
            let user = session.user.as_ref().map(User::encode).unwrap_or_default();
            // A user is a token's payload, far below 4 GiB; `u32::MAX` says there is none.
            let len = match &session.user {
                Some(_) => u32::try_from(user.len()).unwrap_or(u32::MAX - 1),
                None => u32::MAX,
            };
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&user[..user.len().min(len as usize)]);
            let Some(delivery) = &session.delivery else {
                out.push(0);
                continue;
            };
            out.push(1);
            out.extend_from_slice(&delivery.sent.to_le_bytes());
            for messages in [&delivery.unacked, &delivery.queued] {
                encode_messages(&mut out, messages);
            }
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
        if version == 0 || version > VERSION {
            return Err(SnapshotDecodeError::Version { found: version });
        }
        let next_client = reader.u32().ok_or_else(truncated)?;
        let timer_ms = match reader.u8().ok_or_else(truncated)? {
            0 => None,
            _ => Some(reader.u32().ok_or_else(truncated)?),
        };
        let count = reader.u32().ok_or_else(truncated)? as usize;
        // Each client takes at least 4 bytes: a count larger than what is left is a lie.
        if count > reader.0.len() / 4 {
            return Err(truncated());
        }
        let mut clients = Vec::with_capacity(count);
        for _ in 0..count {
            let id = ClientId::from(reader.u32().ok_or_else(truncated)?);
            let session = match version {
                1 => None,
                _ => reader.session(version).ok_or_else(truncated)?,
            };
            clients.push(SavedClient { id, session });
        }
        Ok(RoomSnapshot {
            next_client,
            timer_ms,
            clients,
            service: reader.0.to_vec(),
        })
    }
}

/// A message's kind (0 text, 1 binary) and payload; `None` for an acknowledgement, which is
/// not saved (the welcome of the next connection says the count).
fn payload(message: &Outbound) -> Option<(u8, &[u8])> {
    match message {
        Outbound::Text(text) => Some((0, text.as_bytes())),
        Outbound::Binary(data) => Some((1, data)),
        Outbound::Ack(_) => None,
    }
}

fn encode_messages(out: &mut Vec<u8>, messages: &[Outbound]) {
    let messages: Vec<(u8, &[u8])> = messages.iter().filter_map(payload).collect();
    // A session holds at most `outbound_queue_messages` messages of at most
    // `max_message_bytes` each, and the room's budget for them is far below 4 GiB.
    out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
    for (kind, bytes) in messages {
        out.push(kind);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
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

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A client's session: `Some(None)` if it had none, `None` if the bytes are cut short or
    /// bad.
    fn session(&mut self, version: u8) -> Option<Option<SavedSession>> {
        if self.u8()? == 0 {
            return Some(None);
        }
        let key = ResumeKey::from_hash(self.take(32)?.try_into().ok()?);
        let received = self.u64()?;
        let user = match self.u32()? {
            u32::MAX => None,
            len => Some(User::decode(self.take(len as usize)?)?),
        };
        let delivery = match version {
            2 => None,
            _ => self.delivery()?,
        };
        Some(Some(SavedSession {
            key,
            user,
            received,
            delivery,
        }))
    }

    fn delivery(&mut self) -> Option<Option<SavedDelivery>> {
        if self.u8()? == 0 {
            return Some(None);
        }
        let sent = self.u64()?;
        let unacked = self.messages()?;
        let queued = self.messages()?;
        Some(Some(SavedDelivery {
            sent,
            unacked,
            queued,
        }))
    }

    fn messages(&mut self) -> Option<Vec<Outbound>> {
        let count = self.u32()? as usize;
        // Each message takes at least 5 bytes: a count larger than what is left is a lie.
        if count > self.0.len() / 5 {
            return None;
        }
        let mut messages = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = self.u8()?;
            let len = self.u32()? as usize;
            let bytes = self.take(len)?;
            messages.push(match kind {
                0 => Outbound::Text(Arc::from(std::str::from_utf8(bytes).ok()?)),
                1 => Outbound::Binary(Arc::from(bytes)),
                _ => return None,
            });
        }
        Some(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RoomSnapshot {
        RoomSnapshot {
            next_client: 42,
            timer_ms: Some(1500),
            clients: vec![
                SavedClient {
                    id: ClientId::from(3),
                    session: None,
                },
                SavedClient {
                    id: ClientId::from(41),
                    session: Some(SavedSession {
                        key: ResumeKey::parse("abcdefghijklmnopqrstuvwxyz").unwrap(),
                        user: Some(User::new("alice").with_claims("{}")),
                        received: 7,
                        delivery: Some(SavedDelivery {
                            sent: 12,
                            unacked: vec![Outbound::Text("eleven".into())],
                            queued: vec![
                                Outbound::Text("thirteen".into()),
                                Outbound::Binary(Arc::from(&b"\x00\xff"[..])),
                            ],
                        }),
                    }),
                },
            ],
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
        let mut lying_count = bytes.clone();
        lying_count.splice(14..18, u32::MAX.to_le_bytes());
        assert!(RoomSnapshot::decode(&lying_count).is_err());
    }

    #[test]
    fn version_2_envelopes_are_still_read() {
        let mut snapshot = sample();
        snapshot.clients[1].session.as_mut().unwrap().delivery = None;
        let mut v2 = snapshot.encode();
        v2[4] = 2;
        // The flag that says whether a delivery follows, after the second client's user.
        let user = User::new("alice").with_claims("{}").encode().len();
        let flag = 4 + 1 + 4 + (1 + 4) + 4 + (4 + 1) + (4 + 1 + 32 + 8 + 4) + user;
        assert_eq!(v2.remove(flag), 0);
        assert_eq!(RoomSnapshot::decode(&v2), Ok(snapshot));
    }

    #[test]
    fn version_1_envelopes_are_still_read() {
        let mut v1 = b"JSRM\x01".to_vec();
        v1.extend_from_slice(&9u32.to_le_bytes());
        v1.push(0);
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&5u32.to_le_bytes());
        v1.extend_from_slice(b"state");
        let snapshot = RoomSnapshot::decode(&v1).unwrap();
        assert_eq!(snapshot.next_client, 9);
        assert_eq!(
            snapshot.clients,
            vec![SavedClient {
                id: ClientId::from(5),
                session: None
            }]
        );
        assert_eq!(snapshot.service, b"state");
    }
}
