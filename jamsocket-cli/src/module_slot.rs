use jamsocket::{JamsocketServiceFactory, RestoreError, ServiceError};
use jamsocket_server::prometheus_client::collector::Collector;
use jamsocket_server::prometheus_client::encoding::DescriptorEncoder;
use jamsocket_server::RoomContext;
use jamsocket_wasm_host::{WasmHost, WasmHostFactory};
use std::sync::{Arc, RwLock};

/// The module new rooms are built from; `jamsocket dev` swaps in each successful rebuild.
#[derive(Clone)]
pub struct ModuleSlot {
    current: Arc<RwLock<WasmHostFactory>>,
}

impl ModuleSlot {
    pub fn new(factory: WasmHostFactory) -> Self {
        ModuleSlot {
            current: Arc::new(RwLock::new(factory)),
        }
    }

    pub fn replace(&self, factory: WasmHostFactory) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = factory;
    }

    fn current(&self) -> WasmHostFactory {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The guest metrics of the current module's rooms, for the server's `/metrics` (they
    /// start again from zero when `jamsocket dev` loads a rebuild, as after a restart).
    pub fn metrics(&self) -> Box<dyn Collector> {
        Box::new(self.clone())
    }
}

impl std::fmt::Debug for ModuleSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleSlot").finish_non_exhaustive()
    }
}

impl Collector for ModuleSlot {
    fn encode(&self, encoder: DescriptorEncoder) -> std::fmt::Result {
        self.current().metrics().encode(encoder)
    }
}

impl JamsocketServiceFactory<RoomContext> for ModuleSlot {
    type Service = WasmHost;

    async fn build(&self, room_id: &str, context: RoomContext) -> Result<WasmHost, ServiceError> {
        self.current().build(room_id, context).await
    }

    async fn restore(
        &self,
        room_id: &str,
        context: RoomContext,
        snapshot: &[u8],
    ) -> Result<WasmHost, RestoreError> {
        self.current().restore(room_id, context, snapshot).await
    }
}
