//! The `user` import (ABI version 2), and modules of version 1, which do not import it.

use crate::common::{example_factory, guest_failure, room, within, WatGuest};
use jamsocket::abi::{imports, USER_NONE};
use jamsocket::{ClientId, JamsocketService, MessageRecipient, User};
use jamsocket_wasm_host::{GuestFailure, WasmHostFactory};

const ALICE: u32 = 1;
const BOB: u32 = 2;

fn alice() -> User {
    User::new("alice").with_claims(r#"{"sub":"alice","role":"admin"}"#)
}

/// Where the guest below asks the host to write the user.
const BUFFER: u32 = 4096;

/// A guest that, on each text message, calls `user(sender, ptr, cap)` and sends the sender two
/// binary messages: the result (i32, little-endian), then the `cap` bytes at `ptr` (zeros unless
/// the host wrote there).
fn user_guest(ptr: u32, cap: u32) -> WasmHostFactory {
    let body = format!(
        "(local $n i32)
         (local.set $n (call $user (local.get $client) (i32.const {ptr}) (i32.const {cap})))
         (i32.store (i32.const 8) (local.get $n))
         (call $send_binary (local.get $client) (i32.const 8) (i32.const 4))
         (call $send_binary (local.get $client) (i32.const {ptr}) (i32.const {cap}))"
    );
    WatGuest::default()
        .body("jamsocket_message", &body)
        .factory()
}

/// Sends `client`'s message to a [`user_guest`] room whose context knows `users`, and returns
/// what `user` returned and the buffer afterwards.
async fn ask(factory: &WasmHostFactory, users: &[(u32, User)], client: u32) -> (i32, Vec<u8>) {
    let (mut host, sent) = room(factory, "user-room").await;
    for (id, user) in users {
        sent.set_user(ClientId::from(*id), Some(user.clone()));
    }
    within(host.message(ClientId::from(client), "who?"))
        .await
        .unwrap();
    let binaries = sent.take_binaries();
    let to = MessageRecipient::Client(ClientId::from(client));
    assert!(binaries.iter().all(|(recipient, _)| *recipient == to));
    let [(_, result), (_, buffer)] = <[_; 2]>::try_from(binaries).expect("two binaries");
    (i32::from_le_bytes(result.try_into().unwrap()), buffer)
}

#[tokio::test]
async fn a_version_1_module_without_user_is_served() {
    let factory = WatGuest::default()
        .body("jamsocket_abi_version", "i32.const 1")
        .without_import(imports::USER)
        .factory();
    let (mut host, sent) = room(&factory, "v1-room").await;
    sent.set_user(ClientId::from(ALICE), Some(alice()));
    within(host.connect(ClientId::from(ALICE))).await.unwrap();
    within(host.message(ClientId::from(ALICE), "hi"))
        .await
        .unwrap();
    within(host.disconnect(ClientId::from(ALICE)))
        .await
        .unwrap();
    assert_eq!(
        sent.take_messages(),
        vec![(
            MessageRecipient::Client(ClientId::from(ALICE)),
            "ok".to_string()
        )]
    );
    // And it is saved and restored like any other.
    let saved = within(host.snapshot()).await.unwrap().unwrap();
    within(jamsocket::JamsocketServiceFactory::restore(
        &factory,
        "v1-room",
        sent.clone(),
        &saved,
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn user_is_none_for_an_anonymous_client() {
    let factory = user_guest(BUFFER, 256);
    let users = [(ALICE, alice())];
    let (result, buffer) = ask(&factory, &users, BOB).await;
    assert_eq!(result, USER_NONE);
    assert_eq!(buffer, vec![0; 256]);
    // A host context that knows no users at all answers the same.
    let (result, _) = ask(&factory, &[], ALICE).await;
    assert_eq!(result, USER_NONE);
}

#[tokio::test]
async fn user_writes_the_encoding_when_it_fits() {
    let encoded = alice().encode();
    let len = encoded.len() as u32;
    for cap in [len, len + 1, 256] {
        let factory = user_guest(BUFFER, cap);
        let (result, buffer) = ask(&factory, &[(ALICE, alice())], ALICE).await;
        assert_eq!(result, len as i32, "cap {cap}");
        assert_eq!(&buffer[..encoded.len()], encoded, "cap {cap}");
        assert!(buffer[encoded.len()..].iter().all(|&b| b == 0), "cap {cap}");
        assert_eq!(User::decode(&buffer[..encoded.len()]), Some(alice()));
    }
    // A user without claims.
    let bob = User::new("bob");
    let factory = user_guest(BUFFER, 64);
    let (result, buffer) = ask(&factory, &[(BOB, bob.clone())], BOB).await;
    assert_eq!(result, 7);
    assert_eq!(User::decode(&buffer[..7]), Some(bob));
}

#[tokio::test]
async fn user_only_reports_the_length_when_the_buffer_is_too_small() {
    let len = alice().encode().len();
    for cap in [0, 4, len as u32 - 1] {
        let factory = user_guest(BUFFER, cap);
        let (result, buffer) = ask(&factory, &[(ALICE, alice())], ALICE).await;
        assert_eq!(result, len as i32, "cap {cap}");
        assert!(buffer.iter().all(|&b| b == 0), "cap {cap}: {buffer:?}");
    }
    // An empty buffer right at the end of memory is within it.
    let factory = user_guest(65_536, 0);
    let (result, _) = ask(&factory, &[(ALICE, alice())], ALICE).await;
    assert_eq!(result, len as i32);
}

#[tokio::test]
async fn a_user_buffer_outside_guest_memory_fails_the_guest() {
    let cases = [
        (65_535_u32, 2_u32),
        (0x7fff_ffff, 16),
        (16, u32::MAX),
        (u32::MAX, u32::MAX),
    ];
    for (ptr, cap) in cases {
        let body = format!(
            "(drop (call $user (local.get $client) (i32.const {}) (i32.const {})))",
            ptr as i32, cap as i32
        );
        let factory = WatGuest::default()
            .body("jamsocket_message", &body)
            .factory();
        // Whether or not the client has a user: a bad buffer fails every time.
        for users in [vec![], vec![(ALICE, alice())]] {
            let (mut host, sent) = room(&factory, "bad-user-room").await;
            for (id, user) in users {
                sent.set_user(ClientId::from(id), Some(user));
            }
            let error = within(host.message(ClientId::from(ALICE), "x"))
                .await
                .unwrap_err();
            assert_eq!(
                guest_failure(&error, "bad-user-room", "jamsocket_message"),
                GuestFailure::OutOfBounds {
                    import: imports::USER,
                    ptr,
                    len: cap,
                    memory_size: 65_536,
                }
            );
        }
    }
}

#[tokio::test]
async fn a_rust_guest_reads_users_through_the_context() {
    let factory = example_factory("conformance-service");
    let (mut host, sent) = room(&factory, "whoami-room").await;
    // Longer than the guest's first buffer, so it asks twice.
    let long_claims = format!(r#"{{"sub":"carol","pad":"{}"}}"#, "x".repeat(1000));
    sent.set_user(ClientId::from(ALICE), Some(alice()));
    sent.set_user(ClientId::from(BOB), Some(User::new("bob")));
    sent.set_user(
        ClientId::from(3),
        Some(User::new("carol").with_claims(long_claims.clone())),
    );
    for client in 1..=4 {
        within(host.message(ClientId::from(client), "whoami"))
            .await
            .unwrap();
    }
    let reply =
        |client: u32, text: String| (MessageRecipient::Client(ClientId::from(client)), text);
    assert_eq!(
        sent.take_messages(),
        vec![
            reply(ALICE, format!("user alice {}", alice().claims.unwrap())),
            reply(BOB, "user bob -".to_string()),
            reply(3, format!("user carol {long_claims}")),
            reply(4, "user none".to_string()),
        ]
    );
}
