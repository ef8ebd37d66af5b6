use crate::common::*;
use jamsocket_server::{RoomIdStrategy, Server};
use std::net::SocketAddr;

async fn http_async(addr: SocketAddr, method: &'static str, path: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || http(addr, method, &path))
        .await
        .unwrap()
}

fn room_id_from(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["room_id"].as_str().unwrap().to_string()
}

pub async fn implicit_rooms_are_created_by_connecting(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let (_ws, id) = join(addr, "anything-goes").await;
    assert_eq!(id, 1);
    assert_eq!(http_async(addr, "POST", "/ws/x".into()).await.0, 405);
    assert_eq!(http_async(addr, "POST", "/new_room".into()).await.0, 404);
}

pub async fn api_rooms_must_be_created_before_connecting(factory: impl ConformanceFactory) {
    let server = start(
        Server::new().with_room_id_strategy(RoomIdStrategy::Explicit),
        factory,
    );
    let addr = server.local_addr();
    assert_eq!(handshake_status(addr, "/ws/lobby").await, 404);
    let (status, body) = http_async(addr, "POST", "/ws/lobby".into()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(room_id_from(&body), "lobby");
    let (status, body) = http_async(addr, "POST", "/ws/lobby".into()).await;
    assert_eq!(status, 409);
    assert!(body.contains("`lobby` already exists"), "{body}");
    let (_ws, id) = join(addr, "lobby").await;
    assert_eq!(id, 1);
    assert_eq!(http_async(addr, "POST", "/ws/bad%20id".into()).await.0, 400);
}

pub async fn generated_rooms_come_from_post_new_room(factory: impl ConformanceFactory) {
    for (strategy, check) in [
        (
            RoomIdStrategy::Uuid,
            (|id: &str| uuid_like(id)) as fn(&str) -> bool,
        ),
        (RoomIdStrategy::Short(4), |id: &str| id.len() == 4),
        (RoomIdStrategy::Short(9), |id: &str| id.len() == 9),
    ] {
        let server = start(
            Server::new().with_room_id_strategy(strategy),
            factory.clone(),
        );
        let addr = server.local_addr();
        let (status, body) = http_async(addr, "POST", "/new_room".into()).await;
        assert_eq!(status, 201, "{body}");
        let room = room_id_from(&body);
        assert!(check(&room), "{strategy:?} made `{room}`");
        let (_ws, id) = join(addr, &room).await;
        assert_eq!(id, 1);
        let (status, body) = http_async(addr, "POST", "/new_room".into()).await;
        assert_eq!(status, 201);
        assert_ne!(room_id_from(&body), room);
        assert_eq!(handshake_status(addr, "/ws/not-made-here").await, 404);
    }
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4
}

pub async fn bad_room_ids_get_400(factory: impl ConformanceFactory) {
    let server = start(Server::new(), factory);
    let addr = server.local_addr();
    let long = "x".repeat(jamsocket_server::MAX_ROOM_ID_BYTES + 1);
    for path in [
        "/ws/a%20b",
        "/ws/%2e%2e",
        "/ws/caf%C3%A9",
        &format!("/ws/{long}"),
    ] {
        assert_eq!(handshake_status(addr, path).await, 400, "{path}");
    }
    let (status, body) = http_async(addr, "GET", "/ws/a%20b".into()).await;
    assert_eq!(status, 400);
    assert!(body.contains("room id"), "{body}");
}
