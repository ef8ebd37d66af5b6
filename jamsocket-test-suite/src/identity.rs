//! Who is connecting: tokens checked before the upgrade, the admission hook, users reaching
//! the service, and sessions that survive a lost connection (the plain protocol and
//! `jamsocket.v1`, whose numbered messages make a resume lossless).

use crate::common::*;
use crate::raw_frames::raw_texts_then_close;
use futures_util::{SinkExt, StreamExt};
use jamsocket::User;
use jamsocket_server::{AdmissionRequest, Denied, JwtVerifier, Server};
use jsonwebtoken::{EncodingKey, Header};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"test secret";
/// A resume key of 22 base64url characters (132 bits).
pub(crate) const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAA";
const OTHER_KEY: &str = "BBBBBBBBBBBBBBBBBBBBBB";

fn token(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn valid_token(sub: &str) -> String {
    token(serde_json::json!({"sub": sub, "exp": now() + 600, "role": "editor"}))
}

async fn whoami(ws: &mut Ws) -> String {
    send(ws, "whoami").await;
    recv_text(ws).await
}

pub async fn tokens_are_checked_before_the_upgrade_with_a_reason_for_each_refusal(
    factory: impl ConformanceFactory,
) {
    let verifier = JwtVerifier::hs256(SECRET).unwrap();
    let server = start(Server::new().with_jwt(verifier), factory);
    let addr = server.local_addr();
    let refused = |path: &'static str, headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        match open(addr, path, &headers).await {
            Ok(_) => panic!("{path} was admitted"),
            Err(refusal) => refusal,
        }
    };
    let (status, body) = refused("/ws/doc", vec![]).await;
    assert_eq!(status, 401);
    assert!(body.contains("no token"), "{body}");
    let (status, body) = refused("/ws/doc?token=garbage", vec![]).await;
    assert_eq!(status, 401);
    assert!(body.starts_with("invalid token"), "{body}");
    let expired = token(serde_json::json!({"sub": "a", "exp": now() - 600}));
    let (status, body) = refused(
        "/ws/doc",
        vec![("authorization", format!("Bearer {expired}"))],
    )
    .await;
    assert_eq!((status, body.trim()), (401, "token expired"));
    let forged = jsonwebtoken::encode(
        &Header::default(),
        &serde_json::json!({"sub": "a", "exp": now() + 600}),
        &EncodingKey::from_secret(b"another secret").unwrap(),
    )
    .unwrap();
    let (status, body) = refused(
        "/ws/doc",
        vec![("authorization", format!("Bearer {forged}"))],
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.starts_with("invalid token"), "{body}");
    let other_room = token(serde_json::json!({"sub": "a", "exp": now() + 600, "room": "other"}));
    let protocol = format!("jamsocket.token.{other_room}");
    let (status, body) = refused("/ws/doc", vec![("sec-websocket-protocol", protocol)]).await;
    assert_eq!(
        (status, body.trim()),
        (403, "token is for room `other`, not `doc`")
    );
    assert_eq!(server.room_count(), 0, "a refused client creates no room");
    // Without the upgrade, the room's path answers with the same refusal, or 426.
    assert_eq!(http(addr, "GET", "/ws/doc").0, 401);
    let good = valid_token("alice");
    assert_eq!(http(addr, "GET", &format!("/ws/doc?token={good}")).0, 426);

    // A valid token, each way a client can present it; the service sees its user.
    let (mut ws, _) = open(addr, &format!("/ws/doc?token={good}"), &[])
        .await
        .unwrap();
    welcome(&mut ws, "doc").await;
    let answer = whoami(&mut ws).await;
    assert!(answer.starts_with("user alice {"), "{answer}");
    assert!(answer.contains(r#""role":"editor""#), "{answer}");
    let bearer = format!("Bearer {}", valid_token("bob"));
    let (mut ws, _) = open(addr, "/ws/doc", &[("authorization", &bearer)])
        .await
        .unwrap();
    welcome(&mut ws, "doc").await;
    assert!(whoami(&mut ws).await.starts_with("user bob {"));
    // A browser offers the token as a subprotocol; offered alone, it is the one selected.
    let offered = format!("jamsocket.token.{}", valid_token("carol"));
    let (mut ws, selected) = open(addr, "/ws/doc", &[("sec-websocket-protocol", &offered)])
        .await
        .unwrap();
    assert_eq!(selected.as_deref(), Some(offered.as_str()));
    welcome(&mut ws, "doc").await;
    assert!(whoami(&mut ws).await.starts_with("user carol {"));
    let offered = format!("jamsocket, jamsocket.token.{}", valid_token("dave"));
    let (mut ws, selected) = open(addr, "/ws/doc", &[("sec-websocket-protocol", &offered)])
        .await
        .unwrap();
    assert_eq!(selected.as_deref(), Some("jamsocket"));
    welcome(&mut ws, "doc").await;
    assert!(whoami(&mut ws).await.starts_with("user dave {"));
}

pub async fn an_admission_hook_admits_as_a_user_or_refuses_with_its_status_and_body(
    factory: impl ConformanceFactory,
) {
    let hook = |request: AdmissionRequest| async move {
        assert!(request.peer.is_some_and(|peer| peer.ip().is_loopback()));
        if request.room_id == "vault" {
            return Err(Denied::too_many_requests("the vault is busy"));
        }
        let user = request
            .headers
            .get("x-user")
            .and_then(|user| user.to_str().ok())
            .map(str::to_string);
        match user.as_deref() {
            None if request.query.contains("guest=1") => Ok(None),
            None => Err(Denied::unauthorized("who are you?")),
            Some("mallory") => Err(Denied::json(
                jamsocket_server::StatusCode::FORBIDDEN,
                &serde_json::json!({"error": "banned"}),
            )),
            Some(name) => Ok(Some(User::new(name).with_claims(r#"{"plan":"pro"}"#))),
        }
    };
    let server = start(Server::new().with_admission(hook), factory);
    let addr = server.local_addr();
    assert_eq!(
        open(addr, "/ws/room", &[]).await.err(),
        Some((401, "who are you?\n".to_string()))
    );
    assert_eq!(
        open(addr, "/ws/room", &[("x-user", "mallory")]).await.err(),
        Some((403, "{\"error\":\"banned\"}\n".to_string()))
    );
    assert_eq!(
        open(addr, "/ws/vault", &[("x-user", "alice")]).await.err(),
        Some((429, "the vault is busy\n".to_string()))
    );
    assert_eq!(server.room_count(), 0, "a refused client creates no room");
    let (mut ws, _) = open(addr, "/ws/room", &[("x-user", "alice")])
        .await
        .unwrap();
    welcome(&mut ws, "room").await;
    assert_eq!(whoami(&mut ws).await, r#"user alice {"plan":"pro"}"#);
    let (mut guest, _) = open(addr, "/ws/room?guest=1", &[]).await.unwrap();
    welcome(&mut guest, "room").await;
    assert_eq!(whoami(&mut guest).await, "user none");
}

pub async fn a_client_back_within_the_grace_keeps_its_id_and_the_service_sees_no_departure(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let path = format!("/ws/chat?resume={KEY}");
    let (mut alice, _) = open(addr, &path, &[]).await.unwrap();
    let id = welcome(&mut alice, "chat").await;
    let (mut bob, bob_id) = join(addr, "chat").await;
    // The connection is lost (no close frame), and the client comes back with its key.
    drop(alice);
    let (mut alice, _) = open(addr, &path, &[]).await.unwrap();
    send(&mut alice, "count").await;
    assert_eq!(
        recv_text(&mut alice).await,
        "count 1",
        "no second welcome: same client"
    );
    assert_eq!(
        recv_text(&mut bob).await,
        "count 1",
        "and nobody saw it leave"
    );
    send(&mut bob, &format!("to:{id}:still you")).await;
    assert_eq!(recv_text(&mut alice).await, "still you");
    // A key is bound to its session: a closed session's key starts a new one.
    alice.close(None).await.unwrap();
    assert_eq!(
        recv_text(&mut bob).await,
        format!("left {id}"),
        "a clean close ends the session at once"
    );
    let (mut again, _) = open(addr, &path, &[]).await.unwrap();
    assert_ne!(welcome(&mut again, "chat").await, id);
    assert_ne!(bob_id, id);
}

pub async fn a_session_ends_when_the_grace_passes_and_a_key_cannot_be_used_by_another_user(
    factory: impl ConformanceFactory,
) {
    let grace = Duration::from_millis(300);
    let server = Server::new()
        .with_reconnect_grace(grace)
        .with_jwt(JwtVerifier::hs256(SECRET).unwrap());
    let server = start(server, factory);
    let addr = server.local_addr();
    let alice_path = format!("/ws/doc?resume={KEY}&token={}", valid_token("alice"));
    let (mut alice, _) = open(addr, &alice_path, &[]).await.unwrap();
    let id = welcome(&mut alice, "doc").await;
    let bob_path = format!("/ws/doc?token={}", valid_token("bob"));
    let (mut bob, _) = open(addr, &bob_path, &[]).await.unwrap();
    welcome(&mut bob, "doc").await;
    // Mallory learned Alice's key; her own token does not let her take the session.
    let stolen = format!("/ws/doc?resume={KEY}&token={}", valid_token("mallory"));
    let (status, body) = open(addr, &stolen, &[]).await.err().unwrap();
    assert_eq!(status, 403);
    assert!(body.contains("another user's session"), "{body}");
    // Keys too short to be secret are refused, and never echoed.
    let (status, body) = open(addr, "/ws/doc?resume=short", &[]).await.err().unwrap();
    assert_eq!(status, 400);
    assert!(!body.contains("short"), "{body}");
    drop(alice);
    assert_eq!(
        recv_text(&mut bob).await,
        format!("left {id}"),
        "the service hears of the departure once the grace has passed"
    );
    let (mut alice, _) = open(addr, &alice_path, &[]).await.unwrap();
    assert_ne!(welcome(&mut alice, "doc").await, id, "a new session");
}

pub async fn a_key_presented_by_a_second_connection_takes_the_session_over_and_closes_the_first_with_4000(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let path = format!("/ws/tabs?resume={KEY}");
    let (mut first, _) = open(addr, &path, &[]).await.unwrap();
    let id = welcome(&mut first, "tabs").await;
    send(&mut first, "count").await;
    assert_eq!(recv_text(&mut first).await, "count 1");
    let (mut second, _) = open(addr, &path, &[]).await.unwrap();
    assert_eq!(
        recv_close(&mut first).await,
        (4000, "session taken over by another connection".to_string())
    );
    send(&mut second, &format!("to:{id}:same client")).await;
    assert_eq!(recv_text(&mut second).await, "same client");
    // A key of another session is another client.
    let (mut other, _) = open(addr, &format!("/ws/tabs?resume={OTHER_KEY}"), &[])
        .await
        .unwrap();
    assert_ne!(welcome(&mut other, "tabs").await, id);
}

/// A `jamsocket.v1` connection: sends `m`-tagged text, reads frames as they come.
pub(crate) async fn open_sequenced(
    addr: SocketAddr,
    room: &str,
    key: &str,
    seen: u64,
) -> (Ws, serde_json::Value) {
    let path = format!("/ws/{room}?resume={key}&seen={seen}");
    let (mut ws, protocol) = open(addr, &path, &[("sec-websocket-protocol", "jamsocket.v1")])
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("jamsocket.v1"));
    let welcome = recv_text(&mut ws).await;
    let welcome = welcome
        .strip_prefix('w')
        .unwrap_or_else(|| panic!("expected a welcome frame, got `{welcome}`"));
    (ws, serde_json::from_str(welcome).unwrap())
}

pub async fn jamsocket_v1_resumes_a_lost_connection_without_losing_or_repeating_a_message(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut alice, hello) = open_sequenced(addr, "feed", KEY, 0).await;
    assert_eq!(hello["resumed"], false);
    assert_eq!(hello["received"], 0);
    assert_eq!(hello["ack_every"], 32);
    let id = hello["client"].as_u64().unwrap();
    assert_eq!(recv_text(&mut alice).await, format!("mwelcome feed {id}"));
    let (mut bob, _) = join(addr, "feed").await;
    for i in 0..50 {
        send(&mut bob, &format!("all:{i}")).await;
    }
    // Alice reads 20 of them (21 messages with the service's welcome), then loses her
    // connection with the rest unread.
    for i in 0..20 {
        assert_eq!(recv_text(&mut alice).await, format!("m{i}"));
    }
    drop(alice);
    for i in 50..100 {
        send(&mut bob, &format!("all:{i}")).await;
    }
    let (mut alice, hello) = open_sequenced(addr, "feed", KEY, 21).await;
    assert_eq!(hello["resumed"], true);
    assert_eq!(hello["client"].as_u64(), Some(id));
    for i in 20..100 {
        assert_eq!(
            recv_text(&mut alice).await,
            format!("m{i}"),
            "in order, none lost"
        );
    }
    send(&mut bob, "all:end").await;
    assert_eq!(recv_text(&mut alice).await, "mend", "none repeated");
    // Alice's own messages are numbered too: the room acknowledges every 32nd.
    for _ in 0..32 {
        alice.send(Message::text("mall:x")).await.unwrap();
    }
    let mut acked = false;
    for _ in 0..33 {
        match recv_text(&mut alice).await.as_str() {
            "mx" => {}
            "a32" => acked = true,
            other => panic!("unexpected frame `{other}`"),
        }
    }
    assert!(acked);
    // Frames outside the protocol close the connection with 1002.
    alice.send(Message::text("untagged")).await.unwrap();
    assert_eq!(recv_close(&mut alice).await.0, 1002);
    let (mut alice, _) = open_sequenced(addr, "feed", OTHER_KEY, 0).await;
    alice.send(Message::text("a999")).await.unwrap();
    let (code, reason) = recv_close(&mut alice).await;
    assert_eq!(code, 1002);
    assert!(reason.contains("acknowledg"), "{reason}");
    let _ = alice.next().await;
    // A key the room does not know starts a new session, whatever the client says it saw.
    let unknown = "CCCCCCCCCCCCCCCCCCCCCC";
    let (mut carol, hello) = open_sequenced(addr, "feed", unknown, 7).await;
    assert_eq!(
        (hello["resumed"].as_bool(), hello["received"].as_u64()),
        (Some(false), Some(0))
    );
    let id = hello["client"].as_u64().unwrap();
    assert_eq!(recv_text(&mut carol).await, format!("mwelcome feed {id}"));
}

/// The server writes a `jamsocket.v1` client no more than its outbound queue's worth of
/// messages it has not acknowledged, and writes on once the client acknowledges them.
pub async fn a_jamsocket_v1_client_gets_a_queue_of_unacknowledged_messages_and_more_once_it_acknowledges(
    factory: impl ConformanceFactory,
) {
    const QUEUE: usize = 8;
    let server = start(Server::new().with_outbound_queue_messages(QUEUE), factory);
    let addr = server.local_addr();
    let (mut alice, hello) = open_sequenced(addr, "acked", KEY, 0).await;
    let id = hello["client"].as_u64().unwrap();
    assert_eq!(recv_text(&mut alice).await, format!("mwelcome acked {id}"));
    let (mut bob, _) = join(addr, "acked").await;
    // Bob sends in bursts that fit in a queue, and reads his own messages back, so that the
    // room has handled each burst before the next one.
    async fn burst(bob: &mut Ws, messages: std::ops::Range<u32>) {
        for i in messages.clone() {
            send(bob, &format!("all:{i}")).await;
        }
        for i in messages {
            assert_eq!(recv_text(bob).await, i.to_string());
        }
    }
    // The service's welcome and 7 of Bob's messages are all Alice may leave unacknowledged;
    // 3 more wait in her queue for her acknowledgement.
    burst(&mut bob, 0..7).await;
    for i in 0..7 {
        assert_eq!(recv_text(&mut alice).await, format!("m{i}"));
    }
    burst(&mut bob, 7..10).await;
    alice.send(Message::text("a8")).await.unwrap();
    for i in 7..10 {
        let text = recv_text(&mut alice).await;
        assert_eq!(text, format!("m{i}"), "written once acknowledged");
    }
    burst(&mut bob, 10..11).await;
    assert_eq!(recv_text(&mut alice).await, "m10");
    // Alice acknowledges no more: 4 more messages make 8 unacknowledged, then her queue takes
    // 8, and the next message closes her. Had the server written her any of those 8, she
    // would read it before the close frame.
    burst(&mut bob, 11..15).await;
    for i in 11..15 {
        assert_eq!(recv_text(&mut alice).await, format!("m{i}"));
    }
    burst(&mut bob, 15..23).await;
    burst(&mut bob, 23..24).await;
    let (code, reason) = recv_close(&mut alice).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("outbound queue full"), "{reason}");
}

pub async fn messages_sent_while_a_plain_client_is_away_arrive_in_order_when_it_returns(
    factory: impl ConformanceFactory,
) {
    let server = Server::new()
        .with_heartbeat_interval(Duration::from_millis(100))
        .with_heartbeat_timeout(Duration::from_secs(1));
    let server = start(server, factory);
    let addr = server.local_addr();
    let path = format!("/ws/inbox?resume={KEY}");
    // Alice's socket is read by hand, so that nothing answers the server's pings for her.
    let (mut alice, head) = raw_handshake(addr, &path, "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Alice goes silent (a dead network answers no pings): the server gives up on her
    // connection, and she is away from then on.
    let (texts, code, reason) = raw_texts_then_close(&mut alice, TIMEOUT).await;
    assert_eq!((code, reason.as_str()), (1001, "heartbeat timeout"));
    let id: u32 = texts[0]
        .strip_prefix("welcome inbox ")
        .unwrap()
        .parse()
        .unwrap();
    // Bob (who answers pings while he reads, within the second the test takes) writes to her.
    let (mut bob, _) = join(addr, "inbox").await;
    for i in 0..5 {
        send(&mut bob, &format!("to:{id}:while away {i}")).await;
    }
    let (mut alice, _) = open(addr, &path, &[]).await.unwrap();
    for i in 0..5 {
        assert_eq!(recv_text(&mut alice).await, format!("while away {i}"));
    }
    send(&mut alice, "count").await;
    assert_eq!(recv_text(&mut alice).await, "count 1", "no second welcome");
    assert_eq!(recv_text(&mut bob).await, "count 1", "bob saw no `left`");
}

pub async fn clients_away_count_against_the_connection_limits_until_their_grace_ends(
    factory: impl ConformanceFactory,
) {
    let server = Server::new()
        .with_max_connections_per_ip(2)
        .with_reconnect_grace(Duration::from_millis(500));
    let server = start(server, factory);
    let addr = server.local_addr();
    for key in [KEY, OTHER_KEY] {
        let (mut ws, _) = open(addr, &format!("/ws/lobby?resume={key}"), &[])
            .await
            .unwrap();
        welcome(&mut ws, "lobby").await;
        drop(ws);
    }
    // Connect-and-drop with fresh keys cannot hold more than the limit.
    assert_eq!(handshake_status(addr, "/ws/lobby").await, 429);
    assert!(
        accepted_within_timeout(addr, "/ws/lobby").await,
        "the sessions' places are free once their grace has passed"
    );
}

pub async fn an_acknowledgement_queued_for_a_lost_connection_never_reaches_the_next(
    factory: impl ConformanceFactory,
) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (mut alice, hello) = open_sequenced(addr, "acks", KEY, 0).await;
    let id = hello["client"].as_u64().unwrap();
    assert_eq!(recv_text(&mut alice).await, format!("mwelcome acks {id}"));
    let (mut bob, _) = join(addr, "acks").await;
    count_40_then_lose_the_connection(alice, &mut bob).await;
    let (mut alice, hello) = open_sequenced(addr, "acks", KEY, 1).await;
    assert_eq!(hello["resumed"], true);
    assert_eq!(hello["received"], 40);
    read_40_counts_and_no_acknowledgement(&mut alice).await;
}

/// Alice sends 40 `count`s, and her connection is lost before their acknowledgement (`a32`)
/// is read: her side sends its FIN (a reset could discard what the server has not read yet,
/// and this client does not send it again as the TypeScript client would) and reads no more.
/// Returns once Bob has seen the 40th count: the room has handled them all.
async fn count_40_then_lose_the_connection(mut alice: Ws, bob: &mut Ws) {
    for _ in 0..40 {
        alice.send(Message::text("mcount")).await.unwrap();
    }
    let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = alice.get_mut() else {
        unreachable!("a plain TCP connection");
    };
    tokio::io::AsyncWriteExt::shutdown(tcp).await.unwrap();
    for n in 1..=40 {
        assert_eq!(recv_text(bob).await, format!("count {n}"));
    }
}

/// Reads a resumed Alice's frames (she had seen 1 message) up to the 40th count, none of them
/// an acknowledgement. She acknowledges as the TypeScript client does, or with a full window
/// the rest would not come.
async fn read_40_counts_and_no_acknowledgement(alice: &mut Ws) {
    let mut seen = 1;
    let mut counts = 0;
    while counts < 40 {
        let frame = recv_text(alice).await;
        assert!(
            !frame.starts_with('a'),
            "stale acknowledgement `{frame}` after the welcome"
        );
        seen += 1;
        if frame.starts_with("mcount ") {
            counts += 1;
        }
        if seen % 32 == 0 {
            alice.send(Message::text(format!("a{seen}"))).await.unwrap();
        }
    }
}

/// As above, when the resumed connection cannot write everything at once: the client had as
/// many messages unacknowledged as its queue holds, so the room's acknowledgement waits in the
/// queue until the client acknowledges, and then is still not sent.
pub async fn a_queued_acknowledgement_stays_unsent_after_a_resume_that_waits_for_the_client(
    factory: impl ConformanceFactory,
) {
    const QUEUE: u32 = 64;
    let server = start(
        Server::new().with_outbound_queue_messages(QUEUE as usize),
        factory,
    );
    let addr = server.local_addr();
    let (mut alice, hello) = open_sequenced(addr, "window", KEY, 0).await;
    let id = hello["client"].as_u64().unwrap();
    assert_eq!(recv_text(&mut alice).await, format!("mwelcome window {id}"));
    let (mut bob, _) = join(addr, "window").await;
    // With the service's welcome, Alice has a queue's worth unacknowledged.
    for i in 1..QUEUE {
        send(&mut bob, &format!("all:{i}")).await;
    }
    for i in 1..QUEUE {
        assert_eq!(recv_text(&mut bob).await, i.to_string());
    }
    // Her 40 messages: the room's `a32` and its counts wait in her queue.
    count_40_then_lose_the_connection(alice, &mut bob).await;
    // She had read only the service's welcome.
    let (mut alice, hello) = open_sequenced(addr, "window", KEY, 1).await;
    assert_eq!(hello["resumed"], true);
    assert_eq!(hello["received"], 40);
    read_40_counts_and_no_acknowledgement(&mut alice).await;
}

/// The whole response to a request with `headers`, lowercased.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> String {
    http_raw_with(addr, method, path, headers).to_ascii_lowercase()
}

pub async fn pages_of_allowed_origins_can_read_why_a_handshake_was_refused(
    factory: impl ConformanceFactory,
) {
    let server = Server::new()
        .with_allowed_origins(["https://app.example"])
        .with_jwt(JwtVerifier::hs256(SECRET).unwrap());
    let server = start(server, factory);
    let addr = server.local_addr();
    let app = "Origin: https://app.example\r\n";
    let preflight =
        "Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\n";
    let answer = request(addr, "OPTIONS", "/ws/doc", &format!("{app}{preflight}"));
    assert!(answer.starts_with("http/1.1 204"), "{answer}");
    assert!(
        answer.contains("access-control-allow-origin: https://app.example"),
        "{answer}"
    );
    assert!(
        answer.contains("access-control-allow-headers: authorization"),
        "{answer}"
    );
    let answer = request(addr, "GET", "/ws/doc", app);
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(
        answer.contains("access-control-allow-origin: https://app.example"),
        "{answer}"
    );
    assert!(answer.contains("no token"), "{answer}");
    let bearer = format!("{app}Authorization: Bearer {}\r\n", valid_token("alice"));
    assert!(request(addr, "GET", "/ws/doc", &bearer).starts_with("http/1.1 426"));
    // Another site's page learns nothing, and cannot even ask.
    let evil = "Origin: https://evil.example\r\n";
    let answer = request(addr, "OPTIONS", "/ws/doc", &format!("{evil}{preflight}"));
    assert!(answer.starts_with("http/1.1 403"), "{answer}");
    let answer = request(addr, "GET", "/ws/doc", evil);
    assert!(answer.starts_with("http/1.1 403"), "{answer}");
    assert!(!answer.contains("access-control-allow-origin"), "{answer}");
}
