//! Builds the example guests for `wasm32-wasip1`, once per test run. (Also used by the bench.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every example guest crate under `examples/` that the tests build.
pub const EXAMPLES: [&str; 9] = [
    "counter-service",
    "conformance-service",
    "durable-counter",
    "echo-server",
    "binary-echo",
    "broadcast-echo",
    "clock",
    "randomness",
    "cpu-hog",
];

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
}

/// Builds of an example with a feature, as (example, feature): the `.wasm` is
/// `<example>_<feature>.wasm`, e.g. `example_wasm("durable-counter-v2")`.
pub const VARIANTS: [(&str, &str); 1] = [("durable-counter", "v2")];

/// The `.wasm` of an example (or of a [`VARIANTS`] build), building all of them the first time
/// it is called.
pub fn example_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build_examples)
        .as_ref()
        .unwrap_or_else(|err| panic!("building the example guests failed: {err}"));
    dir.join(format!("{}.wasm", name.replace('-', "_")))
}

/// `cargo build --release --target wasm32-wasip1` of every example, in its own target
/// directory so it does not wait on the lock of the `cargo test` that runs us.
///
/// Each variant is built with its feature and copied aside, then its example is built again
/// without it (cargo finds that build fresh and puts its `.wasm` back).
fn build_examples() -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    let root = workspace_root();
    let target_dir = root.join("target").join("wasm-guests");
    let out = target_dir.join("wasm32-wasip1").join("release");
    let wasm = |example: &str| out.join(format!("{}.wasm", example.replace('-', "_")));
    cargo_build(&target_dir, &EXAMPLES, None)?;
    for (example, feature) in VARIANTS {
        cargo_build(
            &target_dir,
            &[example],
            Some(&format!("{example}/{feature}")),
        )?;
        let variant = wasm(&format!("{example}-{feature}"));
        std::fs::copy(wasm(example), &variant)
            .map_err(|err| format!("copying to {}: {err}", variant.display()))?;
        cargo_build(&target_dir, &[example], None)?;
    }
    Ok(out)
}

/// `cargo build --release --target wasm32-wasip1` of `examples` into `target_dir`.
fn cargo_build(target_dir: &Path, examples: &[&str], features: Option<&str>) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--target-dir",
        ])
        .arg(target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    for example in examples {
        command.args(["-p", example]);
    }
    if let Some(features) = features {
        command.args(["--features", features]);
    }
    let status = command
        .status()
        .map_err(|err| format!("could not run cargo: {err}"))?;
    if !status.success() {
        return Err(format!("{command:?} exited with {status}"));
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|err| format!("could not run rustup (is it installed?): {err}"))?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|target| target.trim() == "wasm32-wasip1")
    {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip1"])
        .status()
        .map_err(|err| format!("could not run rustup: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("`rustup target add wasm32-wasip1` failed".to_string())
    }
}
