//! Taking a room's snapshot: the service's own, or a memory image of the guest.

use super::guest_exports::returned_bytes;
use super::WasmHost;
use crate::memory_image;
use crate::snapshot_format::{encode_explicit, PAGE};
use jamsocket::abi::exports;
use jamsocket::ServiceError;

/// What `jamsocket_snapshot` returns when the service keeps no snapshot.
const NO_SNAPSHOT: i64 = -1;

impl WasmHost {
    pub(super) async fn take_snapshot(&mut self) -> Result<Option<Vec<u8>>, ServiceError> {
        if let Some(explicit) = self.explicit_snapshot().await? {
            tracing::debug!(
                room = &*self.room_id,
                bytes = explicit.len(),
                "took the service's own snapshot"
            );
            return Ok(Some(explicit));
        }
        self.check_usable(exports::SNAPSHOT)?;
        if let Some(reason) = self.factory.image_layout.unsupported() {
            tracing::debug!(room = &*self.room_id, "no memory image: {reason}");
            return Ok(None);
        }
        let globals: Vec<_> = (self.factory.image_layout.global_names())
            .zip(self.exports.globals.iter().copied())
            .collect();
        let image = memory_image::capture(
            &mut self.store,
            &self.factory.image_layout,
            self.exports.memory,
            &globals,
            &self.factory.module_hash,
        );
        match image {
            Ok((image, chunks)) => {
                tracing::debug!(
                    room = &*self.room_id,
                    bytes = image.len(),
                    pages = self.exports.memory.data_size(&self.store) / PAGE,
                    chunks,
                    "took a memory image"
                );
                Ok(Some(image))
            }
            Err(reason) => {
                tracing::warn!(room = &*self.room_id, "no memory image: {reason}");
                Ok(None)
            }
        }
    }

    /// The snapshot `jamsocket_snapshot` returns, encoded, or `None` if the module has no such
    /// export or the service keeps no snapshot.
    async fn explicit_snapshot(&mut self) -> Result<Option<Vec<u8>>, ServiceError> {
        let Some(snapshot) = self.exports.snapshot.clone() else {
            return Ok(None);
        };
        let module_hash = self.factory.module_hash;
        self.call(exports::SNAPSHOT, async |store, guest| {
            let packed = snapshot
                .call_async(&mut *store, ())
                .await
                .map_err(|error| (exports::SNAPSHOT, error))?;
            if packed == NO_SNAPSHOT {
                return Ok(None);
            }
            let bytes = returned_bytes(guest.memory.data(&*store), exports::SNAPSHOT, packed)?;
            Ok(Some(encode_explicit(&module_hash, bytes)))
        })
        .await
    }
}
