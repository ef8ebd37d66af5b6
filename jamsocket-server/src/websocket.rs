//! The WebSocket endpoint, `GET /ws/<room>`.
//!
//! Actix hands every HTTP/1.1 upgrade request here, with its connection. After the handshake
//! the [`Connection`] task owns the TCP stream: frames go between the socket and the room with
//! no HTTP machinery, and no HTTP buffers, in between.

use crate::connection::{Connection, RateLimit};
use crate::registry::Worker;
use crate::room_context::{lock, RoomContext};
use crate::routes::{admit, checked_room_id, join, AppState, HttpError, Joined};
use actix_codec::Framed;
use actix_http::body::BodySize;
use actix_http::header::{HeaderValue, CONTENT_TYPE};
use actix_http::ws::{verify_handshake, HandshakeError};
use actix_http::{h1, ConnectionType, Request, Response, StatusCode};
use actix_web::rt::net::TcpStream;
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use jamsocket::JamsocketServiceFactory;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Serves one upgrade request: refuses it with an HTTP error, or completes the handshake and
/// runs the connection until it ends.
pub(crate) fn upgrade<F: JamsocketServiceFactory<RoomContext>>(
    state: AppState<F>,
    request: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> impl Future<Output = Result<(), Infallible>> {
    // The returned future lives as long as the connection, so it holds the handshake's state
    // only through a box, freed once the handshake is done.
    let handshake = Box::pin(handshake(state.clone(), request, framed));
    async move {
        let Some((stream, early, room_id, joined)) = handshake.await else {
            return Ok(());
        };
        let Joined {
            room,
            client,
            outbound,
            close,
        } = joined;
        let connection = Connection {
            room_id,
            room,
            client,
            outbound,
            close,
            settings: state.settings.clone(),
            rate: state
                .settings
                .limits
                .max_messages_per_sec
                .map(RateLimit::new),
        };
        // A connection accepted by another worker than its room's moves there: then a message
        // and its broadcast wake no other thread.
        match connection.room.worker.clone() {
            Some(worker) if worker.thread != std::thread::current().id() => {
                run_on(worker, connection, stream, early).await
            }
            // Boxed too: Actix keeps a connection's task as big as its largest state.
            _ => Box::pin(connection.run(stream, early)).await,
        }
        Ok(())
    }
}

/// Runs `connection` on `worker`, or here if that worker has stopped; returns when it ends.
async fn run_on(worker: Worker, connection: Connection, stream: TcpStream, early: BytesMut) {
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(err) => return connection.leave(format!("connection dropped: {err}")).await,
    };
    let moving = Arc::new(Mutex::new(Some((connection, stream, early))));
    let (done_tx, done) = oneshot::channel::<()>();
    let there = moving.clone();
    worker.arbiter.spawn_fn(move || {
        if let Some((connection, stream, early)) = lock(&there).take() {
            actix_web::rt::spawn(async move {
                connection.run_std(stream, early).await;
                let _ = done_tx.send(());
            });
        }
    });
    // Returns at once if the worker dropped the closure without running it.
    let _ = done.await;
    let stayed = lock(&moving).take();
    if let Some((connection, stream, early)) = stayed {
        connection.run_std(stream, early).await;
    }
}
/// Answers the handshake. Returns the socket, what the client sent after its request, and the
/// room it joined; `None` if the request was refused.
async fn handshake<F: JamsocketServiceFactory<RoomContext>>(
    state: AppState<F>,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Option<(TcpStream, BytesMut, Arc<str>, Joined)> {
    let (room_id, joined) = match accept(&state, &request).await {
        Ok(accepted) => accepted,
        Err(err) => {
            refuse(&mut framed, err).await;
            return None;
        }
    };
    let response = actix_http::ws::handshake_response(request.head()).finish();
    // If this fails the connection finds the socket closed and leaves the room.
    let _ = framed
        .send((response.drop_body(), BodySize::None).into())
        .await;
    // Keep the socket and whatever the client sent after its request. The HTTP buffers, and
    // the request whose headers share them, are dropped with this future.
    let parts = framed.into_parts();
    let early = BytesMut::from(&parts.read_buf[..]);
    Some((parts.io, early, room_id, joined))
}

/// Checks the request and joins the room it names.
async fn accept<F: JamsocketServiceFactory<RoomContext>>(
    state: &AppState<F>,
    request: &Request,
) -> Result<(Arc<str>, Joined), HttpError> {
    let path = request.path();
    let Some(room_id) = path.strip_prefix("/ws/") else {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("no WebSocket endpoint at `{path}`: connect to /ws/<room>"),
        ));
    };
    let room_id = checked_room_id(room_id)?;
    admit(state, room_id)?;
    verify_handshake(request.head()).map_err(|err| {
        let status = match err {
            HandshakeError::GetMethodRequired => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        };
        HttpError::new(status, format!("not a WebSocket handshake: {err}"))
    })?;
    let joined = join(state, room_id).await?;
    Ok((Arc::from(room_id), joined))
}

/// Answers with `err` as plain text and closes the connection.
async fn refuse(framed: &mut Framed<TcpStream, h1::Codec>, err: HttpError) {
    let body = Bytes::from(format!("{}\n", err.message));
    let mut response = Response::with_body(err.status, ());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    let size = BodySize::Sized(body.len() as u64);
    if framed.send((response, size).into()).await.is_ok() {
        let _ = framed
            .send(actix_http::h1::Message::Chunk(Some(body)))
            .await;
    }
}
