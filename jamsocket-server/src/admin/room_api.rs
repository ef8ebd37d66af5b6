//! The room API: what a backend may read and change in rooms, without a WebSocket. Every answer
//! is JSON; a refusal is `{"error": "..."}` with its status.

use super::AdminState;
use crate::close_frame::{code, CloseFrame};
use crate::room_id::validate_room_id;
use crate::rooms::RoomError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Rooms per page when the request names no `limit`, and the most it may name.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// How long a room may take to describe itself or answer a request (a busy room's queue holds
/// up the answer) before the API gives up with 504.
const ROOM_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest close reason a close frame carries (125 bytes less the code).
const MAX_CLOSE_REASON: usize = 123;

/// The room API's routes; a body may be as large as a client's message (`max_message_bytes`).
pub(super) fn configure(config: &mut web::ServiceConfig, max_body: usize) {
    config
        .app_data(web::PayloadConfig::new(max_body))
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("bad query string: {err}")).into()
        }))
        .route("/rooms", web::get().to(list))
        .route("/rooms/{room_id}", web::get().to(get))
        .route("/rooms/{room_id}", web::delete().to(delete))
        .route("/rooms/{room_id}/messages", web::post().to(post_message));
}

/// A refusal: its status and a message naming what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(json!({ "error": self.message }))
    }
}

impl From<RoomError> for ApiError {
    fn from(err: RoomError) -> ApiError {
        let status = match err {
            RoomError::NoSuchRoom { .. } => StatusCode::NOT_FOUND,
            // It closed while the request was on its way.
            RoomError::Closed { .. } => StatusCode::CONFLICT,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, err.to_string())
    }
}

/// Lets the request through if it carries the admin token.
fn authorize(state: &AdminState, request: &HttpRequest) -> Result<(), ApiError> {
    let Some(token) = state.settings.admin.as_ref().and_then(|a| a.token.as_ref()) else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the room API is off: start the server with an admin token (--admin-token)",
        ));
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the room API needs `Authorization: Bearer <admin token>`",
        )),
        Some(presented) if token.matches(presented.trim()) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong admin token")),
    }
}

/// The room id in the path, checked like a WebSocket's.
fn room_id(request: &HttpRequest) -> Result<String, ApiError> {
    let id = request.match_info().query("room_id").to_string();
    validate_room_id(&id).map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, err.to_string()))?;
    Ok(id)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// `live` (the default) or `hibernated`.
    state: Option<String>,
    #[serde(default)]
    prefix: String,
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /rooms`: a page of open rooms, or with `state=hibernated` of rooms saved in the store
/// and not open on this server.
async fn list(
    state: web::Data<AdminState>,
    request: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &request)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit={limit} is out of range: 1 to {MAX_PAGE}"),
        ));
    }
    match query.state.as_deref().unwrap_or("live") {
        "live" => {}
        "hibernated" => return list_hibernated(&state, &query, limit).await,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("state={other} is not a room state: use live or hibernated"),
            ))
        }
    }
    let page = state
        .rooms
        .page(&query.prefix, query.after.as_deref(), limit);
    let (rooms, next) = tokio::time::timeout(ROOM_ANSWER_TIMEOUT, page)
        .await
        .map_err(|_| timed_out("the rooms"))?;
    Ok(HttpResponse::Ok().json(json!({ "rooms": rooms, "next": next })))
}

/// A page of rooms saved in the store and not open here. The store's pages include open rooms,
/// so it is asked page after page until `limit + 1` remain (one more tells that there is a next
/// page) or it has no more.
async fn list_hibernated(
    state: &AdminState,
    query: &ListQuery,
    limit: usize,
) -> Result<HttpResponse, ApiError> {
    let Some(store) = &state.settings.store else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "state=hibernated lists the rooms in the store, and this server has no store",
        ));
    };
    let mut ids = Vec::new();
    let mut after = query.after.clone();
    loop {
        let page = store.rooms(&query.prefix, after.as_deref(), limit + 1);
        let page = page.await.map_err(|err| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot list the rooms in the store: {err}"),
            )
        })?;
        let last_page = page.len() <= limit;
        after = page.last().cloned();
        ids.extend(page.into_iter().filter(|id| !state.rooms.contains(id)));
        if last_page || ids.len() > limit {
            break;
        }
    }
    let next = (ids.len() > limit).then(|| ids[limit - 1].clone());
    ids.truncate(limit);
    let rooms: Vec<_> = (ids.iter())
        .map(|id| json!({ "id": id, "state": "hibernated" }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "rooms": rooms, "next": next })))
}

/// `GET /rooms/<id>`: one room with its clients; a room only in the store is `hibernated`.
async fn get(state: web::Data<AdminState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    authorize(&state, &request)?;
    let id = room_id(&request)?;
    let inspect = state.rooms.inspect(&id);
    if let Some(info) = tokio::time::timeout(ROOM_ANSWER_TIMEOUT, inspect)
        .await
        .map_err(|_| timed_out(&format!("room `{id}`")))?
    {
        return Ok(HttpResponse::Ok().json(info));
    }
    if let Some(store) = &state.settings.store {
        let saved = store.load(&id).await.map_err(|err| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read room `{id}` from the store: {err}"),
            )
        })?;
        if let Some(snapshot) = saved {
            return Ok(HttpResponse::Ok().json(json!({
                "id": id,
                "state": "hibernated",
                "snapshot_bytes": snapshot.len(),
            })));
        }
    }
    Err(no_room(&id))
}

/// `POST /rooms/<id>/messages`: the body goes to the room's service (its `request` handler),
/// whose status and body are the answer: text when the body is UTF-8, else bytes. A room that
/// is only in the store is opened (restored) first, so a backend can change a hibernated room.
async fn post_message(
    state: web::Data<AdminState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &request)?;
    let id = room_id(&request)?;
    if !state.rooms.contains(&id) {
        wake(&state, &id).await?;
    }
    let answer = tokio::time::timeout(ROOM_ANSWER_TIMEOUT, state.rooms.request(&id, body))
        .await
        .map_err(|_| timed_out(&format!("room `{id}`")))?;
    let response = answer.map_err(|err| match err {
        RoomError::NoSuchRoom { .. } => no_room(&id),
        err => err.into(),
    })?;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = match std::str::from_utf8(&response.body) {
        Ok(_) => "text/plain; charset=utf-8",
        Err(_) => "application/octet-stream",
    };
    Ok(HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .body(response.body))
}

/// Opens the room `id` from its snapshot, if the store has one. Not in a cluster: there the
/// room's owner is another node's to decide, and a room not open here is a 404.
async fn wake(state: &AdminState, id: &str) -> Result<(), ApiError> {
    let Some(store) = state.settings.store.as_ref() else {
        return Ok(());
    };
    if state.settings.cluster.is_some() {
        return Ok(());
    }
    let saved = store.load(id).await.map_err(|err| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read room `{id}` from the store: {err}"),
        )
    })?;
    if saved.is_none() {
        return Ok(());
    }
    let create = tokio::time::timeout(ROOM_ANSWER_TIMEOUT, state.rooms.create(id, None));
    match create
        .await
        .map_err(|_| timed_out(&format!("room `{id}`")))?
    {
        // Opened meanwhile by a client: as good.
        Ok(()) | Err(RoomError::Exists { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Deserialize)]
struct DeleteQuery {
    code: Option<u16>,
    reason: Option<String>,
    #[serde(default)]
    forget: bool,
}

/// `DELETE /rooms/<id>`: closes the room's clients with `code` and `reason` and ends the room;
/// with `forget=true`, deletes its snapshot from the store too (after the room's last save).
async fn delete(
    state: web::Data<AdminState>,
    request: HttpRequest,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &request)?;
    let id = room_id(&request)?;
    let close_code = query.code.unwrap_or(code::NORMAL);
    if !closes_with(close_code) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "code={close_code} cannot close a room: use 1000, 1001, 1008, 1011, 1012, 1013 or 4000-4999"
            ),
        ));
    }
    let reason = query
        .reason
        .clone()
        .unwrap_or_else(|| "room closed by the server".into());
    if reason.len() > MAX_CLOSE_REASON {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "a reason of {} bytes does not fit in a close frame (at most {MAX_CLOSE_REASON})",
                reason.len()
            ),
        ));
    }
    let store = match (&state.settings.store, query.forget) {
        (None, true) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "forget=true needs a store, and this server has none",
            ))
        }
        (store, forget) => store.as_ref().filter(|_| forget),
    };
    // Returns once the room has ended, and so after its last save was queued.
    let frame = CloseFrame::new(close_code, reason);
    let deadline = tokio::time::Instant::now() + ROOM_ANSWER_TIMEOUT;
    let closed = state.rooms.close_and_wait(&id, frame, deadline).await;
    if let Some(store) = store {
        store.delete(&id);
        store.flush().await;
    } else if !closed {
        return Err(no_room(&id));
    }
    tracing::info!(room = %id, code = close_code, forgot = store.is_some(), "room closed through the room API");
    Ok(HttpResponse::Ok().json(json!({ "closed": closed, "forgot": store.is_some() })))
}

/// Whether the room API may close clients with `code`: the codes a server sends, and the
/// application's range.
fn closes_with(code: u16) -> bool {
    matches!(code, 1000 | 1001 | 1008 | 1011 | 1012 | 1013 | 4000..=4999)
}

fn no_room(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no room `{id}` is open on this server"),
    )
}

fn timed_out(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        format!("{what} did not answer within {ROOM_ANSWER_TIMEOUT:?}"),
    )
}
