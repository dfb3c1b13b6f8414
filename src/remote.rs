//! Dialects whose calls wait (PostgreSQL, MySQL/MariaDB pools, NET): every method starts its
//! future on the calling thread and returns a Promise once it has to wait (see `eager`).

use std::sync::{Arc, Mutex};

use mosta_core::dialect::chunks;
use mosta_core::dialect::{Admin, AsyncDialect};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::eager;
use crate::errors::napi;
use crate::text::{JsonOut, TextIn};

/// JavaScript's receiver of answer pieces: `(streamId, json)`. Weak: it never keeps the
/// process alive.
type PieceFn = ThreadsafeFunction<FnArgs<(u32, JsonOut)>, (), FnArgs<(u32, JsonOut)>, Status, false, true>;

#[napi]
pub struct NativeAsync {
  inner: Arc<dyn AsyncDialect>,
  pieces: Mutex<Option<Arc<PieceFn>>>,
}

impl NativeAsync {
  pub fn new(inner: Arc<dyn AsyncDialect>) -> Self {
    NativeAsync { inner, pieces: Mutex::new(None) }
  }
}

/// What a waiting method returns: its value when it finished at once, else a Promise. (The
/// signatures spell `Result<…>` out: napi's macro throws only for a visible `Result`.)
type Answer<'e, T> = Either<T, Object<'e>>;

fn spawn<'e, T: ToNapiValue + Send + 'static>(env: &'e Env, fut: mosta_core::dialect::BoxFuture<T>) -> Result<Answer<'e, T>> {
  eager::run(env, fut)
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

  /// Rows read through a schema may come shaped (`[shape, value, …]`; not NET's).
  #[napi(getter)]
  pub fn shaped_rows(&self) -> bool {
    self.inner.shapes_rows()
  }

  /// The keys of a shaped row, null for an unknown shape.
  #[napi(catch_unwind)]
  pub fn shape_keys(&self, shape: u32) -> Option<Vec<String>> {
    self.inner.shape_keys(shape).map(|k| k.to_vec())
  }

  #[napi(ts_return_type = "void | Promise<void>")]
  pub fn init_schema<'e>(&self, env: &'e Env, handles: Vec<u32>) -> Result<Answer<'e, ()>> {
    spawn(env, self.inner.clone().init_schema(handles))
  }

  /// Registers the receiver of the pieces of large answers (see `chunks`).
  #[napi(ts_args_type = "receive: (stream: number, json: string) => void")]
  pub fn on_pieces(&self, receive: Function<FnArgs<(u32, JsonOut)>, ()>) -> Result<()> {
    let tsfn = receive.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?;
    *self.pieces.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(tsfn));
    Ok(())
  }

  /// `stream`: the id under which pieces of a large row answer are sent to the `onPieces`
  /// receiver while the query runs.
  #[napi(ts_return_type = "string | Promise<string>")]
  pub fn call<'e>(&self, env: &'e Env, method: String, handle: u32, #[napi(ts_arg_type = "string")] args: TextIn, tx: Option<String>, stream: Option<u32>) -> Result<Answer<'e, JsonOut>> {
    let call = self.inner.clone().call(method, handle, args.0, tx);
    let fut: mosta_core::dialect::BoxFuture<JsonOut> = Box::pin(async move { call.await.map(JsonOut) });
    let receiver = stream.and_then(|id| Some((id, self.pieces.lock().ok()?.clone()?)));
    match receiver {
      None => spawn(env, fut),
      Some((id, tsfn)) => {
        let send: chunks::ChunkFn = Arc::new(move |json| {
          tsfn.call(FnArgs::from((id, JsonOut(json))), ThreadsafeFunctionCallMode::NonBlocking);
        });
        spawn(env, Box::pin(chunks::scope(send, fut)))
      }
    }
  }

  #[napi(ts_return_type = "string | Promise<string>")]
  pub fn begin_tx<'e>(&self, env: &'e Env, isolation: Option<String>, parent: Option<String>, explicit: bool) -> Result<Answer<'e, String>> {
    spawn(env, self.inner.clone().begin_tx(parent, isolation, explicit))
  }

  #[napi(ts_return_type = "void | Promise<void>")]
  pub fn commit_tx<'e>(&self, env: &'e Env, id: String) -> Result<Answer<'e, ()>> {
    spawn(env, self.inner.clone().commit_tx(id))
  }

  #[napi(ts_return_type = "void | Promise<void>")]
  pub fn rollback_tx<'e>(&self, env: &'e Env, id: String) -> Result<Answer<'e, ()>> {
    spawn(env, self.inner.clone().rollback_tx(id))
  }

  #[napi(ts_return_type = "string | Promise<string>")]
  pub fn execute<'e>(&self, env: &'e Env, sql: String, params: String, rows: bool, tx: Option<String>) -> Result<Answer<'e, String>> {
    spawn(env, self.inner.clone().execute(sql, params, rows, tx))
  }

  #[napi(ts_return_type = "string | Promise<string>")]
  pub fn admin<'e>(&self, env: &'e Env, op: String, arg: String, tx: Option<String>) -> Result<Answer<'e, String>> {
    let op = napi(Admin::parse(&op, &arg))?;
    spawn(env, self.inner.clone().admin(op, tx))
  }

  #[napi(ts_return_type = "void | Promise<void>")]
  pub fn close<'e>(&self, env: &'e Env) -> Result<Answer<'e, ()>> {
    spawn(env, self.inner.clone().close())
  }
}
