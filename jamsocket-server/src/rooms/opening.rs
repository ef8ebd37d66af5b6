//! How a room's service comes to exist: restored from the room's snapshot when a store holds
//! one, built fresh otherwise.

use super::room_context::{Outbox, RoomContext};
use super::room_snapshot::RoomSnapshot;
use super::RoomError;
use jamsocket::{JamsocketServiceFactory, RestoreError, ServiceError};
use jamsocket_store::{Snapshots, StoreError};
use std::sync::{Arc, Mutex};

/// A room's service, and what the room itself had saved.
pub(super) struct Opened<S> {
    pub service: S,
    pub outbox: Arc<Mutex<Outbox>>,
    /// The saved room, when the service was restored from it.
    pub restored: Option<RoomSnapshot>,
    /// The next client id: continued from a snapshot whose envelope could be read, even when
    /// its service could not, so that ids are never reused in a room.
    pub next_client: u32,
}

/// Restores the room `id` from `store` if it holds a usable snapshot, or builds it fresh. A
/// snapshot that cannot be used never keeps the room from opening: it is logged (and, when its
/// bytes are bad, kept aside in the store); a store that cannot be read does, since opening a
/// fresh room would overwrite the state it may hold.
pub(super) async fn open<F: JamsocketServiceFactory<RoomContext>>(
    factory: &F,
    id: &str,
    store: Option<&Snapshots>,
) -> Result<Opened<F::Service>, RoomError> {
    let saved = match store {
        Some(store) => load(store, id).await?.map(|saved| (store, saved)),
        None => None,
    };
    let next_client = saved.as_ref().map_or(1, |(_, saved)| saved.next_client);
    if let Some((store, saved)) = saved {
        let (context, outbox) = RoomContext::new();
        match factory.restore(id, context, &saved.service).await {
            Ok(service) => {
                tracing::info!(room = %id, clients = saved.clients.len(), "room restored from its snapshot");
                return Ok(Opened {
                    service,
                    outbox,
                    next_client,
                    restored: Some(saved),
                });
            }
            Err(RestoreError::Service(err)) => return Err(refusal(id, err)),
            Err(RestoreError::Corrupt(cause)) => {
                tracing::error!(room = %id, %cause, "the room's snapshot is corrupt: kept aside in the store; the room starts fresh");
                store.quarantine(id, saved.encode());
            }
            Err(err) => {
                tracing::warn!(room = %id, reason = %err, "the room's snapshot cannot be restored; the room starts fresh");
            }
        }
    }
    let (context, outbox) = RoomContext::new();
    let service = factory
        .build(id, context)
        .await
        .map_err(|err| refusal(id, err))?;
    Ok(Opened {
        service,
        outbox,
        restored: None,
        next_client,
    })
}

/// The room's saved envelope, if the store holds a readable one.
async fn load(store: &Snapshots, id: &str) -> Result<Option<RoomSnapshot>, RoomError> {
    let bytes = match store.load(id).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        // The store kept the bytes aside and logged it.
        Err(StoreError::Corrupt { .. }) => return Ok(None),
        Err(err) => {
            tracing::error!(room = %id, error = %err, "cannot read the room's snapshot: refusing to open it");
            return Err(RoomError::Unavailable {
                room: id.to_string(),
                cause: format!("its saved state cannot be read: {err}"),
            });
        }
    };
    match RoomSnapshot::decode(&bytes) {
        Ok(saved) => Ok(Some(saved)),
        Err(err) => {
            tracing::error!(room = %id, error = %err, "the room's snapshot is corrupt: kept aside in the store; the room starts fresh");
            store.quarantine(id, bytes);
            Ok(None)
        }
    }
}

/// The refusal for a room whose service could not be built.
fn refusal(id: &str, err: ServiceError) -> RoomError {
    tracing::error!(room = %id, error = %err, "room could not be created");
    match err {
        ServiceError::Unavailable(cause) => RoomError::Unavailable {
            room: id.to_string(),
            cause: cause.to_string(),
        },
        other => RoomError::Failed {
            room: id.to_string(),
            cause: other.to_string(),
        },
    }
}
