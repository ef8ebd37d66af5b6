//! The admin listener ([`Server::with_admin`]): the room API a backend uses without a
//! WebSocket, `/metrics` and the admin page, on an address of their own.

use crate::common::*;
use crate::ConformanceFactory;
use jamsocket_server::{RunningServer, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

const TOKEN: &str = "s3cret-admin-token";

/// A server with an admin listener on 127.0.0.1:0 whose room API takes [`TOKEN`].
fn start_with_admin(factory: impl ConformanceFactory) -> (RunningServer, SocketAddr) {
    let server = start(
        Server::new().with_admin("127.0.0.1:0".parse().unwrap(), Some(TOKEN)),
        factory,
    );
    let admin = server.admin_addr().expect("an admin listener");
    assert_ne!(admin, server.local_addr());
    (server, admin)
}

/// A blocking HTTP/1.1 request with an optional bearer token and body: status, headers, body.
pub(crate) fn api(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n{auth}\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (status, head.to_string(), body.to_string())
}

/// `GET path` with the token, expecting 200 and JSON.
fn get_json(admin: SocketAddr, path: &str) -> Value {
    let (status, _, body) = api(admin, "GET", path, Some(TOKEN), b"");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("GET {path}: {err}: {body}"))
}

fn ids(page: &Value) -> Vec<&str> {
    page["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["id"].as_str().unwrap())
        .collect()
}

pub async fn the_room_api_lists_rooms_in_pages_and_describes_each_with_its_clients(
    factory: impl ConformanceFactory,
) {
    let (server, admin) = start_with_admin(factory);
    let addr = server.local_addr();
    let (mut a1, id1) = join(addr, "api-a1").await;
    let (_a1b, _) = join(addr, "api-a1").await;
    let (_a2, _) = join(addr, "api-a2").await;
    let (_b1, _) = join(addr, "api-b1").await;
    send(&mut a1, "count").await;
    assert_eq!(recv_text(&mut a1).await, "count 1");

    let all = get_json(admin, "/rooms");
    assert_eq!(ids(&all), ["api-a1", "api-a2", "api-b1"]);
    assert_eq!(all["next"], Value::Null);
    let a1_info = &all["rooms"][0];
    assert_eq!(a1_info["clients"], 2);
    assert_eq!(a1_info["state"], "live");
    assert_eq!(a1_info["messages_in"], 1);
    // `welcome` to each of the two, then `count 1` to both.
    assert_eq!(a1_info["messages_out"], 4);
    assert!(a1_info["age_secs"].as_f64().unwrap() >= 0.0);
    assert!(a1_info.get("members").is_none());

    assert_eq!(
        ids(&get_json(admin, "/rooms?prefix=api-a")),
        ["api-a1", "api-a2"]
    );
    let first = get_json(admin, "/rooms?limit=2");
    assert_eq!(ids(&first), ["api-a1", "api-a2"]);
    assert_eq!(first["next"], "api-a2");
    let second = get_json(admin, "/rooms?limit=2&after=api-a2");
    assert_eq!(ids(&second), ["api-b1"]);
    assert_eq!(second["next"], Value::Null);

    let one = get_json(admin, "/rooms/api-a1");
    let members = one["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["client"], id1);
    assert_eq!(members[0]["user"], Value::Null);
    assert_eq!(members[0]["away"], false);
    // Native rooms cannot tell their memory; WebAssembly rooms report their instance's.
    assert!(one["memory_bytes"].is_null() || one["memory_bytes"].as_u64().unwrap() > 0);

    let (status, _, body) = api(admin, "GET", "/rooms/api-none", Some(TOKEN), b"");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("api-none"), "{body}");
}

pub async fn the_room_api_refuses_requests_without_the_token_or_with_bad_values(
    factory: impl ConformanceFactory,
) {
    let (server, admin) = start_with_admin(factory.clone());
    let (_ws, _) = join(server.local_addr(), "guarded").await;
    for path in ["/rooms", "/rooms/guarded"] {
        let (status, head, body) = api(admin, "GET", path, None, b"");
        assert_eq!(status, 401, "{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
        assert!(body.contains("Authorization: Bearer"), "{body}");
        let (status, _, body) = api(admin, "GET", path, Some("s3cret-admin-tokem"), b"");
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("wrong admin token"), "{body}");
    }
    let (status, _, _) = api(admin, "POST", "/rooms/guarded/messages", None, b"count");
    assert_eq!(status, 401);
    let (status, _, _) = api(admin, "DELETE", "/rooms/guarded", Some("nope"), b"");
    assert_eq!(status, 401);

    for (path, needle) in [
        ("/rooms?limit=0", "limit=0"),
        ("/rooms?limit=5000", "limit=5000"),
        ("/rooms?limit=many", "bad query string"),
        ("/rooms/bad%20id", "room id"),
        ("/rooms?state=sleeping", "state=sleeping"),
        ("/rooms?state=hibernated", "no store"),
    ] {
        let (status, _, body) = api(admin, "GET", path, Some(TOKEN), b"");
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
    }
    // The room API is never on the clients' port.
    let (status, _) = http(server.local_addr(), "GET", "/rooms");
    assert_eq!(status, 404);

    // Without a token the room API is off; metrics and the page stay on.
    let server = start(
        Server::new().with_admin("127.0.0.1:0".parse().unwrap(), None),
        factory,
    );
    let admin = server.admin_addr().unwrap();
    let (status, _, body) = api(admin, "GET", "/rooms", Some(TOKEN), b"");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--admin-token"), "{body}");
    let (status, head, body) = api(admin, "GET", "/metrics", None, b"");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("openmetrics-text"), "{head}");
    assert!(body.contains("# TYPE jamsocket_rooms gauge"), "{body}");
    let (status, head, body) = api(admin, "GET", "/", None, b"");
    assert_eq!(status, 200);
    assert!(head.contains("text/html"), "{head}");
    assert!(
        body.contains("<html") || body.contains("<!doctype html"),
        "{body}"
    );
}

pub async fn a_backend_request_reaches_the_service_and_its_answer_comes_back(
    factory: impl ConformanceFactory,
) {
    let (server, admin) = start_with_admin(factory);
    let (mut ws, _) = join(server.local_addr(), "backend").await;

    let (status, head, body) = api(
        admin,
        "POST",
        "/rooms/backend/messages",
        Some(TOKEN),
        b"count",
    );
    assert_eq!((status, body.as_str()), (200, "count 1"));
    assert!(head.contains("text/plain"), "{head}");
    assert_eq!(recv_text(&mut ws).await, "count 1");
    // The room's state is shared with its clients.
    send(&mut ws, "count").await;
    assert_eq!(recv_text(&mut ws).await, "count 2");

    let (status, _, body) = api(
        admin,
        "POST",
        "/rooms/backend/messages",
        Some(TOKEN),
        b"all:hello",
    );
    assert_eq!((status, body.as_str()), (200, "sent"));
    assert_eq!(recv_text(&mut ws).await, "hello");
    let (status, _, body) = api(
        admin,
        "POST",
        "/rooms/backend/messages",
        Some(TOKEN),
        b"what",
    );
    assert_eq!(status, 400);
    assert!(body.contains("what"), "{body}");
    let (status, _, _) = api(
        admin,
        "POST",
        "/rooms/backend/messages",
        Some(TOKEN),
        b"status:204",
    );
    assert_eq!(status, 204);
    let (status, _, body) = api(
        admin,
        "POST",
        "/rooms/elsewhere/messages",
        Some(TOKEN),
        b"count",
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("elsewhere"), "{body}");
    // The room carries on.
    send(&mut ws, "count").await;
    assert_eq!(recv_text(&mut ws).await, "count 3");
    let info = get_json(admin, "/rooms/backend");
    assert_eq!(info["clients"], 1);
}

pub async fn delete_closes_a_rooms_clients_with_the_code_and_reason_given(
    factory: impl ConformanceFactory,
) {
    let (server, admin) = start_with_admin(factory);
    let addr = server.local_addr();
    let (mut a, _) = join(addr, "doomed").await;
    let (mut b, _) = join(addr, "doomed").await;
    let (mut other, _) = join(addr, "spared").await;

    let (status, _, body) = api(admin, "DELETE", "/rooms/doomed?code=999", Some(TOKEN), b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("code=999"), "{body}");
    let long = "x".repeat(124);
    let (status, _, body) = api(
        admin,
        "DELETE",
        &format!("/rooms/doomed?reason={long}"),
        Some(TOKEN),
        b"",
    );
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = api(
        admin,
        "DELETE",
        "/rooms/doomed?forget=true",
        Some(TOKEN),
        b"",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("store"), "{body}");

    let (status, _, body) = api(
        admin,
        "DELETE",
        "/rooms/doomed?code=4001&reason=moderated",
        Some(TOKEN),
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["closed"], true);
    assert_eq!(answer["forgot"], false);
    assert_eq!(recv_close(&mut a).await, (4001, "moderated".to_string()));
    assert_eq!(recv_close(&mut b).await, (4001, "moderated".to_string()));
    assert_eq!(ids(&get_json(admin, "/rooms")), ["spared"]);
    let (status, _, _) = api(admin, "DELETE", "/rooms/doomed", Some(TOKEN), b"");
    assert_eq!(status, 404);
    send(&mut other, "count").await;
    assert_eq!(recv_text(&mut other).await, "count 1");
}
