//! The admin listener: `/metrics`, the room API and the admin page, on an address of their own
//! (by default 127.0.0.1 only), so none of it is ever on the public port by accident.
//!
//! | route | token | answer |
//! |---|---|---|
//! | `GET /` | no | the admin page (it asks for the token, or reads it from `#token=...`) |
//! | `GET /metrics` | no | Prometheus metrics (OpenMetrics text) |
//! | `GET /rooms?state=&prefix=&after=&limit=` | yes | a page of open rooms (`state=live`, the default) or of rooms only in the store (`state=hibernated`), in id order, and the id of the next page |
//! | `GET /rooms/<id>` | yes | one room and its clients, or `hibernated` for a room only in the store |
//! | `POST /rooms/<id>/messages` | yes | the body goes to the service's `request` handler (a room only in the store is restored first, except in a cluster); its status and body come back |
//! | `DELETE /rooms/<id>?code=&reason=&forget=` | yes | closes the room's clients and ends it (`forget=true`: deletes its snapshot too) |
//!
//! The room API needs `Authorization: Bearer <token>`, compared in constant time.

mod room_api;

use crate::rooms::Rooms;
use crate::settings::Settings;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where the admin listener listens and the token its room API asks for.
#[derive(Debug, Clone)]
pub(crate) struct AdminSettings {
    pub addr: SocketAddr,
    /// `None` turns the room API off (it answers 403); metrics and the page stay on.
    pub token: Option<AdminToken>,
}

/// The room API's bearer token. Kept as its SHA-256 digest, so comparing takes the same time
/// whatever the length and content of a guess; never shown in `Debug` output or logs.
#[derive(Clone)]
pub(crate) struct AdminToken([u8; 32]);

impl AdminToken {
    pub(crate) fn new(token: &str) -> AdminToken {
        AdminToken(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token, in constant time.
    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&digest).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// What the admin routes share.
#[derive(Debug, Clone)]
pub(crate) struct AdminState {
    pub rooms: Rooms,
    pub settings: Arc<Settings>,
}

/// The admin listener's routes, for `App::configure`.
pub(crate) fn configure(state: AdminState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let max_body = state.settings.limits.max_message_bytes;
        config
            .app_data(web::Data::new(state))
            .route("/", web::get().to(page))
            .route("/metrics", web::get().to(metrics));
        room_api::configure(config, max_body);
    }
}

/// The admin page: one file, no build step.
async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        // The page talks to this listener only; nothing else may frame it or run in it.
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ))
        .body(include_str!("page.html"))
}

/// Every metric, in the OpenMetrics text format Prometheus scrapes.
async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    match &state.settings.metrics {
        Some(metrics) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(metrics.encode()),
        None => HttpResponse::NotFound().body("metrics are off\n"),
    }
}
