//! Operating `jamsocket serve`: the admin listener (`--admin-port`, metrics, the room API with
//! a WebAssembly service's `request` handler), `--log-format json`, and the flags' mistakes.

use crate::common::*;
use std::time::{Duration, Instant};

/// The value of the sample `name` (exact, labels included) in a metrics text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_metrics_and_a_room_api_that_reaches_a_guests_request_handler() {
    let wasm = build_example("counter-service");
    let token = "0123456789abcdef";
    let mut server = Running::start(&[
        "serve",
        &wasm,
        "--port",
        "0",
        "--admin-port",
        "0",
        "--admin-token",
        token,
        "--log-format",
        "json",
    ]);
    let admin = server.admin_port();
    assert_ne!(admin, server.port);

    let mut a = server.ws("ops").await;
    let mut b = server.ws("ops").await;
    assert_eq!(a.recv().await, "new value: 0");
    assert_eq!(b.recv().await, "new value: 0");
    a.send("increment").await;
    assert_eq!(a.recv().await, "new value: 1");
    assert_eq!(b.recv().await, "new value: 1");

    // The counter's request handler, through the room API; clients see the change.
    assert_eq!(
        http_request(admin, "POST", "/rooms/ops/messages", Some(token), "get"),
        (200, "1".into())
    );
    assert_eq!(
        http_request(admin, "POST", "/rooms/ops/messages", Some(token), "set 41"),
        (200, "41".into())
    );
    assert_eq!(a.recv().await, "new value: 41");
    assert_eq!(b.recv().await, "new value: 41");
    let (status, body) = http_request(admin, "POST", "/rooms/ops/messages", Some(token), "jump");
    assert_eq!(status, 400, "{body}");
    let (status, _) = http_request(admin, "POST", "/rooms/ops/messages", None, "get");
    assert_eq!(status, 401);

    let (status, body) = http_request(admin, "GET", "/rooms/ops", Some(token), "");
    assert_eq!(status, 200, "{body}");
    let room: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(room["clients"], 2);
    assert!(room["memory_bytes"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(room["members"].as_array().unwrap().len(), 2);

    // Metrics: the server's and the guests', with no room id in any label.
    let (status, metrics) = http_request(admin, "GET", "/metrics", None, "");
    assert_eq!(status, 200);
    assert_eq!(sample(&metrics, "jamsocket_rooms"), Some(1.0), "{metrics}");
    assert_eq!(
        sample(&metrics, "jamsocket_clients"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"jamsocket_messages_received_total{kind="text"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "jamsocket_guest_cpu_seconds_total").unwrap() > 0.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "jamsocket_guest_memory_bytes").unwrap() > 0.0,
        "{metrics}"
    );
    assert!(
        !metrics.contains("\"ops\""),
        "a room id in a label: {metrics}"
    );
    // Nothing of it on the clients' port.
    assert_eq!(server.http_get("/metrics").0, 404);
    assert_eq!(server.http_get("/rooms").0, 404);

    // JSON logs: one object per line, the room and client as fields.
    let deadline = Instant::now() + TIMEOUT;
    let connected = loop {
        let stderr = server.stderr();
        if let Some(line) = stderr.lines().find(|l| l.contains("client connected")) {
            break line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no `client connected` log line: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let event: serde_json::Value = serde_json::from_str(&connected)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {connected}"));
    assert_eq!(event["room"], "ops", "{connected}");
    assert_eq!(event["client"], "1", "{connected}");
    assert_eq!(event["level"], "INFO", "{connected}");
    assert!(!server.stderr().contains(token), "the token was logged");
}

#[test]
fn admin_flag_mistakes_say_what_to_do() {
    let wasm = build_example("counter-service");
    let output = run(&["serve", &wasm, "--port", "0", "--admin-token", "t0ken"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("--admin-token needs --admin-port"), "{err}");
    assert!(err.contains("next step: add --admin-port"), "{err}");

    let output = run(&[
        "serve",
        &wasm,
        "--port",
        "0",
        "--admin-port",
        "0",
        "--admin-token",
        " ",
    ]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("the admin token is empty"), "{err}");
    assert!(err.contains("openssl rand"), "{err}");

    let output = run(&[
        "serve",
        &wasm,
        "--port",
        "0",
        "--admin-port",
        "0",
        "--admin-token-file",
        "/nonexistent/token",
    ]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("/nonexistent/token"), "{err}");
}
