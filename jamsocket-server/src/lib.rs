//! Serve [Jamsocket](jamsocket) services to WebSocket clients.
//!
//! The server hosts one *room* per room id. A client connects with
//! `new WebSocket("ws://host:8080/ws/<room>")`; each room runs its own instance of your service,
//! in its own lightweight task (thousands of rooms cost thousands of tasks, not threads).
//!
//! ```no_run
//! use jamsocket::{ClientId, JamsocketContext, MessageRecipient, SimpleJamsocketService};
//!
//! struct SharedCounterServer(i32);
//!
//! impl SimpleJamsocketService for SharedCounterServer {
//!     fn new(_: &str, _: &impl JamsocketContext) -> Self {
//!         SharedCounterServer(0)
//!     }
//!
//!     fn message(&mut self, _: ClientId, message: &str, ctx: &impl JamsocketContext) {
//!         match message {
//!             "increment" => self.0 += 1,
//!             "decrement" => self.0 -= 1,
//!             _ => (),
//!         }
//!         ctx.send_message(MessageRecipient::Broadcast, &format!("new value: {}", self.0));
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     jamsocket_server::serve::<SharedCounterServer>()
//! }
//! ```
//!
//! # Routes
//! - `GET /status`: `ok`; 503 while the server shuts down (and, in a cluster, while the node has
//!   no lease), so that a load balancer stops sending it clients.
//! - `GET /ws/<room>`: the WebSocket of a room. Room ids are 1 to [`MAX_ROOM_ID_BYTES`]
//!   characters of [`ROOM_ID_CHARACTERS`]; others get 400. The same request without the upgrade
//!   headers gets the refusal the handshake would get, or 426 if it would be accepted (a
//!   browser's `WebSocket` cannot read a refusal; clients ask this way after a failed one).
//!   Pages of the [allowed origins](Server::with_allowed_origins) may read it from another
//!   origin (CORS, with an `OPTIONS` preflight for an `Authorization` header).
//! - `POST /ws/<room>`: creates a room under [`RoomIdStrategy::Explicit`] (201, or 409 if it
//!   exists).
//! - `POST /new_room`: creates a room with a generated id under [`RoomIdStrategy::Uuid`] and
//!   [`RoomIdStrategy::Short`]; answers `{"room_id": "..."}`.
//! - Everything else: files from [`Server::with_static_path`], if set.
//!
//! # Connections
//! Actix Web parses each HTTP request. A WebSocket handshake (any HTTP/1.1 upgrade request) is
//! handed over with its TCP stream to a task of its own, which reads and writes frames itself:
//! what a room sends is encoded straight into the socket, everything queued at that moment in
//! one write, and an idle connection holds no buffers. The task runs on the worker thread of
//! its room (the thread that created the room), so a message and its broadcast never wake
//! another thread; rooms spread over the workers. WebSocket handshakes for other paths get
//! 404, and invalid ones 400, each with a plain-text reason; other upgrade requests (`Upgrade:
//! h2c` from `curl --http2`) are answered as plain requests.
//!
//! # Refusals
//! A handshake that cannot be served gets an HTTP status with a plain-text reason, before any
//! WebSocket exists:
//!
//! | status | when |
//! |---|---|
//! | 400 | the room id is invalid, the request is not a valid WebSocket handshake, or its resume key is not 22 to 128 characters of `A-Z a-z 0-9 - _` |
//! | 401 | tokens are verified ([`Server::with_jwt`]) and the client presented none, or a bad or expired one; or the [admission hook](Server::with_admission) said so |
//! | 403 | the page's origin is not allowed, the token is for another room, the resume key belongs to another user's session, or the admission hook said so |
//! | 409 | another connection took over the session this one was waiting to resume |
//! | 403 | the page's `Origin` is not in [`Server::with_allowed_origins`] |
//! | 404 | no such room (under [`RoomIdStrategy::Explicit`]) or no WebSocket at that path |
//! | 429 | the client's address holds [`Limits::max_connections_per_ip`] connections, or creates rooms faster than [`Limits::max_new_rooms_per_ip_per_sec`] |
//! | 502 | (cluster) the node that owns the room did not answer the forwarded connection |
//! | 503 | the server holds [`Limits::max_connections`], the room is full, every room of a full table has clients, or the server is shutting down; (cluster) this node lost its lease, the directory is unreachable, or a forwarded request met a stale owner: try again |
//!
//! # Close codes
//! | code | when |
//! |---|---|
//! | 1000 | answer to a client's close frame (its own code is echoed) |
//! | 1001 | the server shuts down, the client missed heartbeats, or its empty room was closed to make space for another |
//! | 1002 | a protocol error (a control frame announcing more than 125 bytes, from its header alone) |
//! | 1007 | a text message was not valid UTF-8 |
//! | 1008 | the client stopped reading and its outbound queue filled up; sent more than [`Limits::max_messages_per_sec`], [`Limits::max_frames_per_sec`] or [`Limits::max_bytes_per_sec`]; or did not finish a message within [`Limits::message_deadline`] |
//! | 1009 | a message exceeded [`Limits::max_message_bytes`], or a frame header announced more: closed after the header, before the payload is read |
//! | 1011 | the room's service failed |
//! | 1012 | the server shuts down with a [store](Server::with_store): its rooms were saved, reconnect |
//! | 1013 | the server already holds [`Limits::max_pending_message_bytes`] of partly received messages ("try again later") |
//! | 4000 | another connection presented the client's resume key and took its session over |
//!
//! # Who is connecting
//! Before the handshake is answered (and before a room is created), [`Server::with_jwt`]
//! verifies the client's token and [`Server::with_admission`] runs your own check; either may
//! refuse with a status and a reason. The client's [`jamsocket::User`] (a token's `sub` and
//! claims, or what the hook returned) is what the service reads with `ctx.user(client)`.
//!
//! A client that presents a resume key (`?resume=<key>`) opens a *session*: if its connection
//! is lost, a connection with the same key (and the same user) within the
//! [reconnect grace](Server::with_reconnect_grace) gets the same client id, the service sees
//! neither `disconnect` nor `connect`, and the messages sent meanwhile are delivered. Clients
//! that offer the subprotocol `jamsocket.v1` (the TypeScript client in `clients/typescript`)
//! get numbered messages and acknowledgements, so that nothing is lost or repeated across a
//! reconnect. `PROTOCOL.md` in the repository describes both protocols. Durable rooms save
//! their sessions too, so clients resume across a restart.
//!
//! # Durable rooms
//! With [`Server::with_store`], rooms are saved to SQLite or Redis ([`Snapshots`]) and brought
//! back: after a restart, and after an empty room *hibernated* (saved and evicted when its
//! [`ShutdownPolicy`] ended it). The room's service must keep snapshots
//! ([`jamsocket::JamsocketService::snapshot`]); WebAssembly rooms always do. Saved with the
//! service's state: the next client id, the pending timer, and the connected clients: those
//! with a session may resume it within the reconnect grace after a restore, the others get
//! `disconnect`. A room whose saved state cannot be read (the store is down)
//! is refused with 503 rather than opened empty.
//!
//! # Clusters
//! With [`Server::with_cluster`], the server is one node of several sharing a Redis directory
//! ([`Cluster`]): each room lives on the node that owns it, any node forwards a client to its
//! room's owner, snapshots carry the room's fencing token, a node that loses its lease closes
//! its rooms before another node may take them, and shutdown drains the node (`/status` 503,
//! rooms saved, clients closed with 1012, then the node leaves the directory).
//!
//! # Metrics
//! [`Server::with_metrics`] turns on Prometheus metrics, which [`RunningServer::metrics`]
//! returns in the OpenMetrics text format (and the admin listener serves). Without it nothing
//! is counted. Labels never name a room, client, user or address.
//!
//! | metric | what |
//! |---|---|
//! | `jamsocket_rooms` | rooms open (gauge) |
//! | `jamsocket_rooms_created_total` | rooms opened, new or restored |
//! | `jamsocket_rooms_closed_total{reason}` | rooms that ended: `empty` (policy), `closed` (on request, or moved to another node), `shutdown`, `evicted` (room table full), `lease_lost` (cluster), `failed` |
//! | `jamsocket_rooms_hibernated_total` | durable rooms that ended idle with their snapshot saved |
//! | `jamsocket_clients` | WebSocket connections joined to a room (gauge) |
//! | `jamsocket_connections_total` | handshakes accepted |
//! | `jamsocket_connections_refused_total{reason,status}` | handshakes refused: `reason` such as `bad_room_id`, `origin`, `token`, `admission`, `room_full`, `too_many_rooms`, `rate_limited`, `shutting_down`, `cluster`; `status` the HTTP status |
//! | `jamsocket_messages_received_total{kind}`, `jamsocket_bytes_received_total` | messages (`text`, `binary`) from clients, and their payload bytes |
//! | `jamsocket_messages_sent_total{kind}`, `jamsocket_bytes_sent_total` | messages queued for clients, once per recipient, and their payload bytes |
//! | `jamsocket_close_codes_sent_total{code}` | close frames sent, by code (see above; `other` for a client's own code echoed) |
//! | `jamsocket_outbound_queue_drops_total`, `jamsocket_heartbeat_timeouts_total` | clients closed for not reading, or for silence |
//! | `jamsocket_snapshot_writes_total`, `_write_failures_total`, `_fenced_out_total` | with a store: snapshots written, failed, refused to a node that lost the room |
//! | `jamsocket_snapshot_write_seconds`, `jamsocket_snapshot_load_seconds` | with a store: histograms of batch writes and room loads |
//! | `jamsocket_forwarded_connections_total`, `jamsocket_forward_failures_total` | in a cluster: connections forwarded to their room's owner, and those that could not be |
//!
//! [`Server::with_metrics_collector`] adds metrics of your own (or a WebAssembly host's),
//! built with the re-exported [`prometheus_client`].
//!
//! # The admin listener
//! [`Server::with_admin`] serves, on an address of its own (keep it private), `GET /metrics`,
//! an admin page at `/` (live rooms, their clients and message rates), and with a token the room
//! API for backends: `GET /rooms` (pages of rooms in id order, by prefix), `GET /rooms/<id>`
//! (one room with its clients), `POST /rooms/<id>/messages` (the body goes to the service's
//! [`request`](jamsocket::JamsocketService::request) handler, whose status and body are the
//! answer) and `DELETE /rooms/<id>?code=&reason=&forget=true`. The room API answers JSON, and
//! `{"error": "..."}` with 400, 401 (no or wrong token: `Authorization: Bearer <token>`), 403
//! (no token configured), 404, 409 or 504 when it refuses.
//!
//! # Memory
//! What a client can make the server hold is bounded: one frame of the largest message size
//! being read (and all such partly received messages together by
//! [`Limits::max_pending_message_bytes`]), its outbound queue, and its connection, for at most
//! [`Limits::max_connections`] connections. Binaries that serve the open internet should enable the `jemalloc` feature,
//! which returns freed memory to the system within a second (glibc's allocator keeps much of a
//! burst, so a server's size after an attack stays near its peak).

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod admin;
mod admission;
#[cfg(test)]
mod allocation_tests;
#[cfg(all(feature = "jemalloc", not(test)))]
mod allocator;
mod auth;
mod close_frame;
mod cluster;
mod error;
mod http_error;
mod limits;
mod log_throttle;
mod metrics;
mod rate_limit;
mod room_id;
mod rooms;
mod routes;
mod server;
mod settings;
mod shutdown_policy;
mod static_files;
mod sync;
mod transport;

/// The HTTP types of an [`AdmissionRequest`] and a [`Denied`] answer.
pub use actix_web::http::{header::HeaderMap, StatusCode};
pub use auth::{AdmissionRequest, Denied, JwtKeyError, JwtVerifier, TOKEN_PROTOCOL_PREFIX};
pub use error::{RoomIdError, SettingError};
pub use jamsocket_cluster::{Cluster, ClusterConfig, ClusterError};
pub use jamsocket_store::{Snapshots, StoreConfig, StoreError};
pub use limits::Limits;
/// The metrics library of [`Server::with_metrics_collector`], re-exported so that collectors
/// are built with the same version.
pub use prometheus_client;
pub use room_id::{
    is_room_id_char, validate_room_id, RoomIdStrategy, MAX_ROOM_ID_BYTES, ROOM_ID_CHARACTERS,
};
pub use rooms::RoomContext;
pub use server::{shutdown_signal, RunningServer, Server, LISTEN_BACKLOG};
pub use shutdown_policy::ShutdownPolicy;

/// Serves `S` on port 8080 with default settings until SIGINT or SIGTERM.
pub fn serve<S: jamsocket::SimpleJamsocketService>() -> std::io::Result<()> {
    Server::new().serve_default::<S>()
}
