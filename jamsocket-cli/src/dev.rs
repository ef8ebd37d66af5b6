//! `jamsocket dev`: build, serve, and rebuild on every change.

use crate::cargo_build::{ensure_wasm_target, Project};
use crate::config::{ServiceConfig, CONFIG_FILE};
use crate::module_slot::ModuleSlot;
use crate::serve::{load_module, raise_file_limit};
use crate::server_args::{base_url, ServerArgs};
use anyhow::{Context, Result};
use jamsocket_server::{shutdown_signal, RunningServer};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the watcher waits for more changes before rebuilding (editors save in bursts).
const DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// The service crate (or workspace) to serve [default: the current folder]
    pub path: Option<PathBuf>,
    /// Which package to build, in a workspace with several
    #[arg(long, short)]
    pub package: Option<String>,
    /// Build and serve once; do not rebuild on changes
    #[arg(long)]
    pub no_watch: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(mut args: DevArgs) -> Result<()> {
    raise_file_limit();
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let config = ServiceConfig::load(&dir)?;
    // Flags win over jamsocket.toml.
    let server_args = &mut args.server;
    server_args.host = server_args.host.or(config.host);
    server_args.port = server_args.port.or(config.port);
    server_args.rooms = server_args.rooms.or(config.rooms);
    server_args.shutdown_policy = server_args.shutdown_policy.or(config.shutdown_policy);
    server_args.static_dir = server_args.static_dir.take().or(config.static_dir);
    server_args.default_to_this_machine();
    let package = args.package.clone().or(config.package);

    let project = Project::locate(&dir, package.as_deref())?;
    // Claim the port before a long build, so a port in use is reported at once.
    let listener = args.server.bind()?;
    ensure_wasm_target(project.dir())?;
    let wasm = project.build()?;
    let host_config = args.server.host_config();
    let slot = ModuleSlot::new(load_module(&wasm, host_config.clone())?);
    let store = args
        .server
        .open_store(dev_store(&wasm, &project.package)?)?;

    let addr = listener.local_addr()?;
    let mut server = args
        .server
        .with_admin(args.server.with_auth(args.server.server())?)?;
    if let Some(store) = &store {
        server = server.with_store(store.clone());
    }
    if args.server.admin_port.is_some() {
        server = server.with_metrics_collector(slot.metrics());
    }
    let running = server.start(listener, slot.clone())?;
    say!(
        "Serving {} ({}) on {}",
        project.package,
        wasm.display(),
        base_url(addr)
    );
    args.server.print_urls(addr, store.as_ref());
    args.server.print_admin(running.admin_addr());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if args.no_watch {
            Ok(shutdown_signal().await?)
        } else {
            let reload = Reloader {
                project: &project,
                slot: &slot,
                host_config,
                running: &running,
            };
            tokio::select! {
                result = reload.watch(&dir) => result,
                result = shutdown_signal() => Ok(result?),
            }
        }
    })?;
    say!("Shutting down");
    running.stop()?;
    Ok(())
}

struct Reloader<'a> {
    project: &'a Project,
    slot: &'a ModuleSlot,
    host_config: jamsocket_wasm_host::WasmHostConfig,
    running: &'a RunningServer,
}

impl Reloader<'_> {
    /// Rebuilds after every change to the crate's sources or `jamsocket.toml`.
    async fn watch(&self, dir: &Path) -> Result<()> {
        let (changed_tx, mut changed) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    if event.kind.is_modify() || event.kind.is_create() || event.kind.is_remove() {
                        let _ = changed_tx.send(event.paths);
                    }
                }
            })
            .context("cannot watch for changes")?;
        let crate_dir = self.project.dir();
        for path in [
            crate_dir.join("src"),
            crate_dir.join("Cargo.toml"),
            dir.join(CONFIG_FILE),
        ] {
            if path.exists() {
                watcher
                    .watch(&path, RecursiveMode::Recursive)
                    .with_context(|| format!("cannot watch {}", path.display()))?;
            }
        }
        say!("Watching {} for changes", crate_dir.display());
        while let Some(paths) = changed.recv().await {
            if !paths.iter().any(|p| is_source(p)) {
                continue;
            }
            // Let a burst of saves settle.
            while let Ok(Some(_)) = tokio::time::timeout(DEBOUNCE, changed.recv()).await {}
            say!("Change detected; rebuilding {}", self.project.package);
            self.rebuild().await;
        }
        Ok(())
    }

    async fn rebuild(&self) {
        let project = self.project.clone();
        let built = tokio::task::spawn_blocking(move || project.build()).await;
        let loaded = match built {
            Ok(Ok(wasm)) => load_module(&wasm, self.host_config.clone()),
            Ok(Err(err)) => Err(err),
            Err(err) => Err(err.into()),
        };
        match loaded {
            Ok(factory) => {
                self.slot.replace(factory);
                self.running.close_rooms(1012, "service reloaded").await;
                say!("Reloaded: new rooms use the new module; open rooms were closed with 1012");
            }
            Err(err) => {
                crate::report(&err);
                say!("Still serving the previous module");
            }
        }
    }
}

/// `jamsocket dev`'s store: `jamsocket/<package>/rooms.db` in the crate's target folder (the
/// module is `<target>/wasm32-wasip1/release/<name>.wasm`; one folder per package, as a target
/// folder may be shared), so rooms survive a restart, and a rebuild when the service keeps
/// explicit snapshots.
fn dev_store(wasm: &Path, package: &str) -> Result<Option<String>> {
    let Some(target) = wasm.ancestors().nth(3) else {
        return Ok(None);
    };
    let dir = target.join("jamsocket").join(package);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(Some(format!("sqlite:{}", dir.join("rooms.db").display())))
}

/// Editors write temporary files next to sources; only real sources trigger a rebuild.
fn is_source(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let temporary = name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".tmp");
    let built = path.components().any(|c| c.as_os_str() == "target");
    !(temporary || built)
}
