//! Dialects whose calls wait (PostgreSQL, MySQL/MariaDB pools, NET): every method starts its
//! future on the calling thread and returns a Promise once it has to wait (see `eager`).

use std::sync::{Arc, Mutex};

use mosta_core::dialect::chunks;
use mosta_core::dialect::{Admin, AsyncDialect, BoxFuture};
use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::eager;
use crate::errors::{napi, to_napi};
use crate::records::{Create, RecordShapes, RowTemplate};
use crate::registry::Registry;
use crate::text::{JsonOut, TextIn};

/// JavaScript's receiver of answer pieces: `(streamId, json)`. Weak: it never keeps the
/// process alive.
type PieceFn = ThreadsafeFunction<FnArgs<(u32, JsonOut)>, (), FnArgs<(u32, JsonOut)>, Status, false, true>;

#[napi]
pub struct NativeAsync {
  /// The number `asyncCreate` takes, and the state it reaches.
  number: u32,
  state: Arc<Numbered>,
  pieces: Mutex<Option<Arc<PieceFn>>>,
}

/// What `asyncCreate` reaches by number.
struct Numbered {
  inner: Arc<dyn AsyncDialect>,
  /// Key lists of `create` data sent as values (`records.rs`), by number.
  record_shapes: Mutex<RecordShapes>,
}

static DIALECTS: Registry<Numbered> = Registry::new();

impl NativeAsync {
  pub fn new(inner: Arc<dyn AsyncDialect>) -> Self {
    let state = Arc::new(Numbered { inner, record_shapes: Mutex::default() });
    NativeAsync { number: DIALECTS.add(state.clone()), state, pieces: Mutex::new(None) }
  }
}

impl NativeAsync {
  fn dialect(&self) -> &Arc<dyn AsyncDialect> {
    &self.state.inner
  }
}

impl Drop for NativeAsync {
  fn drop(&mut self) {
    DIALECTS.remove(self.number);
  }
}

fn record_shapes(state: &Numbered) -> std::sync::MutexGuard<'_, RecordShapes> {
  state.record_shapes.lock().unwrap_or_else(|p| p.into_inner())
}

/// `asyncCreate` (see `records.rs`): a `create` of data sent as values.
pub(crate) fn create(env: &Env, mut c: Create) -> Result<sys::napi_value> {
  let closed = || to_napi(mosta_core::Error::new(mosta_core::Code::Closed, "this dialect no longer exists"));
  let state = DIALECTS.get(c.target).ok_or_else(closed)?;
  let keys = record_shapes(&state).keys(c.shape)?;
  let (handle, tx) = (c.handle, c.tx.take().map(|t| t.as_str().to_string()));
  let req = c.request(&keys)?;
  let answer = spawn(env, json_answer(state.inner.clone().request(handle, req, tx)))?;
  // SAFETY: converting on the JavaScript thread.
  unsafe { ToNapiValue::to_napi_value(env.raw(), answer) }
}

/// What a waiting method returns: its value when it finished at once, else a Promise. (The
/// signatures spell `Result<…>` out: napi's macro throws only for a visible `Result`.)
type Answer<'e, T> = Either<T, Object<'e>>;

/// A call's JSON text, handed to JavaScript as `JsonOut` (see `text`).
fn json_answer(call: BoxFuture<String>) -> BoxFuture<JsonOut> {
  Box::pin(async move { call.await.map(JsonOut) })
}

fn spawn<'e, T: ToNapiValue + Send + 'static>(env: &'e Env, fut: BoxFuture<T>) -> Result<Answer<'e, T>> {
  eager::run(env, fut)
}

#[napi]
impl NativeAsync {
  #[napi(getter)]
  pub fn dialect_type(&self) -> String {
    self.dialect().dialect_type().to_string()
  }

  /// Dates come back as ISO strings; JavaScript turns declared date columns into `Date`s.
  #[napi(getter)]
  pub fn dates_as_dates(&self) -> bool {
    !matches!(self.dialect().dialect_type(), "net-proxy")
  }

  #[napi(catch_unwind)]
  pub fn compile(&self, schema_json: String) -> Result<u32> {
    napi(self.dialect().compile(&schema_json))
  }

  /// Rows read through a schema may come shaped (`[shape, value, …]`; not NET's).
  #[napi(getter)]
  pub fn shaped_rows(&self) -> bool {
    self.dialect().shapes_rows()
  }

  /// The keys of a shaped row, null for an unknown shape.
  #[napi(catch_unwind)]
  pub fn shape_keys(&self, shape: u32) -> Option<Vec<String>> {
    self.dialect().shape_keys(shape).map(|k| k.to_vec())
  }

  /// Whether `create` data may be sent as values (`asyncCreate`, under this number); null
  /// when the dialect takes JSON only (NET).
  #[napi(getter)]
  pub fn values_number(&self) -> Option<u32> {
    self.dialect().takes_requests().then_some(self.number)
  }

  /// Numbers the key list of `create` data sent as values; null once the dialect numbers
  /// as many lists as it keeps (such data travels as JSON).
  #[napi(catch_unwind)]
  pub fn record_shape(&self, keys: Vec<String>) -> Result<Option<u32>> {
    record_shapes(&self.state).register(keys)
  }

  /// See `records::RowTemplate`.
  #[napi(catch_unwind)]
  pub fn template_of(&self, template: u32) -> Option<RowTemplate> {
    self.dialect().template(template).map(RowTemplate::from)
  }

  #[napi(ts_return_type = "void | Promise<void>")]
  pub fn init_schema<'e>(&self, env: &'e Env, handles: Vec<u32>) -> Result<Answer<'e, ()>> {
    spawn(env, self.dialect().clone().init_schema(handles))
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
    let fut = json_answer(self.dialect().clone().call(method, handle, args.0, tx));
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
    spawn(env, self.dialect().clone().begin_tx(parent, isolation, explicit))
  }

  #[napi(ts_return_type = "void | Promise<void>")]
  pub fn commit_tx<'e>(&self, env: &'e Env, id: String) -> Result<Answer<'e, ()>> {
    spawn(env, self.dialect().clone().commit_tx(id))
  }

  #[napi(ts_return_type = "void | Promise<void>")]
  pub fn rollback_tx<'e>(&self, env: &'e Env, id: String) -> Result<Answer<'e, ()>> {
    spawn(env, self.dialect().clone().rollback_tx(id))
  }

  #[napi(ts_return_type = "string | Promise<string>")]
  pub fn execute<'e>(&self, env: &'e Env, sql: String, params: String, rows: bool, tx: Option<String>) -> Result<Answer<'e, String>> {
    spawn(env, self.dialect().clone().execute(sql, params, rows, tx))
  }

  #[napi(ts_return_type = "string | Promise<string>")]
  pub fn admin<'e>(&self, env: &'e Env, op: String, arg: String, tx: Option<String>) -> Result<Answer<'e, String>> {
    let op = napi(Admin::parse(&op, &arg))?;
    spawn(env, self.dialect().clone().admin(op, tx))
  }

  #[napi(ts_return_type = "void | Promise<void>")]
  pub fn close<'e>(&self, env: &'e Env) -> Result<Answer<'e, ()>> {
    spawn(env, self.dialect().clone().close())
  }
}
