//! HTTP routes: status, WebSocket upgrade, room creation, static files.

use crate::admission::Admission;
use crate::log_throttle::warn_throttled;
use crate::registry::{CreateError, RoomHandle, RoomRegistry};
use crate::room_actor::run_room;
use crate::room_context::{Outbound, RoomContext};
use crate::room_event::{JoinError, RoomEvent};
use crate::room_id::validate_room_id;
use crate::settings::Settings;
use actix_http::ws::CloseReason;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use jamsocket::{ClientId, JamsocketServiceFactory};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What every request handler shares.
pub(crate) struct AppState<F> {
    pub factory: Arc<F>,
    pub registry: Arc<RoomRegistry>,
    pub settings: Arc<Settings>,
    pub admission: Arc<Admission>,
}

impl<F> Clone for AppState<F> {
    fn clone(&self) -> Self {
        AppState {
            factory: self.factory.clone(),
            registry: self.registry.clone(),
            settings: self.settings.clone(),
            admission: self.admission.clone(),
        }
    }
}

/// An HTTP error with a plain-text body that says what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
        }
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}\n", self.message))
    }
}

impl From<JoinError> for HttpError {
    fn from(err: JoinError) -> Self {
        let status = match err {
            JoinError::Full { .. } | JoinError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            JoinError::Failed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            JoinError::Closed { .. } => StatusCode::NOT_FOUND,
        };
        HttpError::new(status, err.to_string())
    }
}

pub(crate) fn configure<F: JamsocketServiceFactory<RoomContext>>(
    state: AppState<F>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let static_path = state.settings.static_path.clone();
        config
            .app_data(web::Data::new(state))
            .route("/status", web::get().to(status))
            .route("/ws/{room_id}", web::get().to(websocket::<F>))
            .route("/ws/{room_id}", web::post().to(create_room::<F>))
            .route("/new_room", web::post().to(new_room::<F>));
        if let Some(path) = static_path {
            config.service(crate::static_files::service(&path));
        }
    }
}

async fn status() -> &'static str {
    "ok"
}

pub(crate) fn checked_room_id(room_id: &str) -> Result<&str, HttpError> {
    validate_room_id(room_id)
        .map_err(|err| HttpError::new(StatusCode::BAD_REQUEST, err.to_string()))?;
    Ok(room_id)
}

fn start_room<F: JamsocketServiceFactory<RoomContext>>(
    state: &AppState<F>,
) -> impl FnOnce(crate::registry::NewRoom) + '_ {
    move |new_room| {
        let (id, generation) = (new_room.id.clone(), new_room.generation);
        let room = actix_web::rt::spawn(run_room(
            state.factory.clone(),
            new_room,
            state.registry.clone(),
            state.settings.clone(),
        ));
        let registry = state.registry.clone();
        actix_web::rt::spawn(async move {
            if room.await.is_err() {
                tracing::error!(room = %id, "room panicked; its clients were disconnected");
                registry.remove(&id, generation);
            }
        });
    }
}

fn no_such_room(room_id: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        format!("no room `{room_id}`: create it first (POST /ws/{room_id} or POST /new_room)"),
    )
}

fn too_many_rooms(max: usize) -> HttpError {
    warn_throttled!(max, "room limit reached: refused to create a room");
    HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the server already hosts its limit of {max} rooms"),
    )
}

/// `GET /ws/{room_id}` without a WebSocket handshake. Handshakes never get here: the upgrade
/// service in [`crate::websocket`] takes them.
async fn websocket<F: JamsocketServiceFactory<RoomContext>>(
    path: web::Path<String>,
    state: web::Data<AppState<F>>,
) -> Result<HttpResponse, HttpError> {
    let room_id = checked_room_id(path.as_str())?;
    admit(&state, room_id)?;
    Err(HttpError::new(
        StatusCode::BAD_REQUEST,
        "expected a WebSocket handshake (`Connection: Upgrade`, `Upgrade: websocket`)",
    ))
}

/// Whether a client may connect to `room_id` under the room-id strategy.
pub(crate) fn admit<F>(state: &AppState<F>, room_id: &str) -> Result<(), HttpError> {
    if !state.settings.room_id_strategy.creates_on_connect()
        && state.registry.get(room_id).is_none()
    {
        return Err(no_such_room(room_id));
    }
    Ok(())
}

/// A client that a room took in.
pub(crate) struct Joined {
    pub room: RoomHandle,
    pub client: ClientId,
    pub outbound: mpsc::Receiver<Outbound>,
    pub close: oneshot::Receiver<CloseReason>,
}

/// Joins the room, creating it if the strategy allows (for a client at `ip`, whose room
/// creations may be rate-limited). Retries if the room closed while the request was on its way
/// (a room that just emptied under the `immediate` policy).
pub(crate) async fn join<F: JamsocketServiceFactory<RoomContext>>(
    state: &AppState<F>,
    room_id: &str,
    ip: Option<IpAddr>,
) -> Result<Joined, HttpError> {
    for _ in 0..3 {
        let room = if state.settings.room_id_strategy.creates_on_connect() {
            if state.registry.get(room_id).is_none() {
                state.admission.create_room(ip)?;
            }
            state
                .registry
                .get_or_create(room_id, start_room(state))
                .map_err(|err| match err {
                    CreateError::TooManyRooms(max) => too_many_rooms(max),
                    CreateError::Exists => unreachable!("get_or_create never reports Exists"),
                })?
        } else {
            state
                .registry
                .claim(room_id)
                .ok_or_else(|| no_such_room(room_id))?
        };
        let (outbound_tx, outbound) = mpsc::channel(state.settings.limits.outbound_queue_messages);
        let (close_tx, close) = oneshot::channel();
        let (reply_tx, reply) = oneshot::channel();
        let join = RoomEvent::Join {
            outbound: outbound_tx,
            close: close_tx,
            reply: reply_tx,
        };
        if room.events.send(join).await.is_err() {
            // The room ended without deregistering (it panicked).
            state.registry.remove(room_id, room.generation);
            continue;
        }
        match reply.await {
            Ok(Ok(client)) => {
                return Ok(Joined {
                    room,
                    client,
                    outbound,
                    close,
                })
            }
            Ok(Err(JoinError::Closed { .. })) => continue,
            Ok(Err(err)) => return Err(err.into()),
            Err(_) => {
                state.registry.remove(room_id, room.generation);
                continue;
            }
        }
    }
    Err(HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("room `{room_id}` keeps closing; try again"),
    ))
}

/// `POST /ws/{room_id}`: creates a room under the `api` strategy.
async fn create_room<F: JamsocketServiceFactory<RoomContext>>(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState<F>>,
) -> Result<HttpResponse, HttpError> {
    let room_id = checked_room_id(path.as_str())?;
    if state.settings.room_id_strategy != crate::RoomIdStrategy::Explicit {
        return Err(HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "rooms are created with POST /ws/<room> only under the `api` room-id strategy",
        ));
    }
    check_creation(&state, &request)?;
    let room = match state.registry.create(room_id, start_room(&state)) {
        Ok(room) => room,
        Err(CreateError::Exists) => {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!("room `{room_id}` already exists"),
            ))
        }
        Err(CreateError::TooManyRooms(max)) => return Err(too_many_rooms(max)),
    };
    wait_ready(&room, room_id).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "room_id": room_id })))
}

/// Whether the client of `request` may create a room now (a page of another origin may not).
fn check_creation<F>(state: &AppState<F>, request: &HttpRequest) -> Result<(), HttpError> {
    state.admission.check_running()?;
    state.admission.check_origin(request.headers())?;
    let ip = state
        .admission
        .client_ip(request.peer_addr(), request.headers());
    state.admission.create_room(ip)
}

/// `POST /new_room`: creates a room with a generated id under the `uuid` / `short` strategies.
async fn new_room<F: JamsocketServiceFactory<RoomContext>>(
    request: HttpRequest,
    state: web::Data<AppState<F>>,
) -> Result<HttpResponse, HttpError> {
    let strategy = state.settings.room_id_strategy;
    if strategy.generate().is_some() {
        check_creation(&state, &request)?;
    }
    for _ in 0..16 {
        let Some(room_id) = strategy.generate() else {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "POST /new_room needs the `uuid` or `short` room-id strategy",
            ));
        };
        match state.registry.create(&room_id, start_room(&state)) {
            Ok(room) => {
                wait_ready(&room, &room_id).await?;
                return Ok(HttpResponse::Created().json(serde_json::json!({ "room_id": room_id })));
            }
            Err(CreateError::Exists) => continue,
            Err(CreateError::TooManyRooms(max)) => return Err(too_many_rooms(max)),
        }
    }
    Err(HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "could not find an unused room id; use a longer `short` id",
    ))
}

async fn wait_ready(room: &RoomHandle, room_id: &str) -> Result<(), HttpError> {
    let (reply_tx, reply) = oneshot::channel();
    let closed = || JoinError::Closed {
        room: room_id.to_string(),
    };
    if room
        .events
        .send(RoomEvent::Ready { reply: reply_tx })
        .await
        .is_err()
    {
        return Err(closed().into());
    }
    reply.await.unwrap_or_else(|_| Err(closed()))?;
    Ok(())
}
