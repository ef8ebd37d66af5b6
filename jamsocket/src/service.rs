use crate::{ClientId, JamsocketContext, Response, RestoreError, ServiceError};
use std::future::Future;

/// One room's service, as a host drives it.
///
/// The service owns its context (given to it by the factory). Each handler returns a future
/// so a host can run long handlers (a WebAssembly guest computing for a while) without blocking
/// other rooms; a handler of a native service is ready at once. An `Err` ends the room: the host
/// disconnects its clients.
///
/// A host calls the handlers of one room one at a time, in the order events arrived.
pub trait JamsocketService: Send + 'static {
    /// A client joined the room.
    fn connect(&mut self, client: ClientId) -> impl Future<Output = Result<(), ServiceError>>;

    /// A client left the room (closed, dropped its connection or timed out).
    fn disconnect(&mut self, client: ClientId) -> impl Future<Output = Result<(), ServiceError>>;

    /// A client sent a text message.
    fn message(
        &mut self,
        client: ClientId,
        message: &str,
    ) -> impl Future<Output = Result<(), ServiceError>>;

    /// A client sent a binary message.
    fn binary(
        &mut self,
        client: ClientId,
        message: &[u8],
    ) -> impl Future<Output = Result<(), ServiceError>>;

    /// The timer set through the context fired.
    fn timer(&mut self) -> impl Future<Output = Result<(), ServiceError>>;

    /// The room's state as bytes that [`JamsocketServiceFactory::restore`] can turn back into
    /// this service, or `None` if the service keeps no snapshots (the default).
    ///
    /// A host with a store calls this between events, after the room changed (at most once per
    /// snapshot interval), before an empty room is evicted, and at shutdown.
    fn snapshot(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, ServiceError>> {
        async { Ok(None) }
    }

    /// A request from the server side (a backend through the room API), not from a client:
    /// `body` as the backend sent it, answered with a [`Response`] the host passes back. The
    /// handler may send messages through its context like any handler. The default answers
    /// [`Response::not_found`].
    fn request(&mut self, body: &[u8]) -> impl Future<Output = Result<Response, ServiceError>> {
        let _ = body;
        async { Ok(Response::not_found()) }
    }

    /// The memory the room's service holds, in bytes, if the host can tell (for a WebAssembly
    /// room, the instance's linear memory); `None`, the default, if it cannot.
    fn memory_bytes(&self) -> Option<u64> {
        None
    }

    /// Whether the futures of [`message`](Self::message) and [`binary`](Self::binary) are
    /// always ready when first polled (they never wait for anything). A host may run a
    /// handler on the task that read the client's message; with `true` it polls the handler in
    /// place, with `false` it first puts it where the room's own task can finish it if it waits
    /// (`jamsocket-server` allocates it on the heap). A native service's are (`true` for a
    /// [`SimpleJamsocketService`](crate::SimpleJamsocketService)); the default is `false`.
    fn ready_at_once(&self) -> bool {
        false
    }
}

/// Creates the service of a new room.
pub trait JamsocketServiceFactory<C: JamsocketContext>: Send + Sync + 'static {
    /// The service this factory builds.
    type Service: JamsocketService;

    /// Creates the service for `room_id`, which talks to its clients through `context`.
    fn build(
        &self,
        room_id: &str,
        context: C,
    ) -> impl Future<Output = Result<Self::Service, ServiceError>>;

    /// Recreates the service of `room_id` from bytes its [`JamsocketService::snapshot`]
    /// returned, possibly in another process or after a code change. The default refuses with
    /// [`RestoreError::Unsupported`], and the host builds the room fresh.
    fn restore(
        &self,
        room_id: &str,
        context: C,
        snapshot: &[u8],
    ) -> impl Future<Output = Result<Self::Service, RestoreError>> {
        let _ = (room_id, context, snapshot);
        async { Err(RestoreError::unsupported("this service keeps no snapshots")) }
    }
}
