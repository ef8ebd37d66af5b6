//! The optional `jamsocket_request` export: a request from the server side (a backend through
//! the room API), answered by [`SimpleJamsocketService::request`].

use crate::guest_context::GuestContext;
use crate::kept::keep;
use crate::service_cell::{input, ServiceCell};
use jamsocket::abi::encode_response;
use jamsocket::SimpleJamsocketService;

/// `jamsocket_request`: runs the service's request handler on the body in the buffer and
/// returns its [encoded](encode_response) response as `(ptr << 32) | len`, kept until the next
/// handler call.
pub fn request<S: SimpleJamsocketService>(cell: &ServiceCell<S>, ptr: u32, len: u32) -> i64 {
    let response = cell.with("jamsocket_request", |service| {
        input("jamsocket_request", ptr, len, |body| {
            service.request(body, &GuestContext)
        })
    });
    keep("jamsocket_request", encode_response(&response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::buffer;
    use crate::guest_context::{take_sent, Sent};
    use crate::kept::tests_support::{kept, released};
    use jamsocket::abi::decode_response;
    use jamsocket::{JamsocketContext, MessageRecipient, Response};

    /// Stores what it is told and broadcasts it.
    struct Note(String);

    impl SimpleJamsocketService for Note {
        fn new(_: &str, _: &impl JamsocketContext) -> Self {
            Note(String::new())
        }
        fn request(&mut self, body: &[u8], ctx: &impl JamsocketContext) -> Response {
            if body.is_empty() {
                return Response::new(400, "empty");
            }
            self.0 = String::from_utf8_lossy(body).into_owned();
            ctx.send_message(MessageRecipient::Broadcast, &self.0);
            Response::ok(self.0.clone())
        }
    }

    /// Keeps the default handler.
    struct Plain;

    impl SimpleJamsocketService for Plain {
        fn new(_: &str, _: &impl JamsocketContext) -> Self {
            Plain
        }
    }

    fn answer(packed: i64) -> Response {
        decode_response(&kept(packed)).expect("a valid response")
    }

    #[test]
    fn requests_are_answered_with_an_encoded_response() {
        let _serial = crate::buffer::tests_support::serial();
        static NOTE: ServiceCell<Note> = ServiceCell::new();
        static PLAIN: ServiceCell<Plain> = ServiceCell::new();
        crate::service_cell::initialize(&NOTE, 0, 0);
        crate::service_cell::initialize(&PLAIN, 0, 0);

        let ptr = buffer(5);
        crate::buffer::tests_support::write(b"hello");
        assert_eq!(answer(request(&NOTE, ptr, 5)), Response::ok("hello"));
        assert_eq!(
            take_sent(),
            vec![Sent::Message(MessageRecipient::Broadcast, "hello".into())]
        );
        assert_eq!(answer(request(&NOTE, 0, 0)), Response::new(400, "empty"));
        assert_eq!(answer(request(&PLAIN, 0, 0)), Response::not_found());

        // The next handler call releases the response.
        crate::service_cell::timer(&PLAIN);
        assert!(released());
    }

    #[test]
    #[should_panic(expected = "`jamsocket_request` was called before `jamsocket_initialize`")]
    fn a_request_before_initialize_panics() {
        let _serial = crate::buffer::tests_support::serial();
        static CELL: ServiceCell<Note> = ServiceCell::new();
        request(&CELL, 0, 0);
    }
}
