//! A request from the server side: the guest's `jamsocket_request`, or 404 without it.

use super::guest_exports::{returned_bytes, write_input};
use super::WasmHost;
use crate::GuestFailure;
use jamsocket::abi::{decode_response, exports};
use jamsocket::{Response, ServiceError};

impl WasmHost {
    /// See [`WasmHost`]'s `request`.
    pub(super) async fn handle_request(&mut self, body: &[u8]) -> Result<Response, ServiceError> {
        let Some(request) = self.exports.request.clone() else {
            self.check_usable(exports::REQUEST)?;
            return Ok(Response::not_found());
        };
        self.call(exports::REQUEST, async |store, guest| {
            let (ptr, len) = write_input(store, guest, body).await?;
            let packed = request
                .call_async(&mut *store, (ptr, len))
                .await
                .map_err(|error| (exports::REQUEST, error))?;
            let bytes = returned_bytes(guest.memory.data(&*store), exports::REQUEST, packed)?;
            decode_response(bytes).map_err(|error| {
                let failure = GuestFailure::BadReturn {
                    export: exports::REQUEST,
                    value: packed,
                    problem: format!("is not a response: {error}"),
                };
                (exports::REQUEST, failure.into())
            })
        })
        .await
    }
}
