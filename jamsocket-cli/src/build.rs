use crate::cargo_build::{ensure_wasm_target, Project};
use crate::config::ServiceConfig;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The service crate (or workspace) to build [default: the current folder]
    pub path: Option<PathBuf>,
    /// Which package to build, in a workspace with several
    #[arg(long, short)]
    pub package: Option<String>,
}

/// Builds the service and prints the path of its `.wasm` file.
pub fn run(args: BuildArgs) -> Result<()> {
    let dir = args.path.unwrap_or_else(|| PathBuf::from("."));
    let config = ServiceConfig::load(&dir)?;
    let package = args.package.or(config.package);
    let project = Project::locate(&dir, package.as_deref())?;
    ensure_wasm_target(project.dir())?;
    let wasm = project.build()?;
    say!("{}", wasm.display());
    Ok(())
}
