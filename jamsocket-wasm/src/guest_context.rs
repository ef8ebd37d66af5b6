//! The context a guest service talks to: each call goes to a host import.

use jamsocket::abi::encode_recipient;
use jamsocket::{ClientId, JamsocketContext, MessageRecipient, User};

// On `wasm32` the context calls the host's imports; elsewhere, the recorder in `mod host` below.
#[cfg(target_arch = "wasm32")]
use crate::imports as host;

/// The [`JamsocketContext`] of a service running as a WebAssembly guest.
///
/// On `wasm32` every call goes straight to the host (imports of module
/// [`jamsocket::abi::IMPORT_MODULE`]). On other targets, where the runtime is only exercised
/// by tests, calls are recorded per thread (see [`take_sent`]) and users are those given to
/// [`set_user`] on the thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestContext;

impl JamsocketContext for GuestContext {
    fn send_message(&self, recipient: impl Into<MessageRecipient>, message: &str) {
        host::send_message(encode_recipient(recipient.into()), message.as_bytes());
    }

    fn send_binary(&self, recipient: impl Into<MessageRecipient>, message: &[u8]) {
        host::send_binary(encode_recipient(recipient.into()), message);
    }

    fn set_timer(&self, ms_delay: u32) {
        host::set_timer(ms_delay);
    }

    fn user(&self, client: ClientId) -> Option<User> {
        read_user(|buf| host::user(client.into(), buf))
    }
}

/// How many bytes of user the first `user` call makes room for (on the stack); a longer one
/// takes a second call with a buffer of its length.
const USER_BUFFER: usize = 256;

/// Reads a user through `fetch`, which behaves like the `user` import: it returns
/// [`USER_NONE`](jamsocket::abi::USER_NONE) (any negative value) or the encoding's length, and
/// fills the buffer only if the encoding fits. Tries a small buffer first, then one of the
/// length the host reported (again if the user grew in between, a few times at most). `None`
/// too if the host's bytes do not decode.
fn read_user(mut fetch: impl FnMut(&mut [u8]) -> i32) -> Option<User> {
    let mut small = [0u8; USER_BUFFER];
    let mut len = usize::try_from(fetch(&mut small)).ok()?;
    if len <= small.len() {
        return User::decode(&small[..len]);
    }
    for _ in 0..4 {
        let mut buf = vec![0; len];
        let found = usize::try_from(fetch(&mut buf)).ok()?;
        if found <= buf.len() {
            return User::decode(&buf[..found]);
        }
        len = found;
    }
    None
}

/// What a [`GuestContext`] sent, on targets other than `wasm32`.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// `send_message`
    Message(MessageRecipient, String),
    /// `send_binary`
    Binary(MessageRecipient, Vec<u8>),
    /// `set_timer`
    Timer(u32),
}

/// What [`GuestContext`]s on this thread sent since the last call, oldest first (targets other
/// than `wasm32` only).
#[cfg(not(target_arch = "wasm32"))]
pub fn take_sent() -> Vec<Sent> {
    host::SENT.with(|sent| sent.take())
}

/// Makes [`GuestContext::user`] on this thread answer `user` for `client` (`None`: anonymous),
/// through the same encoding and buffer handling as on `wasm32` (targets other than `wasm32`
/// only).
#[cfg(not(target_arch = "wasm32"))]
pub fn set_user(client: ClientId, user: Option<User>) {
    host::USERS.with(|users| {
        let mut users = users.borrow_mut();
        match user {
            Some(user) => users.insert(client, user),
            None => users.remove(&client),
        };
    });
}

#[cfg(not(target_arch = "wasm32"))]
mod host {
    use super::Sent;
    use jamsocket::abi::{decode_recipient, USER_NONE};
    use jamsocket::{ClientId, User};
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        pub(super) static SENT: RefCell<Vec<Sent>> = const { RefCell::new(Vec::new()) };
        pub(super) static USERS: RefCell<HashMap<ClientId, User>> = RefCell::new(HashMap::new());
    }

    fn record(sent: Sent) {
        SENT.with(|log| log.borrow_mut().push(sent));
    }

    pub(super) fn send_message(recipient: u32, message: &[u8]) {
        let text = String::from_utf8_lossy(message).into_owned();
        record(Sent::Message(decode_recipient(recipient), text));
    }

    pub(super) fn send_binary(recipient: u32, message: &[u8]) {
        record(Sent::Binary(decode_recipient(recipient), message.to_vec()));
    }

    pub(super) fn set_timer(ms_delay: u32) {
        record(Sent::Timer(ms_delay));
    }
    /// The `user` import, answered from [`USERS`].
    pub(super) fn user(client: u32, buf: &mut [u8]) -> i32 {
        let Some(user) = USERS.with(|users| users.borrow().get(&ClientId::from(client)).cloned())
        else {
            return USER_NONE;
        };
        let bytes = user.encode();
        if let Some(prefix) = buf.get_mut(..bytes.len()) {
            prefix.copy_from_slice(&bytes);
        }
        i32::try_from(bytes.len()).expect("a user under 2 GiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamsocket::abi::USER_NONE;

    /// A `user` import answering `bytes` (or none), counting its calls.
    fn host(bytes: Option<Vec<u8>>, calls: &mut usize) -> impl FnMut(&mut [u8]) -> i32 + '_ {
        move |buf| {
            *calls += 1;
            let Some(bytes) = &bytes else {
                return USER_NONE;
            };
            if bytes.len() <= buf.len() {
                buf[..bytes.len()].copy_from_slice(bytes);
            }
            bytes.len() as i32
        }
    }

    #[test]
    fn a_short_user_takes_one_call() {
        let user = User::new("alice").with_claims(r#"{"role":"admin"}"#);
        let mut calls = 0;
        assert_eq!(read_user(host(Some(user.encode()), &mut calls)), Some(user));
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_long_user_takes_a_second_call_with_a_buffer_of_its_length() {
        for claims_len in [USER_BUFFER - 4 - 3 + 1, 10_000] {
            let user = User::new("bob").with_claims("x".repeat(claims_len));
            let mut calls = 0;
            assert_eq!(read_user(host(Some(user.encode()), &mut calls)), Some(user));
            assert_eq!(calls, 2);
        }
        // Exactly the small buffer's size still fits.
        let user = User::new("bob").with_claims("x".repeat(USER_BUFFER - 4 - 3));
        let mut calls = 0;
        assert_eq!(read_user(host(Some(user.encode()), &mut calls)), Some(user));
        assert_eq!(calls, 1);
    }

    #[test]
    fn no_user_or_garbage_is_none() {
        let mut calls = 0;
        assert_eq!(read_user(host(None, &mut calls)), None);
        assert_eq!(read_user(host(Some(vec![9, 0, 0, 0]), &mut calls)), None);
        assert_eq!(read_user(|_| -5), None);
    }

    #[test]
    fn a_user_that_keeps_growing_is_given_up_on() {
        let mut len = USER_BUFFER as i32;
        assert_eq!(
            read_user(|_| {
                len *= 2;
                len
            }),
            None
        );
    }

    #[test]
    fn the_native_context_answers_the_users_set_on_the_thread() {
        let (alice, bob) = (ClientId::from(1), ClientId::from(2));
        let long = User::new("alice").with_claims("y".repeat(1000));
        set_user(alice, Some(long.clone()));
        assert_eq!(GuestContext.user(alice), Some(long));
        assert_eq!(GuestContext.user(bob), None);
        set_user(alice, None);
        assert_eq!(GuestContext.user(alice), None);
    }
}
