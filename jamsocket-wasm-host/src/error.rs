use crate::GuestFailure;
use std::path::PathBuf;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a module could not be loaded, or why a room could not be created or failed.
///
/// Load-time variants name the module (its path, or `<bytes>` for
/// [`WasmHostFactory::from_bytes`](crate::WasmHostFactory::from_bytes)); room variants name the
/// room id. A room's errors reach the server wrapped in a
/// [`ServiceError`](jamsocket::ServiceError).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasmHostError {
    /// A setting of [`WasmHostConfig`](crate::WasmHostConfig) is out of range.
    #[error("invalid wasm host setting `{setting}` = {value}: {reason}")]
    InvalidConfig {
        /// The setting's builder method.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        reason: &'static str,
    },

    /// wasmtime refused the engine configuration (for example, not enough address space for
    /// the instance pool).
    #[error("could not create the wasmtime engine for {max_rooms} rooms of {max_memory_bytes} bytes each")]
    Engine {
        /// The configured room limit.
        max_rooms: u32,
        /// The configured per-instance memory limit.
        max_memory_bytes: usize,
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// The module file could not be read.
    #[error("could not read WebAssembly module `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a WebAssembly binary.
    #[error(
        "`{module}` is not a WebAssembly module: it does not start with the `\\0asm` magic bytes"
    )]
    NotWasm {
        /// The module's path.
        module: String,
    },

    /// The file is a WebAssembly component, not a core module.
    #[error(
        "`{module}` is a WebAssembly component; Jamsocket runs core modules \
         (build with `--target wasm32-wasip1` and `crate-type = [\"cdylib\"]`)"
    )]
    Component {
        /// The module's path.
        module: String,
    },

    /// wasmtime could not validate or compile the module.
    #[error("could not compile WebAssembly module `{module}`")]
    Compile {
        /// The module's path.
        module: String,
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// A function or memory that the ABI requires is not exported.
    #[error(
        "module `{module}` does not export `{export}`, which the Jamsocket ABI requires \
         (is `#[jamsocket_wasm]` on the service type?)"
    )]
    MissingExport {
        /// The module's path.
        module: String,
        /// The missing export.
        export: &'static str,
    },

    /// An export has the wrong type.
    #[error(
        "module `{module}` exports `{export}` as {found}; the Jamsocket ABI expects {expected}"
    )]
    ExportSignature {
        /// The module's path.
        module: String,
        /// The export.
        export: &'static str,
        /// What the ABI expects.
        expected: String,
        /// What the module has.
        found: String,
    },

    /// The module imports something the host does not provide.
    #[error("module `{module}` imports `{import_module}::{name}`, which the Jamsocket host does not provide")]
    UnknownImport {
        /// The module's path.
        module: String,
        /// The import's module name.
        import_module: String,
        /// The import's name.
        name: String,
    },

    /// A `jamsocket` import has the wrong type.
    #[error("module `{module}` imports `{import_module}::{name}` as {found}; the host provides {expected}")]
    ImportSignature {
        /// The module's path.
        module: String,
        /// The import's module name.
        import_module: String,
        /// The import's name.
        name: String,
        /// What the host provides.
        expected: String,
        /// What the module asks for.
        found: String,
    },

    /// The module was built for a version of the ABI this host does not serve.
    #[error(
        "module `{module}` implements Jamsocket ABI version {found}, but this host serves \
         versions {oldest} to {newest}: rebuild it against a matching `jamsocket-wasm`"
    )]
    AbiVersionMismatch {
        /// The module's path.
        module: String,
        /// The version the module reports.
        found: u32,
        /// [`jamsocket::abi::OLDEST_ABI_VERSION`].
        oldest: u32,
        /// [`jamsocket::abi::ABI_VERSION`].
        newest: u32,
    },

    /// Calling `jamsocket_abi_version` on a throwaway instance failed (it trapped, looped or
    /// called an import).
    #[error("could not read the ABI version of module `{module}`: `jamsocket_abi_version` failed")]
    AbiVersionCheck {
        /// The module's path.
        module: String,
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// The module could not be instantiated at load time (for example, its initial memory is
    /// larger than the per-instance limit).
    #[error(
        "could not instantiate module `{module}` with a per-instance memory limit of \
         {max_memory_bytes} bytes"
    )]
    Instantiate {
        /// The module's path.
        module: String,
        /// The configured per-instance memory limit.
        max_memory_bytes: usize,
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// The host's imports could not be linked to the module (for example, it imports a WASI
    /// function that does not exist).
    #[error("could not link module `{module}` to the host's imports")]
    Link {
        /// The module's path.
        module: String,
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// Every instance slot is taken: the room cannot be created now.
    #[error(
        "cannot create room `{room_id}`: the limit of {max_rooms} concurrent rooms is reached"
    )]
    RoomLimit {
        /// The room.
        room_id: String,
        /// The configured room limit.
        max_rooms: u32,
    },

    /// Creating a room's instance failed.
    #[error("cannot create room `{room_id}`: instantiating module `{module}` failed")]
    RoomInstantiate {
        /// The room.
        room_id: String,
        /// The module's path.
        module: String,
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// A call into the room's guest failed; the room is closed.
    #[error("room `{room_id}`: guest call `{export}` failed: {failure}")]
    GuestFailed {
        /// The room.
        room_id: String,
        /// The export that was called.
        export: &'static str,
        /// What went wrong.
        failure: GuestFailure,
    },

    /// The room failed earlier and accepts no more calls.
    #[error("room `{room_id}`: refusing `{export}` because the room already failed: {failure}")]
    RoomFailed {
        /// The room.
        room_id: String,
        /// The export that was not called.
        export: &'static str,
        /// The earlier failure.
        failure: GuestFailure,
    },

    /// A room's snapshot cannot be read: truncated or garbled bytes, an unknown format, or
    /// contents that do not fit the module or the memory limit. Reaches the server as
    /// [`RestoreError::Corrupt`](jamsocket::RestoreError::Corrupt).
    #[error("cannot restore room `{room_id}`: its snapshot is corrupt: {problem}")]
    SnapshotCorrupt {
        /// The room.
        room_id: String,
        /// What is wrong with the bytes.
        problem: String,
    },

    /// A memory image taken by another module: only the module that took it can read it.
    /// Reaches the server as [`RestoreError::Unsupported`](jamsocket::RestoreError::Unsupported).
    #[error(
        "cannot restore room `{room_id}` from its memory image: the image was taken by module \
         {saved_hash}…, but `{module}` is {module_hash}…; the module changed and keeps no \
         explicit snapshot (its `jamsocket_snapshot` is missing or returns none), so the room \
         starts fresh"
    )]
    SnapshotModuleChanged {
        /// The room.
        room_id: String,
        /// The loaded module's path.
        module: String,
        /// The first 8 hex digits of the SHA-256 of the module that took the image.
        saved_hash: String,
        /// The first 8 hex digits of the loaded module's SHA-256.
        module_hash: String,
    },

    /// The service's own snapshot, but the module cannot read one. Reaches the server as
    /// [`RestoreError::Unsupported`](jamsocket::RestoreError::Unsupported).
    #[error(
        "cannot restore room `{room_id}`: module `{module}` has no `jamsocket_restore` export, \
         so it cannot read the service's own snapshot; the room starts fresh"
    )]
    NoRestoreExport {
        /// The room.
        room_id: String,
        /// The module's path.
        module: String,
    },

    /// The guest's `jamsocket_restore` answered `RESTORE_UNSUPPORTED`: the service keeps no
    /// snapshots. [`RestoreError::Unsupported`](jamsocket::RestoreError::Unsupported).
    #[error(
        "cannot restore room `{room_id}`: the guest's `jamsocket_restore` cannot read snapshots \
         (the service keeps none); the room starts fresh"
    )]
    GuestSnapshotUnsupported {
        /// The room.
        room_id: String,
    },

    /// The guest's `jamsocket_restore` answered `RESTORE_CORRUPT`; its reason is in the room's
    /// log (the guest's stderr). [`RestoreError::Corrupt`](jamsocket::RestoreError::Corrupt).
    #[error(
        "cannot restore room `{room_id}`: the guest's `jamsocket_restore` reports the snapshot \
         corrupt (the reason is in the room's log)"
    )]
    GuestSnapshotCorrupt {
        /// The room.
        room_id: String,
    },
}

impl WasmHostError {
    pub(crate) fn boxed(error: wasmtime::Error) -> BoxError {
        error.into_boxed_dyn_error()
    }
}
