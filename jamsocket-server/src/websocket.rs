//! The WebSocket endpoint, `GET /ws/<room>`.
//!
//! Actix hands every HTTP/1.1 upgrade request here, with its connection. After the handshake
//! a [`Connection`] task of our own owns the TCP stream, on the worker thread of its room:
//! frames go between the socket and the room with no HTTP machinery, and no HTTP buffers, in
//! between.

use crate::admission::ConnectionPermit;
use crate::connection::Connection;
use crate::rate_limit::{FrameBudget, RateLimit};
use crate::registry::Worker;
use crate::room_context::{lock, RoomContext};
use crate::routes::{admit, checked_room_id, join, AppState, HttpError, Joined};
use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::header::{HeaderValue, CONTENT_TYPE, UPGRADE};
use actix_http::ws::{verify_handshake, HandshakeError};
use actix_http::{h1, ConnectionType, Request, Response, StatusCode};
use actix_service::Service;
use actix_web::dev::ServiceResponse;
use actix_web::rt::net::TcpStream;
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use jamsocket::JamsocketServiceFactory;
use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use tokio_util::task::TaskTracker;

/// Serves one upgrade request: refuses it with an HTTP error, or completes the handshake and
/// starts the connection's own task, tracked by `connections`. Actix's task for the request
/// ends there, and every HTTP buffer with it. Upgrades to anything but a WebSocket go to
/// `routes`.
pub(crate) async fn upgrade<F, R>(
    state: AppState<F>,
    connections: TaskTracker,
    routes: Rc<R>,
    request: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), Infallible>
where
    F: JamsocketServiceFactory<RoomContext>,
    R: Service<Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    if !wants_websocket(&request) {
        forward(&*routes, request, framed).await;
        return Ok(());
    }
    let Some((stream, early, room_id, joined, permit)) = handshake(&state, request, framed).await
    else {
        return Ok(());
    };
    let limits = &state.settings.limits;
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
        rate: limits
            .max_messages_per_sec
            .map(|rate| RateLimit::new(rate, tokio::time::Instant::now())),
        budget: FrameBudget::new(
            limits.max_frames_per_sec,
            limits.max_bytes_per_sec,
            limits.max_message_bytes,
        ),
        permit,
    };
    // The connection runs on its room's worker thread: then a message and its broadcast wake
    // no other thread.
    match connection.room.worker.clone() {
        Some(worker) if worker.thread != std::thread::current().id() => {
            move_to(worker, connections, connection, stream, early)
        }
        _ => {
            actix_web::rt::spawn(connections.track_future(connection.run(stream, early)));
        }
    }
    Ok(())
}

/// Starts `connection` on `worker`, or here if that worker has stopped.
fn move_to(
    worker: Worker,
    connections: TaskTracker,
    connection: Connection,
    stream: TcpStream,
    early: BytesMut,
) {
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(err) => {
            let leave = async move {
                drop(connection.leave(format!("connection dropped: {err}")).await);
            };
            actix_web::rt::spawn(connections.track_future(leave));
            return;
        }
    };
    let moving = Arc::new(Mutex::new(Some((connection, stream, early))));
    let there = (moving.clone(), connections.clone());
    let sent = worker.arbiter.spawn_fn(move || {
        let (moving, connections) = there;
        let arrived = lock(&moving).take();
        if let Some((connection, stream, early)) = arrived {
            actix_web::rt::spawn(connections.track_future(connection.run_std(stream, early)));
        }
    });
    // A stopped worker dropped the closure; a stopping one may still drop it unrun, but then
    // the server is shutting down and the room with it.
    let stayed = if sent { None } else { lock(&moving).take() };
    if let Some((connection, stream, early)) = stayed {
        actix_web::rt::spawn(connections.track_future(connection.run_std(stream, early)));
    }
}

fn wants_websocket(request: &Request) -> bool {
    request
        .head()
        .headers()
        .get(UPGRADE)
        .and_then(|upgrade| upgrade.to_str().ok())
        .is_some_and(|upgrade| upgrade.eq_ignore_ascii_case("websocket"))
}

/// Answers an upgrade request that is not for a WebSocket (say, `Upgrade: h2c` from
/// `curl --http2`) as if it had no `Upgrade` header, then closes the connection.
async fn forward<R>(routes: &R, request: Request, mut framed: Framed<TcpStream, h1::Codec>)
where
    R: Service<Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let response: Response<BoxBody> = match routes.call(request).await {
        Ok(response) => response.into(),
        Err(err) => err.error_response().into(),
    };
    let (mut head, body) = response.into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let size = body.size();
    if framed.send((head, size).into()).await.is_err() {
        return;
    }
    let mut body = pin!(body);
    while let Some(Ok(chunk)) = poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        if framed.send(h1::Message::Chunk(Some(chunk))).await.is_err() {
            return;
        }
    }
    let _ = framed.send(h1::Message::Chunk(None)).await;
}

/// Answers the handshake. Returns the socket, what the client sent after its request, the room
/// it joined and its place in the connection count; `None` if the request was refused.
async fn handshake<F: JamsocketServiceFactory<RoomContext>>(
    state: &AppState<F>,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Option<(TcpStream, BytesMut, Arc<str>, Joined, ConnectionPermit)> {
    let (room_id, joined, permit) = match accept(state, &request).await {
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
    Some((parts.io, early, room_id, joined, permit))
}

/// Checks the request and joins the room it names.
async fn accept<F: JamsocketServiceFactory<RoomContext>>(
    state: &AppState<F>,
    request: &Request,
) -> Result<(Arc<str>, Joined, ConnectionPermit), HttpError> {
    state.admission.check_running()?;
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
    let headers = request.head().headers();
    state.admission.check_origin(headers)?;
    let ip = state.admission.client_ip(request.peer_addr(), headers);
    let permit = state.admission.connect(ip)?;
    let joined = join(state, room_id, ip).await?;
    Ok((Arc::from(room_id), joined, permit))
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
