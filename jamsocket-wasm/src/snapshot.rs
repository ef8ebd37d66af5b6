//! The optional snapshot exports: `jamsocket_snapshot` saves the service's own bytes,
//! `jamsocket_restore` builds the service from them instead of `jamsocket_initialize`.
//!
//! Both call the service's [`SimpleJamsocketService::snapshot`] / [`SimpleJamsocketService::restore`]
//! (which [`Durable`](jamsocket::Durable) writes with serde); a service that keeps no snapshots
//! returns `-1` / [`RESTORE_UNSUPPORTED`], and the host falls back to saving the whole memory.

use crate::guest_context::GuestContext;
use crate::kept::keep;
use crate::service_cell::{input, text, ServiceCell};
use jamsocket::abi::{RESTORE_CORRUPT, RESTORE_OK, RESTORE_UNSUPPORTED};
use jamsocket::{RestoreError, SimpleJamsocketService};

/// What `jamsocket_snapshot` returns when the service keeps no snapshot.
const NO_SNAPSHOT: i64 = -1;

/// `jamsocket_snapshot`: the service's snapshot as `(ptr << 32) | len` (kept until the next
/// handler call), or `-1` if the service keeps no snapshot.
pub fn snapshot<S: SimpleJamsocketService>(cell: &ServiceCell<S>) -> i64 {
    match cell.with("jamsocket_snapshot", |service| service.snapshot()) {
        Some(bytes) => keep("jamsocket_snapshot", bytes),
        None => NO_SNAPSHOT,
    }
}

/// `jamsocket_restore`: builds the service from the framed snapshot in the buffer (room id
/// length as u32 little-endian, room id, snapshot) and puts it in the cell. Returns
/// [`RESTORE_OK`], [`RESTORE_UNSUPPORTED`] or [`RESTORE_CORRUPT`]; the reason for the last two
/// goes to stderr, which the host logs with the room id.
///
/// A frame that does not parse is a host bug and panics (trapping the instance), like input
/// outside the buffer; a [`RestoreError::Service`] panics too, so the host sees a failed call.
pub fn restore<S: SimpleJamsocketService>(cell: &ServiceCell<S>, ptr: u32, len: u32) -> i32 {
    let restored = input("jamsocket_restore", ptr, len, |frame| {
        let (room_id, snapshot) =
            unframe(frame).unwrap_or_else(|problem| panic!("`jamsocket_restore`: {problem}"));
        S::restore(&text(room_id), snapshot, &GuestContext)
    });
    match restored {
        Ok(service) => {
            cell.set(service);
            RESTORE_OK
        }
        Err(RestoreError::Unsupported(cause)) => {
            eprintln!("jamsocket_restore: snapshot not restorable: {cause}");
            RESTORE_UNSUPPORTED
        }
        Err(RestoreError::Corrupt(cause)) => {
            eprintln!("jamsocket_restore: corrupt snapshot: {cause}");
            RESTORE_CORRUPT
        }
        Err(other) => panic!("`jamsocket_restore` failed: {other}"),
    }
}

/// Splits a `jamsocket_restore` frame into the room id and the snapshot.
fn unframe(frame: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (len, rest) = frame.split_first_chunk::<4>().ok_or_else(|| {
        format!(
            "the frame is {} bytes, too short for its header",
            frame.len()
        )
    })?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(format!(
            "the frame announces a {len}-byte room id but holds {} bytes after its header",
            rest.len()
        ));
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::buffer;
    use crate::guest_context::{take_sent, Sent};
    use crate::kept::tests_support::{kept, released};
    use jamsocket::{ClientId, JamsocketContext, MessageRecipient};

    /// A counter whose snapshot is its value in decimal.
    struct Saved(i64);

    impl SimpleJamsocketService for Saved {
        fn new(_: &str, _: &impl JamsocketContext) -> Self {
            Saved(0)
        }
        fn message(&mut self, _: ClientId, _: &str, ctx: &impl JamsocketContext) {
            self.0 += 1;
            ctx.send_message(MessageRecipient::Broadcast, &self.0.to_string());
        }
        fn snapshot(&self) -> Option<Vec<u8>> {
            Some(self.0.to_string().into_bytes())
        }
        fn restore(
            room_id: &str,
            snapshot: &[u8],
            ctx: &impl JamsocketContext,
        ) -> Result<Self, RestoreError> {
            let value = std::str::from_utf8(snapshot)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| RestoreError::corrupt("not a number"))?;
            ctx.send_message(
                MessageRecipient::Broadcast,
                &format!("{room_id} at {value}"),
            );
            Ok(Saved(value))
        }
    }

    /// Keeps no snapshots (the trait's defaults).
    struct Plain;

    impl SimpleJamsocketService for Plain {
        fn new(_: &str, _: &impl JamsocketContext) -> Self {
            Plain
        }
    }

    fn frame(room_id: &str, snapshot: &[u8]) -> Vec<u8> {
        let mut frame = (room_id.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(room_id.as_bytes());
        frame.extend_from_slice(snapshot);
        frame
    }

    /// Copies `bytes` into the buffer the way a host would, returning `(ptr, len)`.
    fn write_input(bytes: &[u8]) -> (u32, u32) {
        let ptr = buffer(bytes.len() as u32);
        crate::buffer::tests_support::write(bytes);
        (ptr, bytes.len() as u32)
    }

    #[test]
    fn a_snapshot_restores_into_a_new_cell() {
        let _serial = crate::buffer::tests_support::serial();
        static CELL: ServiceCell<Saved> = ServiceCell::new();
        static RESTORED: ServiceCell<Saved> = ServiceCell::new();
        crate::service_cell::initialize(&CELL, 0, 0);
        crate::service_cell::message(&CELL, 1, 0, 0);
        crate::service_cell::message(&CELL, 1, 0, 0);
        let packed = snapshot(&CELL);
        assert_ne!(packed, NO_SNAPSHOT);
        let saved = kept(packed);
        assert_eq!(saved, b"2");
        // The next handler call releases the bytes.
        crate::service_cell::message(&CELL, 1, 0, 0);
        assert!(released());
        take_sent();

        let (ptr, len) = write_input(&frame("room-9", &saved));
        assert_eq!(restore(&RESTORED, ptr, len), RESTORE_OK);
        crate::service_cell::message(&RESTORED, 1, 0, 0);
        let broadcast = |text: &str| Sent::Message(MessageRecipient::Broadcast, text.into());
        assert_eq!(take_sent(), vec![broadcast("room-9 at 2"), broadcast("3")]);
    }

    #[test]
    fn refusals_map_to_status_codes() {
        let _serial = crate::buffer::tests_support::serial();
        static SAVED: ServiceCell<Saved> = ServiceCell::new();
        static PLAIN: ServiceCell<Plain> = ServiceCell::new();
        let (ptr, len) = write_input(&frame("r", b"not a number"));
        assert_eq!(restore(&SAVED, ptr, len), RESTORE_CORRUPT);
        let (ptr, len) = write_input(&frame("r", b"1"));
        assert_eq!(restore(&PLAIN, ptr, len), RESTORE_UNSUPPORTED);

        crate::service_cell::initialize(&PLAIN, 0, 0);
        assert_eq!(snapshot(&PLAIN), NO_SNAPSHOT);
    }

    #[test]
    fn frames_are_checked() {
        assert_eq!(unframe(&frame("ab", b"xyz")), Ok((&b"ab"[..], &b"xyz"[..])));
        assert_eq!(unframe(&frame("", b"")), Ok((&b""[..], &b""[..])));
        assert!(unframe(b"\x01\0\0").is_err());
        assert!(unframe(b"\x05\0\0\0abcd").is_err());
        assert!(unframe(&[0xff; 4]).is_err());
    }

    #[test]
    #[should_panic(expected = "`jamsocket_restore`: the frame is 3 bytes")]
    fn a_malformed_frame_panics() {
        let _serial = crate::buffer::tests_support::serial();
        static CELL: ServiceCell<Saved> = ServiceCell::new();
        let (ptr, len) = write_input(b"abc");
        restore(&CELL, ptr, len);
    }
}
