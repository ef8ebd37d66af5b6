//! The TypeScript client (`clients/typescript`) against the real binary: its Node tests (resume
//! through TCP resets with zero loss and zero duplicates, a restart with a durable store, a
//! refused token) and its headless-Chromium script.
//!
//! Ignored by default because they need Node, `npm ci` in `clients/typescript` and Chromium;
//! `.ci/run` installs them and runs these with `--ignored`.

use crate::common::*;
use std::process::{Command, Output};

/// Runs `npm run <script>` in `clients/typescript` against this build of `jamsocket`.
fn npm_run(script: &str) -> Output {
    let module = build_example("conformance-service");
    let dir = workspace_root().join("clients/typescript");
    assert!(
        dir.join("node_modules/typescript").exists(),
        "run `npm ci` in {} first",
        dir.display()
    );
    Command::new("npm")
        .args(["run", "--silent", script])
        .current_dir(&dir)
        .env("JAMSOCKET_BIN", env!("CARGO_BIN_EXE_jamsocket"))
        .env("JAMSOCKET_MODULE", module)
        .output()
        .expect("cannot run npm")
}

fn check(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
#[ignore = "needs Node and npm ci in clients/typescript: run by .ci/run"]
fn the_typescript_client_resumes_without_loss_and_reports_refusals() {
    let stdout = check(&npm_run("test"), "npm test");
    // The reconnect figures the resume test measured, for the CI log.
    for line in stdout
        .lines()
        .filter(|line| line.contains("reconnect p50") || line.contains("lost="))
    {
        println!("{line}");
    }
    assert!(stdout.contains("lost=0 duplicated=0"), "{stdout}");
}

#[test]
#[ignore = "needs Chromium and node_modules: run by .ci/run"]
fn the_typescript_client_works_in_a_browser() {
    let stdout = check(&npm_run("test:browser"), "the browser script");
    println!("{stdout}");
}
