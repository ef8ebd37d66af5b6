//! Everything a service needs: `use jamsocket_wasm::prelude::*;`.

pub use crate::jamsocket_wasm;
#[cfg(feature = "serde")]
pub use jamsocket::Durable;
pub use jamsocket::{
    ClientId, JamsocketContext, MessageRecipient, Response, SimpleJamsocketService, User,
};
