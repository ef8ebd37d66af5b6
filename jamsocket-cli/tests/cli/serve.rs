use crate::common::*;

#[test]
fn bad_flag_values_list_the_accepted_forms() {
    let cases: [(&[&str], &str); 4] = [
        (&["--rooms", "lots"], "implicit"),
        (&["--shutdown-policy", "5min"], "immediate"),
        (
            &["--heartbeat-interval-secs", "0"],
            "heartbeat-interval-secs",
        ),
        (&["--guest-memory-mib", "1"], "guest-memory-mib"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["serve", "module.wasm"];
        args.extend_from_slice(flags);
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        let err = stderr(&output);
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
}

#[test]
fn every_subcommand_has_help_and_there_is_a_version() {
    for sub in ["dev", "serve", "build", "new"] {
        let output = run(&[sub, "--help"]);
        assert!(output.status.success(), "{sub}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{sub}"
        );
    }
    let output = run(&["--version"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
    let output = run(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--port",
        "--rooms",
        "--shutdown-policy",
        "--static",
        "--max-message-bytes",
        "--max-clients-per-room",
        "--guest-memory-mib",
        "--guest-cpu-ms-per-call",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_built_module_and_exits_0_on_sigterm() {
    let (_temp, dir) = copy_example("echo-server");
    let output = run(&["build", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let wasm = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(wasm.ends_with(".wasm"), "{wasm}");
    let server = Running::start(&["serve", &wasm, "--port", "0", "--rooms", "implicit"]);
    let mut ws = server.ws("echo").await;
    ws.send("hello").await;
    assert_eq!(ws.recv().await, "hello");
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(ws.recv().await, "close 1001");
}
