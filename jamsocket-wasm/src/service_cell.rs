//! The room's service and the handlers the exported functions call.

use crate::buffer::with_input;
use crate::guest_context::GuestContext;
use crate::lock::lock;
use jamsocket::{ClientId, SimpleJamsocketService};
use std::borrow::Cow;
use std::sync::Mutex;

/// Holds the one service instance of a module (a `static` emitted by `#[jamsocket_wasm]`).
#[derive(Debug)]
pub struct ServiceCell<S>(Mutex<Option<S>>);

impl<S> ServiceCell<S> {
    /// An empty cell, filled by [`initialize`].
    #[allow(clippy::new_without_default)] // used in a `static`, where only a `const fn` will do
    pub const fn new() -> Self {
        ServiceCell(Mutex::new(None))
    }

    /// Runs `f` on the service. Panics (which traps the instance) if the host calls a handler
    /// before `jamsocket_initialize`: that is a host bug, and silently dropping the event would
    /// hide it.
    pub(crate) fn with<R>(&self, export: &str, f: impl FnOnce(&mut S) -> R) -> R {
        // Bytes kept for the host by the last `jamsocket_snapshot` or `jamsocket_request` are
        // no longer needed.
        crate::kept::release();
        let mut service = lock(&self.0);
        match service.as_mut() {
            Some(service) => f(service),
            None => panic!("`{export}` was called before `jamsocket_initialize`"),
        }
    }

    /// Puts `service` in the cell, replacing any previous one.
    pub(crate) fn set(&self, service: S) {
        *lock(&self.0) = Some(service);
    }
}

/// Fails to compile unless `S` is a service; the attribute uses it so a type that does not
/// implement `SimpleJamsocketService` is reported on every target, not just on `wasm32`.
pub const fn assert_service<S: SimpleJamsocketService>() {}

/// `jamsocket_abi_version`
pub fn abi_version() -> u32 {
    jamsocket::abi::ABI_VERSION
}

/// Decodes text input, replacing invalid UTF-8 with U+FFFD.
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

pub(crate) fn input<R>(export: &str, ptr: u32, len: u32, f: impl FnOnce(&[u8]) -> R) -> R {
    with_input(ptr, len, f).unwrap_or_else(|problem| panic!("`{export}`: {problem}"))
}

/// `jamsocket_initialize`: builds the service for the room id in the buffer, replacing any
/// previous one.
pub fn initialize<S: SimpleJamsocketService>(cell: &ServiceCell<S>, room_ptr: u32, room_len: u32) {
    let service = input("jamsocket_initialize", room_ptr, room_len, |room_id| {
        S::new(&text(room_id), &GuestContext)
    });
    cell.set(service);
}

/// `jamsocket_connect`
pub fn connect<S: SimpleJamsocketService>(cell: &ServiceCell<S>, client: u32) {
    cell.with("jamsocket_connect", |service| {
        service.connect(ClientId::from(client), &GuestContext)
    });
}

/// `jamsocket_disconnect`
pub fn disconnect<S: SimpleJamsocketService>(cell: &ServiceCell<S>, client: u32) {
    cell.with("jamsocket_disconnect", |service| {
        service.disconnect(ClientId::from(client), &GuestContext)
    });
}

/// `jamsocket_message`
pub fn message<S: SimpleJamsocketService>(cell: &ServiceCell<S>, client: u32, ptr: u32, len: u32) {
    cell.with("jamsocket_message", |service| {
        input("jamsocket_message", ptr, len, |message| {
            service.message(ClientId::from(client), &text(message), &GuestContext)
        })
    });
}

/// `jamsocket_binary`
pub fn binary<S: SimpleJamsocketService>(cell: &ServiceCell<S>, client: u32, ptr: u32, len: u32) {
    cell.with("jamsocket_binary", |service| {
        input("jamsocket_binary", ptr, len, |message| {
            service.binary(ClientId::from(client), message, &GuestContext)
        })
    });
}

/// `jamsocket_timer`
pub fn timer<S: SimpleJamsocketService>(cell: &ServiceCell<S>) {
    cell.with("jamsocket_timer", |service| service.timer(&GuestContext));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::buffer;
    use crate::guest_context::{take_sent, Sent};
    use jamsocket::{JamsocketContext, MessageRecipient};

    /// Records every event it sees as a broadcast, and echoes binaries to the sender.
    struct Recorder;

    impl SimpleJamsocketService for Recorder {
        fn new(room_id: &str, ctx: &impl JamsocketContext) -> Self {
            ctx.send_message(MessageRecipient::Broadcast, &format!("new {room_id}"));
            Recorder
        }
        fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
            ctx.send_message(MessageRecipient::Broadcast, &format!("connect {client}"));
            ctx.set_timer(100);
        }
        fn disconnect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
            ctx.send_message(MessageRecipient::Broadcast, &format!("disconnect {client}"));
        }
        fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
            ctx.send_message(client, &format!("message {message}"));
        }
        fn binary(&mut self, client: ClientId, message: &[u8], ctx: &impl JamsocketContext) {
            ctx.send_binary(client, message);
        }
        fn timer(&mut self, ctx: &impl JamsocketContext) {
            ctx.send_message(MessageRecipient::Broadcast, "timer");
        }
    }

    /// Copies `bytes` into the buffer the way a host would, returning `(ptr, len)`.
    fn write_input(bytes: &[u8]) -> (u32, u32) {
        let ptr = buffer(bytes.len() as u32);
        crate::buffer::tests_support::write(bytes);
        (ptr, bytes.len() as u32)
    }

    fn broadcast(text: &str) -> Sent {
        Sent::Message(MessageRecipient::Broadcast, text.to_string())
    }

    #[test]
    fn handlers_reach_the_service_and_its_context() {
        let _serial = crate::buffer::tests_support::serial();
        static CELL: ServiceCell<Recorder> = ServiceCell::new();
        let client = ClientId::from(7);
        let to_client = MessageRecipient::Client(client);

        let (ptr, len) = write_input(b"room-1");
        initialize(&CELL, ptr, len);
        assert_eq!(take_sent(), vec![broadcast("new room-1")]);

        connect(&CELL, 7);
        assert_eq!(take_sent(), vec![broadcast("connect 7"), Sent::Timer(100)]);

        let (ptr, len) = write_input("héllo".as_bytes());
        message(&CELL, 7, ptr, len);
        assert_eq!(
            take_sent(),
            vec![Sent::Message(to_client, "message héllo".into())]
        );

        // Invalid UTF-8 is decoded lossily, without a panic.
        let (ptr, len) = write_input(&[b'a', 0xff, b'b']);
        message(&CELL, 7, ptr, len);
        assert_eq!(
            take_sent(),
            vec![Sent::Message(to_client, "message a\u{fffd}b".into())]
        );

        // Empty input needs no buffer.
        message(&CELL, 7, 0, 0);
        assert_eq!(
            take_sent(),
            vec![Sent::Message(to_client, "message ".into())]
        );

        let (ptr, len) = write_input(&[0, 1, 2]);
        binary(&CELL, 7, ptr, len);
        binary(&CELL, 7, 0, 0);
        assert_eq!(
            take_sent(),
            vec![
                Sent::Binary(to_client, vec![0, 1, 2]),
                Sent::Binary(to_client, vec![])
            ]
        );

        timer(&CELL);
        disconnect(&CELL, 7);
        assert_eq!(
            take_sent(),
            vec![broadcast("timer"), broadcast("disconnect 7")]
        );
        assert_eq!(abi_version(), jamsocket::abi::ABI_VERSION);
    }

    #[test]
    #[should_panic(expected = "`jamsocket_timer` was called before `jamsocket_initialize`")]
    fn handlers_before_initialize_panic() {
        // Serial: a handler call releases the bytes kept by `jamsocket_snapshot`, which the
        // snapshot tests read.
        let _serial = crate::buffer::tests_support::serial();
        static CELL: ServiceCell<Recorder> = ServiceCell::new();
        timer(&CELL);
    }

    #[test]
    #[should_panic(expected = "is not inside the buffer")]
    fn input_outside_the_buffer_panics() {
        let _serial = crate::buffer::tests_support::serial();
        static CELL: ServiceCell<Recorder> = ServiceCell::new();
        initialize(&CELL, 0, 0);
        message(&CELL, 1, 0, 1);
    }
}
