//! Server settings shared by `jamsocket serve` and `jamsocket dev`.

use crate::user_error::UserError;
use anyhow::Result;
use ipnet::IpNet;
use jamsocket_server::{
    JwtVerifier, Limits, RoomIdStrategy, Server, ShutdownPolicy, Snapshots, StoreConfig,
};
use jamsocket_wasm_host::WasmHostConfig;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

/// Where `jamsocket serve` listens unless told: every interface, as servers do.
pub const SERVE_HOST: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
/// Where `jamsocket dev` listens unless told: this machine only.
pub const DEV_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The pages `jamsocket dev` lets open a WebSocket unless told: pages served from this machine.
pub const DEV_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

// Settings whose defaults live in the libraries (`jamsocket_server::Server` and its `Limits`,
// `jamsocket_wasm_host::WasmHostConfig`) are `Option`s, passed to the builders only when given,
// so that those defaults are written down once; help texts read them there.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    #[arg(
        long,
        value_name = "IP",
        help = format!(
            "Address to listen on: 0.0.0.0 for every interface, 127.0.0.1 for this machine \
             only [default: {SERVE_HOST} with serve, {DEV_HOST} with dev]"
        )
    )]
    pub host: Option<IpAddr>,
    #[arg(
        long,
        help = with_default("Port to listen on; 0 picks a free port", Server::new().port())
    )]
    pub port: Option<u16>,
    /// Where room ids come from [default: implicit]
    #[arg(long, value_name = "implicit|api|uuid|short[N]")]
    pub rooms: Option<RoomIdStrategy>,
    /// What happens to a room when its last client leaves [default: 60sec]
    #[arg(long, value_name = "never|immediate|<n>sec")]
    pub shutdown_policy: Option<ShutdownPolicy>,
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Seconds between the server's pings to each client",
            secs(Server::new().heartbeat_interval()),
        )
    )]
    pub heartbeat_interval_secs: Option<u64>,
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Seconds of silence after which a client is dropped",
            secs(Server::new().heartbeat_timeout()),
        )
    )]
    pub heartbeat_timeout_secs: Option<u64>,
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        help = with_default(
            "On SIGINT/SIGTERM, seconds clients get to take their close frames (1001; 1012 with --store) before exit",
            secs(Server::new().shutdown_grace()),
        )
    )]
    pub shutdown_grace_secs: Option<u64>,
    /// Folder of static files to serve at `/`
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// Worker threads for connections and rooms. One uses less CPU per message when the
    /// server shares its cores with other busy processes [default: one per CPU core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Largest message a client may send; larger ones close it with 1009",
            bytes(limits().max_message_bytes),
        )
    )]
    pub max_message_bytes: Option<u64>,
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Most clients in one room; more get HTTP 503",
            limits().max_clients_per_room,
        )
    )]
    pub max_clients_per_room: Option<u64>,
    // The server's room table follows the guest pool's size: each room is an instance.
    #[arg(
        long,
        value_parser = clap::value_parser!(u32).range(1..),
        help = with_default(
            "Most rooms at once (each is a WebAssembly instance); more get HTTP 503",
            WasmHostConfig::default().max_rooms(),
        )
    )]
    pub max_rooms: Option<u32>,
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Messages queued for a client that stopped reading before it is closed with 1008",
            limits().outbound_queue_messages,
        )
    )]
    pub outbound_queue_messages: Option<u64>,
    #[arg(
        long,
        help = with_default(
            "Most messages per second one client may send (bursts of one second's worth); more \
             close it with 1008. 0 means no limit",
            limits().max_messages_per_sec.unwrap_or(0),
        )
    )]
    pub max_messages_per_sec: Option<u32>,
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..),
        help = "Most WebSocket connections at once; more get HTTP 503 [default: the open-file \
                limit less a tenth of it, at least 64 files kept for everything else]"
    )]
    pub max_connections: Option<u64>,
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Most WebSocket connections at once from one client address; more get HTTP 429. \
             Behind a proxy, see --trusted-proxies",
            off(limits().max_connections_per_ip),
        )
    )]
    pub max_connections_per_ip: Option<u64>,
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        help = with_default(
            "Most rooms one client address may create per second (bursts of one second's \
             worth); more get HTTP 429",
            off(limits().max_new_rooms_per_ip_per_sec),
        )
    )]
    pub max_new_rooms_per_ip_per_sec: Option<u32>,
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Seconds a message may take to arrive once it has begun (fragments, or a payload \
             that trickles in); slower ones close the client with 1008",
            secs(limits().message_deadline),
        )
    )]
    pub message_deadline_secs: Option<u64>,
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        help = with_default(
            "Most frames per second one client may send, pings and continuations included \
             (bursts of two seconds' worth); more close it with 1008",
            limits().max_frames_per_sec,
        )
    )]
    pub max_frames_per_sec: Option<u32>,
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Most bytes per second one client may send (bursts of two seconds' worth); more \
             close it with 1008",
            bytes(limits().max_bytes_per_sec),
        )
    )]
    pub max_bytes_per_sec: Option<u64>,
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "Most bytes of partly received messages the server holds over every connection; \
             a connection whose message would take it over is closed with 1013",
            bytes(limits().max_pending_message_bytes),
        )
    )]
    pub max_pending_message_bytes: Option<u64>,
    /// Proxies (IP addresses or networks such as 10.0.0.0/8) whose X-Forwarded-For header
    /// names the client, for the per-address limits [default: none]
    #[arg(long, value_name = "IP|NET,...", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,
    #[arg(
        long,
        value_name = "ORIGIN,...",
        value_delimiter = ',',
        value_parser = parse_origin,
        help = format!(
            "Origins whose pages may open a WebSocket (https://app.example; http://localhost:* \
             for any port; * for all); pages of other origins get HTTP 403 [default: any with \
             serve; {} with dev]",
            DEV_ORIGINS.join(",")
        )
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// Where rooms are saved, so that they survive restarts and leave memory when idle:
    /// sqlite:PATH, redis://HOST:PORT/DB, or none [default: none with serve;
    /// sqlite:<target>/jamsocket/<package>/rooms.db with dev]
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    #[arg(
        long,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "With --store: a room that changed is saved at most this often, in milliseconds \
             (kill -9 loses at most this much)",
            Server::new().snapshot_interval().as_millis(),
        )
    )]
    pub snapshot_interval_ms: Option<u64>,
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "With --store: largest snapshot of one room (compressed); larger ones are not \
             written and the error names the room",
            bytes(StoreConfig::new().max_snapshot_bytes()),
        )
    )]
    pub max_snapshot_bytes: Option<u64>,
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(2..=4096),
        help = with_default(
            "Memory cap of each room's WebAssembly instance, in MiB",
            WasmHostConfig::default().max_memory_bytes() / MIB,
        )
    )]
    pub guest_memory_mib: Option<u64>,
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..),
        help = with_default(
            "CPU time a guest may use in one call before its room is closed, in milliseconds",
            WasmHostConfig::default().cpu_time_per_call().as_millis(),
        )
    )]
    pub guest_cpu_ms_per_call: Option<u64>,
    /// Clients must present a JWT signed with this HS256 secret (as ?token=,
    /// `Authorization: Bearer` or the subprotocol jamsocket.token.<jwt>); its `sub` is the
    /// user id services read with ctx.user(client). Prefer the environment variable to the
    /// flag: command lines are visible to every user of the machine
    #[arg(
        long,
        value_name = "SECRET",
        env = "JAMSOCKET_AUTH_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "auth_jwt_public_key"
    )]
    pub auth_jwt_secret: Option<String>,
    /// Clients must present a JWT signed with the private half of this PEM public key (RSA
    /// for RS256, P-256/P-384 for ES256/ES384, Ed25519 for EdDSA)
    #[arg(long, value_name = "FILE")]
    pub auth_jwt_public_key: Option<PathBuf>,
    /// With a JWT secret or key: accept only tokens whose `aud` claim names one of these
    /// audiences [default: `aud` is not checked]
    #[arg(long, value_name = "AUD,...", value_delimiter = ',')]
    pub auth_jwt_audience: Vec<String>,
    /// With a JWT secret or key: accept only tokens whose `iss` claim is one of these issuers
    /// [default: `iss` is not checked]
    #[arg(long, value_name = "ISS,...", value_delimiter = ',')]
    pub auth_jwt_issuer: Vec<String>,
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        help = with_default(
            "How long a client that presented a resume key may be away before the service \
             hears it left (30s, 500ms; 0 turns sessions off)",
            format!("{}s", secs(Server::new().reconnect_grace())),
        )
    )]
    pub reconnect_grace: Option<Duration>,
    /// Serve metrics (/metrics), the admin page (/) and, with --admin-token, the room API
    /// (/rooms) on this port, apart from clients [default: no admin listener; 0 picks a free
    /// port]
    #[arg(long, value_name = "PORT")]
    pub admin_port: Option<u16>,
    /// Address of the admin listener: metrics and the page need no token, so keep it private
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), requires = "admin_port")]
    pub admin_host: IpAddr,
    /// With --admin-port: the bearer token of the room API (`Authorization: Bearer <token>`).
    /// Prefer the environment variable or --admin-token-file to the flag: command lines are
    /// visible to every user of the machine [default: the room API is off]
    #[arg(
        long,
        value_name = "TOKEN",
        env = "JAMSOCKET_ADMIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "admin_token_file"
    )]
    pub admin_token: Option<String>,
    /// With --admin-port: a file holding the room API's bearer token (surrounding whitespace
    /// is ignored)
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}

impl ServerArgs {
    pub fn host(&self) -> IpAddr {
        self.host.unwrap_or(SERVE_HOST)
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| Server::new().port())
    }

    /// Most rooms at once: the guest pool's size, which the server's room table follows.
    pub fn max_rooms(&self) -> u32 {
        self.max_rooms
            .unwrap_or_else(|| WasmHostConfig::default().max_rooms())
    }

    /// `jamsocket dev`'s defaults: listen on this machine only, for pages served from it.
    /// Flags and `jamsocket.toml` merged in before still win.
    pub fn default_to_this_machine(&mut self) {
        self.host.get_or_insert(DEV_HOST);
        self.allowed_origins
            .get_or_insert_with(|| DEV_ORIGINS.map(String::from).to_vec());
    }

    /// The server these flags describe.
    pub fn server(&self) -> Server {
        let mut server = Server::new()
            .with_host(self.host())
            .with_port(self.port())
            .with_room_id_strategy(self.rooms.unwrap_or_default())
            .with_shutdown_policy(self.shutdown_policy.unwrap_or_default())
            .with_max_rooms(self.max_rooms() as usize);
        if let Some(secs) = self.heartbeat_interval_secs {
            server = server.with_heartbeat_interval(Duration::from_secs(secs));
        }
        if let Some(secs) = self.heartbeat_timeout_secs {
            server = server.with_heartbeat_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = self.shutdown_grace_secs {
            server = server.with_shutdown_grace(Duration::from_secs(secs));
        }
        if let Some(bytes) = self.max_message_bytes {
            server = server.with_max_message_bytes(saturating_usize(bytes));
        }
        if let Some(clients) = self.max_clients_per_room {
            server = server.with_max_clients_per_room(saturating_usize(clients));
        }
        if let Some(messages) = self.outbound_queue_messages {
            server = server.with_outbound_queue_messages(saturating_usize(messages));
        }
        match self.max_messages_per_sec {
            None => {}
            Some(0) => {
                let mut limits = server.limits();
                limits.max_messages_per_sec = None;
                server = server.with_limits(limits);
            }
            Some(messages) => server = server.with_max_messages_per_sec(messages),
        }
        if let Some(dir) = &self.static_dir {
            server = server.with_static_path(dir);
        }
        if let Some(workers) = self.workers {
            server = server.with_workers(workers.into());
        }
        if let Some(connections) = self.max_connections {
            server = server.with_max_connections(saturating_usize(connections));
        }
        if let Some(connections) = self.max_connections_per_ip {
            server = server.with_max_connections_per_ip(saturating_usize(connections));
        }
        if let Some(rooms) = self.max_new_rooms_per_ip_per_sec {
            server = server.with_max_new_rooms_per_ip_per_sec(rooms);
        }
        if let Some(secs) = self.message_deadline_secs {
            server = server.with_message_deadline(Duration::from_secs(secs));
        }
        if let Some(frames) = self.max_frames_per_sec {
            server = server.with_max_frames_per_sec(frames);
        }
        if let Some(bytes) = self.max_bytes_per_sec {
            server = server.with_max_bytes_per_sec(saturating_usize(bytes));
        }
        if let Some(bytes) = self.max_pending_message_bytes {
            server = server.with_max_pending_message_bytes(saturating_usize(bytes));
        }
        if !self.trusted_proxies.is_empty() {
            server = server.with_trusted_proxies(self.trusted_proxies.iter().copied());
        }
        if let Some(origins) = &self.allowed_origins {
            server = server.with_allowed_origins(origins.iter().cloned());
        }
        if let Some(ms) = self.snapshot_interval_ms {
            server = server.with_snapshot_interval(Duration::from_millis(ms));
        }
        if let Some(grace) = self.reconnect_grace {
            server = server.with_reconnect_grace(grace);
        }
        server
    }

    /// `server` verifying the tokens `--auth-jwt-secret` or `--auth-jwt-public-key` says.
    pub fn with_auth(&self, server: Server) -> Result<Server> {
        let mut verifier = match (&self.auth_jwt_secret, &self.auth_jwt_public_key) {
            (Some(secret), _) => JwtVerifier::hs256(secret.as_bytes())
                .map_err(|err| anyhow::Error::new(err).context(UserError::BadJwtSecret))?,
            (None, Some(path)) => JwtVerifier::public_key_file(path).map_err(|err| {
                anyhow::Error::new(err).context(UserError::BadJwtKey { path: path.clone() })
            })?,
            (None, None) => return Ok(server),
        };
        if !self.auth_jwt_audience.is_empty() {
            verifier = verifier.with_audience(&self.auth_jwt_audience);
        }
        if !self.auth_jwt_issuer.is_empty() {
            verifier = verifier.with_issuer(&self.auth_jwt_issuer);
        }
        Ok(server.with_jwt(verifier))
    }

    /// `server` with the admin listener `--admin-port` asks for, and the room API's token.
    pub fn with_admin(&self, server: Server) -> Result<Server> {
        let token = match (&self.admin_token, &self.admin_token_file) {
            (Some(token), _) => Some(token.trim().to_string()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|err| {
                        anyhow::Error::new(err)
                            .context(UserError::BadAdminTokenFile { path: path.clone() })
                    })?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        if token.as_deref() == Some("") {
            return Err(UserError::EmptyAdminToken.into());
        }
        let Some(port) = self.admin_port else {
            if token.is_some() {
                return Err(UserError::AdminTokenWithoutPort.into());
            }
            return Ok(server);
        };
        let addr = SocketAddr::new(self.admin_host, port);
        Ok(server.with_admin(addr, token.as_deref()))
    }

    /// Prints where the admin listener is, if there is one.
    pub fn print_admin(&self, admin: Option<SocketAddr>) {
        let Some(admin) = admin else { return };
        let api = match self.admin_token.is_some() || self.admin_token_file.is_some() {
            true => "room API at /rooms with the admin token",
            false => "room API off: --admin-token to turn it on",
        };
        say!("  admin:     {}/ (page, /metrics; {api})", base_url(admin));
    }

    /// Opens the store `--store` names (`default` when the flag is absent), if any.
    pub fn open_store(&self, default: Option<String>) -> Result<Option<Snapshots>> {
        let Some(url) = self.store.clone().or(default) else {
            return Ok(None);
        };
        if url == "none" {
            return Ok(None);
        }
        let mut config = StoreConfig::new();
        if let Some(bytes) = self.max_snapshot_bytes {
            config = config.with_max_snapshot_bytes(saturating_usize(bytes));
        }
        let store = Snapshots::open(&url, config)
            .map_err(|err| anyhow::Error::new(err).context(UserError::BadStore { url }))?;
        Ok(Some(store))
    }

    /// The guest limits these flags describe.
    pub fn host_config(&self) -> WasmHostConfig {
        let mut config = WasmHostConfig::new().with_max_rooms(self.max_rooms());
        if let Some(mib) = self.guest_memory_mib {
            config = config.with_max_memory_bytes(saturating_usize(mib * MIB as u64));
        }
        if let Some(ms) = self.guest_cpu_ms_per_call {
            config = config.with_cpu_time_per_call(Duration::from_millis(ms));
        }
        config
    }

    /// Binds the host and port, with a clear error when the port is taken or the address is
    /// not this machine's.
    pub fn bind(&self) -> Result<TcpListener> {
        let (host, port) = (self.host(), self.port());
        TcpListener::bind((host, port)).map_err(|err| match err.kind() {
            std::io::ErrorKind::AddrInUse => UserError::PortInUse(port).into(),
            std::io::ErrorKind::AddrNotAvailable => UserError::HostNotAvailable(host).into(),
            _ => anyhow::Error::new(err).context(format!("cannot listen on {host} port {port}")),
        })
    }

    /// Prints where the server can be reached, from where, and by which pages.
    pub fn print_urls(&self, addr: SocketAddr, store: Option<&Snapshots>) {
        let base = base_url(addr);
        say!("  status:    {base}/status");
        say!(
            "  websocket: ws{}/ws/<room>",
            base.trim_start_matches("http")
        );
        if self.static_dir.is_some() {
            say!("  page:      {base}/");
        }
        let ip = addr.ip();
        if ip.is_unspecified() {
            say!("  listening: {addr}, every network interface: other machines can connect (--host 127.0.0.1 for this machine only)");
        } else if ip.is_loopback() {
            say!("  listening: {addr}, this machine only (--host 0.0.0.0 to let other machines connect)");
        } else {
            say!("  listening: {addr}");
        }
        match &self.allowed_origins {
            Some(origins) => say!(
                "  origins:   pages from {} (--allowed-origins to change)",
                origins.join(", ")
            ),
            None => say!("  origins:   pages from any site (--allowed-origins to restrict)"),
        }
        if self.auth_jwt_secret.is_some() || self.auth_jwt_public_key.is_some() {
            say!("  auth:      clients need a JWT (?token=, Authorization: Bearer, or the subprotocol jamsocket.token.<jwt>)");
        }
        match store {
            Some(store) => say!("  store:     {} (rooms are saved and restored)", store.url()),
            None => say!("  store:     none: rooms live in memory only (--store sqlite:rooms.db to keep them)"),
        }
    }
}

/// `http://` and where a client on this machine reaches a server listening on `addr`:
/// `localhost` for 127.0.0.1 and for every interface, otherwise the address itself.
pub fn base_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// The server's default limits.
fn limits() -> Limits {
    Server::new().limits()
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A help text ending in the default, as clap writes it.
fn with_default(text: &str, default: impl Display) -> String {
    format!("{text} [default: {default}]")
}

/// A duration as a number of seconds.
fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

const MIB: usize = 1024 * 1024;

/// A number of bytes, with its size in MiB when it is a whole number of them.
fn bytes(n: usize) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{n} = {} MiB", n / MIB)
    } else {
        n.to_string()
    }
}

/// A limit's default as a help text says it: `off` when there is none.
fn off(limit: Option<impl Display>) -> String {
    limit.map_or_else(|| "off".to_string(), |limit| limit.to_string())
}

/// A trusted proxy: a network (`10.0.0.0/8`) or one address.
/// A duration as `30s`, `500ms`, `2m`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write 30s, 500ms or 2m"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(format!("unknown unit `{unit}` in `{text}`: use ms, s or m")),
    }
}

fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or a network such as 10.0.0.0/8"))
}

/// An allowed origin: `*`, or `scheme://host[:port]` with `:*` for any port. Origins have no
/// path, so a pattern with one could never match: it is refused here rather than ignored.
fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let well_formed = text == "*"
        || text.split_once("://").is_some_and(|(scheme, rest)| {
            let host = rest.strip_suffix('/').unwrap_or(rest);
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !host.is_empty()
                && !host.contains(['/', '?', '#', '@', ' '])
        });
    if well_formed {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not an origin: write scheme://host[:port] (https://app.example; \
             http://localhost:* for any port) or * for every origin"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn parse(flags: &[&str]) -> ServerArgs {
        Cli::parse_from(std::iter::once("jamsocket").chain(flags.iter().copied())).args
    }

    #[test]
    fn without_flags_the_libraries_defaults_apply() {
        let args = parse(&[]);
        let (server, default) = (args.server(), Server::new());
        assert_eq!(server.port(), default.port());
        assert_eq!(server.workers(), None);
        assert_eq!(server.heartbeat_interval(), default.heartbeat_interval());
        assert_eq!(server.heartbeat_timeout(), default.heartbeat_timeout());
        assert_eq!(server.shutdown_grace(), default.shutdown_grace());
        // The room table is as large as the guest pool.
        let mut limits = default.limits();
        limits.max_rooms = WasmHostConfig::default().max_rooms() as usize;
        assert_eq!(server.limits(), limits);
        assert_eq!(args.host_config(), WasmHostConfig::default());
    }

    #[test]
    fn flags_reach_the_builders() {
        let args = parse(&[
            "--port=9000",
            "--heartbeat-interval-secs=7",
            "--heartbeat-timeout-secs=70",
            "--shutdown-grace-secs=2",
            "--max-message-bytes=100",
            "--max-clients-per-room=3",
            "--max-rooms=20",
            "--outbound-queue-messages=4",
            "--max-messages-per-sec=50",
            "--guest-memory-mib=16",
            "--guest-cpu-ms-per-call=200",
            "--reconnect-grace=500ms",
            "--workers=1",
        ]);
        let server = args.server();
        assert_eq!(server.port(), 9000);
        assert_eq!(server.workers(), Some(1));
        assert_eq!(server.reconnect_grace(), Duration::from_millis(500));
        assert_eq!(server.heartbeat_interval(), Duration::from_secs(7));
        assert_eq!(server.heartbeat_timeout(), Duration::from_secs(70));
        assert_eq!(server.shutdown_grace(), Duration::from_secs(2));
        let limits = server.limits();
        assert_eq!(limits.max_message_bytes, 100);
        assert_eq!(limits.max_clients_per_room, 3);
        assert_eq!(limits.max_rooms, 20);
        assert_eq!(limits.outbound_queue_messages, 4);
        assert_eq!(limits.max_messages_per_sec, Some(50));
        let config = args.host_config();
        assert_eq!(config.max_rooms(), 20);
        assert_eq!(config.max_memory_bytes(), 16 * MIB);
        assert_eq!(config.cpu_time_per_call(), Duration::from_millis(200));

        let unlimited = parse(&["--max-messages-per-sec=0"]).server().limits();
        assert_eq!(unlimited.max_messages_per_sec, None);
        for (text, grace) in [("30", 30_000), ("2m", 120_000), ("0", 0)] {
            let server = parse(&["--reconnect-grace", text]).server();
            assert_eq!(
                server.reconnect_grace(),
                Duration::from_millis(grace),
                "{text}"
            );
        }
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        assert_eq!(parse_proxy("10.0.0.0/8"), Ok("10.0.0.0/8".parse().unwrap()));
        assert_eq!(parse_proxy("10.0.0.5"), Ok("10.0.0.5/32".parse().unwrap()));
        assert_eq!(parse_proxy(" ::1 "), Ok("::1/128".parse().unwrap()));
        assert!(parse_proxy("proxy.internal")
            .unwrap_err()
            .contains("`proxy.internal`"));
    }

    #[test]
    fn origins_are_schemes_and_hosts_without_paths() {
        for origin in [
            "*",
            "https://app.example",
            "https://app.example/",
            "http://localhost:*",
            "http://[::1]:*",
            "http://127.0.0.1:8080",
        ] {
            assert_eq!(parse_origin(origin).as_deref(), Ok(origin), "{origin}");
        }
        for bad in [
            "",
            "app.example",
            "https://",
            "https://app.example/page",
            "://x",
        ] {
            let err = parse_origin(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn urls_name_localhost_only_where_it_reaches_the_server() {
        let url = |addr: &str| base_url(addr.parse().unwrap());
        assert_eq!(url("0.0.0.0:80"), "http://localhost:80");
        assert_eq!(url("[::]:80"), "http://localhost:80");
        assert_eq!(url("127.0.0.1:80"), "http://localhost:80");
        assert_eq!(url("[::1]:80"), "http://[::1]:80");
        assert_eq!(url("192.0.2.7:80"), "http://192.0.2.7:80");
    }
}
