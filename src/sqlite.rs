//! The SQLite dialect runs on the JavaScript thread: a call returns its JSON result
//! directly, with no thread hop. While a `$transaction` holds the connection, calls from
//! outside that transaction get a Promise instead and run, in order, when it ends.

use std::collections::VecDeque;
use std::sync::Mutex;

use mosta_core::dialect::sqlite::SqliteSession;
use mosta_core::dialect::Admin;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::errors::{napi, to_napi};

/// One call, kept whole so it can wait in the queue.
enum Op {
  InitSchema(Vec<u32>),
  Call { method: String, handle: u32, args: String },
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
}

#[napi]
pub struct NativeSqlite {
  state: Mutex<State>,
}

impl NativeSqlite {
  pub fn new(session: SqliteSession) -> Self {
    NativeSqlite { state: Mutex::new(State { session, queue: VecDeque::new() }) }
  }
}

/// Runs one call.
fn run(s: &mut SqliteSession, op: Op) -> mosta_core::Result<String> {
  Ok(match op {
    Op::InitSchema(h) => s.init_schema(&h).map(|_| "null".to_string())?,
    Op::Call { method, handle, args } => s.call(&method, handle, &args)?,
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
        let js = String::to_napi_value(env.raw(), v)?;
        check_status!(sys::napi_resolve_deferred(env.raw(), d.0, js))
      }
      Err(e) => {
        let err = JsError::from(to_napi(e)).into_unknown(*env);
        check_status!(sys::napi_reject_deferred(env.raw(), d.0, err.raw()))
      }
    }
  }
}

fn lock(state: &Mutex<State>) -> Result<std::sync::MutexGuard<'_, State>> {
  state.lock().map_err(|_| napi::Error::new(Status::GenericFailure, mosta_core::Error::internal("sqlite state poisoned by an earlier panic").to_json()))
}

impl NativeSqlite {
  /// Runs `op` now when the connection admits it, else queues it behind the open
  /// transaction and returns a Promise.
  fn submit<'e>(&self, env: &'e Env, op: Op, tx: Option<String>) -> Result<Either<String, PromiseRaw<'e, String>>> {
    let mut st = lock(&self.state)?;
    // Calls inside the open transaction run at once (the transaction waits for them); other
    // calls keep their order behind anything already queued.
    let now = matches!(op, Op::Commit(_) | Op::Rollback(_)) || st.session.owns(tx.as_deref()) || (st.queue.is_empty() && st.session.admits(tx.as_deref()));
    if now {
      let ends_tx = matches!(op, Op::Commit(_) | Op::Rollback(_));
      let r = run(&mut st.session, op);
      // A commit or rollback that failed may still have ended the transaction: the queue
      // must move whenever the connection is free again.
      if ends_tx && st.session.is_idle() {
        drain(env, &mut st)?;
      }
      return napi(r).map(Either::A);
    }
    let (mut deferred, mut promise) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: plain Node-API call on the JavaScript thread with valid out-pointers.
    check_status!(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
    st.queue.push_back(Queued { op, tx, deferred: Deferred(deferred) });
    Ok(Either::B(PromiseRaw::new(env.raw(), promise)))
  }
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

  #[napi(getter)]
  pub fn dates_as_dates(&self) -> bool {
    false
  }

  #[napi(catch_unwind)]
  pub fn compile(&self, schema_json: String) -> Result<u32> {
    napi(lock(&self.state)?.session.compile(&schema_json))
  }

  /// Single-row answers may come shaped (`[shape, value, …]`).
  #[napi(getter)]
  pub fn shaped_rows(&self) -> bool {
    true
  }

  /// The keys of a shaped single-row answer, null for an unknown shape.
  #[napi(catch_unwind)]
  pub fn shape_keys(&self, shape: u32) -> Result<Option<Vec<String>>> {
    Ok(lock(&self.state)?.session.shape_keys(shape).map(|k| k.to_vec()))
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn init_schema<'e>(&self, env: &'e Env, handles: Vec<u32>) -> Result<Either<String, PromiseRaw<'e, String>>> {
    self.submit(env, Op::InitSchema(handles), None)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn call<'e>(&self, env: &'e Env, method: String, handle: u32, args: String, tx: Option<String>) -> Result<Either<String, PromiseRaw<'e, String>>> {
    self.submit(env, Op::Call { method, handle, args }, tx)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn begin_tx<'e>(&self, env: &'e Env, isolation: Option<String>, parent: Option<String>, explicit: bool) -> Result<Either<String, PromiseRaw<'e, String>>> {
    self.submit(env, Op::Begin { isolation, explicit }, parent)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn commit_tx<'e>(&self, env: &'e Env, id: String) -> Result<Either<String, PromiseRaw<'e, String>>> {
    self.submit(env, Op::Commit(id), None)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn rollback_tx<'e>(&self, env: &'e Env, id: String) -> Result<Either<String, PromiseRaw<'e, String>>> {
    self.submit(env, Op::Rollback(id), None)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn execute<'e>(&self, env: &'e Env, sql: String, params: String, rows: bool, tx: Option<String>) -> Result<Either<String, PromiseRaw<'e, String>>> {
    self.submit(env, Op::Execute { sql, params, rows }, tx)
  }

  #[napi(catch_unwind, ts_return_type = "string | Promise<string>")]
  pub fn admin<'e>(&self, env: &'e Env, op: String, arg: String, tx: Option<String>) -> Result<Either<String, PromiseRaw<'e, String>>> {
    let op = napi(Admin::parse(&op, &arg))?;
    self.submit(env, Op::Admin(op), tx)
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
