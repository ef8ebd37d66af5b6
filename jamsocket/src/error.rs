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
