//! The engine of `@mostajs/data-plug`: environment resolution, schemas, SQL generation, the
//! SQL and NET dialects, the device flow and the token cache. No Node-API here: the binding
//! crate converts arguments and errors and hands work to this crate.

pub mod auth;
pub mod dialect;
pub mod env;
pub mod error;
pub mod fields;
pub mod iso_date;
pub mod redact;
pub mod net;
pub mod per_schema;
pub mod schema;
pub mod sql;
pub mod tls;

pub use error::{Code, Error, Result};
