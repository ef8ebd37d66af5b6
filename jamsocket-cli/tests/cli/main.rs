//! Tests of the real `jamsocket` binary.

mod attacks;
mod browser;
mod common;
mod dev;
mod errors;
mod new;
mod serve;
