use crate::{ClientId, JamsocketContext, ServiceError};
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
}
