//! Which worker thread a connection runs on: its room's. Then a message and its broadcast
//! never wake another thread, and rooms spread over the workers.
//!
//! A worker is an Actix worker thread, reached through its arbiter: the connection task joins
//! that thread's local task set, as the room's task did (a connection spawned on the thread's
//! Tokio runtime as a `Send` task instead measured about 10% more CPU per delivery).

use super::connection::{Connection, Socket};
use super::stream::Stream;
use crate::rooms::{Task, Worker};
use crate::sync::lock;
use bytes::BytesMut;
use std::sync::{Arc, Mutex};
use tokio_util::task::TaskTracker;

/// The calling thread as a [`Worker`], if it is an Actix worker.
pub(crate) fn current_worker() -> Option<Worker> {
    let arbiter = actix_rt::Arbiter::try_current()?;
    Some(Worker {
        thread: std::thread::current().id(),
        run: Arc::new(move |task: Task| arbiter.spawn_fn(task)),
    })
}

/// Starts `connection` on its room's worker thread, tracked by `connections`. `early` holds
/// what the client sent after its handshake request.
pub(crate) fn start(
    connection: Connection,
    stream: Stream,
    early: BytesMut,
    connections: &TaskTracker,
) {
    match connection.room.worker.clone() {
        Some(worker) if worker.thread != std::thread::current().id() => {
            move_to(&worker, connections, connection, stream, early);
        }
        _ => {
            let socket = match stream {
                Stream::Tcp(stream) => Socket::Here(stream),
                Stream::Link(stream) => Socket::Link(stream),
            };
            tokio::task::spawn_local(connections.track_future(connection.run(socket, early)));
        }
    }
}

/// Starts `connection` on `worker`, or here if that worker has stopped. A TCP socket leaves
/// this thread's reactor and joins the worker's there.
fn move_to(
    worker: &Worker,
    connections: &TaskTracker,
    connection: Connection,
    stream: Stream,
    early: BytesMut,
) {
    let stream = match stream {
        Stream::Tcp(stream) => stream.into_std().map(Socket::Moved),
        Stream::Link(stream) => Ok(Socket::Link(stream)),
    };
    let stream = match stream {
        Ok(stream) => stream,
        Err(err) => {
            let leave = async move {
                let mut connection = connection;
                let park = Some(connection.park());
                drop(
                    connection
                        .leave(format!("connection dropped: {err}"), park)
                        .await,
                );
            };
            tokio::task::spawn_local(connections.track_future(leave));
            return;
        }
    };
    let moving = Arc::new(Mutex::new(Some((connection, stream, early))));
    let there = (moving.clone(), connections.clone());
    let sent = (worker.run)(Box::new(move || {
        let (moving, connections) = there;
        let arrived = lock(&moving).take();
        if let Some((connection, stream, early)) = arrived {
            tokio::task::spawn_local(connections.track_future(connection.run(stream, early)));
        }
    }));
    // A stopped worker dropped the task; a stopping one may still drop it unrun, but then the
    // server is shutting down and the room with it.
    let stayed = if sent { None } else { lock(&moving).take() };
    if let Some((connection, stream, early)) = stayed {
        tokio::task::spawn_local(connections.track_future(connection.run(stream, early)));
    }
}
