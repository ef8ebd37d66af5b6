//! Which worker thread a connection runs on: its room's. Then a message and its broadcast
//! never wake another thread, and rooms spread over the workers.

use super::connection::Connection;
use crate::rooms::Worker;
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use tokio_util::task::TaskTracker;

/// Starts `connection` on its room's worker thread, tracked by `connections`. `early` holds
/// what the client sent after its handshake request.
pub(crate) fn start(
    connection: Connection,
    stream: TcpStream,
    early: BytesMut,
    connections: &TaskTracker,
) {
    match connection.room.worker.clone() {
        Some(worker) if worker.thread != std::thread::current().id() => {
            move_to(&worker, connections, connection, stream, early);
        }
        _ => {
            tokio::task::spawn_local(connections.track_future(connection.run(stream, early)));
        }
    }
}

/// Starts `connection` on `worker`. The socket leaves this thread's reactor and joins the
/// worker's there.
fn move_to(
    worker: &Worker,
    connections: &TaskTracker,
    connection: Connection,
    stream: TcpStream,
    early: BytesMut,
) {
    match stream.into_std() {
        Ok(stream) => {
            // A worker that has stopped drops the task: the server is shutting down, and the
            // room with it.
            worker
                .runtime
                .spawn(connections.track_future(connection.run_std(stream, early)));
        }
        Err(err) => {
            let leave = async move {
                drop(connection.leave(format!("connection dropped: {err}")).await);
            };
            tokio::task::spawn_local(connections.track_future(leave));
        }
    }
}
