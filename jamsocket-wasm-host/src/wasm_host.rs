use crate::erased_context::ErasedContext;
use crate::host_state::HostState;
use crate::wasm_host_factory::FactoryInner;
use crate::{GuestFailure, WasmHostError};
use jamsocket::abi::exports;
use jamsocket::{ClientId, JamsocketService, ServiceError};
use std::sync::Arc;
use tracing::Instrument;
use wasmtime::{Instance, Memory, PoolConcurrencyLimitError, Store, TypedFunc};

/// One room's guest instance: a [`JamsocketService`] that forwards each event to the module's
/// exports.
///
/// Each call may run for up to the configured CPU time, yielding to other tasks on its thread
/// every time slice. If a call fails (a trap, a limit, a bad argument to an import), the error
/// names the room, the export and the cause, and the host refuses every later call.
///
/// Created by [`WasmHostFactory`](crate::WasmHostFactory).
pub struct WasmHost {
    room_id: Arc<str>,
    store: Store<HostState>,
    exports: GuestExports,
    /// Set when a call fails; later calls are refused.
    failure: Option<GuestFailure>,
    /// True while a call runs. Still true at the start of a call means the previous call's
    /// future was dropped before it finished.
    in_call: bool,
    span: tracing::Span,
}

/// The guest's ABI functions, looked up once per room.
struct GuestExports {
    buffer: TypedFunc<u32, u32>,
    initialize: TypedFunc<(u32, u32), ()>,
    connect: TypedFunc<u32, ()>,
    disconnect: TypedFunc<u32, ()>,
    message: TypedFunc<(u32, u32, u32), ()>,
    binary: TypedFunc<(u32, u32, u32), ()>,
    timer: TypedFunc<(), ()>,
    memory: Memory,
}

impl GuestExports {
    fn new(instance: &Instance, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        let memory = instance
            .get_memory(&mut *store, exports::MEMORY)
            .ok_or_else(|| wasmtime::format_err!("no `{}` export", exports::MEMORY))?;
        Ok(GuestExports {
            buffer: instance.get_typed_func(&mut *store, exports::BUFFER)?,
            initialize: instance.get_typed_func(&mut *store, exports::INITIALIZE)?,
            connect: instance.get_typed_func(&mut *store, exports::CONNECT)?,
            disconnect: instance.get_typed_func(&mut *store, exports::DISCONNECT)?,
            message: instance.get_typed_func(&mut *store, exports::MESSAGE)?,
            binary: instance.get_typed_func(&mut *store, exports::BINARY)?,
            timer: instance.get_typed_func(&mut *store, exports::TIMER)?,
            memory,
        })
    }
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
        factory: &FactoryInner,
        room_id: &str,
        context: Box<dyn ErasedContext>,
    ) -> Result<WasmHost, ServiceError> {
        let room: Arc<str> = Arc::from(room_id);
        let span = tracing::info_span!("wasm_room", room_id);
        let state = HostState::new(room.clone(), context, &factory.config);
        let mut store = Store::new(&factory.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|mut store| store.data_mut().budget.on_tick());
        store.data_mut().start_call();
        store.set_epoch_deadline(1);

        let instantiated = async {
            let instance = factory.instance_pre.instantiate_async(&mut store).await?;
            GuestExports::new(&instance, &mut store)
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
                tracing::warn!(room_id, "instantiating the guest failed: {error:?}");
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
            store,
            exports,
            failure: None,
            in_call: false,
            span,
        };
        host.handle(Event::Initialize(room_id)).await?;
        Ok(host)
    }

    /// The room this instance serves.
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// Why the room failed, if it did. A failed room refuses every call.
    pub fn failure(&self) -> Option<&GuestFailure> {
        self.failure.as_ref()
    }

    /// Delivers `event`, turning any failure into a [`ServiceError`] that closes the room.
    async fn handle(&mut self, event: Event<'_>) -> Result<(), ServiceError> {
        let export = event.export();
        if self.in_call {
            self.in_call = false;
            self.failure.get_or_insert(GuestFailure::Cancelled);
        }
        if let Some(failure) = &self.failure {
            return Err(ServiceError::failed(WasmHostError::RoomFailed {
                room_id: self.room_id.to_string(),
                export,
                failure: failure.clone(),
            }));
        }

        self.in_call = true;
        self.store.data_mut().start_call();
        self.store.set_epoch_deadline(1);
        let span = self.span.clone();
        let result = self.deliver(event).instrument(span).await;
        self.in_call = false;

        result.map_err(|(export, error)| {
            let failure = GuestFailure::from_error(&error);
            let _entered = self.span.enter();
            tracing::warn!(room_id = &*self.room_id, export, %failure, "guest call failed");
            tracing::debug!(
                room_id = &*self.room_id,
                export,
                "guest call failed: {error:?}"
            );
            self.failure = Some(failure.clone());
            ServiceError::failed(WasmHostError::GuestFailed {
                room_id: self.room_id.to_string(),
                export,
                failure,
            })
        })
    }

    /// Calls the export for `event` (after copying its input into the guest). An error comes
    /// with the export that failed: the event's, or `jamsocket_buffer`.
    async fn deliver(&mut self, event: Event<'_>) -> Result<(), (&'static str, wasmtime::Error)> {
        let export = event.export();
        let exports = &self.exports;
        let store = &mut self.store;
        let in_export = |error| (export, error);
        match event {
            Event::Initialize(room_id) => {
                let (ptr, len) = write_input(store, exports, room_id.as_bytes()).await?;
                let args = (ptr, len);
                exports
                    .initialize
                    .call_async(store, args)
                    .await
                    .map_err(in_export)
            }
            Event::Connect(client) => {
                let args = client.into();
                exports
                    .connect
                    .call_async(store, args)
                    .await
                    .map_err(in_export)
            }
            Event::Disconnect(client) => {
                let args = client.into();
                exports
                    .disconnect
                    .call_async(store, args)
                    .await
                    .map_err(in_export)
            }
            Event::Message(client, message) => {
                let (ptr, len) = write_input(store, exports, message.as_bytes()).await?;
                let args = (client.into(), ptr, len);
                exports
                    .message
                    .call_async(store, args)
                    .await
                    .map_err(in_export)
            }
            Event::Binary(client, message) => {
                let (ptr, len) = write_input(store, exports, message).await?;
                let args = (client.into(), ptr, len);
                exports
                    .binary
                    .call_async(store, args)
                    .await
                    .map_err(in_export)
            }
            Event::Timer => exports.timer.call_async(store, ()).await.map_err(in_export),
        }
    }
}

/// Copies `input` into a buffer from `jamsocket_buffer`, returning its `(ptr, len)`. Empty
/// input is passed as `(0, 0)` without a call. Errors are attributed to `jamsocket_buffer`.
async fn write_input(
    store: &mut Store<HostState>,
    exports: &GuestExports,
    input: &[u8],
) -> Result<(u32, u32), (&'static str, wasmtime::Error)> {
    let in_buffer = |error: wasmtime::Error| (exports::BUFFER, error);
    let len = u32::try_from(input.len())
        .map_err(|_| in_buffer(GuestFailure::InputTooLarge { len: input.len() }.into()))?;
    if len == 0 {
        return Ok((0, 0));
    }
    let ptr = exports
        .buffer
        .call_async(&mut *store, len)
        .await
        .map_err(in_buffer)?;
    let memory = exports.memory.data_mut(&mut *store);
    let memory_size = memory.len();
    let range = crate::imports::checked_range(memory_size, ptr, len).ok_or_else(|| {
        in_buffer(
            GuestFailure::BadBuffer {
                ptr,
                len,
                memory_size,
            }
            .into(),
        )
    })?;
    memory[range].copy_from_slice(input);
    Ok((ptr, len))
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
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("room_id", &self.room_id)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}
