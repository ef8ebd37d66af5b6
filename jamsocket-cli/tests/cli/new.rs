use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_scaffolds_a_service_that_dev_serves_at_once() {
    let temp = TempDir::new("new");
    let dir = temp.0.join("my-service");
    let output = run(&["new", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    for file in [
        "Cargo.toml",
        "jamsocket.toml",
        "src/lib.rs",
        "static/index.html",
        "static/jamsocket-client.js",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    // The counter is written once: a new project is examples/counter-service with its own
    // manifest, and the page shows the package name where the example's says "Shared counter".
    let example = workspace_root().join("examples/counter-service");
    let read = |dir: &std::path::Path, file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    for file in ["src/lib.rs", "jamsocket.toml", "static/jamsocket-client.js"] {
        assert_eq!(
            read(&dir, file),
            read(&example, file),
            "{file} differs from the example's"
        );
    }
    assert_eq!(
        read(&dir, "static/index.html"),
        read(&example, "static/index.html").replace("Shared counter", "my-service")
    );
    let dev = Running::start(&["dev", dir.to_str().unwrap(), "--port", "0", "--no-watch"]);
    let (status, page) = dev.http_get("/");
    assert_eq!(status, 200);
    assert!(page.contains("my-service"), "{page}");
    let mut a = dev.ws("r").await;
    assert_eq!(a.recv().await, "new value: 0");
    let mut b = dev.ws("r").await;
    assert_eq!(b.recv().await, "new value: 0");
    a.send("increment").await;
    assert_eq!(a.recv().await, "new value: 1");
    assert_eq!(b.recv().await, "new value: 1");

    let again = run(&["new", dir.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"));
}
