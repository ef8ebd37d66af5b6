use crate::admin::{AdminSettings, AdminState, AdminToken};
use crate::admission::Admission;
use crate::auth::{AdmissionRequest, Denied, JwtVerifier};
use crate::close_frame::{code, CloseFrame};
use crate::limits::open_file_limit;
use crate::metrics::Metrics;
use crate::rooms::{RoomContext, Rooms};
use crate::routes::{configure, AppState};
use crate::settings::{AdmissionHook, Settings};
use crate::{Limits, RoomIdStrategy, ShutdownPolicy};
use actix_http::HttpService;
use actix_service::map_config;
use actix_web::dev::{fn_factory, fn_service, AppConfig, ServiceFactory};
use actix_web::App;
use jamsocket::{JamsocketServiceFactory, SimpleJamsocketService, SimpleJamsocketServiceFactory};
use jamsocket_store::Snapshots;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// The listen backlog: how many connections may wait to be accepted. The kernel caps it at
/// `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: i32 = 1024;

/// The last part of the shutdown grace period, left to connections still writing their close
/// frames after every room has closed.
const CONNECTION_DRAIN: Duration = Duration::from_secs(1);

/// The longest reconnect grace: a session outliving its client by more than a day helps no one.
const MAX_RECONNECT_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// Configures and runs a Jamsocket server.
///
/// ```no_run
/// use jamsocket::{JamsocketContext, SimpleJamsocketService};
/// use jamsocket_server::{Server, ShutdownPolicy};
/// use std::time::Duration;
///
/// struct Nothing;
/// impl SimpleJamsocketService for Nothing {
///     fn new(_: &str, _: &impl JamsocketContext) -> Self { Nothing }
/// }
///
/// fn main() -> std::io::Result<()> {
///     Server::new()
///         .with_port(9000)
///         .with_shutdown_policy(ShutdownPolicy::After(Duration::from_secs(30)))
///         .serve_default::<Nothing>()
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Server {
    settings: Settings,
}

impl Server {
    /// A server with default settings: port 8080, implicit room ids, rooms closed a minute after
    /// their last client leaves, heartbeats every 5 s, clients dropped after 30 s of silence.
    pub fn new() -> Self {
        Server::default()
    }

    /// The address [`serve`](Server::serve) listens on. Default `0.0.0.0` (all interfaces);
    /// `127.0.0.1` keeps the server to this machine. ([`start`](Server::start) serves the
    /// listener it is given.)
    #[must_use]
    pub fn with_host(mut self, host: IpAddr) -> Self {
        self.settings.host = host;
        self
    }

    /// The port [`serve`](Server::serve) listens on. Default 8080; 0 picks a free port.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.settings.port = port;
        self
    }

    /// Where room ids come from. Default [`RoomIdStrategy::Implicit`].
    #[must_use]
    pub fn with_room_id_strategy(mut self, strategy: RoomIdStrategy) -> Self {
        self.settings.room_id_strategy = strategy;
        self
    }

    /// What happens to an empty room. Default: closed after 60 s.
    #[must_use]
    pub fn with_shutdown_policy(mut self, policy: ShutdownPolicy) -> Self {
        self.settings.shutdown_policy = policy;
        self
    }

    /// How often the server pings each client. Default 5 s.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.settings.heartbeat_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long a client may stay silent (no frame, no pong) before it is dropped. Default 30 s.
    #[must_use]
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.settings.heartbeat_timeout = timeout;
        self
    }

    /// Serves the files in this folder at `/` (`index.html` for folders).
    #[must_use]
    pub fn with_static_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.static_path = Some(path.into());
        self
    }

    /// All limits at once; see [`Limits`] for each default.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// Largest message a client may send, in bytes; over it the client is closed with 1009.
    #[must_use]
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.settings.limits.max_message_bytes = bytes;
        self
    }

    /// Most clients in one room; more get HTTP 503.
    #[must_use]
    pub fn with_max_clients_per_room(mut self, clients: usize) -> Self {
        self.settings.limits.max_clients_per_room = clients;
        self
    }

    /// Most rooms on the server. When the table is full, the empty room that has waited
    /// longest in its grace period is closed to make space; if every room has clients, creating
    /// another gets HTTP 503.
    #[must_use]
    pub fn with_max_rooms(mut self, rooms: usize) -> Self {
        self.settings.limits.max_rooms = rooms;
        self
    }

    /// Most messages queued for one client; a client that stops reading is closed with 1008
    /// once its queue is full.
    #[must_use]
    pub fn with_outbound_queue_messages(mut self, messages: usize) -> Self {
        self.settings.limits.outbound_queue_messages = messages.max(1);
        self
    }

    /// Most messages per second one client may send (bursts of one second's worth allowed);
    /// over it the client is closed with 1008. Default: no limit.
    #[must_use]
    pub fn with_max_messages_per_sec(mut self, messages: u32) -> Self {
        self.settings.limits.max_messages_per_sec = Some(messages.max(1));
        self
    }

    /// How long a message may take to arrive once it has begun; see
    /// [`Limits::message_deadline`]. Default 10 s.
    #[must_use]
    pub fn with_message_deadline(mut self, deadline: Duration) -> Self {
        self.settings.limits.message_deadline = deadline.max(Duration::from_millis(1));
        self
    }

    /// Most bytes of partly received messages held over every connection; see
    /// [`Limits::max_pending_message_bytes`]. Default 256 MiB.
    #[must_use]
    pub fn with_max_pending_message_bytes(mut self, bytes: usize) -> Self {
        self.settings.limits.max_pending_message_bytes = bytes;
        self
    }

    /// Most WebSocket connections at once; more get HTTP 503. Default: derived from the
    /// open-file limit (see [`Limits::max_connections`]).
    #[must_use]
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.settings.limits.max_connections = Some(connections.max(1));
        self
    }

    /// Most WebSocket connections at once from one client address; more get HTTP 429. Default:
    /// no limit. Behind a reverse proxy, also set
    /// [`with_trusted_proxies`](Server::with_trusted_proxies).
    #[must_use]
    pub fn with_max_connections_per_ip(mut self, connections: usize) -> Self {
        self.settings.limits.max_connections_per_ip = Some(connections.max(1));
        self
    }

    /// Most rooms one client address may create per second (bursts of one second's worth);
    /// more get HTTP 429. Default: no limit.
    #[must_use]
    pub fn with_max_new_rooms_per_ip_per_sec(mut self, rooms: u32) -> Self {
        self.settings.limits.max_new_rooms_per_ip_per_sec = Some(rooms.max(1));
        self
    }

    /// Most frames per second one client may send, of any kind; see
    /// [`Limits::max_frames_per_sec`]. Default 1,000.
    #[must_use]
    pub fn with_max_frames_per_sec(mut self, frames: u32) -> Self {
        self.settings.limits.max_frames_per_sec = frames.max(1);
        self
    }

    /// Most bytes per second one client may send; see [`Limits::max_bytes_per_sec`].
    /// Default 64 MiB.
    #[must_use]
    pub fn with_max_bytes_per_sec(mut self, bytes: usize) -> Self {
        self.settings.limits.max_bytes_per_sec = bytes.max(1);
        self
    }

    /// Proxies (addresses or networks such as `10.0.0.0/8`) whose `X-Forwarded-For` header
    /// names the client: per-address limits then count the client's address, not the proxy's.
    /// Default: none (`X-Forwarded-For` is ignored).
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.settings.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// Origins whose pages may open a WebSocket (`https://app.example`; `http://localhost:*`
    /// for any port; `*` for all). A handshake from a browser page of another origin gets
    /// HTTP 403; requests without an `Origin` header (from no browser) are not affected.
    /// Default: every origin.
    #[must_use]
    pub fn with_allowed_origins(
        mut self,
        origins: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.settings.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Verifies the token each client presents before it joins (see [`JwtVerifier`]): from
    /// `?token=`, `Authorization: Bearer` or the subprotocol `jamsocket.token.<jwt>`. A client
    /// without a valid token gets 401 (403 for a token limited to another room) and nothing is
    /// created; the token's `sub` is the client's [`jamsocket::User`], which the service reads
    /// with `ctx.user(client)`. Default: no tokens.
    #[must_use]
    pub fn with_jwt(mut self, verifier: JwtVerifier) -> Self {
        self.settings.jwt = Some(verifier);
        self
    }

    /// Decides, before the WebSocket handshake is answered, whether a client may join a room:
    /// `hook` sees the room id, headers, query string, peer address and token (and the user a
    /// verified JWT names, when [`with_jwt`](Server::with_jwt) is set too), and returns the
    /// client's user (`Ok(None)`: anonymous) or a [`Denied`] status and reason, which the
    /// client gets as the HTTP answer. It runs after the server's own limits and before a room
    /// is created.
    ///
    /// ```no_run
    /// use jamsocket::User;
    /// use jamsocket_server::{AdmissionRequest, Denied, Server};
    /// # #[derive(Default)] struct Chat;
    /// # impl jamsocket::SimpleJamsocketService for Chat {
    /// #     fn new(_: &str, _: &impl jamsocket::JamsocketContext) -> Self { Chat }
    /// # }
    ///
    /// Server::new()
    ///     .with_admission(|request: AdmissionRequest| async move {
    ///         match request.headers.get("x-api-key").and_then(|key| key.to_str().ok()) {
    ///             Some("let-me-in") => Ok(Some(User::new("backend"))),
    ///             Some(_) => Err(Denied::forbidden("unknown API key")),
    ///             None => Err(Denied::unauthorized("send an X-Api-Key header")),
    ///         }
    ///     })
    ///     .serve_default::<Chat>()
    /// # .unwrap();
    /// ```
    #[must_use]
    pub fn with_admission<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(AdmissionRequest) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Option<jamsocket::User>, Denied>> + 'static,
    {
        self.settings.admission = Some(AdmissionHook(crate::auth::hook(hook)));
        self
    }

    /// How long a client that presented a resume key (`?resume=<key>`) may be away before its
    /// session ends (at most a day): a connection with the same key (and the same user) within the grace gets
    /// the same client id, the service sees neither `disconnect` nor `connect`, and the
    /// messages sent to the client meanwhile are delivered (up to its outbound queue). Zero
    /// turns sessions off. Default 30 s.
    #[must_use]
    pub fn with_reconnect_grace(mut self, grace: Duration) -> Self {
        self.settings.reconnect_grace = grace.min(MAX_RECONNECT_GRACE);
        self
    }

    /// Worker threads for connections and rooms. Default: one per CPU core.
    #[must_use]
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.settings.workers = Some(workers.max(1));
        self
    }

    /// How long a graceful shutdown (SIGINT, SIGTERM, [`RunningServer::stop`]) may take: every
    /// client is sent 1001 (1012 with a [store](Server::with_store), after every room was saved) at once, and the process exits when they have all gone or the grace
    /// period is over, whichever is first. Default 5 s; at least 1 s is used.
    #[must_use]
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.settings.shutdown_grace = grace;
        self
    }

    /// Saves rooms in `store` and brings them back from it: a room is saved at most once per
    /// [snapshot interval](Server::with_snapshot_interval) after it changed, when it empties
    /// past the [`ShutdownPolicy`] (it hibernates: it is saved and leaves memory, and the next
    /// client restores it), and at shutdown, which then closes clients with 1012 ("service
    /// restart") instead of 1001. The service must keep snapshots (see
    /// [`SimpleJamsocketService::snapshot`], or serve `jamsocket::Durable<S>` with the
    /// `serde` feature of `jamsocket`); WebAssembly rooms always do.
    ///
    /// ```no_run
    /// # use jamsocket::{JamsocketContext, SimpleJamsocketService};
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Counter(i32);
    /// # impl SimpleJamsocketService for Counter {
    /// #     fn new(_: &str, _: &impl JamsocketContext) -> Self { Counter(0) }
    /// # }
    /// use jamsocket_server::{Server, Snapshots, StoreConfig};
    ///
    /// let store = Snapshots::open("sqlite:rooms.db", StoreConfig::new()).expect("store");
    /// Server::new().with_store(store).serve_default::<jamsocket::Durable<Counter>>()
    /// # .unwrap();
    /// ```
    #[must_use]
    pub fn with_store(mut self, store: Snapshots) -> Self {
        self.settings.store = Some(store);
        self
    }

    /// How often, at most, a room that changed is saved (with a
    /// [store](Server::with_store)). `kill -9` loses at most this much. Default 1 s.
    #[must_use]
    pub fn with_snapshot_interval(mut self, interval: Duration) -> Self {
        self.settings.snapshot_interval = interval;
        self
    }

    /// Makes this server a node of `cluster` (see [`jamsocket_cluster`]): each room lives on
    /// one node, recorded in the cluster's Redis directory with a fencing token.
    ///
    /// - A client may connect to any node: a node that does not own the client's room forwards
    ///   the connection to the node that does, and a room without a live owner is taken by the
    ///   node that receives a client for it (restored from the [store](Server::with_store),
    ///   which should be shared by every node: the same Redis, say).
    /// - Snapshots carry the room's fencing token, and the store refuses those of a node that
    ///   lost the room.
    /// - A node that cannot renew its lease closes every room (1012) before its lease can
    ///   expire, so no room is ever live on two nodes.
    /// - Shutdown drains the node: `/status` answers 503, every room is saved and its clients
    ///   closed with 1012, and the node leaves the directory once the saves are written, so
    ///   that the clients' reconnections restore the rooms on other nodes.
    ///
    /// Behind a load balancer that hashes the room's path to a node (`deploy/haproxy.cfg`),
    /// most connections reach the owner directly. Forwarded connections carry
    /// `X-Forwarded-For`: list the nodes' addresses in
    /// [`with_trusted_proxies`](Server::with_trusted_proxies) if per-address limits are on.
    #[must_use]
    pub fn with_cluster(mut self, cluster: jamsocket_cluster::Cluster) -> Self {
        self.settings.cluster = Some(cluster);
        self
    }

    /// Collects Prometheus metrics (see [Metrics](crate#metrics) for the list), read with
    /// [`RunningServer::metrics`] or served by the admin listener. Off by default: a server
    /// without metrics does no counting at all.
    #[must_use]
    pub fn with_metrics(mut self) -> Self {
        self.settings
            .metrics
            .get_or_insert_with(|| Arc::new(Metrics::new()));
        self
    }

    /// Collects metrics like [`with_metrics`](Server::with_metrics), and `collector`'s with
    /// them at each scrape (a WebAssembly host's guest metrics, say). Build it with
    /// [`jamsocket_server::prometheus_client`](crate::prometheus_client), the version the
    /// server uses.
    #[must_use]
    pub fn with_metrics_collector(
        self,
        collector: Box<dyn prometheus_client::collector::Collector>,
    ) -> Self {
        let server = self.with_metrics();
        if let Some(metrics) = &server.settings.metrics {
            metrics.register_collector(collector);
        }
        server
    }

    /// Serves the admin listener on `addr`: `GET /metrics` (Prometheus), the admin page at
    /// `/`, and, when `token` is given, the room API for backends (`/rooms`, with
    /// `Authorization: Bearer <token>`). Turns metrics on.
    ///
    /// Keep `addr` private (the default of `jamsocket serve --admin-port` is 127.0.0.1): the
    /// metrics and the page need no token. Port 0 picks a free port; see
    /// [`RunningServer::admin_addr`].
    #[must_use]
    pub fn with_admin(mut self, addr: SocketAddr, token: Option<&str>) -> Self {
        self.settings.admin = Some(AdminSettings {
            addr,
            token: token.map(AdminToken::new),
        });
        self.with_metrics()
    }

    /// How long a client with a session may be away.
    pub fn reconnect_grace(&self) -> Duration {
        self.settings.reconnect_grace
    }

    /// How often, at most, a changed room is saved.
    pub fn snapshot_interval(&self) -> Duration {
        self.settings.snapshot_interval
    }

    /// Worker threads for connections and rooms, if set ([`Server::with_workers`]); `None`
    /// means one per CPU core.
    pub fn workers(&self) -> Option<usize> {
        self.settings.workers
    }

    /// The port [`serve`](Server::serve) listens on.
    pub fn port(&self) -> u16 {
        self.settings.port
    }

    /// How often the server pings each client.
    pub fn heartbeat_interval(&self) -> Duration {
        self.settings.heartbeat_interval
    }

    /// How long a client may stay silent before it is dropped.
    pub fn heartbeat_timeout(&self) -> Duration {
        self.settings.heartbeat_timeout
    }

    /// How long a graceful shutdown may take.
    pub fn shutdown_grace(&self) -> Duration {
        self.settings.shutdown_grace
    }

    /// The limits this server enforces.
    pub fn limits(&self) -> Limits {
        self.settings.limits
    }

    /// Serves a [`SimpleJamsocketService`] until SIGINT or SIGTERM; see [`serve`](Server::serve).
    pub fn serve_default<S: SimpleJamsocketService>(self) -> io::Result<()> {
        self.serve(SimpleJamsocketServiceFactory::<S>::default())
    }

    /// Listens on the configured port and serves rooms built by `factory` until SIGINT or
    /// SIGTERM, then closes every client with 1001 (1012 with a store) and returns `Ok`.
    ///
    /// Logs through `tracing`: install a subscriber first (say, `tracing_subscriber::fmt()`)
    /// to see the server's address and its rooms come and go.
    pub fn serve<F: JamsocketServiceFactory<RoomContext>>(self, factory: F) -> io::Result<()> {
        let (host, port) = (self.settings.host, self.settings.port);
        let listener = TcpListener::bind((host, port)).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot listen on {host} port {port}: {err}"),
            )
        })?;
        let running = self.start(listener, factory)?;
        tracing::info!("Jamsocket listening on http://{}", running.local_addr());
        running.stop_on_signal()
    }

    /// Starts serving on `listener` in background threads and returns at once.
    ///
    /// Tests bind `127.0.0.1:0` and read [`RunningServer::local_addr`]; programs that embed the
    /// server keep the handle and call [`RunningServer::stop`]. The listener's backlog is raised
    /// to [`LISTEN_BACKLOG`], and the process's open-file limit to its hard limit (each
    /// connection is a file).
    pub fn start<F: JamsocketServiceFactory<RoomContext>>(
        self,
        listener: TcpListener,
        factory: F,
    ) -> io::Result<RunningServer> {
        let addr = listener.local_addr()?;
        // `listen` again on a listening socket only changes its backlog (std uses 128).
        socket2::SockRef::from(&listener).listen(LISTEN_BACKLOG)?;
        if let Ok((_, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
            let _ = rlimit::increase_nofile_limit(hard);
        }
        let admin = match &self.settings.admin {
            Some(admin) => Some(TcpListener::bind(admin.addr).map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!(
                        "cannot listen for the admin listener on {}: {err}",
                        admin.addr
                    ),
                )
            })?),
            None => None,
        };
        let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;
        if let Some(metrics) = &self.settings.metrics {
            metrics.watch_store(self.settings.store.as_ref());
        }
        let settings = Arc::new(self.settings);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("jamsocket-server".to_string())
            .spawn(move || {
                actix_web::rt::System::new()
                    .block_on(run(listener, admin, factory, settings, stop_rx, started_tx))
            })?;
        match started_rx.recv() {
            Ok(Ok(rooms)) => Ok(RunningServer {
                addr,
                admin_addr,
                rooms,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(thread
                .join()
                .map_err(|_| io::Error::other("server thread panicked"))?
                .err()
                .unwrap_or_else(|| io::Error::other("server thread ended before starting"))),
        }
    }

    /// The server's routes with a fresh room registry, for `App::configure`. Lets the fuzzer
    /// (`fuzz/fuzz_targets/http_paths.rs`) call them in-process with `actix_web::test`, without
    /// a socket; rooms run on the current Actix system.
    #[doc(hidden)]
    pub fn routes<F: JamsocketServiceFactory<RoomContext>>(
        self,
        factory: F,
    ) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
        let settings = Arc::new(self.settings);
        configure(AppState {
            rooms: Rooms::new(factory, settings.clone(), crate::transport::current_worker),
            admission: Arc::new(Admission::new(&settings)),
            owners: Arc::default(),
            settings,
        })
    }
}

async fn run<F: JamsocketServiceFactory<RoomContext>>(
    listener: TcpListener,
    admin: Option<TcpListener>,
    factory: F,
    settings: Arc<Settings>,
    stop: oneshot::Receiver<()>,
    started: std::sync::mpsc::Sender<io::Result<Rooms>>,
) -> io::Result<()> {
    let rooms = Rooms::new(factory, settings.clone(), crate::transport::current_worker);
    let admission = Arc::new(Admission::new(&settings));
    tracing::debug!(
        max_connections = admission.max_connections(),
        "connection limit"
    );
    let state = AppState {
        rooms: rooms.clone(),
        settings: settings.clone(),
        admission: admission.clone(),
        owners: Arc::default(),
    };
    // Actix Web's `HttpServer`, plus an upgrade service: WebSocket handshakes go to
    // `websocket::upgrade`, which then owns the connection.
    let mut http = actix_web::dev::Server::build()
        .disable_signals()
        // The grace period is spent below, waiting for rooms to close; then connections still
        // flushing their close frames get one more second.
        .shutdown_timeout(CONNECTION_DRAIN.as_secs());
    let workers = settings.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // Connections still speaking HTTP belong to Actix until their handshake. Capping them at
    // half the files WebSockets leave keeps the process from running out: Actix then stops
    // accepting and connections wait in the backlog, instead of `accept` failing (and logging)
    // every 500 ms.
    let spare_files = open_file_limit().saturating_sub(admission.max_connections());
    http = http
        .workers(workers)
        .max_concurrent_connections((spare_files / 2 / workers).max(16));
    // Every WebSocket connection, so that shutdown can wait for their close frames.
    let connections = TaskTracker::new();
    let tracker = connections.clone();
    let http = http.listen("jamsocket", listener, move || {
        let app = || {
            let app = App::new().configure(configure(state.clone()));
            map_config(app, |_| AppConfig::default())
        };
        // The upgrade service answers upgrades to anything but a WebSocket with the routes.
        let (upgrade_state, tracker, routes) = (state.clone(), tracker.clone(), app());
        let upgrade = fn_factory(move || {
            let (state, tracker) = (upgrade_state.clone(), tracker.clone());
            let routes = routes.new_service(());
            async move {
                let routes = Rc::new(routes.await?);
                Ok::<_, ()>(fn_service(move |(request, framed)| {
                    let (state, tracker, routes) = (state.clone(), tracker.clone(), routes.clone());
                    crate::transport::upgrade(state, tracker, routes, request, framed)
                }))
            }
        });
        HttpService::build()
            // Frames go out at once instead of waiting for the peer's delayed ACK.
            .tcp_nodelay(true)
            // Actix lingers 100 ms for a client to close after an HTTP response that closes
            // the connection, as with WebSocket connections (see `Connection`).
            .client_disconnect_timeout(Duration::from_millis(100))
            .upgrade(upgrade)
            .finish(app())
            .tcp()
    });
    let http = match (http, admin) {
        (Ok(http), Some(admin)) => {
            let state = AdminState {
                rooms: rooms.clone(),
                settings: settings.clone(),
            };
            http.listen("jamsocket-admin", admin, move || {
                let app = App::new().configure(crate::admin::configure(state.clone()));
                HttpService::build()
                    .finish(map_config(app, |_| AppConfig::default()))
                    .tcp()
            })
        }
        (http, _) => http,
    };
    let http = match http {
        Ok(http) => http.run(),
        Err(err) => {
            let _ = started.send(Err(err));
            return Ok(());
        }
    };
    let handle = http.handle();
    let running = rooms.clone();
    if let Some(cluster) = settings.cluster.clone() {
        actix_web::rt::spawn(crate::cluster::watch(cluster, rooms.clone()));
    }
    actix_web::rt::spawn(async move {
        // Either an explicit stop or the handle being dropped ends the server.
        let _ = stop.await;
        admission.shut_down();
        let deadline =
            tokio::time::Instant::now() + settings.shutdown_grace.saturating_sub(CONNECTION_DRAIN);
        // With a store, rooms are saved and come back: clients should reconnect.
        let frame = match &settings.store {
            Some(_) => CloseFrame::new(code::SERVICE_RESTART, "service restart"),
            None => CloseFrame::new(code::AWAY, "server shutting down"),
        };
        tracing::info!(code = frame.code, "shutting down: closing every client");
        let mut handed_over = rooms.shut_down(frame, deadline).await;
        if let Some(store) = &settings.store {
            if tokio::time::timeout_at(deadline, store.flush())
                .await
                .is_err()
            {
                handed_over = false;
                tracing::error!(
                    pending = store.stats().pending,
                    "shutdown grace period over before the store wrote every room"
                );
            }
        }
        // Only now may other nodes take this node's rooms: they have ended and their saves
        // are written. Otherwise they move once the lease expires (and late saves are fenced).
        if let Some(cluster) = settings.cluster.as_ref().filter(|_| handed_over) {
            match tokio::time::timeout_at(deadline, cluster.leave()).await {
                Ok(Ok(())) => tracing::info!("left the cluster: other nodes may take its rooms"),
                Ok(Err(err)) => tracing::warn!(error = %err, "could not leave the cluster: its rooms move once its lease expires"),
                Err(_) => tracing::warn!("shutdown grace period over before leaving the cluster: its rooms move once its lease expires"),
            }
        }
        // Actix checks only once a second whether its connections are done: wait for ours here.
        connections.close();
        let _ = tokio::time::timeout_at(deadline, connections.wait()).await;
        handle.stop(true).await;
    });
    let _ = started.send(Ok(running));
    http.await
}

/// A server started with [`Server::start`].
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    rooms: Rooms,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many rooms are open.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The server's metrics in the OpenMetrics text format (what Prometheus scrapes), if it
    /// collects them ([`Server::with_metrics`]).
    pub fn metrics(&self) -> Option<String> {
        let metrics = self.rooms.settings().metrics.as_ref()?;
        Some(metrics.encode())
    }

    /// The address the admin listener listens on, if the server has one
    /// ([`Server::with_admin`]).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Closes every open room: its clients get a close frame with `code` and `reason`, and the
    /// room's state is dropped. The server keeps running; new connections create new rooms.
    ///
    /// `jamsocket dev` uses this with 1012 ("service restart") after loading a rebuilt module.
    /// Works from any async runtime.
    pub async fn close_rooms(&self, code: u16, reason: &str) {
        let frame = CloseFrame::new(code, reason.to_string());
        self.rooms.close_all(frame).await;
    }

    /// Closes the room `id` like [`close_rooms`](RunningServer::close_rooms) closes every
    /// room. `false` if there is no such room.
    pub async fn close_room(&self, id: &str, code: u16, reason: &str) -> bool {
        let frame = CloseFrame::new(code, reason.to_string());
        self.rooms.close(id, frame).await
    }

    /// Closes every client with 1001 ("going away"; 1012 with a store, after saving every room), stops the server and waits for it.
    pub fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join()
    }

    /// Blocks until SIGINT or SIGTERM, then stops like [`stop`](RunningServer::stop).
    pub fn stop_on_signal(self) -> io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(shutdown_signal())?;
        tracing::info!("received shutdown signal");
        self.stop()
    }

    fn join(&mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            let _ = self.join();
        }
    }
}

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
