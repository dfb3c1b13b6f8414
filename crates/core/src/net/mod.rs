//! The REST transport of NET mode (net-protocol.md §1, §5): URLs and query encoding
//! (`route`), response envelopes and error shapes (`envelope`), the retry policy (`retry`)
//! and the pooled HTTP client (`client`). The dialect mapping lives in `dialect::net`, the
//! device flow in `auth`.

pub mod client;
pub mod envelope;
pub mod retry;
pub mod route;

#[cfg(test)]
pub(crate) mod test_server;

pub use client::{Body, HttpCall, HttpClient, HttpReply, Method, USER_AGENT};
pub use envelope::{http_error, is_missing_record, parse_success, server_error, Envelope, ServerError};
pub use retry::RetryPolicy;
pub use route::{api_path, build_url, encode_segment, Query, API_PREFIX};
