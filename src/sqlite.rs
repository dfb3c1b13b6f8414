//! The SQLite dialect runs on the JavaScript thread: a call returns its JSON result
//! directly, with no thread hop. While a `$transaction` holds the connection, calls from
//! outside that transaction get a Promise instead and run, in order, when it ends.
//!
//! Dialect calls, the hot path, go through the module function `sqliteCall`, which names
//! its session by number. A method of the class would cost more than the rest of the
//! binding's work on a small call: napi unwraps and type-checks the receiver and records
//! the borrow in a process-wide locked map, on every call.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use mosta_core::dialect::rows::Slot;
use mosta_core::dialect::sqlite::SqliteSession;
use mosta_core::dialect::{Admin, Request};
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::errors::{napi, to_napi};
use crate::text::{may_hold_replaced_surrogate, JsonOut, ShortStr, TextIn};

/// One call, kept whole so it can wait in the queue.
pub(crate) enum Op {
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

pub(crate) struct State {
  session: SqliteSession,
  queue: VecDeque<Queued>,
  /// The Node-API environment of the first call. Queued calls are settled in whichever
  /// call frees the connection, so every call must come from that one thread and realm;
  /// a session number used elsewhere (a worker) is refused.
  owner: Option<usize>,
  /// Key lists of `create` data sent as values (`records.rs`), by number.
  record_shapes: Vec<Arc<[String]>>,
}

/// Key lists a session numbers; data with other keys travels as JSON.
const RECORD_SHAPES_MAX: usize = 256;

pub(crate) type Shared = Arc<Mutex<State>>;

/// Open sessions by number (freed slots are reused: a number stays taken while JavaScript
/// holds its `NativeSqlite`).
static SESSIONS: RwLock<Vec<Option<Shared>>> = RwLock::new(Vec::new());

/// See `NativeSqlite::template_of`.
#[napi(object)]
pub struct RowTemplate {
  pub keys: Vec<String>,
  pub slots: Vec<i32>,
}

#[napi]
pub struct NativeSqlite {
  number: u32,
  state: Shared,
}

impl NativeSqlite {
  pub fn new(session: SqliteSession) -> Self {
    let state = Arc::new(Mutex::new(State { session, queue: VecDeque::new(), owner: None, record_shapes: Vec::new() }));
    let mut all = SESSIONS.write().unwrap_or_else(|p| p.into_inner());
    let number = match all.iter().position(Option::is_none) {
      Some(i) => {
        all[i] = Some(state.clone());
        i
      }
      None => {
        all.push(Some(state.clone()));
        all.len() - 1
      }
    };
    NativeSqlite { number: number as u32, state }
  }
}

impl Drop for NativeSqlite {
  fn drop(&mut self) {
    if let Some(slot) = SESSIONS.write().unwrap_or_else(|p| p.into_inner()).get_mut(self.number as usize) {
      *slot = None;
    }
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
pub(crate) fn session_state(session: u32) -> Result<Shared> {
  let state = SESSIONS.read().ok().and_then(|all| all.get(session as usize).cloned().flatten());
  state.ok_or_else(|| to_napi(mosta_core::Error::new(mosta_core::Code::Closed, "this sqlite dialect no longer exists")))
}

/// The keys of record shape `shape` of a session (see `NativeSqlite::record_shape`).
pub(crate) fn record_keys(state: &Mutex<State>, shape: u32) -> Result<Arc<[String]>> {
  let st = lock(state)?;
  let keys = st.record_shapes.get(shape as usize).cloned();
  keys.ok_or_else(|| to_napi(mosta_core::Error::internal(format!("unknown record shape {shape}"))))
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
pub(crate) type Answer<'e> = Either<JsonOut, PromiseRaw<'e, String>>;

fn lock(state: &Mutex<State>) -> Result<std::sync::MutexGuard<'_, State>> {
  state.lock().map_err(|_| napi::Error::new(Status::GenericFailure, mosta_core::Error::internal("sqlite state poisoned by an earlier panic").to_json()))
}

/// Runs `op` now when the connection admits it, else queues it behind the open transaction
/// and returns a Promise.
pub(crate) fn submit<'e>(state: &Mutex<State>, env: &'e Env, op: Op, tx: Option<&str>) -> Result<Answer<'e>> {
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
    let mut st = lock(&self.state)?;
    if st.record_shapes.len() >= RECORD_SHAPES_MAX {
      return Ok(None);
    }
    let distinct: std::collections::HashSet<&String> = keys.iter().collect();
    if distinct.len() != keys.len() {
      return Err(Error::new(Status::InvalidArg, "a record shape lists a key twice"));
    }
    st.record_shapes.push(keys.into());
    Ok(Some(st.record_shapes.len() as u32 - 1))
  }

  /// The keys of a shaped row, null for an unknown shape.
  #[napi(catch_unwind)]
  pub fn shape_keys(&self, shape: u32) -> Result<Option<Vec<String>>> {
    Ok(lock(&self.state)?.session.shape_keys(shape).map(|k| k.to_vec()))
  }

  /// The keys of a templated `create` answer (`E[template, made…]`) and, for each, where
  /// its value comes from: the index of the caller's value, -1 for the answer's next made
  /// value, -2 for `[]`. Null for an unknown template.
  #[napi(catch_unwind)]
  pub fn template_of(&self, template: u32) -> Result<Option<RowTemplate>> {
    let st = lock(&self.state)?;
    Ok(st.session.template(template).map(|t| RowTemplate {
      keys: t.keys.to_vec(),
      slots: t
        .slots
        .iter()
        .map(|s| match s {
          Slot::Given(i) => *i as i32,
          Slot::Made => -1,
          Slot::Empty => -2,
        })
        .collect(),
    }))
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
