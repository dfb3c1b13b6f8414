//! The NET dialect: every call is one REST request to a `@mostajs/net` server. (Work in
//! progress.)

use std::sync::Arc;

use super::AsyncDialect;
use crate::env::EnvSource;
use crate::error::{Code, Error, Result};

pub async fn open(_env: EnvSource) -> Result<Arc<dyn AsyncDialect>> {
  Err(Error::new(Code::Unsupported, "NET mode is not built yet"))
}
