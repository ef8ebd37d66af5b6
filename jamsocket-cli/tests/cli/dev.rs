use crate::common::*;
use std::path::PathBuf;

/// A copy of counter-service under a package name of its own: the other tests build
/// counter-service into the same target directory at the same time, and its module file would
/// be shared.
fn copy_counter_as(package: &str) -> (TempDir, PathBuf) {
    let (temp, dir) = copy_example("counter-service");
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let renamed = text.replace(
        "name = \"counter-service\"",
        &format!("name = \"{package}\""),
    );
    assert_ne!(text, renamed);
    std::fs::write(&manifest, renamed).unwrap();
    (temp, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_rebuilds_on_change_and_keeps_serving_after_a_failed_build() {
    let (_temp, dir) = copy_example("counter-service");
    let mut dev = Running::start(&["dev", dir.to_str().unwrap(), "--port", "0"]);
    assert_eq!(dev.http_get("/status"), (200, "ok".to_string()));

    let mut ws = dev.ws("room-1").await;
    assert_eq!(ws.recv().await, "new value: 0");
    ws.send("increment").await;
    assert_eq!(ws.recv().await, "new value: 1");

    // An edit that changes the reply is built and swapped in; open rooms close with 1012.
    let lib = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, source.replace("new value: {}", "value is now {}")).unwrap();
    dev.wait_for_line("Reloaded", BUILD_TIMEOUT);
    assert_eq!(ws.recv().await, "close 1012");
    let mut ws = dev.ws("room-1").await;
    assert_eq!(
        ws.recv().await,
        "value is now 0",
        "the room kept the old module or state"
    );
    ws.send("increment").await;
    assert_eq!(ws.recv().await, "value is now 1");

    // A syntax error keeps the previous module serving.
    std::fs::write(&lib, "this is not rust").unwrap();
    dev.wait_for_line("Still serving the previous module", BUILD_TIMEOUT);
    assert!(
        dev.stderr().contains("error"),
        "cargo's diagnostics were not shown"
    );
    ws.send("increment").await;
    assert_eq!(ws.recv().await, "value is now 2");
    let mut other = dev.ws("room-2").await;
    assert_eq!(other.recv().await, "value is now 0");
    other.send("increment").await;
    assert_eq!(other.recv().await, "value is now 1");

    // SIGTERM saves the rooms (dev keeps a store), closes clients with 1012 and exits 0.
    let status = dev.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(ws.recv().await, "close 1012");
}

#[tokio::test]
async fn dev_keeps_rooms_in_the_target_folder_across_restarts() {
    let (_temp, dir) = copy_counter_as("dev-store");
    let dir = dir.to_str().unwrap();
    // The default store, shared by every run of this test: a room of its own for this run.
    let room = format!("room-{}", std::process::id());
    let args = ["dev", dir, "--port", "0", "--no-watch"];
    let mut dev = Running::start_with_default_store(&args);
    let store = dev.wait_for_line("store:", TIMEOUT);
    let expected = workspace_root().join("target/cli-tests/jamsocket/dev-store/rooms.db");
    assert!(store.contains(expected.to_str().unwrap()), "{store}");
    let mut ws = dev.ws(&room).await;
    assert_eq!(ws.recv().await, "new value: 0");
    ws.send("increment").await;
    assert_eq!(ws.recv().await, "new value: 1");
    assert!(dev.terminate().success());

    let dev = Running::start_with_default_store(&args);
    let mut ws = dev.ws(&room).await;
    assert_eq!(ws.recv().await, "new value: 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_keeps_serving_and_reloading_after_its_stdout_is_closed() {
    let (_temp, dir) = copy_counter_as("stdout-closed");
    let dev = Running::start_then_close_stdout(&["dev", dir.to_str().unwrap(), "--port", "0"]);
    let mut ws = dev.ws("room-1").await;
    assert_eq!(ws.recv().await, "new value: 0");

    // The rebuild's messages go to the closed pipe; the open room still sees the reload.
    let lib = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, source.replace("new value: {}", "value is now {}")).unwrap();
    assert_eq!(ws.recv_within(BUILD_TIMEOUT).await, "close 1012");
    let mut ws = dev.ws("room-1").await;
    assert_eq!(ws.recv().await, "value is now 0");

    let status = dev.terminate();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_reads_jamsocket_toml_and_serves_the_static_page() {
    let (_temp, dir) = copy_example("counter-service");
    std::fs::write(
        dir.join("jamsocket.toml"),
        "static = \"static\"\nrooms = \"api\"\nhost = \"0.0.0.0\"\nport = 1\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("static/index.html"), "<h1>counter page</h1>").unwrap();
    // --port overrides the file's port.
    let mut dev = Running::start(&["dev", dir.to_str().unwrap(), "--port", "0", "--no-watch"]);
    let listening = dev.wait_for_line("listening:", TIMEOUT);
    assert!(listening.contains("every network interface"), "{listening}");
    let (status, body) = dev.http_get("/");
    assert_eq!(status, 200);
    assert!(body.contains("counter page"), "{body}");
    // rooms = "api": unknown rooms are not created by connecting.
    let (status, _) = dev.http_get("/ws/nowhere");
    assert_eq!(status, 404);
}

#[test]
fn dev_listens_on_this_machine_only_unless_given_a_host() {
    let (_temp, dir) = copy_counter_as("dev-loopback");
    let dir = dir.to_str().unwrap();
    let mut dev = Running::start(&["dev", dir, "--port", "0", "--no-watch"]);
    let listening = dev.wait_for_line("listening:", TIMEOUT);
    assert!(
        listening.contains(&format!("127.0.0.1:{}", dev.port))
            && listening.contains("this machine only"),
        "{listening}"
    );
    assert_eq!(dev.http_get("/status"), (200, "ok".to_string()));
    let outside = non_loopback_ip();
    match outside {
        Some(ip) => assert!(!accepts_connections(ip, dev.port), "reachable at {ip}"),
        None => eprintln!("this machine has no address but loopback: not tried from outside"),
    }
    drop(dev);

    let mut dev = Running::start(&["dev", dir, "--port", "0", "--no-watch", "--host", "0.0.0.0"]);
    let listening = dev.wait_for_line("listening:", TIMEOUT);
    assert!(listening.contains("every network interface"), "{listening}");
    if let Some(ip) = outside {
        assert!(accepts_connections(ip, dev.port), "unreachable at {ip}");
    }
}

#[test]
fn dev_accepts_websockets_only_from_pages_of_this_machine_unless_told() {
    let (_temp, dir) = copy_counter_as("dev-origins");
    let dir = dir.to_str().unwrap();
    let dev = Running::start(&["dev", dir, "--port", "0", "--no-watch"]);
    for (origin, status) in [
        (Some("https://evil.example"), 403),
        (Some("null"), 403),
        (Some("http://localhost.evil.example"), 403),
        (Some("http://localhost:1234"), 101),
        (Some("http://127.0.0.1:5173"), 101),
        (Some("http://[::1]:8080"), 101),
        (None, 101),
    ] {
        assert_eq!(dev.handshake("room", origin), status, "{origin:?}");
    }
    drop(dev);

    // --allowed-origins replaces the local pages.
    let dev = Running::start(&[
        "dev",
        dir,
        "--port",
        "0",
        "--no-watch",
        "--allowed-origins",
        "https://app.example",
    ]);
    assert_eq!(dev.handshake("room", Some("https://app.example")), 101);
    assert_eq!(dev.handshake("room", Some("http://localhost:1234")), 403);
}
