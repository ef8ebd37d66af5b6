//! Sessions: what lets a client that reconnects within the grace come back as the same client.
//! A client opens a session by presenting a resume key; the room keeps the session while the
//! client is away, with the messages sent to it meanwhile.

use super::outbound_queue::QueueReceiver;
use super::room_context::Outbound;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use subtle::ConstantTimeEq;

/// How often the room tells a `jamsocket.v1` client how many of its messages it handled, and
/// the client the server how many it received.
pub(crate) const ACK_EVERY: u64 = 32;

/// A list of unacknowledged messages whose capacity stays above this many once it is mostly
/// acknowledged is shrunk, so that a backlog does not leave an idle client holding its peak.
pub(crate) const KEEP_UNACKED: usize = 64;

/// Most messages a session may count: what a JavaScript number holds exactly, so that the
/// TypeScript client's counts are exact too.
pub(crate) const MAX_COUNT: u64 = (1 << 53) - 1;

/// What a lost connection holds while its client is away (its place in the connection
/// limits), opaque to rooms.
pub(crate) type Held = Box<dyn std::any::Any + Send>;

/// Fewest characters of a resume key: 22 base64url characters carry 132 bits.
pub(crate) const MIN_KEY_CHARS: usize = 22;
/// Most characters of a resume key.
pub(crate) const MAX_KEY_CHARS: usize = 128;

/// Why a resume key was refused (the key itself is never part of the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResumeKeyError {
    #[error("resume key has {len} characters; it needs {MIN_KEY_CHARS} to {MAX_KEY_CHARS} (at least 128 random bits)")]
    Length { len: usize },
    #[error("resume key has a character other than A-Z a-z 0-9 - _")]
    Character,
}

/// A resume key as a room keeps it: its SHA-256. The key itself is never kept, saved or
/// logged, and keys are compared in constant time.
#[derive(Clone, Copy)]
pub(crate) struct ResumeKey([u8; 32]);

impl std::fmt::Debug for ResumeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeKey(..)")
    }
}

impl ResumeKey {
    pub(crate) fn parse(key: &str) -> Result<ResumeKey, ResumeKeyError> {
        if !(MIN_KEY_CHARS..=MAX_KEY_CHARS).contains(&key.len()) {
            return Err(ResumeKeyError::Length { len: key.len() });
        }
        if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ResumeKeyError::Character);
        }
        Ok(ResumeKey(Sha256::digest(key.as_bytes()).into()))
    }

    pub(crate) fn from_hash(hash: [u8; 32]) -> ResumeKey {
        ResumeKey(hash)
    }

    pub(crate) fn hash(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn matches(&self, other: &ResumeKey) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// The messages on their way to one client: those the room queued, and (for clients of the
/// `jamsocket.v1` protocol) those written but not yet acknowledged. The client's connection
/// owns it; the room keeps it while the client is away, and hands it to the connection that
/// resumes the session.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub outbound: QueueReceiver,
    /// Application messages written to the client in this session.
    pub sent: u64,
    /// The last `unacked.len()` of them, which the client has not acknowledged.
    pub unacked: VecDeque<Outbound>,
    /// `false` once restored from a snapshot: what was sent before is unknown, and the
    /// client's own count is taken as it is.
    pub known: bool,
}

/// A `seen` or acknowledgement count that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acknowledged {count} messages, but {acked} were acknowledged and {sent} sent")]
pub(crate) struct CountError {
    pub count: u64,
    pub acked: u64,
    pub sent: u64,
}

impl Delivery {
    pub(crate) fn new(outbound: QueueReceiver) -> Delivery {
        Delivery {
            outbound,
            sent: 0,
            unacked: VecDeque::new(),
            known: true,
        }
    }

    /// Messages of the session the client has acknowledged.
    pub(crate) fn acked(&self) -> u64 {
        self.sent - self.unacked.len() as u64
    }

    /// The client acknowledged its first `count` messages: forget them.
    pub(crate) fn ack(&mut self, count: u64) -> Result<(), CountError> {
        let acked = self.acked();
        if count < acked || count > self.sent {
            return Err(CountError {
                count,
                acked,
                sent: self.sent,
            });
        }
        self.unacked.drain(..(count - acked) as usize);
        if self.unacked.capacity() > KEEP_UNACKED && self.unacked.len() <= KEEP_UNACKED / 2 {
            self.unacked.shrink_to(KEEP_UNACKED);
        }
        Ok(())
    }

    /// A connection resumes the session having seen `seen` messages: what it has not seen
    /// stays to be written again.
    pub(crate) fn resume(&mut self, seen: u64) -> Result<(), CountError> {
        if !self.known {
            if seen > MAX_COUNT {
                return Err(CountError {
                    count: seen,
                    acked: 0,
                    sent: MAX_COUNT,
                });
            }
            self.known = true;
            self.sent = seen;
            self.unacked.clear();
            return Ok(());
        }
        self.ack(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_need_128_bits_of_url_safe_characters() {
        assert!(ResumeKey::parse("abcdefghijklmnopqrstuv").is_ok());
        assert_eq!(
            ResumeKey::parse("short").unwrap_err(),
            ResumeKeyError::Length { len: 5 }
        );
        assert_eq!(
            ResumeKey::parse(&"a".repeat(129)).unwrap_err(),
            ResumeKeyError::Length { len: 129 }
        );
        assert_eq!(
            ResumeKey::parse("abcdefghijklmnopqrstu+").unwrap_err(),
            ResumeKeyError::Character
        );
        let a = ResumeKey::parse("abcdefghijklmnopqrstuv").unwrap();
        let b = ResumeKey::parse("abcdefghijklmnopqrstuw").unwrap();
        assert!(a.matches(&a) && !a.matches(&b));
        assert_eq!(format!("{a:?}"), "ResumeKey(..)");
    }

    #[test]
    fn acknowledgements_forget_what_the_client_has() {
        let mut delivery = Delivery::new(QueueReceiver::closed());
        for i in 0..5 {
            delivery.sent += 1;
            delivery
                .unacked
                .push_back(Outbound::Text(format!("{i}").into()));
        }
        delivery.ack(2).unwrap();
        assert_eq!(delivery.unacked.len(), 3);
        assert!(delivery.ack(1).is_err());
        assert!(delivery.ack(6).is_err());
        delivery.resume(4).unwrap();
        assert_eq!(delivery.unacked.len(), 1);
        let mut restored = Delivery::new(QueueReceiver::closed());
        restored.known = false;
        assert!(restored.resume(u64::MAX).is_err());
        restored.resume(40).unwrap();
        assert_eq!((restored.sent, restored.unacked.len()), (40, 0));
    }

    #[test]
    fn an_acknowledged_backlog_gives_its_memory_back() {
        let mut delivery = Delivery::new(QueueReceiver::closed());
        for _ in 0..1_000 {
            delivery.sent += 1;
            delivery.unacked.push_back(Outbound::Ack(0));
        }
        delivery.ack(500).unwrap();
        assert!(delivery.unacked.capacity() >= 500, "still in use");
        delivery.ack(990).unwrap();
        assert_eq!(delivery.unacked.len(), 10);
        assert!(delivery.unacked.capacity() < 2 * KEEP_UNACKED);
    }
}
