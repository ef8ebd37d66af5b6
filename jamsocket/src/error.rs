use std::error::Error;
use std::fmt;

type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a host could not create a room or run one of its handlers.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// The room cannot be created right now (for example a capacity limit was reached).
    /// Servers answer this with HTTP 503; trying again later may succeed.
    Unavailable(BoxError),
    /// The service failed. The room cannot continue and its clients are disconnected.
    Failed(BoxError),
}

impl ServiceError {
    /// A room that cannot be created right now.
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        ServiceError::Unavailable(cause.into())
    }

    /// A service that failed and must be closed.
    pub fn failed(cause: impl Into<BoxError>) -> Self {
        ServiceError::Failed(cause.into())
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Unavailable(cause) => write!(f, "service unavailable: {cause}"),
            ServiceError::Failed(cause) => write!(f, "service failed: {cause}"),
        }
    }
}

impl Error for ServiceError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ServiceError::Unavailable(cause) | ServiceError::Failed(cause) => Some(cause.as_ref()),
        }
    }
}

/// Why a room's service could not be recreated from a snapshot. In every case the host starts
/// the room fresh (except [`Service`](RestoreError::Service), which it treats like a failed
/// build), so a snapshot never keeps a room from opening.
#[derive(Debug)]
#[non_exhaustive]
pub enum RestoreError {
    /// The service cannot read this snapshot: it keeps no snapshots, or the snapshot was taken
    /// by other code (a changed WebAssembly module without an explicit restore). Not an error in
    /// the bytes: hosts start the room fresh and say why.
    Unsupported(BoxError),
    /// The snapshot could not be decoded. Hosts keep the bytes aside for inspection and start the
    /// room fresh.
    Corrupt(BoxError),
    /// The service failed while restoring (a guest trapped, a capacity limit was reached).
    Service(ServiceError),
}

impl RestoreError {
    /// A snapshot this service cannot read (see [`RestoreError::Unsupported`]).
    pub fn unsupported(cause: impl Into<BoxError>) -> Self {
        RestoreError::Unsupported(cause.into())
    }

    /// A snapshot that could not be decoded (see [`RestoreError::Corrupt`]).
    pub fn corrupt(cause: impl Into<BoxError>) -> Self {
        RestoreError::Corrupt(cause.into())
    }
}

impl From<ServiceError> for RestoreError {
    fn from(err: ServiceError) -> Self {
        RestoreError::Service(err)
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Unsupported(cause) => write!(f, "snapshot not restorable: {cause}"),
            RestoreError::Corrupt(cause) => write!(f, "corrupt snapshot: {cause}"),
            RestoreError::Service(err) => write!(f, "restoring failed: {err}"),
        }
    }
}

impl Error for RestoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RestoreError::Unsupported(cause) | RestoreError::Corrupt(cause) => Some(cause.as_ref()),
            RestoreError::Service(err) => Some(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_cause() {
        let err = ServiceError::failed("guest trapped in `jamsocket_message`");
        assert_eq!(
            err.to_string(),
            "service failed: guest trapped in `jamsocket_message`"
        );
        assert!(err.source().is_some());
    }
}
