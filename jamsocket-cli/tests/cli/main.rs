//! Tests of the real `jamsocket` binary.

mod attacks;
mod browser;
mod common;
mod dev;
mod errors;
mod new;
#[path = "../../../jamsocket-server/tests/server/raw_frames.rs"]
mod raw_frames;
mod serve;
