//! HTTP refusals: the one place that decides which status each failure gets.

use crate::admission::Refusal;
use crate::auth::AuthRefusal;
use crate::cluster::ClusterRefusal;
use crate::error::RoomIdError;
use crate::rooms::RoomError;
use crate::transport::Rejection;
use actix_http::ws::HandshakeError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// An HTTP error with a plain-text body that says what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HttpError {
    pub status: StatusCode,
    pub message: String,
    pub content_type: &'static str,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
            content_type: "text/plain; charset=utf-8",
        }
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type(self.content_type)
            .body(format!("{}\n", self.message))
    }
}

impl From<Refusal> for HttpError {
    fn from(refusal: Refusal) -> Self {
        let status = match refusal {
            Refusal::ShuttingDown | Refusal::ServerFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Origin { .. } => StatusCode::FORBIDDEN,
            Refusal::TooManyConnections { .. } | Refusal::RoomCreationRate { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
        };
        HttpError::new(status, refusal.to_string())
    }
}

impl From<RoomError> for HttpError {
    fn from(err: RoomError) -> Self {
        let status = match &err {
            RoomError::NoSuchRoom { room } => {
                return HttpError::new(
                    StatusCode::NOT_FOUND,
                    format!("{err}: create it first (POST /ws/{room} or POST /new_room)"),
                )
            }
            RoomError::Closed { .. } => StatusCode::NOT_FOUND,
            RoomError::Exists { .. } | RoomError::TakenOver { .. } => StatusCode::CONFLICT,
            RoomError::NotYourSession { .. } => StatusCode::FORBIDDEN,
            RoomError::Failed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            RoomError::Full { .. }
            | RoomError::Unavailable { .. }
            | RoomError::TooManyRooms { .. }
            | RoomError::KeepsClosing { .. }
            | RoomError::NoUnusedId
            | RoomError::Moved { .. }
            | RoomError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        };
        HttpError::new(status, err.to_string())
    }
}

impl From<RoomIdError> for HttpError {
    fn from(err: RoomIdError) -> Self {
        HttpError::new(StatusCode::BAD_REQUEST, err.to_string())
    }
}

impl From<Rejection> for HttpError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::NoEndpoint { .. } => {
                HttpError::new(StatusCode::NOT_FOUND, rejection.to_string())
            }
            Rejection::NotHandshake(HandshakeError::GetMethodRequired) => {
                HttpError::new(StatusCode::METHOD_NOT_ALLOWED, rejection.to_string())
            }
            Rejection::NotHandshake(_) => {
                HttpError::new(StatusCode::BAD_REQUEST, rejection.to_string())
            }
            Rejection::RoomId(err) => err.into(),
            Rejection::Refused(refusal) => refusal.into(),
            Rejection::Room(err) => err.into(),
            Rejection::Auth(refusal) => refusal.into(),
            Rejection::Cluster(refusal) => refusal.into(),
            Rejection::ResumeKey(_) | Rejection::Seen { .. } => {
                HttpError::new(StatusCode::BAD_REQUEST, rejection.to_string())
            }
        }
    }
}

/// What `jamsocket_connections_refused_total` calls a refused handshake's reason: a short
/// name per kind of refusal (its status is counted beside it).
pub(crate) fn refusal_reason(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::NoEndpoint { .. } => "no_endpoint",
        Rejection::RoomId(_) => "bad_room_id",
        Rejection::NotHandshake(_) => "bad_handshake",
        Rejection::ResumeKey(_) => "bad_resume_key",
        Rejection::Seen { .. } => "bad_seen",
        Rejection::Refused(refusal) => match refusal {
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Origin { .. } => "origin",
            Refusal::ServerFull { .. } => "server_full",
            Refusal::TooManyConnections { .. } => "too_many_connections",
            Refusal::RoomCreationRate { .. } => "rate_limited",
        },
        Rejection::Auth(AuthRefusal::Token(_)) => "token",
        Rejection::Auth(AuthRefusal::Denied(_)) => "admission",
        Rejection::Room(err) => match err {
            RoomError::Full { .. } => "room_full",
            RoomError::TooManyRooms { .. } | RoomError::NoUnusedId => "too_many_rooms",
            RoomError::NoSuchRoom { .. } => "no_such_room",
            RoomError::Unavailable { .. } => "room_unavailable",
            RoomError::Failed { .. } => "room_failed",
            RoomError::Closed { .. } | RoomError::KeepsClosing { .. } => "room_closed",
            RoomError::Exists { .. } => "room_exists",
            RoomError::ShuttingDown => "shutting_down",
            RoomError::NotYourSession { .. } | RoomError::TakenOver { .. } => "session",
            RoomError::Moved { .. } => "cluster",
        },
        Rejection::Cluster(_) => "cluster",
    }
}

impl From<ClusterRefusal> for HttpError {
    fn from(refusal: ClusterRefusal) -> Self {
        let status = match refusal {
            ClusterRefusal::Loop { .. }
            | ClusterRefusal::EarlierLease { .. }
            | ClusterRefusal::Directory { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ClusterRefusal::OwnerUnreachable { .. } => StatusCode::BAD_GATEWAY,
            ClusterRefusal::OwnedElsewhere { .. } => StatusCode::CONFLICT,
            ClusterRefusal::LinkSecret => StatusCode::FORBIDDEN,
        };
        HttpError::new(status, refusal.to_string())
    }
}

impl From<AuthRefusal> for HttpError {
    fn from(refusal: AuthRefusal) -> Self {
        match refusal {
            AuthRefusal::Token(err) => HttpError::new(err.status(), err.to_string()),
            AuthRefusal::Denied(denied) => HttpError {
                status: denied.status,
                message: denied.body,
                content_type: denied.content_type,
            },
        }
    }
}
