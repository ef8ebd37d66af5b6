use std::net::IpAddr;
use std::path::PathBuf;

/// Failures a user can fix, each with its next step.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no Cargo.toml in {0}")]
    NoManifest(PathBuf),
    #[error("package `{package}` builds no WebAssembly module: its library is not a `cdylib`")]
    NotCdylib { package: String, manifest: PathBuf },
    #[error("{dir} holds several service crates: {}", .candidates.join(", "))]
    SeveralPackages {
        dir: PathBuf,
        candidates: Vec<String>,
    },
    #[error("no package `{package}` in the workspace at {dir}; it has {}", .available.join(", "))]
    UnknownPackage {
        package: String,
        dir: PathBuf,
        available: Vec<String>,
    },
    #[error("the build finished but produced no .wasm file for `{package}`")]
    NoWasm { package: String },
    #[error("the build failed")]
    BuildFailed,
    #[error("the wasm32-wasip1 target is not installed, and rustup was not found to install it")]
    MissingTarget,
    #[error("port {0} is already in use")]
    PortInUse(u16),
    #[error("cannot listen on {0}: it is not an address of this machine")]
    HostNotAvailable(IpAddr),
    #[error("cannot load {path}")]
    BadModule { path: PathBuf, abi_mismatch: bool },
    #[error("{0} already exists")]
    AlreadyExists(PathBuf),
    #[error("cannot open the room store `{url}`")]
    BadStore { url: String },
    #[error("cannot use the JWT public key `{}`", path.display())]
    BadJwtKey { path: PathBuf },
    #[error("cannot use the JWT secret")]
    BadJwtSecret,
    #[error("--store {0} is not shared by the nodes of a cluster")]
    ClusterStoreNotShared(String),
    #[error("cannot join the cluster at `{url}`")]
    BadCluster { url: String },
    #[error("cannot read the admin token file `{}`", path.display())]
    BadAdminTokenFile { path: PathBuf },
    #[error("the admin token is empty")]
    EmptyAdminToken,
    #[error("--admin-token needs --admin-port: the room API is served on the admin listener only")]
    AdminTokenWithoutPort,
    #[error("--cluster needs the address other nodes reach this one at, and {0} listens on every interface")]
    NoAdvertiseAddress(std::net::SocketAddr),
}

impl UserError {
    pub fn next_step(&self) -> Option<String> {
        Some(match self {
            UserError::NoManifest(_) => "run `jamsocket dev` in a service crate (or pass its path), or create one with `jamsocket new <name>`".to_string(),
            UserError::NotCdylib { manifest, .. } => format!(
                "add to {}:\n\n    [lib]\n    crate-type = [\"cdylib\", \"rlib\"]\n",
                manifest.display()
            ),
            UserError::NoWasm { .. } => "make sure the library has `crate-type = [\"cdylib\", \"rlib\"]` under [lib] and uses #[jamsocket_wasm]".to_string(),
            UserError::SeveralPackages { candidates, .. } => format!(
                "pick one with `--package {}` or `package = \"{}\"` in jamsocket.toml",
                candidates[0], candidates[0]
            ),
            UserError::UnknownPackage { .. } => "check the name given with --package or in jamsocket.toml".to_string(),
            UserError::MissingTarget => "install it with: rustup target add wasm32-wasip1".to_string(),
            UserError::PortInUse(_) => "stop the other server, or pick another port with --port <n> (--port 0 picks a free one)".to_string(),
            UserError::HostNotAvailable(_) => "pass one of this machine's addresses with --host: 127.0.0.1 for this machine only, 0.0.0.0 for every interface".to_string(),
            UserError::BadModule { abi_mismatch: true, .. } => "rebuild the service against this version of jamsocket-wasm (`cargo update -p jamsocket-wasm`, then `jamsocket build`)".to_string(),
            UserError::BadModule { .. } => "pass a module built with `jamsocket build` (a wasm32-wasip1 cdylib using #[jamsocket_wasm])".to_string(),
            UserError::AlreadyExists(_) => "pick another name, or remove the existing folder".to_string(),
            UserError::BadStore { url } if url.starts_with("redis") => "start Redis (or check the address in --store), or pass --store sqlite:rooms.db for a file on this machine".to_string(),
            UserError::BadStore { .. } => "pass --store sqlite:PATH with a folder that exists and is writable, redis://HOST:PORT/DB, or none".to_string(),
            UserError::BadJwtKey { .. } => "pass --auth-jwt-public-key a PEM file holding a public key (-----BEGIN PUBLIC KEY-----): RSA, EC P-256/P-384 or Ed25519".to_string(),
            UserError::BadJwtSecret => "pass a non-empty secret with --auth-jwt-secret or JAMSOCKET_AUTH_JWT_SECRET".to_string(),
            UserError::ClusterStoreNotShared(_) => "leave out --store (the cluster's Redis keeps the rooms), or name another Redis every node uses: --store redis://HOST:PORT/DB".to_string(),
            UserError::BadCluster { .. } => "start Redis (or check the address in --cluster); every node of a cluster names the same Redis".to_string(),
            UserError::NoAdvertiseAddress(addr) => format!("pass --advertise HOST:{} with this machine's address on the nodes' network, or --host with that address", addr.port()),
            UserError::BadAdminTokenFile { .. } => "pass --admin-token-file a readable file holding the token, or set JAMSOCKET_ADMIN_TOKEN".to_string(),
            UserError::EmptyAdminToken => "generate one, e.g. `openssl rand -hex 32`, and pass it with JAMSOCKET_ADMIN_TOKEN or --admin-token-file".to_string(),
            UserError::AdminTokenWithoutPort => "add --admin-port <n> (the admin listener binds 127.0.0.1 unless --admin-host says otherwise)".to_string(),
            UserError::BuildFailed => return None,
        })
    }
}
