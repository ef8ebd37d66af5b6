use crate::admin::AdminSettings;
use crate::auth::{Hook, JwtVerifier};
use crate::metrics::Metrics;
use crate::{Limits, RoomIdStrategy, ShutdownPolicy};
use ipnet::IpNet;
use jamsocket_cluster::Cluster;
use jamsocket_store::Snapshots;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything configurable about a server; [`Server`](crate::Server) is its builder.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub host: IpAddr,
    pub port: u16,
    pub room_id_strategy: RoomIdStrategy,
    pub shutdown_policy: ShutdownPolicy,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub static_path: Option<PathBuf>,
    pub limits: Limits,
    pub workers: Option<usize>,
    pub shutdown_grace: Duration,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Origins whose pages may open a WebSocket; `None` allows every origin.
    pub allowed_origins: Option<Vec<String>>,
    /// Where rooms are saved; `None` keeps rooms in memory only.
    pub store: Option<Snapshots>,
    /// How often, at most, a changed room is saved.
    pub snapshot_interval: Duration,
    /// How long a client with a session may be away before the service hears it left; zero
    /// turns sessions off.
    pub reconnect_grace: Duration,
    /// Verifies the tokens clients present; `None` admits clients without one.
    pub jwt: Option<JwtVerifier>,
    /// The native admission hook.
    pub admission: Option<AdmissionHook>,
    /// The cluster this node belongs to; `None` serves every room here.
    pub cluster: Option<Cluster>,
    /// The admin listener (metrics, room API, admin page); `None` serves none.
    pub admin: Option<AdminSettings>,
    /// The server's metrics; `None` collects none (and costs nothing).
    pub metrics: Option<Arc<Metrics>>,
}

/// The admission hook, shown as such in `Debug` output.
#[derive(Clone)]
pub(crate) struct AdmissionHook(pub Arc<Hook>);

impl std::fmt::Debug for AdmissionHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdmissionHook")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            room_id_strategy: RoomIdStrategy::default(),
            shutdown_policy: ShutdownPolicy::default(),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(30),
            static_path: None,
            limits: Limits::default(),
            workers: None,
            shutdown_grace: Duration::from_secs(5),
            trusted_proxies: Vec::new(),
            allowed_origins: None,
            store: None,
            snapshot_interval: Duration::from_secs(1),
            reconnect_grace: Duration::from_secs(30),
            jwt: None,
            admission: None,
            cluster: None,
            admin: None,
            metrics: None,
        }
    }
}
