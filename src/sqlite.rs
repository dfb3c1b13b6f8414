//! The SQLite dialect runs on the JavaScript thread: a call returns its JSON result
//! directly, with no thread hop. While a `$transaction` holds the connection, calls from
//! outside that transaction get a Promise instead and run, in order, when it ends.
//!
//! Dialect calls, the hot path, go through the module function `sqliteCall`, which names
//! its session by number. A method of the class would cost more than the rest of the
//! binding's work on a small call: napi unwraps and type-checks the receiver and records
//! the borrow in a process-wide locked map, on every call.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use mosta_core::dialect::sqlite::SqliteSession;
use mosta_core::dialect::{Admin, Request};
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::errors::{napi, to_napi};
use crate::records::{Create, RecordShapes, RowTemplate};
use crate::registry::Registry;
use crate::text::{may_hold_replaced_surrogate, JsonOut, ShortStr, TextIn};

/// One call, kept whole so it can wait in the queue.
enum Op {
  InitSchema(Vec<u32>),
  /// A dialect call, its arguments already read (from JSON, or from JavaScript values:
  /// see `records.rs`), so that a malformed call fails at once, even behind a transaction.
  Request { handle: u32, req: Request },
  Begin { isolation: Option<String>, explicit: bool },
  Commit(String),
  Rollback(String),
  Execute { sql: String, params: String, rows: bool },
  Admin(Admin),
}

/// A promise handed out for a queued call. Settled on the JavaScript thread only.
struct Deferred(sys::napi_deferred);
// SAFETY: created, stored and settled only on the JavaScript thread (the state is reached
// only from sync #[napi] methods); Send is needed because the class may be created by an
// async factory.
unsafe impl Send for Deferred {}

struct Queued {
  op: Op,
  tx: Option<String>,
  deferred: Deferred,
}

struct State {
  session: SqliteSession,
  queue: VecDeque<Queued>,
  /// The Node-API environment of the first call. Queued calls are settled in whichever
  /// call frees the connection, so every call must come from that one thread and realm;
  /// a session number used elsewhere (a worker) is refused.
  owner: Option<usize>,
  /// Key lists of `create` data sent as values (`records.rs`), by number.
  record_shapes: RecordShapes,
}

type Shared = Arc<Mutex<State>>;

/// Open sessions by number.
static SESSIONS: Registry<Mutex<State>> = Registry::new();

#[napi]
pub struct NativeSqlite {
  number: u32,
  state: Shared,
}

impl NativeSqlite {
  pub fn new(session: SqliteSession) -> Self {
    let state = Arc::new(Mutex::new(State { session, queue: VecDeque::new(), owner: None, record_shapes: RecordShapes::default() }));
    NativeSqlite { number: SESSIONS.add(state.clone()), state }
  }
}

impl Drop for NativeSqlite {
  fn drop(&mut self) {
    SESSIONS.remove(self.number);
  }
}

/// A dialect call: `method` of schema `handle` with `args` (a JSON array), inside
/// transaction context `tx`, on session `session` (`NativeSqlite.session`).
#[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
pub fn sqlite_call<'e>(
  env: &'e Env,
  session: u32,
  #[napi(ts_arg_type = "string")] method: ShortStr,
  handle: u32,
  #[napi(ts_arg_type = "string")] args: TextIn,
  #[napi(ts_arg_type = "string | undefined | null")] tx: Option<ShortStr>,
) -> Result<Answer<'e>> {
  let state = session_state(session)?;
  let req = napi(Request::parse(method.as_str(), &args.0))?;
  submit(&state, env, Op::Request { handle, req }, tx.as_ref().map(ShortStr::as_str))
}

/// `findById` with a string id and no options, the id given as itself: for this, the
/// hottest read, `JSON.stringify` of the arguments and their parse cost more than the rest
/// of the binding's work. Null when the id must go as JSON (see
/// `may_hold_replaced_surrogate`).
#[napi(catch_unwind, ts_return_type = "string | Promise<string> | null")]
pub fn sqlite_find_by_id<'e>(
  env: &'e Env,
  session: u32,
  handle: u32,
  #[napi(ts_arg_type = "string")] id: TextIn,
  #[napi(ts_arg_type = "string | undefined | null")] tx: Option<ShortStr>,
) -> Result<Option<Answer<'e>>> {
  if may_hold_replaced_surrogate(&id.0) {
    return Ok(None);
  }
  let state = session_state(session)?;
  // As `Request::parse` reads an id: the empty string means no id.
  let id = Some(id.0).filter(|s| !s.is_empty());
  let req = Request::FindById { id, options: serde_json::Value::Null };
  submit(&state, env, Op::Request { handle, req }, tx.as_ref().map(ShortStr::as_str)).map(Some)
}

/// The state of session number `session`.
fn session_state(session: u32) -> Result<Shared> {
  SESSIONS.get(session).ok_or_else(|| to_napi(mosta_core::Error::new(mosta_core::Code::Closed, "this sqlite dialect no longer exists")))
}

/// `sqliteCreate` (see `records.rs`): a `create` of data sent as values.
pub(crate) fn create(env: &Env, mut c: Create) -> Result<sys::napi_value> {
  let state = session_state(c.target)?;
  let keys = lock(&state)?.record_shapes.keys(c.shape)?;
  let (handle, tx) = (c.handle, c.tx.take());
  let req = c.request(&keys)?;
  let answer = submit(&state, env, Op::Request { handle, req }, tx.as_ref().map(ShortStr::as_str))?;
  // SAFETY: converting on the JavaScript thread.
  unsafe { ToNapiValue::to_napi_value(env.raw(), answer) }
}

/// Runs one call.
fn run(s: &mut SqliteSession, op: Op) -> mosta_core::Result<String> {
  Ok(match op {
    Op::InitSchema(h) => s.init_schema(&h).map(|_| "null".to_string())?,
    Op::Request { handle, req } => s.run(handle, &req)?,
    Op::Begin { isolation, explicit } => s.begin(isolation.as_deref(), explicit)?,
    Op::Commit(id) => s.commit(&id).map(|_| "null".to_string())?,
    Op::Rollback(id) => s.rollback(&id).map(|_| "null".to_string())?,
    Op::Execute { sql, params, rows } => s.execute(&sql, &params, rows)?,
    Op::Admin(a) => s.admin(&a)?,
  })
}

fn settle(env: &Env, d: Deferred, r: mosta_core::Result<String>) -> Result<()> {
  // SAFETY: `d` came from napi_create_promise on this thread and is settled exactly once.
  unsafe {
    match r {
      Ok(v) => {
        let js = JsonOut::to_napi_value(env.raw(), JsonOut(v))?;
        check_status!(sys::napi_resolve_deferred(env.raw(), d.0, js))
      }
      Err(e) => {
        let err = JsError::from(to_napi(e)).into_unknown(*env);
        check_status!(sys::napi_reject_deferred(env.raw(), d.0, err.raw()))
      }
    }
  }
}

/// A call's JSON answer now, or a Promise of it when the call waits for a transaction.
type Answer<'e> = Either<JsonOut, PromiseRaw<'e, String>>;

fn lock(state: &Mutex<State>) -> Result<std::sync::MutexGuard<'_, State>> {
  state.lock().map_err(|_| napi::Error::new(Status::GenericFailure, mosta_core::Error::internal("sqlite state poisoned by an earlier panic").to_json()))
}

/// Runs `op` now when the connection admits it, else queues it behind the open transaction
/// and returns a Promise.
fn submit<'e>(state: &Mutex<State>, env: &'e Env, op: Op, tx: Option<&str>) -> Result<Answer<'e>> {
  let mut st = lock(state)?;
  if *st.owner.get_or_insert(env.raw() as usize) != env.raw() as usize {
    return Err(to_napi(mosta_core::Error::internal("this sqlite dialect belongs to another thread")));
  }
  // Calls inside the open transaction run at once (the transaction waits for them); other
  // calls keep their order behind anything already queued.
  let now = matches!(op, Op::Commit(_) | Op::Rollback(_)) || st.session.owns(tx) || (st.queue.is_empty() && st.session.admits(tx));
  if now {
    let ends_tx = matches!(op, Op::Commit(_) | Op::Rollback(_));
    let r = run(&mut st.session, op);
    // A commit or rollback that failed may still have ended the transaction: the queue
    // must move whenever the connection is free again.
    if ends_tx && st.session.is_idle() {
      drain(env, &mut st)?;
    }
    return napi(r).map(|s| Either::A(JsonOut(s)));
  }
  let (mut deferred, mut promise) = (std::ptr::null_mut(), std::ptr::null_mut());
  // SAFETY: plain Node-API call on the JavaScript thread with valid out-pointers.
  check_status!(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
  st.queue.push_back(Queued { op, tx: tx.map(str::to_string), deferred: Deferred(deferred) });
  Ok(Either::B(PromiseRaw::new(env.raw(), promise)))
}

/// After a transaction ends, runs queued calls in order until one cannot run yet (it waits
/// for the transaction that a queued `beginTx` just opened).
fn drain(env: &Env, st: &mut State) -> Result<()> {
  while st.queue.front().is_some_and(|q| st.session.admits(q.tx.as_deref())) {
    let Some(q) = st.queue.pop_front() else { break };
    let r = run(&mut st.session, q.op);
    settle(env, q.deferred, r)?;
  }
  Ok(())
}

#[napi]
impl NativeSqlite {
  #[napi(getter)]
  pub fn dialect_type(&self) -> String {
    "sqlite".to_string()
  }

  /// The number `sqliteCall` takes.
  #[napi(getter)]
  pub fn session(&self) -> u32 {
    self.number
  }

  #[napi(getter)]
  pub fn dates_as_dates(&self) -> bool {
    false
  }

  #[napi(catch_unwind)]
  pub fn compile(&self, schema_json: String) -> Result<u32> {
    napi(lock(&self.state)?.session.compile(&schema_json))
  }

  /// Rows read through a schema may come shaped (`[shape, value, …]`).
  #[napi(getter)]
  pub fn shaped_rows(&self) -> bool {
    true
  }

  /// Numbers the key list of `create` data sent as values (`sqliteCreate`); null once the
  /// session numbers as many lists as it keeps (such data travels as JSON).
  #[napi(catch_unwind)]
  pub fn record_shape(&self, keys: Vec<String>) -> Result<Option<u32>> {
    lock(&self.state)?.record_shapes.register(keys)
  }

  /// The keys of a shaped row, null for an unknown shape.
  #[napi(catch_unwind)]
  pub fn shape_keys(&self, shape: u32) -> Result<Option<Vec<String>>> {
    Ok(lock(&self.state)?.session.shape_keys(shape).map(|k| k.to_vec()))
  }

  /// See `records::RowTemplate`.
  #[napi(catch_unwind)]
  pub fn template_of(&self, template: u32) -> Result<Option<RowTemplate>> {
    Ok(lock(&self.state)?.session.template(template).map(RowTemplate::from))
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn init_schema<'e>(&self, env: &'e Env, handles: Vec<u32>) -> Result<Answer<'e>> {
    submit(&self.state, env, Op::InitSchema(handles), None)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn begin_tx<'e>(&self, env: &'e Env, isolation: Option<String>, parent: Option<String>, explicit: bool) -> Result<Answer<'e>> {
    submit(&self.state, env, Op::Begin { isolation, explicit }, parent.as_deref())
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn commit_tx<'e>(&self, env: &'e Env, id: String) -> Result<Answer<'e>> {
    submit(&self.state, env, Op::Commit(id), None)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn rollback_tx<'e>(&self, env: &'e Env, id: String) -> Result<Answer<'e>> {
    submit(&self.state, env, Op::Rollback(id), None)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn execute<'e>(&self, env: &'e Env, sql: String, params: String, rows: bool, tx: Option<String>) -> Result<Answer<'e>> {
    submit(&self.state, env, Op::Execute { sql, params, rows }, tx.as_deref())
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn admin<'e>(&self, env: &'e Env, op: String, arg: String, tx: Option<String>) -> Result<Answer<'e>> {
    let op = napi(Admin::parse(&op, &arg))?;
    submit(&self.state, env, Op::Admin(op), tx.as_deref())
  }

  /// Closes the connection (after the `create-drop` cleanup); queued calls are rejected.
  #[napi(catch_unwind)]
  pub fn close(&self, env: Env) -> Result<()> {
    let mut st = lock(&self.state)?;
    let r = st.session.close();
    while let Some(q) = st.queue.pop_front() {
      settle(&env, q.deferred, Err(mosta_core::Error::new(mosta_core::Code::Closed, "the sqlite dialect was disconnected while this call waited for a transaction")))?;
    }
    napi(r)
  }
}
