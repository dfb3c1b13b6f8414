//! PostgreSQL (and CockroachDB) over a sqlx pool. (Work in progress.)

use std::sync::Arc;

use super::AsyncDialect;
use crate::env::OrmConfig;
use crate::error::{Code, Error, Result};

pub async fn open(_config: OrmConfig) -> Result<Arc<dyn AsyncDialect>> {
  Err(Error::new(Code::Unsupported, "the postgres dialect is not built yet"))
}
