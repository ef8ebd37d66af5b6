//! The counter example's page in a real browser (headless Chromium driven by playwright-core).
//!
//! Ignored by default because it needs Chromium and `npm install` in `tests/browser`; `.ci/run`
//! installs both and runs it with `--ignored`.

use crate::common::*;
use std::process::Command;

#[test]
#[ignore = "needs Chromium and node_modules: run by .ci/run"]
fn two_pages_in_a_room_share_the_counter_and_another_room_is_unaffected() {
    let example = workspace_root().join("examples/counter-service");
    let dev = Running::start(&[
        "dev",
        example.to_str().unwrap(),
        "--port",
        "0",
        "--no-watch",
    ]);
    let script_dir = workspace_root().join("jamsocket-cli/tests/browser");
    let output = Command::new("node")
        .arg("counter.mjs")
        .arg(format!("http://localhost:{}", dev.port))
        .current_dir(&script_dir)
        .output()
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("browser test passed"), "{stdout}");
}

#[test]
#[ignore = "needs Chromium and node_modules: run by .ci/run"]
fn the_admin_page_lists_rooms_shows_members_charts_messages_and_refuses_a_wrong_token() {
    let module = build_example("counter-service");
    let token = format!("{:032x}", rand::random::<u128>());
    let mut server = Running::start(&[
        "serve",
        &module,
        "--port",
        "0",
        "--admin-port",
        "0",
        "--admin-token",
        &token,
        "--shutdown-policy",
        "immediate",
    ]);
    let admin = server.admin_port();
    let screenshot = workspace_root().join("docs/admin-page.png");
    let output = Command::new("node")
        .arg("admin.mjs")
        .arg(format!("http://127.0.0.1:{admin}/"))
        .arg(&token)
        .arg(format!("ws://127.0.0.1:{}/ws", server.port))
        .arg(&screenshot)
        .current_dir(workspace_root().join("jamsocket-cli/tests/browser"))
        .output()
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "admin page test failed:\n{stdout}\n{}\nserver:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
    assert!(stdout.contains("admin page test passed"), "{stdout}");
}
