//! Tests of the real `jamsocket` binary.

mod attacks;
mod browser;
mod cluster;
mod common;
mod dev;
mod durable;
mod errors;
mod grafana;
mod identity;
mod new;
mod ops;
mod serve;
mod ts_client;

use jamsocket_test_suite::raw_frames;
