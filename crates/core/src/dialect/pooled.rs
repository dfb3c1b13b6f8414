//! Dialects over a connection pool (PostgreSQL, MySQL/MariaDB). A transaction checks one
//! connection out of the pool and keeps it for its whole life, so concurrent transactions
//! on one dialect never share a connection (the reference does not pin, §12.2 #8); calls
//! inside a transaction are serialised on that connection.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::engine::SqlEngine;
use super::rows::Template;
use super::tx::TxStack;
use super::{Admin, AsyncDialect, BoxFuture, Conn, Request};
use crate::env::OrmConfig;
use crate::error::{Code, Error, Result};
use crate::sql::Isolation;

/// A pool of connections of one backend.
pub trait Pool: Send + Sync + 'static {
  type Conn: Conn + 'static;
  /// A connection, or `E_POOL_TIMEOUT` / `E_CONNECTION`.
  fn acquire(&self) -> impl Future<Output = Result<Self::Conn>> + Send;
  /// Gives a connection back without reusing it (its state is unknown after a failure).
  fn discard(&self, conn: Self::Conn) -> impl Future<Output = ()> + Send;
  /// How long `conn` had been lying idle in the pool; `None` when freshly connected. Only an
  /// idle connection can have been closed by the server behind our back.
  fn idle_for(conn: &Self::Conn) -> Option<Duration>;
  /// One round trip: whether the connection still answers (within the pool timeout).
  fn ping(&self, conn: &mut Self::Conn) -> impl Future<Output = bool> + Send;
  /// Drops every idle connection (after one of them turned out dead, the others probably
  /// are too: a server restart, or connections killed together).
  fn flush_idle(&self);
  /// Whether the server's answer `e` says it had ended the session before the statement
  /// could run (PostgreSQL's 57P01 after `pg_terminate_backend`, MariaDB's "connection was
  /// killed"): that statement did not happen.
  fn ended_before_running(e: &Error) -> bool;
  /// Statements that completed on `conn` since it was lent out. A call of several
  /// statements (a write, then its read-back) may have committed its first ones.
  fn statements_completed(conn: &Self::Conn) -> u32;
  fn close(&self) -> impl Future<Output = ()> + Send;
}

/// A write on a connection idle for longer than this pings it first (one round trip). A
/// server restart leaves every connection idle for at least as long as the restart took, so
/// a write after it finds its dead connection before sending anything; connections in
/// steady use are never pinged. (HikariCP skips validation on the same grounds.)
const PING_WRITES_AFTER_IDLE: Duration = Duration::from_millis(500);

/// Whether a call may run again on a fresh connection when its idle pooled one was dead.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rerun {
  /// A read: always.
  Safe,
  /// A write or raw SQL: only when the server proves none of it ran. Otherwise the connection
  /// may have died after the statement committed and running it again could apply it twice;
  /// the caller gets `E_CONNECTION` and the next call gets a fresh connection.
  IfNotRun,
}

struct TxState<C> {
  conn: Option<C>,
  stack: TxStack,
}

type Slot<C> = Arc<tokio::sync::Mutex<TxState<C>>>;

pub struct PooledDialect<P: Pool> {
  pub engine: SqlEngine,
  pool: P,
  dialect_type: &'static str,
  /// Every open frame id (root and savepoints) → its transaction's connection.
  txs: Mutex<HashMap<String, Slot<P::Conn>>>,
  /// The root id of a transaction opened by an explicit `beginTx()` outside any
  /// `$transaction` context: calls without a context join it, as in the reference.
  explicit: Mutex<Option<String>>,
  closed: AtomicBool,
}

fn poisoned() -> Error {
  Error::internal("transaction table lock poisoned by an earlier panic")
}

impl<P: Pool> PooledDialect<P> {
  pub fn new(config: OrmConfig, pool: P, dialect_type: &'static str) -> Self {
    PooledDialect { engine: SqlEngine::new(config), pool, dialect_type, txs: Mutex::default(), explicit: Mutex::default(), closed: AtomicBool::new(false) }
  }

  fn check_open(&self) -> Result<()> {
    if self.closed.load(Ordering::Acquire) {
      return Err(Error::new(Code::Closed, format!("the {} dialect was disconnected; call getDialect() again", self.dialect_type)));
    }
    Ok(())
  }

  /// The transaction a call belongs to: its context id, else the explicit transaction.
  fn slot_for(&self, tx: Option<&str>) -> Result<Option<Slot<P::Conn>>> {
    let txs = self.txs.lock().map_err(|_| poisoned())?;
    if txs.is_empty() {
      return Ok(None); // the common case: no transaction open, no second lock
    }
    if let Some(id) = tx {
      if let Some(s) = txs.get(id) {
        return Ok(Some(s.clone()));
      }
    }
    let explicit = self.explicit.lock().map_err(|_| poisoned())?.clone();
    Ok(explicit.and_then(|id| txs.get(&id).cloned()))
  }

  /// Runs `f` on the call's transaction connection, or on a pooled connection. Outside a
  /// transaction, a call that fails because its idle connection was closed by the server
  /// (killed, server restarted) runs again once on a fresh connection when `rerun` allows.
  /// Connections in steady use are not pinged before use, which would cost a round trip
  /// per call (see `acquire`).
  async fn with_conn<T, F>(&self, tx: Option<&str>, rerun: Rerun, f: F) -> Result<T>
  where
    F: for<'c> Fn(&'c SqlEngine, &'c mut P::Conn) -> std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>,
  {
    self.check_open()?;
    if let Some(slot) = self.slot_for(tx)? {
      let mut st = slot.lock().await;
      let conn = st.conn.as_mut().ok_or_else(|| Error::new(Code::Transaction, "the transaction's connection is gone"))?;
      return f(&self.engine, conn).await;
    }
    let mut conn = self.acquire(rerun).await?;
    let r = f(&self.engine, &mut conn).await;
    let Err(mut e) = r else { return r };
    if e.code != Code::Connection {
      return Err(e);
    }
    let nothing_ran = P::statements_completed(&conn) == 0 && P::ended_before_running(&e);
    if !self.discard_failed(conn, &e).await {
      return Err(e);
    }
    if rerun == Rerun::IfNotRun && !nothing_ran {
      tracing::warn!(target: "mosta", db_code = ?e.db_code, "a pooled connection died under a write; not re-sent (it may have been applied)");
      e.message.push_str(" (the connection was lost during a write, which may or may not have been applied; the next call uses a new connection)");
      return Err(e);
    }
    tracing::debug!(target: "mosta", db_code = ?e.db_code, "a pooled connection was dead; running the call again on a fresh one");
    let mut fresh = self.pool.acquire().await?;
    let r = f(&self.engine, &mut fresh).await;
    if matches!(&r, Err(e) if e.code == Code::Connection) {
      self.pool.discard(fresh).await;
    }
    r
  }

  /// Closes a connection whose call failed. Returns whether it was an idle connection the
  /// server had closed; its idle siblings are then probably dead too (a restart, or
  /// sessions killed together) and are dropped as well.
  async fn discard_failed(&self, conn: P::Conn, e: &Error) -> bool {
    let stale = e.code == Code::Connection && P::idle_for(&conn).is_some();
    if stale {
      self.drop_stale(conn).await;
    } else {
      self.pool.discard(conn).await;
    }
    stale
  }

  /// Closes an idle connection the server had closed, and its idle siblings with it.
  async fn drop_stale(&self, conn: P::Conn) {
    self.pool.discard(conn).await;
    self.pool.flush_idle();
  }

  /// A pooled connection; for a write, pinged first when it was idle for a while.
  async fn acquire(&self, rerun: Rerun) -> Result<P::Conn> {
    let mut conn = self.pool.acquire().await?;
    if rerun == Rerun::IfNotRun && P::idle_for(&conn).is_some_and(|d| d > PING_WRITES_AFTER_IDLE) && !self.pool.ping(&mut conn).await {
      self.drop_stale(conn).await;
      conn = self.pool.acquire().await?;
    }
    Ok(conn)
  }

  async fn begin(&self, parent: Option<String>, isolation: Option<String>, explicit: bool) -> Result<String> {
    self.check_open()?;
    let iso = Isolation::from_option(isolation.as_deref())?;
    // Nest inside the parent context, or inside an explicit transaction (reference semantics).
    let nest_in = match parent.as_deref() {
      Some(p) => self.txs.lock().map_err(|_| poisoned())?.get(p).cloned(),
      None => None,
    };
    let nest_in = match nest_in {
      Some(s) => Some(s),
      None => self.slot_for(None)?,
    };
    if let Some(slot) = nest_in {
      let mut st = slot.lock().await;
      let frame = st.stack.next_frame();
      let sp = frame.savepoint.clone().unwrap_or_default();
      let conn = st.conn.as_mut().ok_or_else(|| Error::new(Code::Transaction, "the transaction's connection is gone"))?;
      self.engine.savepoint(conn, &sp).await?;
      st.stack.push(frame.clone());
      self.txs.lock().map_err(|_| poisoned())?.insert(frame.id.clone(), slot.clone());
      return Ok(frame.handle_json());
    }
    let mut conn = self.pool.acquire().await?;
    if let Err(e) = self.engine.begin(&mut conn, iso).await {
      if !self.discard_failed(conn, &e).await {
        return Err(e);
      }
      // Nothing ran yet: open the transaction on a fresh connection.
      conn = self.pool.acquire().await?;
      if let Err(e) = self.engine.begin(&mut conn, iso).await {
        self.pool.discard(conn).await;
        return Err(e);
      }
    }
    let mut stack = TxStack::default();
    let frame = stack.next_frame();
    stack.push(frame.clone());
    let slot = Arc::new(tokio::sync::Mutex::new(TxState { conn: Some(conn), stack }));
    self.txs.lock().map_err(|_| poisoned())?.insert(frame.id.clone(), slot);
    if explicit {
      *self.explicit.lock().map_err(|_| poisoned())? = Some(frame.id.clone());
    }
    Ok(frame.handle_json())
  }

  fn slot(&self, id: &str) -> Result<Slot<P::Conn>> {
    self.txs.lock().map_err(|_| poisoned())?.get(id).cloned().ok_or_else(|| Error::new(Code::Transaction, format!("unknown or finished transaction {id}")))
  }

  /// Ends the transaction's bookkeeping; the root gives its connection back.
  async fn forget(&self, st: &mut TxState<P::Conn>, ids: &[String], root_done: bool, healthy: bool) -> Result<()> {
    {
      let mut txs = self.txs.lock().map_err(|_| poisoned())?;
      for id in ids {
        txs.remove(id);
      }
      let mut ex = self.explicit.lock().map_err(|_| poisoned())?;
      if ex.as_ref().is_some_and(|e| ids.contains(e)) {
        *ex = None;
      }
    }
    if root_done {
      if let Some(conn) = st.conn.take() {
        if !healthy {
          self.pool.discard(conn).await;
        }
      }
    }
    Ok(())
  }

  async fn commit(&self, id: String) -> Result<()> {
    let slot = self.slot(&id)?;
    let mut st = slot.lock().await;
    let frame = st.stack.top_for_commit(&id)?.clone();
    let conn = st.conn.as_mut().ok_or_else(|| Error::new(Code::Transaction, "the transaction's connection is gone"))?;
    self.engine.commit(conn, frame.savepoint.as_deref()).await?;
    st.stack.pop();
    let root_done = st.stack.is_empty();
    self.forget(&mut st, &[id], root_done, true).await
  }

  async fn rollback(&self, id: String) -> Result<()> {
    let slot = self.slot(&id)?;
    let mut st = slot.lock().await;
    let ids_above = st.stack.ids_from(&id);
    let frame = st.stack.unwind_to(&id).ok_or_else(|| Error::new(Code::Transaction, format!("unknown or finished transaction {id}")))?;
    let conn = st.conn.as_mut().ok_or_else(|| Error::new(Code::Transaction, "the transaction's connection is gone"))?;
    let r = self.engine.rollback(conn, frame.savepoint.as_deref()).await;
    let root_done = frame.savepoint.is_none();
    self.forget(&mut st, &ids_above, root_done, r.is_ok()).await?;
    // A failed ROLLBACK TO leaves the savepoint's work in place: report it.
    if frame.savepoint.is_some() {
      r?;
    }
    Ok(())
  }
}

impl<P: Pool> AsyncDialect for PooledDialect<P> {
  fn dialect_type(&self) -> &'static str {
    self.dialect_type
  }

  fn compile(&self, schema_json: &str) -> Result<u32> {
    self.engine.compile(schema_json)
  }

  fn shapes_rows(&self) -> bool {
    true
  }

  fn shape_keys(&self, shape: u32) -> Option<Arc<[String]>> {
    self.engine.shape_keys(shape)
  }

  fn template(&self, template: u32) -> Option<Template> {
    self.engine.template(template)
  }

  fn init_schema(self: Arc<Self>, handles: Vec<u32>) -> BoxFuture<()> {
    Box::pin(async move {
      let handles = Arc::new(handles);
      self
        .with_conn(None, Rerun::IfNotRun, |e, c| {
          let handles = handles.clone();
          Box::pin(async move { e.init_schema(c, &handles).await })
        })
        .await
    })
  }

  fn call(self: Arc<Self>, method: String, handle: u32, args: String, tx: Option<String>) -> BoxFuture<String> {
    match Request::parse(&method, &args) {
      Ok(req) => self.request(handle, req, tx),
      Err(e) => Box::pin(async move { Err(e) }),
    }
  }

  fn takes_requests(&self) -> bool {
    true
  }

  fn request(self: Arc<Self>, handle: u32, req: Request, tx: Option<String>) -> BoxFuture<String> {
    Box::pin(async move {
      let req = Arc::new(req);
      let schema = self.engine.schema(handle)?;
      let rerun = if req.is_read() { Rerun::Safe } else { Rerun::IfNotRun };
      self
        .with_conn(tx.as_deref(), rerun, |e, c| {
          let (schema, req) = (schema.clone(), req.clone());
          Box::pin(async move { e.run(c, &schema, &req).await })
        })
        .await
    })
  }

  fn begin_tx(self: Arc<Self>, parent: Option<String>, isolation: Option<String>, explicit: bool) -> BoxFuture<String> {
    Box::pin(async move { self.begin(parent, isolation, explicit).await })
  }

  fn commit_tx(self: Arc<Self>, id: String) -> BoxFuture<()> {
    Box::pin(async move { self.commit(id).await })
  }

  fn rollback_tx(self: Arc<Self>, id: String) -> BoxFuture<()> {
    Box::pin(async move { self.rollback(id).await })
  }

  fn execute(self: Arc<Self>, sql: String, params: String, rows: bool, tx: Option<String>) -> BoxFuture<String> {
    Box::pin(async move {
      let (sql, params) = (Arc::new(sql), Arc::new(params));
      // Raw SQL may write whatever its text says (even a SELECT can call a function).
      self
        .with_conn(tx.as_deref(), Rerun::IfNotRun, |e, c| {
          let (sql, params) = (sql.clone(), params.clone());
          Box::pin(async move {
            if rows {
              e.execute_query(c, &sql, &params).await
            } else {
              e.execute_run(c, &sql, &params).await
            }
          })
        })
        .await
    })
  }

  fn admin(self: Arc<Self>, op: Admin, tx: Option<String>) -> BoxFuture<String> {
    Box::pin(async move {
      let probe = op == Admin::TestConnection;
      if probe && self.check_open().is_err() {
        return Ok("false".into());
      }
      let rerun = if matches!(op, Admin::TestConnection | Admin::ListTables) { Rerun::Safe } else { Rerun::IfNotRun };
      let op = Arc::new(op);
      let r = self
        .with_conn(tx.as_deref(), rerun, |e, c| {
          let op = op.clone();
          Box::pin(async move { op.run(e, c).await })
        })
        .await;
      match r {
        // The dialect closed while the probe was under way: it answers, as a closed one would.
        Err(_) if probe && self.closed.load(Ordering::Acquire) => Ok("false".into()),
        other => other,
      }
    })
  }

  fn close(self: Arc<Self>) -> BoxFuture<()> {
    Box::pin(async move {
      if self.closed.load(Ordering::Acquire) {
        return Ok(());
      }
      // Only `create-drop` has work to do before closing; otherwise closing needs no
      // connection (the server may already be gone).
      let cleanup = if self.engine.config.schema_strategy == crate::env::SchemaStrategy::CreateDrop {
        self.with_conn(None, Rerun::IfNotRun, |e, c| Box::pin(async move { e.on_disconnect(c).await })).await
      } else {
        Ok(())
      };
      self.closed.store(true, Ordering::Release);
      self.pool.close().await;
      cleanup
    })
  }
}
