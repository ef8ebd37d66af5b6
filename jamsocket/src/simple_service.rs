use crate::{
    ClientId, JamsocketContext, JamsocketService, JamsocketServiceFactory, Response, RestoreError,
    ServiceError,
};
use std::marker::PhantomData;

/// The easy way to write a service: a constructor and the handlers you need.
///
/// Every handler but [`new`](SimpleJamsocketService::new) has an empty default body. See the
/// crate documentation for an example.
pub trait SimpleJamsocketService: Send + 'static {
    /// Creates the state of a new room.
    fn new(room_id: &str, ctx: &impl JamsocketContext) -> Self;

    /// A client joined the room.
    fn connect(&mut self, _client: ClientId, _ctx: &impl JamsocketContext) {}

    /// A client left the room.
    fn disconnect(&mut self, _client: ClientId, _ctx: &impl JamsocketContext) {}

    /// A client sent a text message.
    fn message(&mut self, _client: ClientId, _message: &str, _ctx: &impl JamsocketContext) {}

    /// A client sent a binary message.
    fn binary(&mut self, _client: ClientId, _message: &[u8], _ctx: &impl JamsocketContext) {}

    /// The timer set with [`JamsocketContext::set_timer`] fired.
    fn timer(&mut self, _ctx: &impl JamsocketContext) {}

    /// A request from the server side (a backend through the room API), not from a client:
    /// answer it with a [`Response`]. Like any handler it may send messages through `ctx`. The
    /// default answers [`Response::not_found`].
    ///
    /// ```
    /// use jamsocket::{JamsocketContext, MessageRecipient, RecordingContext, Response, SimpleJamsocketService};
    ///
    /// struct Board(String);
    ///
    /// impl SimpleJamsocketService for Board {
    ///     fn new(_: &str, _: &impl JamsocketContext) -> Self {
    ///         Board(String::new())
    ///     }
    ///
    ///     fn request(&mut self, body: &[u8], ctx: &impl JamsocketContext) -> Response {
    ///         self.0 = String::from_utf8_lossy(body).into_owned();
    ///         ctx.send_message(MessageRecipient::Broadcast, &self.0);
    ///         Response::ok(self.0.len().to_string())
    ///     }
    /// }
    ///
    /// let ctx = RecordingContext::default();
    /// let mut board = Board::new("room", &ctx);
    /// assert_eq!(board.request(b"hello", &ctx), Response::ok("5"));
    /// assert_eq!(ctx.take_messages(), vec![(MessageRecipient::Broadcast, "hello".to_string())]);
    /// ```
    fn request(&mut self, _body: &[u8], _ctx: &impl JamsocketContext) -> Response {
        Response::not_found()
    }

    /// The room's state as bytes, for a host with a store to save (see
    /// [`restore`](SimpleJamsocketService::restore)). `None`, the default, means the service
    /// keeps no snapshots. With serde, [`Durable`](crate::Durable) writes both methods for you.
    fn snapshot(&self) -> Option<Vec<u8>> {
        None
    }

    /// Recreates a room from bytes [`snapshot`](SimpleJamsocketService::snapshot) returned,
    /// possibly after the service's code changed. Return [`RestoreError::Corrupt`] for bytes you
    /// cannot decode; the host then keeps them aside and calls
    /// [`new`](SimpleJamsocketService::new) instead.
    fn restore(
        _room_id: &str,
        _snapshot: &[u8],
        _ctx: &impl JamsocketContext,
    ) -> Result<Self, RestoreError>
    where
        Self: Sized,
    {
        Err(RestoreError::unsupported("this service keeps no snapshots"))
    }
}

/// A [`SimpleJamsocketService`] together with its context: a [`JamsocketService`].
#[derive(Debug)]
pub struct WrappedJamsocketService<S, C> {
    model: S,
    context: C,
}

impl<S: SimpleJamsocketService, C: JamsocketContext> WrappedJamsocketService<S, C> {
    /// Wraps `model`, which will talk to its clients through `context`.
    pub fn new(model: S, context: C) -> Self {
        WrappedJamsocketService { model, context }
    }

    /// The wrapped service.
    pub fn model(&self) -> &S {
        &self.model
    }
}

impl<S, C> JamsocketService for WrappedJamsocketService<S, C>
where
    S: SimpleJamsocketService,
    C: JamsocketContext + Send + 'static,
{
    async fn connect(&mut self, client: ClientId) -> Result<(), ServiceError> {
        self.model.connect(client, &self.context);
        Ok(())
    }

    async fn disconnect(&mut self, client: ClientId) -> Result<(), ServiceError> {
        self.model.disconnect(client, &self.context);
        Ok(())
    }

    async fn message(&mut self, client: ClientId, message: &str) -> Result<(), ServiceError> {
        self.model.message(client, message, &self.context);
        Ok(())
    }

    async fn binary(&mut self, client: ClientId, message: &[u8]) -> Result<(), ServiceError> {
        self.model.binary(client, message, &self.context);
        Ok(())
    }

    async fn timer(&mut self) -> Result<(), ServiceError> {
        self.model.timer(&self.context);
        Ok(())
    }

    async fn snapshot(&mut self) -> Result<Option<Vec<u8>>, ServiceError> {
        Ok(self.model.snapshot())
    }

    async fn request(&mut self, body: &[u8]) -> Result<Response, ServiceError> {
        Ok(self.model.request(body, &self.context))
    }

    fn ready_at_once(&self) -> bool {
        true
    }
}

/// Builds a [`WrappedJamsocketService`] around a new `S` for every room.
pub struct SimpleJamsocketServiceFactory<S> {
    _service: PhantomData<fn() -> S>,
}

impl<S> Default for SimpleJamsocketServiceFactory<S> {
    fn default() -> Self {
        SimpleJamsocketServiceFactory {
            _service: PhantomData,
        }
    }
}

impl<S> std::fmt::Debug for SimpleJamsocketServiceFactory<S> {
    /// Names the service type, which need not implement `Debug` itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleJamsocketServiceFactory")
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

impl<S> Clone for SimpleJamsocketServiceFactory<S> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<S, C> JamsocketServiceFactory<C> for SimpleJamsocketServiceFactory<S>
where
    S: SimpleJamsocketService,
    C: JamsocketContext + Send + 'static,
{
    type Service = WrappedJamsocketService<S, C>;

    async fn build(&self, room_id: &str, context: C) -> Result<Self::Service, ServiceError> {
        let model = S::new(room_id, &context);
        Ok(WrappedJamsocketService::new(model, context))
    }

    async fn restore(
        &self,
        room_id: &str,
        context: C,
        snapshot: &[u8],
    ) -> Result<Self::Service, RestoreError> {
        let model = S::restore(room_id, snapshot, &context)?;
        Ok(WrappedJamsocketService::new(model, context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageRecipient, RecordingContext};
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    /// Polls a future that is ready at once, as every handler of a wrapped service is.
    fn now<F: std::future::Future>(future: F) -> F::Output {
        match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("a native handler should be ready at once"),
        }
    }

    struct Plain;

    impl SimpleJamsocketService for Plain {
        fn new(_: &str, _: &impl JamsocketContext) -> Self {
            Plain
        }
    }

    struct Shouting;

    impl SimpleJamsocketService for Shouting {
        fn new(_: &str, _: &impl JamsocketContext) -> Self {
            Shouting
        }

        fn request(&mut self, body: &[u8], ctx: &impl JamsocketContext) -> Response {
            let loud = String::from_utf8_lossy(body).to_uppercase();
            ctx.send_message(MessageRecipient::Broadcast, &loud);
            Response::new(201, loud)
        }
    }

    #[test]
    fn requests_reach_the_service_with_its_context() {
        let ctx = Arc::new(RecordingContext::default());
        let factory = SimpleJamsocketServiceFactory::<Shouting>::default();
        let mut room = now(factory.build("r", ctx.clone())).unwrap();
        assert_eq!(now(room.request(b"hi")).unwrap(), Response::new(201, "HI"));
        assert_eq!(
            ctx.take_messages(),
            vec![(MessageRecipient::Broadcast, "HI".to_string())]
        );
        assert_eq!(room.memory_bytes(), None);

        let mut plain =
            now(SimpleJamsocketServiceFactory::<Plain>::default().build("r", ctx)).unwrap();
        assert_eq!(now(plain.request(b"hi")).unwrap(), Response::not_found());
    }
}
