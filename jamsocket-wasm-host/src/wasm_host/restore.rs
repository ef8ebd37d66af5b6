//! Recreating a room from a snapshot: through the guest's `jamsocket_restore`, or by writing a
//! memory image into a fresh instance.

use super::guest_exports::write_input;
use super::WasmHost;
use crate::erased_context::ErasedContext;
use crate::snapshot_format::{self, short_hex, Body, Chunks, GlobalValue, PAGE};
use crate::wasm_host_factory::FactoryInner;
use crate::{memory_image, GuestFailure, WasmHostError};
use jamsocket::abi::{exports, RESTORE_CORRUPT, RESTORE_OK, RESTORE_UNSUPPORTED};
use jamsocket::RestoreError;
use std::sync::Arc;

impl WasmHost {
    /// See [`WasmHostFactory`](crate::WasmHostFactory)'s `restore`.
    pub(crate) async fn restore(
        factory: &Arc<FactoryInner>,
        room_id: &str,
        context: Box<dyn ErasedContext>,
        bytes: &[u8],
    ) -> Result<WasmHost, RestoreError> {
        let corrupt = |problem: String| {
            RestoreError::corrupt(WasmHostError::SnapshotCorrupt {
                room_id: room_id.to_string(),
                problem,
            })
        };
        let snapshot =
            snapshot_format::decode(bytes).map_err(|error| corrupt(error.to_string()))?;
        match snapshot.body {
            Body::Explicit(saved) => {
                if snapshot.module_hash != factory.module_hash {
                    tracing::debug!(
                        room = room_id,
                        saved_by = %short_hex(&snapshot.module_hash),
                        module = %short_hex(&factory.module_hash),
                        "restoring the service's own snapshot taken by another build of the module"
                    );
                }
                Self::restore_explicit(factory, room_id, context, saved).await
            }
            Body::Memory {
                pages,
                globals,
                chunks,
            } => {
                if snapshot.module_hash != factory.module_hash {
                    return Err(RestoreError::unsupported(
                        WasmHostError::SnapshotModuleChanged {
                            room_id: room_id.to_string(),
                            module: factory.module_name.clone(),
                            saved_hash: short_hex(&snapshot.module_hash),
                            module_hash: short_hex(&factory.module_hash),
                        },
                    ));
                }
                let memory_len = (pages as usize).saturating_mul(PAGE);
                (factory.image_layout)
                    .check(&globals, memory_len, factory.config.memory_limit())
                    .map_err(corrupt)?;
                let mut host = Self::instantiate(factory, room_id, context).await?;
                let written = host
                    .write_image(pages, &chunks, &globals)
                    .map_err(corrupt)?;
                host.report_memory();
                tracing::debug!(
                    room = room_id,
                    pages,
                    chunks_written = written,
                    "restored a memory image"
                );
                Ok(host)
            }
        }
    }

    /// Puts a memory image into this fresh instance (no export called yet).
    fn write_image(
        &mut self,
        pages: u32,
        chunks: &Chunks<'_>,
        globals: &[(&str, GlobalValue)],
    ) -> Result<usize, String> {
        let instance_globals: Vec<_> = (self.factory.image_layout.global_names())
            .zip(self.exports.globals.iter().copied())
            .collect();
        memory_image::restore(
            &mut self.store,
            self.exports.memory,
            &instance_globals,
            pages,
            chunks,
            globals,
        )
    }

    /// A fresh instance whose `jamsocket_restore` builds the service from `saved`.
    async fn restore_explicit(
        factory: &Arc<FactoryInner>,
        room_id: &str,
        context: Box<dyn ErasedContext>,
        saved: &[u8],
    ) -> Result<WasmHost, RestoreError> {
        let no_restore_export = || {
            RestoreError::unsupported(WasmHostError::NoRestoreExport {
                room_id: room_id.to_string(),
                module: factory.module_name.clone(),
            })
        };
        // Known at load time: no instance is created for nothing.
        if !factory.optional_exports.restore {
            return Err(no_restore_export());
        }
        let mut host = Self::instantiate(factory, room_id, context).await?;
        let restore = host.exports.restore.clone().ok_or_else(no_restore_export)?;
        let frame = frame(room_id, saved);
        let status = host
            .call(exports::RESTORE, async |store, guest| {
                let (ptr, len) = write_input(store, guest, &frame).await?;
                let in_restore = |error| (exports::RESTORE, error);
                let status = restore
                    .call_async(&mut *store, (ptr, len))
                    .await
                    .map_err(in_restore)?;
                match status {
                    RESTORE_OK | RESTORE_UNSUPPORTED | RESTORE_CORRUPT => Ok(status),
                    other => Err(in_restore(
                        GuestFailure::BadReturn {
                            export: exports::RESTORE,
                            value: other.into(),
                            problem: format!(
                                "is not a status of the ABI ({RESTORE_OK} ok, \
                                 {RESTORE_UNSUPPORTED} unsupported, {RESTORE_CORRUPT} corrupt)"
                            ),
                        }
                        .into(),
                    )),
                }
            })
            .await?;
        let room_id = room_id.to_string();
        match status {
            RESTORE_OK => Ok(host),
            RESTORE_UNSUPPORTED => Err(RestoreError::unsupported(
                WasmHostError::GuestSnapshotUnsupported { room_id },
            )),
            _ => Err(RestoreError::corrupt(WasmHostError::GuestSnapshotCorrupt {
                room_id,
            })),
        }
    }
}

/// The input of `jamsocket_restore`: the room id's length (u32 LE), the room id, the snapshot.
fn frame(room_id: &str, saved: &[u8]) -> Vec<u8> {
    // A room id is far shorter than 4 GiB (the server limits it); saturating keeps a bogus
    // one from wrapping into a valid-looking frame.
    let len = u32::try_from(room_id.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(4 + room_id.len() + saved.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(room_id.as_bytes());
    frame.extend_from_slice(saved);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_room_id_then_the_snapshot() {
        assert_eq!(frame("ab", b"xyz"), b"\x02\0\0\0abxyz");
        assert_eq!(frame("", b""), b"\0\0\0\0");
    }
}
