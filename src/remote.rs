//! Dialects whose calls wait (PostgreSQL, MySQL/MariaDB pools, NET): every method hands a
//! future to napi's tokio runtime and returns a Promise.

use std::sync::Arc;

use mosta_core::dialect::{Admin, AsyncDialect};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{napi, to_napi};

#[napi]
pub struct NativeAsync {
  inner: Arc<dyn AsyncDialect>,
}

impl NativeAsync {
  pub fn new(inner: Arc<dyn AsyncDialect>) -> Self {
    NativeAsync { inner }
  }
}

fn spawn<'e, T: ToNapiValue + Send + 'static>(env: &'e Env, fut: mosta_core::dialect::BoxFuture<T>) -> Result<PromiseRaw<'e, T>> {
  env.spawn_future(async move { fut.await.map_err(to_napi) })
}

#[napi]
impl NativeAsync {
  #[napi(getter)]
  pub fn dialect_type(&self) -> String {
    self.inner.dialect_type().to_string()
  }

  /// Dates come back as ISO strings; JavaScript turns declared date columns into `Date`s.
  #[napi(getter)]
  pub fn dates_as_dates(&self) -> bool {
    !matches!(self.inner.dialect_type(), "net-proxy")
  }

  #[napi(catch_unwind)]
  pub fn compile(&self, schema_json: String) -> Result<u32> {
    napi(self.inner.compile(&schema_json))
  }

  #[napi(ts_return_type = "Promise<void>")]
  pub fn init_schema<'e>(&self, env: &'e Env, handles: Vec<u32>) -> Result<PromiseRaw<'e, ()>> {
    spawn(env, self.inner.clone().init_schema(handles))
  }

  #[napi(ts_return_type = "Promise<string>")]
  pub fn call<'e>(&self, env: &'e Env, method: String, handle: u32, args: String, tx: Option<String>) -> Result<PromiseRaw<'e, String>> {
    spawn(env, self.inner.clone().call(method, handle, args, tx))
  }

  #[napi(ts_return_type = "Promise<string>")]
  pub fn begin_tx<'e>(&self, env: &'e Env, isolation: Option<String>, parent: Option<String>, explicit: bool) -> Result<PromiseRaw<'e, String>> {
    spawn(env, self.inner.clone().begin_tx(parent, isolation, explicit))
  }

  #[napi(ts_return_type = "Promise<void>")]
  pub fn commit_tx<'e>(&self, env: &'e Env, id: String) -> Result<PromiseRaw<'e, ()>> {
    spawn(env, self.inner.clone().commit_tx(id))
  }

  #[napi(ts_return_type = "Promise<void>")]
  pub fn rollback_tx<'e>(&self, env: &'e Env, id: String) -> Result<PromiseRaw<'e, ()>> {
    spawn(env, self.inner.clone().rollback_tx(id))
  }

  #[napi(ts_return_type = "Promise<string>")]
  pub fn execute<'e>(&self, env: &'e Env, sql: String, params: String, rows: bool, tx: Option<String>) -> Result<PromiseRaw<'e, String>> {
    spawn(env, self.inner.clone().execute(sql, params, rows, tx))
  }

  #[napi(ts_return_type = "Promise<string>")]
  pub fn admin<'e>(&self, env: &'e Env, op: String, arg: String, tx: Option<String>) -> Result<PromiseRaw<'e, String>> {
    let op = napi(Admin::parse(&op, &arg))?;
    spawn(env, self.inner.clone().admin(op, tx))
  }

  #[napi(ts_return_type = "Promise<void>")]
  pub fn close<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, ()>> {
    spawn(env, self.inner.clone().close())
  }
}
