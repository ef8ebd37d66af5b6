//! Server settings shared by `jamsocket serve` and `jamsocket dev`.

use crate::user_error::UserError;
use anyhow::Result;
use jamsocket_server::{RoomIdStrategy, Server, ShutdownPolicy};
use jamsocket_wasm_host::WasmHostConfig;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Port to listen on; 0 picks a free port [default: 8080]
    #[arg(long)]
    pub port: Option<u16>,
    /// Where room ids come from [default: implicit]
    #[arg(long, value_name = "implicit|api|uuid|short[N]")]
    pub rooms: Option<RoomIdStrategy>,
    /// What happens to a room when its last client leaves [default: 60sec]
    #[arg(long, value_name = "never|immediate|<n>sec")]
    pub shutdown_policy: Option<ShutdownPolicy>,
    /// Seconds between the server's pings to each client
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_interval_secs: u64,
    /// Seconds of silence after which a client is dropped
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_timeout_secs: u64,
    /// On SIGINT/SIGTERM, seconds clients get to take their close frames (1001) before exit
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_grace_secs: u64,
    /// Folder of static files to serve at `/`
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// Largest message a client may send; larger ones close it with 1009
    #[arg(long, default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_message_bytes: u64,
    /// Most clients in one room; more get HTTP 503
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_clients_per_room: u64,
    /// Most rooms at once (each is a WebAssembly instance); more get HTTP 503
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rooms: u32,
    /// Messages queued for a client that stopped reading before it is closed with 1008
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub outbound_queue_messages: u64,
    /// Most messages per second one client may send (bursts of one second's worth); more close
    /// it with 1008. 0 means no limit
    #[arg(long, default_value_t = 0)]
    pub max_messages_per_sec: u32,
    /// Memory cap of each room's WebAssembly instance, in MiB
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(2..=4096))]
    pub guest_memory_mib: u64,
    /// CPU time a guest may use in one call before its room is closed, in milliseconds
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub guest_cpu_ms_per_call: u64,
}

impl ServerArgs {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(8080)
    }

    /// The server these flags describe.
    pub fn server(&self) -> Server {
        let mut server = Server::new()
            .with_port(self.port())
            .with_room_id_strategy(self.rooms.unwrap_or_default())
            .with_shutdown_policy(self.shutdown_policy.unwrap_or_default())
            .with_heartbeat_interval(Duration::from_secs(self.heartbeat_interval_secs))
            .with_heartbeat_timeout(Duration::from_secs(self.heartbeat_timeout_secs))
            .with_shutdown_grace(Duration::from_secs(self.shutdown_grace_secs))
            .with_max_message_bytes(saturating_usize(self.max_message_bytes))
            .with_max_clients_per_room(saturating_usize(self.max_clients_per_room))
            .with_max_rooms(self.max_rooms as usize)
            .with_outbound_queue_messages(saturating_usize(self.outbound_queue_messages));
        if self.max_messages_per_sec > 0 {
            server = server.with_max_messages_per_sec(self.max_messages_per_sec);
        }
        if let Some(dir) = &self.static_dir {
            server = server.with_static_path(dir);
        }
        server
    }

    /// The guest limits these flags describe.
    pub fn host_config(&self) -> WasmHostConfig {
        WasmHostConfig::new()
            .with_max_memory_bytes(saturating_usize(self.guest_memory_mib * 1024 * 1024))
            .with_cpu_time_per_call(Duration::from_millis(self.guest_cpu_ms_per_call))
            .with_max_rooms(self.max_rooms)
    }

    /// Binds the port on all interfaces, with a clear error when it is taken.
    pub fn bind(&self) -> Result<TcpListener> {
        let port = self.port();
        TcpListener::bind(("0.0.0.0", port)).map_err(|err| {
            if err.kind() == std::io::ErrorKind::AddrInUse {
                UserError::PortInUse(port).into()
            } else {
                anyhow::Error::new(err).context(format!("cannot listen on port {port}"))
            }
        })
    }
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Prints where the server can be reached.
pub fn print_urls(port: u16, static_dir: Option<&PathBuf>) {
    say!("  status:    http://localhost:{port}/status");
    say!("  websocket: ws://localhost:{port}/ws/<room>");
    if static_dir.is_some() {
        say!("  page:      http://localhost:{port}/");
    }
}
