//! Core errors cross into JavaScript as a JSON message; `lib/errors.js` turns that into an
//! `Error` with `code`, `dbCode`, `status`, … created in the caller's realm (jest runs tests
//! in their own realm, where addon-made errors fail `instanceof Error`).

use napi::Status;

pub fn to_napi(e: mosta_core::Error) -> napi::Error {
  napi::Error::new(Status::GenericFailure, e.to_json())
}

pub type NapiResult<T> = napi::Result<T>;

/// Converts a core result.
pub fn napi<T>(r: mosta_core::Result<T>) -> NapiResult<T> {
  r.map_err(to_napi)
}
