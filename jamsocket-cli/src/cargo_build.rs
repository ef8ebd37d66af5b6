//! Finding the service crate and building it for `wasm32-wasip1` through cargo.

use crate::user_error::UserError;
use anyhow::{Context, Result};
use cargo_metadata::{CrateType, Message, MetadataCommand, Package, PackageId};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const WASM_TARGET: &str = "wasm32-wasip1";

/// The service crate to build.
#[derive(Debug, Clone)]
pub struct Project {
    pub manifest: PathBuf,
    pub package: String,
    package_id: PackageId,
}

impl Project {
    /// Finds the service package for the crate or workspace in `dir`.
    pub fn locate(dir: &Path, package: Option<&str>) -> Result<Project> {
        let manifest = dir.join("Cargo.toml");
        if !manifest.exists() {
            return Err(UserError::NoManifest(dir.to_path_buf()).into());
        }
        let metadata = MetadataCommand::new()
            .manifest_path(&manifest)
            .no_deps()
            .exec()
            .with_context(|| format!("cargo could not read {}", manifest.display()))?;
        let members = metadata.workspace_packages();
        let chosen: &Package = match package {
            Some(name) => members
                .iter()
                .copied()
                .find(|p| p.name.as_str() == name)
                .ok_or_else(|| UserError::UnknownPackage {
                    package: name.to_string(),
                    dir: dir.to_path_buf(),
                    available: members.iter().map(|p| p.name.to_string()).collect(),
                })?,
            None => {
                let own_manifest = manifest.canonicalize()?;
                match members
                    .iter()
                    .copied()
                    .find(|p| p.manifest_path.as_std_path() == own_manifest)
                {
                    // A package's own folder: that package.
                    Some(own) => own,
                    // A workspace root: the one service crate in it.
                    None => {
                        let candidates: Vec<&Package> =
                            members.iter().copied().filter(|p| is_cdylib(p)).collect();
                        match candidates.as_slice() {
                            [only] => only,
                            [] => {
                                let first = members
                                    .first()
                                    .ok_or_else(|| UserError::NoManifest(dir.to_path_buf()))?;
                                return Err(UserError::NotCdylib {
                                    package: first.name.to_string(),
                                    manifest: first.manifest_path.clone().into(),
                                }
                                .into());
                            }
                            several => {
                                return Err(UserError::SeveralPackages {
                                    dir: dir.to_path_buf(),
                                    candidates: several
                                        .iter()
                                        .map(|p| p.name.to_string())
                                        .collect(),
                                }
                                .into())
                            }
                        }
                    }
                }
            }
        };
        if !is_cdylib(chosen) {
            return Err(UserError::NotCdylib {
                package: chosen.name.to_string(),
                manifest: chosen.manifest_path.clone().into(),
            }
            .into());
        }
        Ok(Project {
            manifest: chosen.manifest_path.clone().into(),
            package: chosen.name.to_string(),
            package_id: chosen.id.clone(),
        })
    }

    /// The folder holding the package's `Cargo.toml`.
    pub fn dir(&self) -> &Path {
        self.manifest.parent().unwrap_or(Path::new("."))
    }

    /// Builds the package in release mode for `wasm32-wasip1`, letting cargo print its progress
    /// and diagnostics, and returns the path of the `.wasm` file.
    pub fn build(&self) -> Result<PathBuf> {
        let mut child = Command::new(cargo())
            .args(["build", "--release", "--target", WASM_TARGET])
            .args(["--message-format", "json-render-diagnostics"])
            .arg("--manifest-path")
            .arg(&self.manifest)
            .args(["--package", &self.package])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run cargo")?;
        let stdout = child.stdout.take().context("cargo's output is missing")?;
        let mut wasm = None;
        for message in Message::parse_stream(BufReader::new(stdout)) {
            if let Message::CompilerArtifact(artifact) =
                message.context("cannot read cargo's output")?
            {
                if artifact.package_id == self.package_id {
                    if let Some(file) = artifact
                        .filenames
                        .iter()
                        .find(|f| f.extension() == Some("wasm"))
                    {
                        wasm = Some(file.clone().into_std_path_buf());
                    }
                }
            }
        }
        if !child.wait().context("cargo did not finish")?.success() {
            return Err(UserError::BuildFailed.into());
        }
        wasm.ok_or_else(|| {
            UserError::NoWasm {
                package: self.package.clone(),
            }
            .into()
        })
    }
}

fn is_cdylib(package: &Package) -> bool {
    package
        .targets
        .iter()
        .any(|t| t.crate_types.contains(&CrateType::CDyLib))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Makes sure the `wasm32-wasip1` standard library is installed, installing it with rustup if
/// needed.
pub fn ensure_wasm_target(dir: &Path) -> Result<()> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .output()
        .context("cannot run rustc: is Rust installed?")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return Ok(());
    }
    eprintln!("jamsocket: the {WASM_TARGET} target is missing; installing it with `rustup target add {WASM_TARGET}`");
    match Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(dir)
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(anyhow::anyhow!(
            "`rustup target add {WASM_TARGET}` failed ({status})"
        )),
        Err(_) => Err(UserError::MissingTarget.into()),
    }
}
