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
