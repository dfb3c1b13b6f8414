//! What the PostgreSQL and MySQL/MariaDB dialects share: a sqlx pool behind the `Pool` trait,
//! one `Conn` over a pooled sqlx connection, and the helpers both drivers need (password
//! redaction, transaction tracking, ISO date text). Each backend supplies a `Driver`: how a
//! parameter is bound, how a row becomes cells, and how a server error maps onto our codes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;
use std::time::Instant;

use sqlx::{AssertSqlSafe, ConnectOptions, Connection as _, Database, Encode, Executor, Type};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::pooled::Pool;
use super::rows::{Cell, RowSink};
use super::Conn;
use crate::env::{OrmConfig, DEFAULT_POOL_SIZE};
use crate::error::{Code, Error, Result};
use crate::sql::{starts_with_word, Param, Stmt};

/// A bound parameter as the drivers encode it (each backend implements `Encode` for it).
pub struct ParamRef<'a>(pub &'a Param);

/// The per-backend pieces of a pooled SQL connection.
pub trait Driver: Send + Sync + 'static {
  type Db: Database<Arguments = Self::Args> + sqlx::database::HasStatementCache;
  type Args: sqlx::IntoArguments<Self::Db> + Send;
  /// The per-query decoding plan, built from the first row's columns.
  type Plan: Send;
  /// `postgres`, `mysql`: used in messages.
  const NAME: &'static str;
  /// Server error codes that end a session before the next statement runs (the session was
  /// killed or the server is shutting down): a write answered with one never happened.
  const SESSION_ENDED_CODES: &'static [&'static str];
  /// Column names of table `$1`/`?` in the current schema or database, in ordinal order.
  const TABLE_COLUMNS_SQL: &'static str;

  /// Connection options from `SGBD_URI` (a bad URL is `E_CONFIG`, password masked).
  fn connect_options(uri: &str, redactor: &Redactor) -> Result<<<Self::Db as Database>::Connection as sqlx::Connection>::Options>;

  /// The SQL text sent for `st` (PostgreSQL tags it with its parameter types, see there).
  fn statement_sql(st: &Stmt) -> String;
  fn plan(row: &<Self::Db as Database>::Row) -> Self::Plan;
  /// Pushes one row's cells into `sink`; `buf` is scratch space reused across cells.
  fn push_row(plan: &Self::Plan, row: &<Self::Db as Database>::Row, buf: &mut String, sink: &mut dyn RowSink);
  fn rows_affected(r: &<Self::Db as Database>::QueryResult) -> u64;
  /// Maps a server error (constraint, unknown column, ...) onto our codes; `None` when it is
  /// not this driver's error type (it then becomes `E_DATABASE` with the server's code).
  fn map_db_error(e: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<Error>;
  /// What the server (its `SELECT VERSION()` text) supports of `RETURNING *`.
  fn returning(server_version: &str) -> super::Returning;
  /// The server refused a cached prepared statement because a table it reads changed shape
  /// (DDL from another pool or process). Nothing ran; outside a transaction the statement
  /// is prepared again and retried once.
  fn is_stale_statement(e: &(dyn sqlx::error::DatabaseError + 'static)) -> bool;
}

// ------------------------------------------------------------------ URLs

pub use crate::redact::Redactor;
use crate::redact::percent_decode;

/// Splits `?a=b&c=d` off a URL: the URL without its query, and the decoded pairs.
pub fn split_query(uri: &str) -> (&str, Vec<(String, String)>) {
  match uri.split_once('?') {
    None => (uri, Vec::new()),
    Some((base, q)) => {
      let pairs = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
          let (k, v) = p.split_once('=').unwrap_or((p, ""));
          (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect();
      (base, pairs)
    }
  }
}

/// Re-assembles a query string from pairs (values percent-encoded where needed).
pub fn join_query(base: &str, pairs: &[(String, String)]) -> String {
  if pairs.is_empty() {
    return base.to_string();
  }
  let enc = |s: &str| -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
      if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
        o.push(b as char);
      } else {
        o.push_str(&format!("%{b:02X}"));
      }
    }
    o
  };
  let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
  format!("{base}?{}", q.join("&"))
}

/// A malformed `SGBD_URI`: named, with the password masked.
pub fn bad_url(backend: &str, redactor: &Redactor, why: &str) -> Error {
  Error::config(format!("SGBD_URI is not a valid {backend} connection URL ({}): {}", redactor.redacted_uri(), redactor.scrub(why))).with_field("SGBD_URI")
}

// ------------------------------------------------------------------ errors

/// Maps a sqlx failure: server errors through the driver, transport failures to
/// `E_CONNECTION`, pool exhaustion to `E_POOL_TIMEOUT`.
pub fn map_err<D: Driver>(e: sqlx::Error) -> Error {
  match e {
    sqlx::Error::Database(db) => D::map_db_error(db.as_ref()).unwrap_or_else(|| {
      let mut err = Error::new(Code::Database, db.message().to_string());
      err.db_code = db.code().map(|c| c.into_owned());
      err
    }),
    sqlx::Error::Io(io) => Error::new(Code::Connection, format!("connection to the {} server failed: {io}", D::NAME)),
    sqlx::Error::Tls(t) => Error::new(Code::Connection, format!("TLS failure talking to the {} server: {t}", D::NAME)),
    sqlx::Error::Protocol(p) => Error::new(Code::Connection, format!("protocol error from the {} server: {p}", D::NAME)),
    sqlx::Error::WorkerCrashed => Error::new(Code::Connection, format!("the {} connection worker stopped", D::NAME)),
    sqlx::Error::PoolTimedOut => Error::new(Code::PoolTimeout, format!("no {} connection became free in time", D::NAME)),
    sqlx::Error::PoolClosed => Error::new(Code::Closed, format!("the {} dialect was disconnected; call getDialect() again", D::NAME)),
    sqlx::Error::Configuration(c) => Error::config(format!("invalid {} connection settings: {c}", D::NAME)).with_field("SGBD_URI"),
    other => Error::new(Code::Database, other.to_string()),
  }
}

// ------------------------------------------------------------------ the pool

/// Opens a pooled dialect for `config` with driver `D`.
pub async fn open<D: Driver>(config: OrmConfig) -> Result<Arc<dyn super::AsyncDialect>>
where
  for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
  for<'a> ParamRef<'a>: Encode<'a, D::Db> + Type<D::Db>,
{
  let redactor = Redactor::new(&config.uri);
  let options = D::connect_options(&config.uri, &redactor)?;
  let mut pool = SqlxPool::<D>::open(options, &config, redactor).await?;
  pool.returning = server_returning(&pool).await;
  let name = config.backend.as_str();
  Ok(Arc::new(super::pooled::PooledDialect::new(config, pool, name)))
}

/// Asks the server its version (on the connection `open` left idle) to learn what it
/// supports of `RETURNING`; an unanswered question means "no RETURNING".
async fn server_returning<D: Driver>(pool: &SqlxPool<D>) -> super::Returning
where
  for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
  for<'a> ParamRef<'a>: Encode<'a, D::Db> + Type<D::Db>,
{
  let Ok(mut c) = pool.acquire().await else { return super::Returning::default() };
  let mut version = TextColumn(Vec::new());
  match c.query_rows(&Stmt::new("SELECT VERSION()"), &mut version).await {
    Ok(()) => D::returning(version.0.first().map_or("", String::as_str)),
    Err(_) => super::Returning::default(),
  }
}

/// Incremented after every DDL statement: prepared statements cached on a connection before
/// it may describe a table's old shape (PostgreSQL then fails a `SELECT *` with "cached plan
/// must not change result type"), so each connection drops its cache when this moves.
#[derive(Default)]
struct Shared {
  ddl_generation: AtomicU64,
}

type Connection<D> = <<D as Driver>::Db as Database>::Connection;
/// `SqlxConn::conn` is `Some` from checkout until `drop` gives it back.
const LIVE: &str = "connection present until dropped";
type Options<D> = <Connection<D> as sqlx::Connection>::Options;

/// An idle connection, since when it has been idle, and the DDL generation its statement
/// cache is valid for (DDL run meanwhile on other connections makes it stale).
struct Idle<D: Driver> {
  conn: Connection<D>,
  since: Instant,
  generation: u64,
}

/// The connections of one dialect. sqlx's own pool pings every connection when it is given
/// back (and optionally before lending it), a round trip per call; this pool keeps idle
/// connections without pinging: `PooledDialect` re-runs a read once when an idle connection
/// turns out dead, and pings only before a write on a connection idle for a while.
struct PoolInner<D: Driver> {
  options: Options<D>,
  idle: Mutex<Vec<Idle<D>>>,
  /// One permit per connection that may exist (idle or lent out).
  permits: Arc<Semaphore>,
  closed: AtomicBool,
}

pub struct SqlxPool<D: Driver> {
  inner: Arc<PoolInner<D>>,
  returning: super::Returning,
  shared: Arc<Shared>,
  redactor: Redactor,
  max: u32,
  timeout_ms: u64,
}

impl<D: Driver> SqlxPool<D>
where
  for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
{
  /// Connects once eagerly, so an unreachable server or a bad password fails `getDialect()`
  /// with a clear `E_CONNECTION` instead of an error at the first call; that connection
  /// becomes the pool's first idle one. (TLS needs no process-wide rustls provider: sqlx
  /// builds its client config with the ring provider explicitly.)
  pub async fn open(options: Options<D>, config: &OrmConfig, redactor: Redactor) -> Result<Self> {
    let max = config.pool_size.unwrap_or(DEFAULT_POOL_SIZE).max(1);
    let pool = SqlxPool {
      returning: super::Returning::default(),
      inner: Arc::new(PoolInner { options, idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(max as usize)), closed: AtomicBool::new(false) }),
      shared: Arc::default(),
      redactor,
      max,
      timeout_ms: config.pool_timeout_ms,
    };
    let first = pool.connect(Instant::now() + Duration::from_millis(config.pool_timeout_ms)).await.map_err(|mut e| {
      e.message = format!("Failed to connect to {} ({}): {}", D::NAME, pool.redactor.redacted_uri(), e.message);
      e
    })?;
    let generation = pool.shared.ddl_generation.load(Ordering::Acquire);
    pool.idle().push(Idle { conn: first, since: Instant::now(), generation });
    Ok(pool)
  }

  fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle<D>>> {
    // A panic while the lock was held cannot leave the list inconsistent: take it anyway.
    self.inner.idle.lock().unwrap_or_else(|p| p.into_inner())
  }

  /// A new connection, before `deadline`.
  async fn connect(&self, deadline: Instant) -> Result<Connection<D>> {
    match tokio::time::timeout_at(deadline.into(), self.inner.options.connect()).await {
      Ok(Ok(c)) => Ok(c),
      Ok(Err(e)) => {
        let mut err = map_err::<D>(e);
        err.message = self.redactor.scrub(&err.message);
        if err.code == Code::Config {
          err.field = Some("SGBD_URI".into());
        } else if err.code != Code::Connection {
          // An authentication or database-selection failure is a connection failure here.
          err.code = Code::Connection;
        }
        Err(err)
      }
      Err(_) => Err(Error::new(Code::Connection, format!("could not connect to {} ({}) within {} ms (DB_POOL_TIMEOUT_MS)", D::NAME, self.redactor.redacted_uri(), self.timeout_ms))),
    }
  }
}

impl<D: Driver> Pool for SqlxPool<D>
where
  for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
  for<'a> ParamRef<'a>: Encode<'a, D::Db> + Type<D::Db>,
{
  type Conn = SqlxConn<D>;

  async fn acquire(&self) -> Result<Self::Conn> {
    let closed = || Error::new(Code::Closed, format!("the {} dialect was disconnected; call getDialect() again", D::NAME));
    if self.inner.closed.load(Ordering::Acquire) {
      return Err(closed());
    }
    let deadline = Instant::now() + Duration::from_millis(self.timeout_ms);
    let permit = match tokio::time::timeout_at(deadline.into(), self.inner.permits.clone().acquire_owned()).await {
      Ok(Ok(p)) => p,
      Ok(Err(_)) => return Err(closed()),
      Err(_) => {
        return Err(Error::new(
          Code::PoolTimeout,
          format!("all {} {} connections stayed busy for {} ms (DB_POOL_SIZE, DB_POOL_TIMEOUT_MS)", self.max, D::NAME, self.timeout_ms),
        ))
      }
    };
    let reused = self.idle().pop();
    let (conn, idle_for, seen_generation) = match reused {
      Some(i) => (i.conn, Some(i.since.elapsed()), i.generation),
      // A new connection has no cached statements yet.
      None => (self.connect(deadline).await?, None, self.shared.ddl_generation.load(Ordering::Acquire)),
    };
    Ok(SqlxConn {
      seen_generation,
      conn: Some(conn),
      pool: self.inner.clone(),
      _permit: permit,
      shared: self.shared.clone(),
      in_tx: false,
      ddl_since_begin: false,
      ddl_in_tx: false,
      healthy: true,
      busy: false,
      idle_for,
      completed: 0,
      returning: self.returning,
      buf: String::new(),
    })
  }

  async fn discard(&self, mut conn: Self::Conn) {
    conn.healthy = false;
    drop(conn);
  }

  fn idle_for(conn: &Self::Conn) -> Option<Duration> {
    conn.idle_for
  }

  async fn ping(&self, conn: &mut Self::Conn) -> bool {
    match conn.conn.as_mut() {
      Some(c) => matches!(tokio::time::timeout(Duration::from_millis(self.timeout_ms), c.ping()).await, Ok(Ok(()))),
      None => false,
    }
  }

  fn flush_idle(&self) {
    let dead: Vec<Idle<D>> = std::mem::take(&mut *self.idle());
    drop(dead);
  }

  fn statements_completed(conn: &Self::Conn) -> u32 {
    conn.completed
  }

  fn ended_before_running(e: &Error) -> bool {
    e.db_code.as_deref().is_some_and(|c| D::SESSION_ENDED_CODES.contains(&c))
  }

  /// Idle connections are closed politely; connections still lent out (a transaction never
  /// ended) are closed when they come back.
  async fn close(&self) {
    self.inner.closed.store(true, Ordering::Release);
    self.inner.permits.close();
    let idle: Vec<Idle<D>> = std::mem::take(&mut *self.idle());
    let deadline = Instant::now() + Duration::from_millis(self.timeout_ms);
    for i in idle {
      let _ = tokio::time::timeout_at(deadline.into(), i.conn.close()).await;
    }
  }
}

// ------------------------------------------------------------------ the connection

pub struct SqlxConn<D: Driver> {
  /// Always `Some` until the connection goes back to the pool in `drop`.
  conn: Option<Connection<D>>,
  pool: Arc<PoolInner<D>>,
  _permit: OwnedSemaphorePermit,
  shared: Arc<Shared>,
  /// The DDL generation this connection's statement cache is valid for.
  seen_generation: u64,
  /// DDL ran in the open transaction (a rollback then changes table shapes back).
  ddl_since_begin: bool,
  /// A transaction was opened through `batch` and not yet ended.
  in_tx: bool,
  /// See `Conn::ddl_in_tx`.
  ddl_in_tx: bool,
  /// No transport failure was seen on this connection.
  healthy: bool,
  /// A statement is on the wire; a connection dropped in that state (a cancelled call) is
  /// in an unknown state and is closed instead of reused.
  busy: bool,
  /// How long it had been idle in the pool; `None` when freshly connected.
  idle_for: Option<Duration>,
  /// Statements that completed since it was lent out (see `Pool::statements_completed`).
  completed: u32,
  returning: super::Returning,
  /// Scratch text for cells that must be formatted (dates, numerics, uuids).
  buf: String,
}

impl<D: Driver> Drop for SqlxConn<D> {
  /// Back to the idle list, unless the connection is broken, busy, inside a transaction
  /// (closing it makes the server roll the transaction back) or the pool is closed.
  fn drop(&mut self) {
    let Some(conn) = self.conn.take() else { return };
    if self.healthy && !self.busy && !self.in_tx && !self.pool.closed.load(Ordering::Acquire) {
      let idle = Idle { conn, since: Instant::now(), generation: self.seen_generation };
      self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(idle);
    }
  }
}

/// What a transaction-control statement (the engine's own, through `batch`) does to the
/// open-transaction flag.
fn tx_effect(sql: &str) -> Option<bool> {
  if starts_with_word(sql, &["BEGIN", "START"]) {
    Some(true)
  } else if starts_with_word(sql, &["COMMIT"]) || (is_rollback(sql) && !sql.to_ascii_uppercase().contains(" TO ")) {
    Some(false)
  } else {
    None
  }
}

/// A rollback, of the transaction or to a savepoint.
fn is_rollback(sql: &str) -> bool {
  starts_with_word(sql, &["ROLLBACK"])
}

/// Whether a statement changes table shapes (and so invalidates cached statements).
fn is_ddl(sql: &str) -> bool {
  starts_with_word(sql, &["CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"])
}

impl<D: Driver> SqlxConn<D>
where
  for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
  for<'a> ParamRef<'a>: Encode<'a, D::Db> + Type<D::Db>,
{
  /// Maps a failure, remembering a broken transport so the connection is not reused.
  fn failed(&mut self, e: sqlx::Error) -> Error {
    let err = map_err::<D>(e);
    if err.code == Code::Connection {
      self.healthy = false;
    }
    err
  }

  /// Drops cached prepared statements when some connection ran DDL since they were made.
  async fn refresh_statement_cache(&mut self) -> Result<()> {
    let current = self.shared.ddl_generation.load(Ordering::Acquire);
    if current != self.seen_generation {
      self.conn.as_mut().expect(LIVE).clear_cached_statements().await.map_err(|e| self.failed(e))?;
      self.seen_generation = current;
    }
    Ok(())
  }

  fn after_ddl(&mut self, sql: &str) {
    if is_ddl(sql) {
      self.shared.ddl_generation.fetch_add(1, Ordering::AcqRel);
      self.ddl_since_begin |= self.in_tx;
    }
  }

  /// Whether a failed statement may be re-prepared and run again.
  fn retry_stale(&self, e: &sqlx::Error) -> bool {
    !self.in_tx && matches!(e, sqlx::Error::Database(db) if D::is_stale_statement(db.as_ref()))
  }

  /// `st` as a sqlx query, its parameters bound.
  fn bound(st: &Stmt) -> sqlx::query::Query<'_, D::Db, <D::Db as Database>::Arguments> {
    let mut q = sqlx::query::<D::Db>(AssertSqlSafe(D::statement_sql(st)));
    for p in &st.params {
      q = q.bind(ParamRef(p));
    }
    q
  }

  /// Runs a query and pushes its rows into `sink` as they arrive, so decoding overlaps the
  /// server still sending (a large read no longer waits for its last row before the first
  /// is decoded). A failure says how many rows were pushed before it.
  async fn stream_rows(&mut self, st: &Stmt, sink: &mut dyn RowSink) -> std::result::Result<(), (sqlx::Error, usize)> {
    use futures_util::TryStreamExt;
    use sqlx::{Column, Row};
    let q = Self::bound(st);
    self.busy = true;
    let buf = &mut self.buf;
    let mut rows = q.fetch(self.conn.as_mut().expect(LIVE));
    let mut plan = None;
    let mut pushed = 0;
    let r = loop {
      match rows.try_next().await {
        Ok(Some(row)) => {
          let plan = plan.get_or_insert_with(|| {
            let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
            sink.columns(&names);
            D::plan(&row)
          });
          D::push_row(plan, &row, buf, sink);
          sink.end_row();
          pushed += 1;
        }
        Ok(None) => break Ok(()),
        Err(e) => break Err((e, pushed)),
      }
    };
    drop(rows);
    self.busy = false;
    r
  }

  async fn run(&mut self, st: &Stmt) -> std::result::Result<<D::Db as Database>::QueryResult, sqlx::Error> {
    let q = Self::bound(st);
    self.busy = true;
    let r = q.execute(self.conn.as_mut().expect(LIVE)).await;
    self.busy = false;
    r
  }

  async fn query_rows(&mut self, st: &Stmt, sink: &mut dyn RowSink) -> Result<()> {
    self.refresh_statement_cache().await?;
    match self.stream_rows(st, sink).await {
      // A stale prepared statement fails before any row: prepare it again and rerun.
      Err((e, 0)) if self.retry_stale(&e) => {
        self.conn.as_mut().expect(LIVE).clear_cached_statements().await.map_err(|e| self.failed(e))?;
        self.stream_rows(st, sink).await.map_err(|(e, _)| self.failed(e))?;
      }
      Err((e, _)) => return Err(self.failed(e)),
      Ok(()) => {}
    }
    self.completed += 1;
    Ok(())
  }

  async fn execute_stmt(&mut self, st: &Stmt) -> Result<u64> {
    self.refresh_statement_cache().await?;
    let r = match self.run(st).await {
      Err(e) if self.retry_stale(&e) => {
        self.conn.as_mut().expect(LIVE).clear_cached_statements().await.map_err(|e| self.failed(e))?;
        self.run(st).await
      }
      other => other,
    }
    .map_err(|e| self.failed(e))?;
    self.completed += 1;
    self.after_ddl(&st.sql);
    Ok(D::rows_affected(&r))
  }

  async fn run_batch(&mut self, sql: &str) -> Result<()> {
    self.busy = true;
    let r = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(self.conn.as_mut().expect(LIVE)).await;
    self.busy = false;
    r.map_err(|e| self.failed(e))?;
    self.completed += 1;
    // A rollback (to a savepoint or whole) undoes DDL run since the transaction began, which
    // changes table shapes back: statements prepared meanwhile are stale again.
    if self.ddl_since_begin && is_rollback(sql) {
      self.shared.ddl_generation.fetch_add(1, Ordering::AcqRel);
    }
    if let Some(open) = tx_effect(sql) {
      self.in_tx = open;
      self.ddl_since_begin = false;
    }
    self.after_ddl(sql);
    Ok(())
  }
}

/// Collects the first column of every row as text (column names of a table).
struct TextColumn(Vec<String>);

impl RowSink for TextColumn {
  fn columns(&mut self, _names: &[&str]) {}
  fn cell(&mut self, col: usize, cell: Cell<'_>) {
    if col == 0 {
      if let Cell::Text(t) = cell {
        self.0.push(t.to_string());
      }
    }
  }
  fn end_row(&mut self) {}
}

impl<D: Driver> Conn for SqlxConn<D>
where
  for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
  for<'a> ParamRef<'a>: Encode<'a, D::Db> + Type<D::Db>,
{
  async fn query(&mut self, st: &Stmt, sink: &mut dyn RowSink) -> Result<()> {
    self.query_rows(st, sink).await
  }

  async fn execute(&mut self, st: &Stmt) -> Result<u64> {
    self.execute_stmt(st).await
  }

  /// The simple (text) protocol: MySQL refuses to prepare transaction control.
  async fn batch(&mut self, sql: &str) -> Result<()> {
    self.run_batch(sql).await
  }

  async fn table_columns(&mut self, table: &str) -> Result<Vec<String>> {
    let st = Stmt { sql: D::TABLE_COLUMNS_SQL.to_string(), params: vec![Param::Text(table.to_string())] };
    let mut out = TextColumn(Vec::new());
    self.query_rows(&st, &mut out).await?;
    Ok(out.0)
  }

  fn in_transaction(&self) -> bool {
    self.in_tx
  }

  fn ddl_in_tx(&mut self) -> &mut bool {
    &mut self.ddl_in_tx
  }

  fn returning(&self) -> super::Returning {
    self.returning
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn query_strings_round_trip() {
    let (base, pairs) = split_query("mysql://h/db?ssl-mode=REQUIRED&ssl-ca=%2Ftmp%2Fca.pem");
    assert_eq!(base, "mysql://h/db");
    assert_eq!(pairs, vec![("ssl-mode".to_string(), "REQUIRED".to_string()), ("ssl-ca".to_string(), "/tmp/ca.pem".to_string())]);
    assert_eq!(join_query(base, &pairs), "mysql://h/db?ssl-mode=REQUIRED&ssl-ca=/tmp/ca.pem");
  }

  #[test]
  fn transaction_statements_move_the_flag() {
    assert_eq!(tx_effect("BEGIN ISOLATION LEVEL SERIALIZABLE"), Some(true));
    assert_eq!(tx_effect(" start transaction"), Some(true));
    assert_eq!(tx_effect("COMMIT"), Some(false));
    assert_eq!(tx_effect("ROLLBACK"), Some(false));
    assert_eq!(tx_effect("ROLLBACK TO SAVEPOINT `x`"), None);
    assert_eq!(tx_effect("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"), None);
    assert!(is_ddl("alter table x add y int"));
    assert!(is_rollback("rollback to savepoint `x`") && !is_rollback("ROLLBACKS"));
    assert!(!is_ddl("SELECT 1"));
  }
}
