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
        ("static/index.html", INDEX_HTML.replace(PAGE_TITLE, &name)),
        ("static/jamsocket-client.js", CLIENT_JS.to_string()),
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

// The service, its settings and its page are examples/counter-service's own files, so the
// example is exactly what a new project gets and its tests (the browser test drives the page)
// cover the template too. Only the manifest differs: it names the package and finds
// jamsocket-wasm from wherever the project is.
const JAMSOCKET_TOML: &str = include_str!("../../examples/counter-service/jamsocket.toml");
const LIB_RS: &str = include_str!("../../examples/counter-service/src/lib.rs");
const INDEX_HTML: &str = include_str!("../../examples/counter-service/static/index.html");
/// The TypeScript client, compiled (`clients/typescript`), which the page imports.
const CLIENT_JS: &str = include_str!("../../examples/counter-service/static/jamsocket-client.js");
/// The example page's title and heading; a new project's page shows its package name there.
const PAGE_TITLE: &str = "Shared counter";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_the_package_name() {
        let page = INDEX_HTML.replace(PAGE_TITLE, "my-service");
        assert!(page.contains("<title>my-service</title>"), "{page}");
        assert!(page.contains("<h1>my-service</h1>"), "{page}");
    }
}
