//! Everything a service needs: `use jamsocket_wasm::prelude::*;`.

pub use crate::jamsocket_wasm;
pub use jamsocket::{ClientId, JamsocketContext, MessageRecipient, SimpleJamsocketService};
