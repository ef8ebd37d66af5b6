//! Integration tests of jamsocket-server over real TCP sockets.

mod common;

/// The rooms under test: the conformance service, natively.
fn factory() -> jamsocket::SimpleJamsocketServiceFactory<conformance_service::ConformanceService> {
    Default::default()
}

mod attacks;
mod chaos;
mod lifecycle;
mod limits;
mod messaging;
mod protocol;
mod raw_frames;
mod static_files;
mod strategies;
