//! Integration tests of jamsocket-server over real TCP sockets.

mod common;
mod lifecycle;
mod limits;
mod messaging;
mod strategies;
