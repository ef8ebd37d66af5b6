use crate::abi_check::OptionalExports;
use crate::host_metrics::HostMetrics;
use crate::host_state::HostState;
use crate::memory_image::ImageLayout;
use crate::output_budget::ServerOutputBudget;
use crate::{abi_check, epoch_ticker, imports, WasmHost, WasmHostConfig, WasmHostError};
use jamsocket::abi::{ABI_VERSION, OLDEST_ABI_VERSION};
use jamsocket::{JamsocketContext, JamsocketServiceFactory, RestoreError, ServiceError};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use wasmtime::{Engine, InstancePre, Linker, Module};

/// Loads a Jamsocket guest module once and creates one isolated instance of it per room.
///
/// Loading hashes the module (SHA-256, see [`module_hash`](Self::module_hash)), compiles it,
/// checks its exports and imports against [`jamsocket::abi`], calls its
/// `jamsocket_abi_version` on a throwaway instance (any version from [`OLDEST_ABI_VERSION`] to
/// [`ABI_VERSION`] is served: an older module only lacks newer imports), and prepares the
/// linker. Each room then only instantiates (from a pool, with a copy-on-write memory image) and
/// calls `jamsocket_initialize`, or, when [restored](JamsocketServiceFactory::restore) from a
/// snapshot, `jamsocket_restore` or nothing at all (see the README's *Snapshots*). The factory
/// is cheap to clone: clones share the engine and module.
///
/// ```no_run
/// use jamsocket_wasm_host::{WasmHostConfig, WasmHostFactory};
/// use std::time::Duration;
///
/// let factory = WasmHostFactory::with_config(
///     "target/wasm32-wasip1/release/counter_service.wasm",
///     WasmHostConfig::default().with_cpu_time_per_call(Duration::from_millis(500)),
/// )?;
/// # Ok::<(), jamsocket_wasm_host::WasmHostError>(())
/// ```
#[derive(Clone)]
pub struct WasmHostFactory {
    inner: Arc<FactoryInner>,
}

pub(crate) struct FactoryInner {
    /// The module's path, or `<bytes>`, for messages.
    pub(crate) module_name: String,
    pub(crate) engine: Engine,
    pub(crate) instance_pre: InstancePre<HostState>,
    pub(crate) config: WasmHostConfig,
    /// SHA-256 of the module's bytes: a memory image only fits the module that took it.
    pub(crate) module_hash: [u8; 32],
    /// Which of `jamsocket_snapshot` / `jamsocket_restore` the module exports.
    pub(crate) optional_exports: OptionalExports,
    /// The exported mutable globals a memory image holds, and the module's initial memory
    /// (one copy, shared by every room) that images are taken against.
    pub(crate) image_layout: ImageLayout,
    /// The guest output every room together may log.
    pub(crate) output: Arc<ServerOutputBudget>,
    /// What the rooms' guests use, updated by every room.
    pub(crate) metrics: HostMetrics,
}

impl WasmHostFactory {
    /// Loads the module at `path` with the default [`WasmHostConfig`].
    pub fn new(path: impl AsRef<Path>) -> Result<Self, WasmHostError> {
        Self::with_config(path, WasmHostConfig::default())
    }

    /// Loads the module at `path`.
    pub fn with_config(
        path: impl AsRef<Path>,
        config: WasmHostConfig,
    ) -> Result<Self, WasmHostError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| WasmHostError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::load(path.display().to_string(), &bytes, config)
    }

    /// Loads a module from memory; errors call it `<bytes>`.
    pub fn from_bytes(bytes: &[u8], config: WasmHostConfig) -> Result<Self, WasmHostError> {
        Self::load("<bytes>".to_string(), bytes, config)
    }

    /// The configuration this factory was loaded with.
    pub fn config(&self) -> &WasmHostConfig {
        &self.inner.config
    }

    /// The module's path (or `<bytes>`).
    pub fn module_name(&self) -> &str {
        &self.inner.module_name
    }

    /// The SHA-256 of the module's bytes, computed once at load. Snapshots carry the hash of
    /// the module that took them; a memory image is only restored into the same module.
    pub fn module_hash(&self) -> [u8; 32] {
        self.inner.module_hash
    }

    /// The guest metrics of this factory's rooms (CPU time, memory, instances, failures by
    /// kind), shared with every clone of the factory. Register them with a Prometheus registry:
    /// `registry.register_collector(Box::new(factory.metrics()))`.
    pub fn metrics(&self) -> HostMetrics {
        self.inner.metrics.clone()
    }

    fn load(name: String, bytes: &[u8], config: WasmHostConfig) -> Result<Self, WasmHostError> {
        config.validate()?;
        check_magic(&name, bytes)?;
        let module_hash: [u8; 32] = Sha256::digest(bytes).into();
        let engine =
            Engine::new(&config.engine_config()).map_err(|source| WasmHostError::Engine {
                max_rooms: config.max_rooms(),
                max_memory_bytes: config.memory_limit(),
                source: WasmHostError::boxed(source),
            })?;
        epoch_ticker::start(&engine, config.time_slice()).map_err(|source| {
            WasmHostError::Engine {
                max_rooms: config.max_rooms(),
                max_memory_bytes: config.memory_limit(),
                source: Box::new(source),
            }
        })?;
        let started = std::time::Instant::now();
        let module = Module::new(&engine, bytes).map_err(|source| WasmHostError::Compile {
            module: name.clone(),
            source: WasmHostError::boxed(source),
        })?;
        tracing::debug!(module = %name, elapsed = ?started.elapsed(), "compiled guest module");

        // The version first: a module built for another ABI gets a version error, not a
        // complaint about some export.
        abi_check::check_version_export(&module, &name)?;
        let (found, initial_image) = abi_check::read_abi_version(&engine, &module, &name, &config)?;
        let (oldest, newest) = (OLDEST_ABI_VERSION, ABI_VERSION);
        if !(oldest..=newest).contains(&found) {
            return Err(WasmHostError::AbiVersionMismatch {
                module: name,
                found,
                oldest,
                newest,
            });
        }
        abi_check::check_exports(&module, &name)?;
        let optional_exports = abi_check::check_optional_exports(&module, &name)?;
        abi_check::check_imports(&module, &name)?;
        let image_layout = ImageLayout::of(&module, initial_image);

        let link = |source| WasmHostError::Link {
            module: name.clone(),
            source: WasmHostError::boxed(source),
        };
        let mut linker = Linker::new(&engine);
        imports::add_to_linker(&mut linker).map_err(link)?;
        let instance_pre = linker.instantiate_pre(&module).map_err(link)?;
        tracing::info!(
            module = %name,
            module_hash = %crate::snapshot_format::short_hex(&module_hash),
            explicit_snapshots = optional_exports.snapshot && optional_exports.restore,
            ?config,
            "loaded guest module"
        );

        Ok(WasmHostFactory {
            inner: Arc::new(FactoryInner {
                module_name: name,
                engine,
                instance_pre,
                output: ServerOutputBudget::new(config.guest_output_lines_per_sec_total()),
                config,
                module_hash,
                optional_exports,
                image_layout,
                metrics: HostMetrics::default(),
            }),
        })
    }
}

/// Rejects anything but a core WebAssembly module before compiling it.
fn check_magic(name: &str, bytes: &[u8]) -> Result<(), WasmHostError> {
    match bytes {
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => Err(WasmHostError::Component {
            module: name.to_string(),
        }),
        [0, b'a', b's', b'm', ..] => Ok(()),
        _ => Err(WasmHostError::NotWasm {
            module: name.to_string(),
        }),
    }
}

impl<C: JamsocketContext + Send + 'static> JamsocketServiceFactory<C> for WasmHostFactory {
    type Service = WasmHost;

    /// Instantiates the module for `room_id` and calls `jamsocket_initialize`. Fails with
    /// [`ServiceError::Unavailable`] when the room limit is reached.
    async fn build(&self, room_id: &str, context: C) -> Result<WasmHost, ServiceError> {
        WasmHost::build(&self.inner, room_id, Box::new(context)).await
    }

    /// Recreates `room_id` from bytes [`WasmHost`]'s `snapshot` returned. The service's own
    /// snapshot goes to a fresh instance's `jamsocket_restore` (any build of the module that
    /// has it can read it); a memory image is written into a fresh instance of the same module,
    /// without calling `jamsocket_initialize`.
    ///
    /// [`RestoreError::Unsupported`]: a memory image from a module with another hash, or the
    /// service's own snapshot for a module without `jamsocket_restore` (or whose service keeps
    /// none). [`RestoreError::Corrupt`]: bytes that do not decode (truncated, garbled, another
    /// format, larger than the memory limit, globals the module does not have), or that the
    /// guest reports corrupt. [`RestoreError::Service`]: the room limit
    /// ([`ServiceError::Unavailable`]) or a failed guest call, as in `build`.
    async fn restore(
        &self,
        room_id: &str,
        context: C,
        snapshot: &[u8],
    ) -> Result<WasmHost, RestoreError> {
        WasmHost::restore(&self.inner, room_id, Box::new(context), snapshot).await
    }
}

impl std::fmt::Debug for WasmHostFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHostFactory")
            .field("module", &self.inner.module_name)
            .field(
                "module_hash",
                &crate::snapshot_format::short_hex(&self.inner.module_hash),
            )
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_tell_modules_components_and_other_files_apart() {
        assert!(check_magic("m", b"\0asm\x01\0\0\0").is_ok());
        assert!(matches!(
            check_magic("c", b"\0asm\x0d\0\x01\0"),
            Err(WasmHostError::Component { .. })
        ));
        for other in [&b""[..], b"\0as", b"(module)", b"#!/bin/sh"] {
            assert!(matches!(
                check_magic("x", other),
                Err(WasmHostError::NotWasm { .. })
            ));
        }
    }
}
