//! The text the bench sends: `<client>:<seq>:<nanos>:<pad>`.
//!
//! `client` is the bench's own client number (not the server's client id), `seq` counts that
//! client's messages from 0, and `nanos` is the send time (with `broadcast --rate`, the time
//! the message was scheduled to be sent) in monotonic nanoseconds since the run started. `pad`
//! is `x`s bringing the whole text to the requested payload size.

/// What a bench message says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub client: u64,
    pub seq: u64,
    pub nanos: u64,
}

/// The message for `stamp`, padded with `x` to `payload_bytes` (never cut shorter than its
/// three numbers and separators).
pub fn encode(stamp: Stamp, payload_bytes: usize) -> String {
    let mut text = format!("{}:{}:{}:", stamp.client, stamp.seq, stamp.nanos);
    if text.len() < payload_bytes {
        text.extend(std::iter::repeat_n('x', payload_bytes - text.len()));
    }
    text
}

/// The stamp of a bench message, or `None` for anything else (a service's greeting, `left 3`,
/// `echo:...`). Messages are matched verbatim: a service must not add to them.
pub fn parse(text: &str) -> Option<Stamp> {
    let mut parts = text.splitn(4, ':');
    let client = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let nanos = parts.next()?.parse().ok()?;
    // The fourth part, the padding, must be there (possibly empty) and is not inspected.
    parts.next()?;
    Some(Stamp { client, seq, nanos })
}

/// Whether `reply` answers `sent`: it contains the sent text, so a verbatim echo, a
/// broadcast and conformance-service's `echo:<text>` all match, while greetings do not.
pub fn is_reply_to(reply: &str, sent: &str) -> bool {
    reply.contains(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        client: 12,
        seq: 3,
        nanos: 456_789,
    };

    #[test]
    fn encodes_and_pads_to_the_payload_size() {
        assert_eq!(encode(STAMP, 0), "12:3:456789:");
        let padded = encode(STAMP, 20);
        assert_eq!(padded, "12:3:456789:xxxxxxxx");
        assert_eq!(padded.len(), 20);
    }

    #[test]
    fn round_trips() {
        for size in [0, 12, 64, 4096] {
            assert_eq!(parse(&encode(STAMP, size)), Some(STAMP));
        }
    }

    #[test]
    fn ignores_other_messages() {
        for text in [
            "welcome room-1 4",
            "left 4",
            "echo:12:3:456789:",
            "12:3:456789",
            "12:x:456789:",
            "-1:3:4:",
            "",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn matches_replies_that_carry_the_sent_text() {
        let sent = encode(STAMP, 16);
        assert!(is_reply_to(&sent, &sent));
        assert!(is_reply_to(&format!("echo:{sent}"), &sent));
        assert!(!is_reply_to("welcome bench-1 1", &sent));
        assert!(!is_reply_to(&encode(Stamp { seq: 4, ..STAMP }, 16), &sent));
    }
}
