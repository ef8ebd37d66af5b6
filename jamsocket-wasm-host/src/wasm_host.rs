use crate::erased_context::ErasedContext;
use crate::host_metrics::InstanceMetrics;
use crate::host_state::HostState;
use crate::wasm_host_factory::FactoryInner;
use crate::{GuestFailure, WasmHostError};
use guest_exports::{write_input, CallError, GuestExports};
use jamsocket::abi::exports;
use jamsocket::{ClientId, JamsocketService, Response, ServiceError};
use std::sync::Arc;
use tracing::Instrument;
use wasmtime::{PoolConcurrencyLimitError, Store};

mod guest_exports;
mod request;
mod restore;
mod snapshot;

/// One room's guest instance: a [`JamsocketService`] that forwards each event to the module's
/// exports.
///
/// Each call may run for up to the configured CPU time, yielding to other tasks on its thread
/// every time slice. If a call fails (a trap, a limit, a bad argument to an import), the error
/// names the room, the export and the cause, and the host refuses every later call.
///
/// [`snapshot`](JamsocketService::snapshot) returns the service's own snapshot when the guest
/// has one (`jamsocket_snapshot`), and otherwise a memory image of the guest; see the README's
/// *Snapshots*. [`request`](JamsocketService::request) calls `jamsocket_request` (a module
/// without it answers 404), and [`memory_bytes`](JamsocketService::memory_bytes) is the size
/// of the instance's linear memory.
///
/// Every call updates the factory's [`HostMetrics`](crate::HostMetrics): its CPU time, the
/// instance's memory, and the failure if it failed.
///
/// Created by [`WasmHostFactory`](crate::WasmHostFactory).
pub struct WasmHost {
    room_id: Arc<str>,
    factory: Arc<FactoryInner>,
    store: Store<HostState>,
    exports: GuestExports,
    /// Set when a call fails; later calls are refused.
    failure: Option<GuestFailure>,
    /// True while a call runs. Still true at the start of a call means the previous call's
    /// future was dropped before it finished.
    in_call: bool,
    /// This instance in the factory's metrics (counted until dropped).
    metrics: InstanceMetrics,
    span: tracing::Span,
}

/// An event delivered to the guest.
enum Event<'a> {
    Initialize(&'a str),
    Connect(ClientId),
    Disconnect(ClientId),
    Message(ClientId, &'a str),
    Binary(ClientId, &'a [u8]),
    Timer,
}

impl Event<'_> {
    fn export(&self) -> &'static str {
        match self {
            Event::Initialize(_) => exports::INITIALIZE,
            Event::Connect(_) => exports::CONNECT,
            Event::Disconnect(_) => exports::DISCONNECT,
            Event::Message(..) => exports::MESSAGE,
            Event::Binary(..) => exports::BINARY,
            Event::Timer => exports::TIMER,
        }
    }
}

impl WasmHost {
    /// Instantiates the module for `room_id` and calls `jamsocket_initialize`.
    pub(crate) async fn build(
        factory: &Arc<FactoryInner>,
        room_id: &str,
        context: Box<dyn ErasedContext>,
    ) -> Result<WasmHost, ServiceError> {
        let mut host = Self::instantiate(factory, room_id, context).await?;
        host.handle(Event::Initialize(room_id)).await?;
        Ok(host)
    }

    /// A new instance of the module for `room_id`, with no export called yet. Fails with
    /// [`ServiceError::Unavailable`] when the room limit is reached.
    async fn instantiate(
        factory: &Arc<FactoryInner>,
        room_id: &str,
        context: Box<dyn ErasedContext>,
    ) -> Result<WasmHost, ServiceError> {
        let room: Arc<str> = Arc::from(room_id);
        let span = tracing::info_span!("wasm_room", room = room_id);
        let output = factory.output.clone();
        let state = HostState::new(room.clone(), context, &factory.config, output);
        let mut store = Store::new(&factory.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|mut store| store.data_mut().budget.on_tick());
        store.data_mut().start_call();
        store.set_epoch_deadline(1);

        let instantiated = async {
            let instance = factory.instance_pre.instantiate_async(&mut store).await?;
            GuestExports::new(
                &instance,
                &mut store,
                factory.optional_exports,
                &factory.image_layout,
            )
        }
        .instrument(span.clone())
        .await;
        let exports = instantiated.map_err(|error| {
            if error.is::<PoolConcurrencyLimitError>() {
                tracing::warn!(
                    room_id,
                    max_rooms = factory.config.max_rooms(),
                    "room limit reached"
                );
                ServiceError::unavailable(WasmHostError::RoomLimit {
                    room_id: room_id.to_string(),
                    max_rooms: factory.config.max_rooms(),
                })
            } else {
                tracing::warn!(room = room_id, "instantiating the guest failed: {error:?}");
                ServiceError::failed(WasmHostError::RoomInstantiate {
                    room_id: room_id.to_string(),
                    module: factory.module_name.clone(),
                    source: WasmHostError::boxed(error),
                })
            }
        })?;
        store.data_mut().memory = Some(exports.memory);

        let mut host = WasmHost {
            room_id: room,
            factory: factory.clone(),
            store,
            exports,
            failure: None,
            in_call: false,
            metrics: factory.metrics.instance(),
            span,
        };
        host.report_memory();
        Ok(host)
    }

    /// The size of the instance's linear memory.
    fn memory_size(&self) -> u64 {
        u64::try_from(self.exports.memory.data_size(&self.store)).unwrap_or(u64::MAX)
    }

    /// Updates the instance's memory in the factory's metrics.
    fn report_memory(&mut self) {
        let size = self.memory_size();
        self.metrics.set_memory(size);
    }

    /// The room this instance serves.
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// Why the room failed, if it did. A failed room refuses every call.
    pub fn failure(&self) -> Option<&GuestFailure> {
        self.failure.as_ref()
    }

    /// Refuses to go on with a room that failed, or whose last call was abandoned half-way.
    fn check_usable(&mut self, export: &'static str) -> Result<(), ServiceError> {
        if self.in_call {
            self.in_call = false;
            self.report_memory();
            if self.failure.is_none() {
                self.factory.metrics.count_failure(&GuestFailure::Cancelled);
                self.failure = Some(GuestFailure::Cancelled);
            }
        }
        match &self.failure {
            Some(failure) => Err(ServiceError::failed(WasmHostError::RoomFailed {
                room_id: self.room_id.to_string(),
                export,
                failure: failure.clone(),
            })),
            None => Ok(()),
        }
    }

    /// Runs one guest call, `f`, on the room's store: refused if the room failed; with fresh
    /// per-call budgets; its CPU time and the memory it leaves counted in the metrics; and any
    /// error becomes the room's failure and a [`ServiceError`] that closes the room, naming the
    /// export that failed.
    async fn call<R>(
        &mut self,
        export: &'static str,
        f: impl AsyncFnOnce(&mut Store<HostState>, &GuestExports) -> Result<R, CallError>,
    ) -> Result<R, ServiceError> {
        self.check_usable(export)?;
        self.in_call = true;
        self.store.data_mut().start_call();
        self.store.set_epoch_deadline(1);
        let result = (self.factory.metrics)
            .timed(f(&mut self.store, &self.exports))
            .instrument(self.span.clone())
            .await;
        self.in_call = false;
        self.report_memory();

        result.map_err(|(export, error)| {
            let failure = GuestFailure::from_error(&error);
            let _entered = self.span.enter();
            tracing::warn!(room = &*self.room_id, export, %failure, "guest call failed");
            tracing::debug!(
                room_id = &*self.room_id,
                export,
                "guest call failed: {error:?}"
            );
            self.factory.metrics.count_failure(&failure);
            self.failure = Some(failure.clone());
            ServiceError::failed(WasmHostError::GuestFailed {
                room_id: self.room_id.to_string(),
                export,
                failure,
            })
        })
    }

    /// Delivers `event` (see [`call`](Self::call)).
    async fn handle(&mut self, event: Event<'_>) -> Result<(), ServiceError> {
        self.call(event.export(), async |store, exports| {
            deliver(store, exports, event).await
        })
        .await
    }
}

/// Calls the export for `event` (after copying its input into the guest). An error comes with
/// the export that failed: the event's, or `jamsocket_buffer`.
async fn deliver(
    store: &mut Store<HostState>,
    exports: &GuestExports,
    event: Event<'_>,
) -> Result<(), CallError> {
    let export = event.export();
    let in_export = |error| (export, error);
    match event {
        Event::Initialize(room_id) => {
            let args = write_input(store, exports, room_id.as_bytes()).await?;
            exports.initialize.call_async(store, args).await
        }
        Event::Connect(client) => exports.connect.call_async(store, client.into()).await,
        Event::Disconnect(client) => exports.disconnect.call_async(store, client.into()).await,
        Event::Message(client, message) => {
            let (ptr, len) = write_input(store, exports, message.as_bytes()).await?;
            let args = (client.into(), ptr, len);
            exports.message.call_async(store, args).await
        }
        Event::Binary(client, message) => {
            let (ptr, len) = write_input(store, exports, message).await?;
            let args = (client.into(), ptr, len);
            exports.binary.call_async(store, args).await
        }
        Event::Timer => exports.timer.call_async(store, ()).await,
    }
    .map_err(in_export)
}

impl JamsocketService for WasmHost {
    async fn connect(&mut self, client: ClientId) -> Result<(), ServiceError> {
        self.handle(Event::Connect(client)).await
    }

    async fn disconnect(&mut self, client: ClientId) -> Result<(), ServiceError> {
        self.handle(Event::Disconnect(client)).await
    }

    async fn message(&mut self, client: ClientId, message: &str) -> Result<(), ServiceError> {
        self.handle(Event::Message(client, message)).await
    }

    async fn binary(&mut self, client: ClientId, message: &[u8]) -> Result<(), ServiceError> {
        self.handle(Event::Binary(client, message)).await
    }

    async fn timer(&mut self) -> Result<(), ServiceError> {
        self.handle(Event::Timer).await
    }

    /// The service's own snapshot if the guest returns one from `jamsocket_snapshot` (a call
    /// with the usual budgets: a trap fails the room), otherwise a memory image of the guest.
    /// `None` only for a module whose exported mutable globals a memory image cannot hold.
    async fn snapshot(&mut self) -> Result<Option<Vec<u8>>, ServiceError> {
        self.take_snapshot().await
    }

    /// Copies `body` into the guest and calls `jamsocket_request` (a call with the usual
    /// budgets), or answers [`Response::not_found`] if the module has no such export. A trap,
    /// or an answer outside the guest's memory or that is not a response (a status outside
    /// `100..=599`), fails the room.
    async fn request(&mut self, body: &[u8]) -> Result<Response, ServiceError> {
        self.handle_request(body).await
    }

    /// The size of the instance's linear memory.
    fn memory_bytes(&self) -> Option<u64> {
        Some(self.memory_size())
    }
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("room_id", &self.room_id)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}
