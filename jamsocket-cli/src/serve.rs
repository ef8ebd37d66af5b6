use crate::cluster::ClusterArgs;
use crate::module_slot::ModuleSlot;
use crate::server_args::{base_url, ServerArgs};
use crate::user_error::UserError;
use anyhow::Result;
use jamsocket_wasm_host::{WasmHostConfig, WasmHostError, WasmHostFactory};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The WebAssembly module to serve (built with `jamsocket build`)
    pub module: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Serves a prebuilt module until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    raise_file_limit();
    let factory = load_module(&args.module, args.server.host_config())?;
    // A cluster's nodes share its Redis for their rooms' snapshots too, unless told otherwise.
    args.cluster.check_store(args.server.store.as_deref())?;
    let store = args.server.open_store(args.cluster.cluster.clone())?;
    let listener = args.server.bind()?;
    let addr = listener.local_addr()?;
    let cluster = args.cluster.join(addr)?;
    if args.server.allowed_origins.is_none() {
        tracing::warn!(
            "pages from any site may open a WebSocket to this server; restrict them with \
             --allowed-origins (https://app.example,http://localhost:*)"
        );
    }
    let mut server = args
        .server
        .with_admin(args.server.with_auth(args.server.server())?)?;
    if let Some(store) = &store {
        server = server.with_store(store.clone());
    }
    if let Some(cluster) = &cluster {
        server = server.with_cluster(cluster.clone());
    }
    let slot = ModuleSlot::new(factory);
    if args.server.admin_port.is_some() {
        server = server.with_metrics_collector(slot.metrics());
    }
    let running = server.start(listener, slot)?;
    say!("Serving {} on {}", args.module.display(), base_url(addr));
    args.server.print_urls(addr, store.as_ref());
    args.server.print_admin(running.admin_addr());
    if let Some(cluster) = &cluster {
        say!(
            "  cluster:   node {} at {} (lease {:?})",
            cluster.node_id(),
            cluster.advertise(),
            cluster.node_ttl()
        );
    }
    running.stop_on_signal()?;
    Ok(())
}

/// Loads a module, turning failures into errors with a next step.
pub fn load_module(path: &Path, config: WasmHostConfig) -> Result<WasmHostFactory> {
    WasmHostFactory::with_config(path, config).map_err(|err| {
        let abi_mismatch = matches!(err, WasmHostError::AbiVersionMismatch { .. });
        anyhow::Error::new(err).context(UserError::BadModule {
            path: path.to_path_buf(),
            abi_mismatch,
        })
    })
}

/// Thousands of clients need thousands of file descriptors.
pub fn raise_file_limit() {
    if let Err(err) = rlimit::increase_nofile_limit(65_536) {
        tracing::debug!(error = %err, "could not raise the open-file limit");
    }
}
