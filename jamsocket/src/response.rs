/// A room's answer to a request from the server side (see [`JamsocketService::request`]): an
/// HTTP-like status and a body.
///
/// The status should lie in `100..=599`: a host passes it on to the backend that asked (a
/// WebAssembly host refuses any other and fails the room, as for any malformed guest answer).
///
/// ```
/// use jamsocket::Response;
///
/// let answer = Response::ok("42");
/// assert_eq!((answer.status, answer.body.as_slice()), (200, &b"42"[..]));
/// assert_eq!(Response::new(400, vec![1, 2]).body, [1, 2]);
/// assert_eq!(Response::not_found().status, 404);
/// ```
///
/// [`JamsocketService::request`]: crate::JamsocketService::request
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status, as in HTTP (200 for success).
    pub status: u16,
    /// The body, passed on as it is.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status` and `body`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            body: body.into(),
        }
    }

    /// A 200 response with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Response::new(200, body)
    }

    /// 404, `this room's service handles no requests`: the answer of a service without a
    /// request handler (the default).
    pub fn not_found() -> Self {
        Response::new(404, "this room's service handles no requests")
    }
}
