//! Integration tests of jamsocket-server over real TCP sockets: the shared suite
//! (`jamsocket-test-suite`, also run by `jamsocket-cli` with WebAssembly rooms) with native
//! rooms, and the static files and metrics, which only this binary tests.

mod metrics;
mod static_files;

/// The rooms under test: the conformance service, natively.
fn factory() -> jamsocket::SimpleJamsocketServiceFactory<conformance_service::ConformanceService> {
    Default::default()
}

/// Rooms that keep snapshots: the conformance service with serde.
fn durable_factory() -> jamsocket::SimpleJamsocketServiceFactory<
    jamsocket::Durable<conformance_service::ConformanceService>,
> {
    Default::default()
}

jamsocket_test_suite::server_tests!(factory());
// Native rooms opt in to snapshots with serde.
jamsocket_test_suite::durable_tests!(crate::durable_factory());
