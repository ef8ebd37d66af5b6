//! HTTP routes: status, room creation, static files. Each translates a request into a call on
//! [`Rooms`] or [`Admission`] and the answer back into HTTP. WebSocket handshakes never get
//! here: the upgrade service in [`crate::transport`] takes them.

use crate::admission::Admission;
use crate::auth;
use crate::cluster::{self, OwnerCache};
use crate::http_error::HttpError;
use crate::room_id::validate_room_id;
use crate::rooms::{Lease, RoomError, Rooms};
use crate::settings::Settings;
use crate::RoomIdStrategy;
use actix_web::http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, VARY,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use std::sync::Arc;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub rooms: Rooms,
    pub settings: Arc<Settings>,
    pub admission: Arc<Admission>,
    /// Where rooms of other nodes live, in a cluster.
    pub owners: Arc<OwnerCache>,
}

impl AppState {
    /// Whether a client may connect to `room_id` under the room-id strategy: the room exists,
    /// or connecting creates it. In a cluster the room may live on another node: the
    /// directory says (see [`cluster::place`]).
    pub(crate) fn check_room_exists(&self, room_id: &str) -> Result<(), RoomError> {
        if !self.settings.room_id_strategy.creates_on_connect()
            && !self.rooms.contains(room_id)
            && self.settings.cluster.is_none()
        {
            return Err(RoomError::NoSuchRoom {
                room: room_id.to_string(),
            });
        }
        Ok(())
    }
}

pub(crate) fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let static_path = state.settings.static_path.clone();
        config
            .app_data(web::Data::new(state))
            .route("/status", web::get().to(status))
            .route("/ws/{room_id}", web::get().to(websocket))
            .route("/ws/{room_id}", web::method(Method::OPTIONS).to(preflight))
            .route("/ws/{room_id}", web::post().to(create_room))
            .route("/new_room", web::post().to(new_room));
        if let Some(path) = static_path {
            config.service(crate::static_files::service(&path));
        }
    }
}

/// `ok`, or 503 once the server is shutting down or, in a cluster, while this node has no
/// lease (a load balancer's health check then stops sending it clients).
async fn status(state: web::Data<AppState>) -> Result<&'static str, HttpError> {
    state.admission.check_running()?;
    if let Some(cluster) = &state.settings.cluster {
        if !cluster.is_live() {
            return Err(HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "this node lost its lease in the cluster and serves no rooms until it is back",
            ));
        }
    }
    Ok("ok")
}

/// `GET /ws/{room_id}` without a WebSocket handshake: the refusal the handshake would get
/// (a browser's `WebSocket` cannot read it, so clients ask this way after a failed one), or
/// 426 if it would be accepted. Pages of allowed origins may read the answer (CORS).
async fn websocket(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let room_id = path.as_str();
    let checked = async {
        validate_room_id(room_id)?;
        state.check_room_exists(room_id)?;
        admit(&state, &request, room_id).await
    };
    let answer = checked.await.err().unwrap_or_else(|| {
        HttpError::new(
            StatusCode::UPGRADE_REQUIRED,
            "expected a WebSocket handshake (`Connection: Upgrade`, `Upgrade: websocket`)",
        )
    });
    let mut response = answer.error_response();
    if let Some(origin) = state.admission.allowed_origin(request.headers()) {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// `OPTIONS /ws/{room_id}`: the CORS preflight of a page that asks `GET /ws/{room_id}` with its
/// token in an `Authorization` header.
async fn preflight(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(origin) = state.admission.allowed_origin(request.headers()) else {
        return HttpError::new(
            StatusCode::FORBIDDEN,
            "no Origin header, or an origin that may not connect",
        )
        .error_response();
    };
    HttpResponse::NoContent()
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
        .insert_header((ACCESS_CONTROL_ALLOW_METHODS, "GET"))
        .insert_header((ACCESS_CONTROL_ALLOW_HEADERS, "authorization"))
        .insert_header((ACCESS_CONTROL_MAX_AGE, "600"))
        .insert_header((VARY, "Origin"))
        .finish()
}

/// `POST /ws/{room_id}`: creates a room under the `api` strategy.
async fn create_room(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    let room_id = path.as_str();
    validate_room_id(room_id)?;
    if state.settings.room_id_strategy != RoomIdStrategy::Explicit {
        return Err(HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "rooms are created with POST /ws/<room> only under the `api` room-id strategy",
        ));
    }
    check_creation(&state, &request, room_id).await?;
    let lease = cluster::claim_for_creation(state.settings.cluster.as_ref(), room_id).await?;
    state.rooms.create(room_id, lease).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "room_id": room_id })))
}

/// `POST /new_room`: creates a room with a generated id under the `uuid` / `short` strategies.
async fn new_room(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    if state.settings.room_id_strategy.generate().is_some() {
        // No room id yet: a token limited to one room cannot create another.
        check_creation(&state, &request, "").await?;
    }
    let cluster = state.settings.cluster.as_ref();
    let claim = async |room: &str| -> Result<Option<Lease>, HttpError> {
        Ok(cluster::claim_for_creation(cluster, room).await?)
    };
    match state.rooms.create_with_new_id(claim).await {
        Some(room_id) => {
            Ok(HttpResponse::Created().json(serde_json::json!({ "room_id": room_id? })))
        }
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "POST /new_room needs the `uuid` or `short` room-id strategy",
        )),
    }
}

/// Whether the client of `request` may create the room `room_id` now: a page of another
/// origin may not, nor a client the token check or admission hook refuses.
async fn check_creation(
    state: &AppState,
    request: &HttpRequest,
    room_id: &str,
) -> Result<(), HttpError> {
    state.admission.check_running()?;
    admit(state, request, room_id).await?;
    let ip = state
        .admission
        .client_ip(request.peer_addr(), request.headers());
    Ok(state.admission.create_room(ip)?)
}

/// Whether the client of `request` may reach `room_id`: its page's origin, its token and the
/// admission hook.
async fn admit(state: &AppState, request: &HttpRequest, room_id: &str) -> Result<(), HttpError> {
    let headers = request.headers();
    state.admission.check_origin(headers)?;
    let query = request.query_string();
    auth::admit(
        &state.settings,
        room_id,
        headers,
        query,
        request.peer_addr(),
    )
    .await?;
    Ok(())
}
