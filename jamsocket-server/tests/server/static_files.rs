use jamsocket_server::Server;
use jamsocket_test_suite::common::{http, http_raw, start};
use std::net::SocketAddr;
use std::path::PathBuf;

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jamsocket-static-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("public/sub")).unwrap();
    std::fs::write(dir.join("public/index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(dir.join("public/app.js"), "console.log(1)").unwrap();
    std::fs::write(dir.join("public/sub/index.html"), "<h1>sub</h1>").unwrap();
    std::fs::write(dir.join("secret.txt"), "do not serve").unwrap();
    dir
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path)
}

#[test]
fn serves_the_folder_with_index_files_and_content_types() {
    let dir = folder("basic");
    let server = start(
        Server::new().with_static_path(dir.join("public")),
        crate::factory(),
    );
    let addr = server.local_addr();
    assert_eq!(get(addr, "/"), (200, "<h1>home</h1>".to_string()));
    assert_eq!(get(addr, "/sub/"), (200, "<h1>sub</h1>".to_string()));
    assert_eq!(get(addr, "/app.js").0, 200);
    let raw = http_raw(addr, "GET", "/app.js").to_ascii_lowercase();
    assert!(
        raw.contains("content-type: text/javascript")
            || raw.contains("content-type: application/javascript"),
        "{raw}"
    );
    assert_eq!(get(addr, "/missing.html").0, 404);
    // The API routes still win.
    assert_eq!(get(addr, "/status"), (200, "ok".to_string()));
}

#[test]
fn never_serves_anything_outside_the_folder() {
    let dir = folder("traversal");
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("public/link.txt")).unwrap();
    let server = start(
        Server::new().with_static_path(dir.join("public")),
        crate::factory(),
    );
    let addr = server.local_addr();
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/%2E%2E/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/link.txt",
        &format!("/{}", dir.join("secret.txt").display()),
    ] {
        let (status, body) = get(addr, path);
        assert!(
            !body.contains("do not serve"),
            "{path} leaked the secret ({status})"
        );
        assert!(status >= 400, "{path} answered {status}");
    }
}

/// A folder whose `index.html` is a link to a file outside the static folder: the folder, with
/// or without its slash, and a link to the same file are all 404. Links that stay inside still
/// work.
#[cfg(unix)]
#[test]
fn index_files_linked_from_outside_the_folder_are_not_served() {
    use std::os::unix::fs::symlink;
    let dir = folder("index-link");
    std::fs::write(dir.join("outside.html"), "outside secret").unwrap();
    std::fs::remove_file(dir.join("public/sub/index.html")).unwrap();
    symlink("../../outside.html", dir.join("public/sub/index.html")).unwrap();
    symlink("../outside.html", dir.join("public/direct.html")).unwrap();
    std::fs::create_dir_all(dir.join("public/inside")).unwrap();
    symlink("../index.html", dir.join("public/inside/index.html")).unwrap();
    symlink("app.js", dir.join("public/alias.js")).unwrap();

    let server = start(
        Server::new().with_static_path(dir.join("public")),
        crate::factory(),
    );
    let addr = server.local_addr();
    for path in ["/sub/", "/sub", "/sub/index.html", "/direct.html"] {
        let (status, body) = get(addr, path);
        assert_eq!(status, 404, "{path} answered {status}: {body}");
        assert!(!body.contains("outside secret"), "{path} leaked the file");
    }
    assert_eq!(get(addr, "/inside/"), (200, "<h1>home</h1>".to_string()));
    assert_eq!(get(addr, "/inside"), (200, "<h1>home</h1>".to_string()));
    assert_eq!(get(addr, "/alias.js"), (200, "console.log(1)".to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}
