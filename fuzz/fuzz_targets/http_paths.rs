//! `http_paths`: arbitrary request targets and methods through the server's routes, in-process
//! with `actix_web::test` (through the doc-hidden `Server::routes`).
//!
//! The first input byte picks the method, the room-id strategy and whether the request asks for
//! a WebSocket upgrade; the rest is the request target (`/` is prepended if missing; targets
//! that are not valid URIs are skipped, as the HTTP parser would refuse them). Each input gets
//! a fresh server whose static folder holds files, a sub-folder, and symbolic links to a file
//! and a folder outside it. Checks: no panic, no 5xx, and no response carries the file outside
//! the static folder.
//!
//! `actix_web::test` has no upgrade hook, so requests asking for an upgrade reach the routes as
//! plain requests (the real server hands them to `websocket::upgrade`, which the server's
//! `protocol` tests cover over TCP).

#![no_main]

use actix_web::http::{Method, StatusCode, Uri};
use actix_web::{test, App};
use jamsocket::{JamsocketContext, SimpleJamsocketService, SimpleJamsocketServiceFactory};
use jamsocket_server::{RoomIdStrategy, Server, ShutdownPolicy};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The content of the file outside the static folder.
const SECRET: &str = "secret outside the static folder";

const METHODS: [Method; 8] = [
    Method::GET,
    Method::POST,
    Method::HEAD,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::PATCH,
    Method::TRACE,
];

const STRATEGIES: [RoomIdStrategy; 4] = [
    RoomIdStrategy::Implicit,
    RoomIdStrategy::Explicit,
    RoomIdStrategy::Uuid,
    RoomIdStrategy::Short(4),
];

/// A service that does nothing: the routes are under test, not the rooms.
struct Quiet;

impl SimpleJamsocketService for Quiet {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Quiet
    }
}

/// The static folder, made once per process:
/// `index.html`, `a.txt`, `sub/index.html`, `sub/b.txt`, and links `file-link` and `dir-link`
/// to `../outside/secret.txt` and `../outside`.
fn static_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("jamsocket-fuzz-http-{}", std::process::id()));
        let root = base.join("static");
        let outside = base.join("outside");
        let _ = std::fs::remove_dir_all(&base);
        for dir in [root.join("sub"), outside.clone()] {
            std::fs::create_dir_all(dir).expect("a temporary folder");
        }
        for (path, content) in [
            (root.join("index.html"), "<p>index</p>"),
            (root.join("a.txt"), "a"),
            (root.join("sub/index.html"), "<p>sub</p>"),
            (root.join("sub/b.txt"), "b"),
            (outside.join("secret.txt"), SECRET),
        ] {
            std::fs::write(path, content).expect("writing a static file");
        }
        std::os::unix::fs::symlink("../outside/secret.txt", root.join("file-link"))
            .expect("a symbolic link");
        std::os::unix::fs::symlink("../outside", root.join("dir-link")).expect("a symbolic link");
        root
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, target)) = input.split_first() else {
        return;
    };
    let method = METHODS[usize::from(selector & 7)].clone();
    let strategy = STRATEGIES[usize::from((selector >> 3) & 3)];
    let upgrade = selector & 0x20 != 0;
    let target = String::from_utf8_lossy(target);
    let target = if target.starts_with('/') {
        target.into_owned()
    } else {
        format!("/{target}")
    };
    if target.parse::<Uri>().is_err() {
        return;
    }

    let server = Server::new()
        .with_room_id_strategy(strategy)
        .with_shutdown_policy(ShutdownPolicy::Immediate)
        .with_static_path(static_dir());
    let factory = SimpleJamsocketServiceFactory::<Quiet>::default();
    let mut request = test::TestRequest::default()
        .method(method.clone())
        .uri(&target);
    if upgrade {
        request = request
            .insert_header(("connection", "upgrade"))
            .insert_header(("upgrade", "websocket"))
            .insert_header(("sec-websocket-version", "13"))
            .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
    }

    actix_web::rt::System::new().block_on(async {
        let app = test::init_service(App::new().configure(server.routes(factory))).await;
        let (status, body) = match test::try_call_service(&app, request.to_request()).await {
            // A 101's body is the WebSocket's outgoing stream: do not wait for it to end.
            Ok(response) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                (response.status(), Vec::new())
            }
            Ok(response) => (response.status(), test::read_body(response).await.to_vec()),
            Err(error) => (error.as_response_error().status_code(), Vec::new()),
        };
        let body = String::from_utf8_lossy(&body);
        assert!(
            !status.is_server_error(),
            "{method} {target} (strategy {strategy:?}, upgrade {upgrade}) answered {status}: {body}"
        );
        assert!(
            !body.contains(SECRET),
            "{method} {target} served a file from outside the static folder"
        );
    });
});
