//! SQLite through rusqlite: one connection (as better-sqlite3 has), WAL and foreign keys on,
//! a prepared-statement cache keyed by SQL text. It never waits, so the binding runs it on
//! the JavaScript thread without a thread hop.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::config::DbConfig;
use rusqlite::{ffi, Connection, OpenFlags};

use super::rows::{Cell, RowSink};
use super::Conn;
use crate::error::{Code, Error, Result};
use crate::sql::{is_plain_dml, Param, Stmt};

pub struct SqliteConn {
  conn: Connection,
  ddl_in_tx: bool,
  /// The schema version read after a write in the open transaction (see
  /// `schema_version_after_write`); forgotten by anything that may change the schema.
  schema_pin: Option<i64>,
}

/// Opens `':memory:'` or a file path (relative to the working directory; parent folders are
/// created). There is no URI parsing, as in the reference: `file:` is part of the path.
pub fn open(uri: &str) -> Result<SqliteConn> {
  configure_sqlite();
  let conn = if uri == ":memory:" {
    Connection::open_in_memory()
  } else {
    // SQLite reads a name starting with `file:` as a URI even without SQLITE_OPEN_URI (its
    // build enables URIs); `./` keeps it a plain file name, as in the reference.
    let literal;
    let path = if uri.starts_with("file:") {
      literal = Path::new(".").join(uri);
      literal.as_path()
    } else {
      Path::new(uri)
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
      std::fs::create_dir_all(parent).map_err(|e| Error::new(Code::Connection, format!("cannot create the folder of SQLite database {uri}: {e}")))?;
    }
    // Without SQLITE_OPEN_URI: `file:x?mode=memory` is a file name here, as in the reference.
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
  }
  .map_err(|e| Error::new(Code::Connection, format!("Failed to connect to sqlite ({uri}): {e}")))?;
  conn.set_prepared_statement_cache_capacity(256);
  // SQLite reads an unknown "double-quoted" name as a string literal; with that off, a
  // filter or sort key naming no column is an error instead of a constant.
  for flag in [DbConfig::SQLITE_DBCONFIG_DQS_DML, DbConfig::SQLITE_DBCONFIG_DQS_DDL] {
    conn.set_db_config(flag, false).map_err(|e| map_err(e, None))?;
  }
  // The reference ran on better-sqlite3, whose SQLite is built with a 16 MB page cache and
  // `synchronous = NORMAL` in WAL mode (safe against application crashes; a power loss can
  // lose the last commits, never corrupt the file). The same settings keep its durability
  // and its speed; outside WAL (`:memory:`, file systems without shared memory) the
  // synchronous setting stays SQLite's default.
  let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| map_err(e, None))?;
  let wal = if mode.eq_ignore_ascii_case("wal") { "PRAGMA synchronous = NORMAL; " } else { "" };
  conn
    .execute_batch(&format!("{wal}PRAGMA cache_size = -16000; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;"))
    .map_err(|e| map_err(e, None))?;
  Ok(SqliteConn { conn, ddl_in_tx: false, schema_pin: None })
}

/// Process-wide SQLite settings, applied once before SQLite initialises (the first open).
/// Allocation statistics cost a global mutex on every allocation and nothing here reads
/// them; better-sqlite3, which the reference ran on, builds SQLite without them
/// (`SQLITE_DEFAULT_MEMSTATUS=0`).
fn configure_sqlite() {
  static ONCE: std::sync::Once = std::sync::Once::new();
  ONCE.call_once(|| {
    // SAFETY: runs once, before this process's (statically linked) SQLite is initialised:
    // every connection is opened through `open`, after this returns. Were SQLite already
    // initialised, the call would only return SQLITE_MISUSE.
    unsafe {
      ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
    }
  });
}

/// Drives a future that never waits (every SQLite `Conn` call completes synchronously).
pub fn run_now<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
  let mut fut = pin!(fut);
  match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
    Poll::Ready(r) => r,
    Poll::Pending => Err(Error::internal("a SQLite call unexpectedly waited")),
  }
}

fn bind_value(p: &Param) -> ToSqlOutput<'_> {
  use rusqlite::types::Value as V;
  match p {
    Param::Null => ToSqlOutput::Owned(V::Null),
    Param::Bool(b) => ToSqlOutput::Owned(V::Integer(*b as i64)),
    Param::Int(i) => ToSqlOutput::Owned(V::Integer(*i)),
    Param::Float(f) => ToSqlOutput::Owned(V::Real(*f)),
    Param::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
    Param::Date(t) => ToSqlOutput::Owned(V::Text(crate::iso_date::iso_utc(t))),
  }
}

fn prepare<'c>(conn: &'c Connection, st: &Stmt) -> Result<rusqlite::CachedStatement<'c>> {
  let mut stmt = conn.prepare_cached(&st.sql).map_err(|e| map_err(e, Some(&st.sql)))?;
  if stmt.parameter_count() != st.params.len() {
    return Err(Error::arg(format!("statement expects {} parameters, got {}", stmt.parameter_count(), st.params.len())));
  }
  for (i, p) in st.params.iter().enumerate() {
    stmt.raw_bind_parameter(i + 1, bind_value(p)).map_err(|e| map_err(e, Some(&st.sql)))?;
  }
  Ok(stmt)
}

impl SqliteConn {
  fn unpin_unless_dml(&mut self, sql: &str) {
    if self.schema_pin.is_some() && !is_plain_dml(sql) {
      self.schema_pin = None;
    }
  }

  fn query_sync(&mut self, st: &Stmt, sink: &mut dyn RowSink) -> Result<()> {
    self.unpin_unless_dml(&st.sql);
    let mut stmt = prepare(&self.conn, st)?;
    // Column names are read once the first step ran: a cached statement is compiled again
    // at that step when the schema changed since (an ALTER), and `*` may then name more
    // columns than before.
    let mut n = None;
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(|e| map_err(e, Some(&st.sql)))? {
      let n = *n.get_or_insert_with(|| {
        let names = row.as_ref().column_names();
        sink.columns(&names);
        names.len()
      });
      for i in 0..n {
        let lossy;
        let cell = match row.get_ref(i).map_err(|e| map_err(e, Some(&st.sql)))? {
          ValueRef::Null => Cell::Null,
          ValueRef::Integer(v) => Cell::Int(v),
          ValueRef::Real(v) => Cell::Float(v),
          ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Cell::Text(s),
            // TEXT written by another program may hold invalid UTF-8: keep what is readable.
            Err(_) => {
              lossy = String::from_utf8_lossy(t).into_owned();
              Cell::Text(&lossy)
            }
          },
          ValueRef::Blob(b) => Cell::Bytes(b),
        };
        sink.cell(i, cell);
      }
      sink.end_row();
    }
    drop(rows);
    if n.is_none() {
      sink.columns(&stmt.column_names());
    }
    Ok(())
  }

  fn execute_sync(&mut self, st: &Stmt) -> Result<u64> {
    self.unpin_unless_dml(&st.sql);
    let mut stmt = prepare(&self.conn, st)?;
    stmt.raw_execute().map(|n| n as u64).map_err(|e| map_err(e, Some(&st.sql)))
  }
}

impl Conn for SqliteConn {
  fn query(&mut self, st: &Stmt, sink: &mut dyn RowSink) -> impl Future<Output = Result<()>> + Send {
    std::future::ready(self.query_sync(st, sink))
  }
  fn execute(&mut self, st: &Stmt) -> impl Future<Output = Result<u64>> + Send {
    std::future::ready(self.execute_sync(st))
  }
  fn batch(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send {
    // Transaction control and DDL: the transaction a pinned version belongs to may end here.
    self.schema_pin = None;
    std::future::ready(self.conn.execute_batch(sql).map_err(|e| map_err(e, Some(sql))))
  }
  fn table_columns(&mut self, table: &str) -> impl Future<Output = Result<Vec<String>>> + Send {
    let r = (|| {
      let mut stmt = self.conn.prepare("SELECT name FROM pragma_table_info(?1)").map_err(|e| map_err(e, None))?;
      let names = stmt.query_map([table], |r| r.get::<_, String>(0)).map_err(|e| map_err(e, None))?;
      names.collect::<rusqlite::Result<Vec<String>>>().map_err(|e| map_err(e, None))
    })();
    std::future::ready(r)
  }
  fn in_transaction(&self) -> bool {
    !self.conn.is_autocommit()
  }
  fn ddl_in_tx(&mut self) -> &mut bool {
    &mut self.ddl_in_tx
  }
  fn schema_version(&mut self) -> Option<i64> {
    self.conn.prepare_cached("PRAGMA schema_version").and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0))).ok()
  }
  /// Once this connection wrote in a transaction, it holds the database's write lock until
  /// the transaction ends, so no other connection can change the schema meanwhile: the
  /// version read then is kept, and served again until this connection runs anything but
  /// plain DML (DDL, a PRAGMA, transaction control, raw SQL of those kinds).
  fn schema_version_after_write(&mut self) -> Option<i64> {
    if self.schema_pin.is_none() {
      let v = self.schema_version()?;
      self.schema_pin = self.in_transaction().then_some(v);
      return Some(v);
    }
    self.schema_pin
  }
  /// The bundled SQLite (≥ 3.35) has `RETURNING` on both.
  fn returning(&self) -> super::Returning {
    super::Returning { insert: true, update: true }
  }
}

/// The column named by a constraint message such as `UNIQUE constraint failed: users.email`.
fn constraint_field(msg: &str) -> Option<String> {
  let rest = msg.split_once("failed: ")?.1;
  let first = rest.split(',').next()?.trim();
  Some(first.rsplit('.').next().unwrap_or(first).to_string())
}

fn code_name(extended: i32) -> String {
  match extended {
    ffi::SQLITE_CONSTRAINT_UNIQUE => "SQLITE_CONSTRAINT_UNIQUE".into(),
    ffi::SQLITE_CONSTRAINT_PRIMARYKEY => "SQLITE_CONSTRAINT_PRIMARYKEY".into(),
    ffi::SQLITE_CONSTRAINT_NOTNULL => "SQLITE_CONSTRAINT_NOTNULL".into(),
    ffi::SQLITE_CONSTRAINT_FOREIGNKEY => "SQLITE_CONSTRAINT_FOREIGNKEY".into(),
    ffi::SQLITE_CONSTRAINT_CHECK => "SQLITE_CONSTRAINT_CHECK".into(),
    ffi::SQLITE_BUSY => "SQLITE_BUSY".into(),
    ffi::SQLITE_LOCKED => "SQLITE_LOCKED".into(),
    ffi::SQLITE_READONLY => "SQLITE_READONLY".into(),
    ffi::SQLITE_ERROR => "SQLITE_ERROR".into(),
    other => format!("SQLITE_{other}"),
  }
}

/// Maps a SQLite failure onto our codes, keeping SQLite's own code in `db_code`.
pub fn map_err(e: rusqlite::Error, sql: Option<&str>) -> Error {
  let (f, msg) = match &e {
    rusqlite::Error::SqliteFailure(f, msg) => (f, msg.clone().unwrap_or_else(|| e.to_string())),
    // Prepare errors carry the offending SQL too; the message alone is enough here.
    rusqlite::Error::SqlInputError { error, msg, .. } => (error, msg.clone()),
    other => return Error::new(Code::Database, other.to_string()),
  };
  let db = code_name(f.extended_code);
  let after = |prefix: &str| msg.split(prefix).nth(1).map(|rest| rest.split(" - ").next().unwrap_or(rest).trim().to_string());
  let (code, field) = match f.extended_code {
    ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => (Code::Unique, constraint_field(&msg)),
    ffi::SQLITE_CONSTRAINT_NOTNULL => (Code::NotNull, constraint_field(&msg)),
    ffi::SQLITE_CONSTRAINT_FOREIGNKEY => (Code::ForeignKey, None),
    c if c & 0xff == ffi::SQLITE_CONSTRAINT => (Code::Constraint, None),
    _ if msg.starts_with("no such column: ") => (Code::UnknownColumn, after("no such column: ")),
    _ if msg.contains("has no column named ") => (Code::UnknownColumn, after("has no column named ")),
    _ if msg.starts_with("no such table: ") => (Code::Schema, None),
    _ => (Code::Database, None),
  };
  if code == Code::Database {
    if let Some(sql) = sql {
      tracing::debug!(target: "mosta::sql", "failed statement: {sql}");
    }
  }
  let mut err = Error::new(code, msg).with_db_code(db);
  err.field = field;
  err
}

fn conn_in_tx(c: &Option<SqliteConn>) -> bool {
  c.as_ref().is_some_and(|c| c.in_transaction())
}

fn closed() -> Error {
  Error::new(Code::Closed, "the sqlite dialect was disconnected; call getDialect() again")
}

/// The SQLite dialect: one connection, used synchronously. While a `$transaction` holds
/// the connection, calls from outside it cannot run; `admits` tells the binding when to
/// queue them until the transaction ends.
pub struct SqliteSession {
  pub engine: super::engine::SqlEngine,
  conn: Option<SqliteConn>,
  stack: super::tx::TxStack,
  /// The open transaction came from an explicit `beginTx()`: calls without a context join
  /// it (the reference's single-stack semantics).
  explicit: bool,
}

impl SqliteSession {
  pub fn open(config: crate::env::OrmConfig) -> Result<Self> {
    let conn = open(&config.uri)?;
    Ok(SqliteSession { engine: super::engine::SqlEngine::new(config), conn: Some(conn), stack: Default::default(), explicit: false })
  }

  /// Whether a call made in transaction context `tx` may run now.
  pub fn admits(&self, tx: Option<&str>) -> bool {
    self.stack.is_empty() || self.explicit || tx.is_some_and(|id| self.stack.contains(id))
  }

  /// Whether `tx` names a frame of the open transaction.
  pub fn owns(&self, tx: Option<&str>) -> bool {
    tx.is_some_and(|id| self.stack.contains(id))
  }

  pub fn compile(&self, schema_json: &str) -> Result<u32> {
    self.engine.compile(schema_json)
  }

  /// The keys of a shaped row (see `rows::Shapes`).
  pub fn shape_keys(&self, shape: u32) -> Option<std::sync::Arc<[String]>> {
    self.engine.shape_keys(shape)
  }

  /// A created row's template (see `rows::TemplateRow`).
  pub fn template(&self, template: u32) -> Option<super::rows::Template> {
    self.engine.template(template)
  }

  /// Runs one dialect call (parsed by the binding: from its JSON arguments, or `create`
  /// data read from JavaScript values).
  pub fn run(&mut self, handle: u32, req: &super::Request) -> Result<String> {
    let schema = self.engine.schema(handle)?;
    let conn = self.conn.as_mut().ok_or_else(closed)?;
    run_now(self.engine.run(conn, &schema, req))
  }

  pub fn init_schema(&mut self, handles: &[u32]) -> Result<()> {
    let conn = self.conn.as_mut().ok_or_else(closed)?;
    run_now(self.engine.init_schema(conn, handles))
  }

  pub fn execute(&mut self, sql: &str, params: &str, rows: bool) -> Result<String> {
    let conn = self.conn.as_mut().ok_or_else(closed)?;
    if rows {
      run_now(self.engine.execute_query(conn, sql, params))
    } else {
      run_now(self.engine.execute_run(conn, sql, params))
    }
  }

  pub fn admin(&mut self, op: &super::Admin) -> Result<String> {
    if *op == super::Admin::TestConnection && self.conn.is_none() {
      return Ok("false".into());
    }
    let conn = self.conn.as_mut().ok_or_else(closed)?;
    run_now(op.run(&self.engine, conn))
  }

  /// Opens a transaction, or a savepoint when one is open (inside `parent`'s context or an
  /// explicit transaction). Returns the TxHandle JSON.
  pub fn begin(&mut self, isolation: Option<&str>, explicit: bool) -> Result<String> {
    let iso = crate::sql::Isolation::from_option(isolation)?;
    let frame = self.stack.next_frame();
    let engine = &self.engine;
    let conn = self.conn.as_mut().ok_or_else(closed)?;
    match &frame.savepoint {
      None => run_now(engine.begin(conn, iso))?,
      Some(sp) => run_now(engine.savepoint(conn, sp))?,
    }
    if frame.depth == 1 {
      self.explicit = explicit;
    }
    let json = frame.handle_json();
    self.stack.push(frame);
    Ok(json)
  }

  /// Commits the top frame; returns true when the outermost transaction ended.
  pub fn commit(&mut self, id: &str) -> Result<bool> {
    let frame = self.stack.top_for_commit(id)?.clone();
    let engine = &self.engine;
    let conn = self.conn.as_mut().ok_or_else(closed)?;
    if let Err(e) = run_now(engine.commit(conn, frame.savepoint.as_deref())) {
      // SQLite may have ended the transaction itself (an automatic rollback after a full
      // disk or an interrupt, or a COMMIT sent through executeRun): then there is nothing
      // left to commit or roll back, and the bookkeeping must say so.
      if !conn.in_transaction() {
        self.stack = Default::default();
        self.end_if_root();
      }
      return Err(e);
    }
    self.stack.pop();
    Ok(self.end_if_root())
  }

  /// Rolls back `id` and every frame inside it; returns true when the outermost ended.
  pub fn rollback(&mut self, id: &str) -> Result<bool> {
    let frame = self.stack.unwind_to(id).ok_or_else(|| Error::new(Code::Transaction, format!("unknown or finished transaction {id}")))?;
    let engine = &self.engine;
    let conn = self.conn.as_mut().ok_or_else(closed)?;
    let r = run_now(engine.rollback(conn, frame.savepoint.as_deref()));
    if r.is_err() && !conn.in_transaction() {
      self.stack = Default::default(); // SQLite already ended it (see `commit`)
    }
    let ended = self.end_if_root();
    if frame.savepoint.is_none() && !conn_in_tx(&self.conn) {
      return Ok(ended); // the outermost transaction is over either way
    }
    r.map(|_| ended)
  }

  /// Whether no transaction holds the connection (calls from outside may run).
  pub fn is_idle(&self) -> bool {
    self.stack.is_empty()
  }

  fn end_if_root(&mut self) -> bool {
    if self.stack.is_empty() {
      self.explicit = false;
      true
    } else {
      false
    }
  }

  /// `disconnect()`: the `create-drop` cleanup, then the connection closes.
  pub fn close(&mut self) -> Result<()> {
    let Some(mut conn) = self.conn.take() else { return Ok(()) };
    if !self.stack.is_empty() {
      let _ = conn.conn.execute_batch("ROLLBACK");
      self.stack = Default::default();
    }
    let r = run_now(self.engine.on_disconnect(&mut conn));
    drop(conn);
    r
  }

  pub fn is_closed(&self) -> bool {
    self.conn.is_none()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn stmt(sql: &str) -> Stmt {
    Stmt { sql: sql.into(), params: vec![] }
  }

  #[test]
  fn the_version_read_after_a_write_holds_until_the_schema_may_change() {
    let mut c = open(":memory:").unwrap();
    c.conn.execute_batch("CREATE TABLE t (a TEXT)").unwrap();
    let insert = stmt("INSERT INTO t (a) VALUES ('x')");
    // Outside a transaction, nothing is kept: another connection may change the schema.
    c.execute_sync(&insert).unwrap();
    let v0 = c.schema_version_after_write().unwrap();
    assert_eq!(c.schema_pin, None);
    run_now(c.batch("BEGIN")).unwrap();
    c.execute_sync(&insert).unwrap();
    assert_eq!(c.schema_version_after_write(), Some(v0));
    assert_eq!(c.schema_pin, Some(v0), "kept inside the transaction");
    c.query_sync(&stmt("SELECT a FROM t"), &mut super::super::rows::ValueRows::new(None)).unwrap();
    assert_eq!(c.schema_pin, Some(v0), "a read keeps it");
    // DDL through the statement path (raw SQL) drops it, and the new version is read.
    c.execute_sync(&stmt("ALTER TABLE t ADD b TEXT")).unwrap();
    assert_eq!(c.schema_pin, None);
    c.execute_sync(&insert).unwrap();
    let v1 = c.schema_version_after_write().unwrap();
    assert_ne!(v1, v0);
    // Transaction control (and DDL) through `batch` drops it too.
    run_now(c.batch("COMMIT")).unwrap();
    assert_eq!(c.schema_pin, None);
  }
}
