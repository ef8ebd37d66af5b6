//! `jamsocket new NAME`: a service crate that `jamsocket dev` serves at once.

use crate::user_error::UserError;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// Folder to create; its last part is the package name
    pub path: PathBuf,
}

pub fn run(args: NewArgs) -> Result<()> {
    let dir = args.path;
    if dir.exists() {
        return Err(UserError::AlreadyExists(dir).into());
    }
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| is_package_name(n))
        .with_context(|| {
            format!(
                "`{}` is not a valid package name: use letters, digits, `-` and `_`, starting with a letter",
                dir.display()
            )
        })?
        .to_string();
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join("static"))?;
    let files = [
        ("Cargo.toml", cargo_toml(&name)),
        ("jamsocket.toml", JAMSOCKET_TOML.to_string()),
        ("src/lib.rs", LIB_RS.to_string()),
        ("static/index.html", INDEX_HTML.replace("{name}", &name)),
        (".gitignore", "/target\n".to_string()),
    ];
    for (file, contents) in files {
        let path = dir.join(file);
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    say!("Created service `{name}` in {}", dir.display());
    say!("Next: cd {} && jamsocket dev", dir.display());
    Ok(())
}

fn is_package_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The `jamsocket-wasm` dependency: the checkout this binary was built from, when it is still
/// there (the released crate otherwise).
fn jamsocket_wasm_dependency() -> String {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jamsocket-wasm");
    match local.canonicalize() {
        Ok(path) => format!(
            "jamsocket-wasm = {{ path = {:?} }}",
            path.display().to_string()
        ),
        Err(_) => format!("jamsocket-wasm = \"{}\"", env!("CARGO_PKG_VERSION")),
    }
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
# cdylib: the WebAssembly module `jamsocket dev` serves; rlib: tests and native reuse.
crate-type = ["cdylib", "rlib"]

[dependencies]
{dependency}

[profile.release]
opt-level = "s"
lto = true
strip = true

# A crate of its own, even when created inside another workspace.
[workspace]
"#,
        dependency = jamsocket_wasm_dependency()
    )
}

const JAMSOCKET_TOML: &str = r#"# Settings for `jamsocket dev`; command-line flags override them.
static = "static"
# rooms = "implicit"          # implicit | api | uuid | short[N]
# shutdown-policy = "60sec"   # never | immediate | <n>sec
# port = 8080
"#;

const LIB_RS: &str = r#"//! A shared counter: every client of a room sees the same value.
//!
//! Serve it with `jamsocket dev`, open http://localhost:8080/ and click the buttons.

use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
struct SharedCounterServer(i32);

impl SimpleJamsocketService for SharedCounterServer {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        SharedCounterServer(0)
    }

    fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        ctx.send_message(client, &format!("new value: {}", self.0));
    }

    fn message(&mut self, _: ClientId, message: &str, ctx: &impl JamsocketContext) {
        match message {
            "increment" => self.0 += 1,
            "decrement" => self.0 -= 1,
            _ => (),
        }
        ctx.send_message(MessageRecipient::Broadcast, &format!("new value: {}", self.0));
    }
}
"#;

const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>{name}</title>
<h1>{name}</h1>
<p>Value: <output id="value">…</output></p>
<button id="decrement">−</button> <button id="increment">+</button>
<script>
  const room = new URLSearchParams(location.search).get("room") || "default";
  const ws = new WebSocket(`ws://${location.host}/ws/${encodeURIComponent(room)}`);
  ws.onmessage = (e) => { document.getElementById("value").textContent = e.data.replace("new value: ", ""); };
  for (const action of ["increment", "decrement"]) {
    document.getElementById(action).onclick = () => ws.send(action);
  }
</script>
</html>
"#;
