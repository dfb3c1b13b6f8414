//! Dialects: the `IDialect` methods over one trait, one module per backend. The SQL
//! backends share `engine` (the reference's semantics written once) and differ only in
//! their `Conn` (how a statement runs and how cells and errors come back); the NET dialect
//! maps the same requests onto HTTP.

pub mod chunks;
pub mod echo;
pub mod engine;
pub mod mysql;
pub mod net;
pub mod pooled;
pub mod postgres;
pub mod request;
pub mod rows;
pub mod sqlite;
pub mod sqlx_pool;
pub mod tx;

use std::future::Future;
use std::sync::Arc;

pub use request::Request;
pub use rows::{Cell, RowSink};

use crate::error::Result;
use crate::sql::Stmt;

/// One database connection, as the engine sees it.
pub trait Conn: Send {
  /// Runs a statement that returns rows, feeding them to `sink`.
  fn query(&mut self, st: &Stmt, sink: &mut dyn RowSink) -> impl Future<Output = Result<()>> + Send;
  /// Runs a statement, returning the affected-row count.
  fn execute(&mut self, st: &Stmt) -> impl Future<Output = Result<u64>> + Send;
  /// Runs one parameterless statement through the simple (text) protocol: transaction
  /// control and DDL, which MySQL refuses to prepare.
  fn batch(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send;
  /// Column names of an existing table (empty when it does not exist).
  fn table_columns(&mut self, table: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
  /// Whether a transaction is open on this connection (multi-statement writes then use a
  /// savepoint instead of their own transaction).
  fn in_transaction(&self) -> bool;
  /// Whether an auto-ALTER ran in the open transaction, which may still roll it back. The
  /// engine sets it, and clears it when a transaction begins.
  fn ddl_in_tx(&mut self) -> &mut bool;
  /// SQLite's `PRAGMA schema_version` (it moves with every schema change); `None` elsewhere.
  /// Where it is known, `create` may skip reading its row back (see `echo`).
  fn schema_version(&mut self) -> Option<i64> {
    None
  }
  /// `schema_version`, called right after this connection wrote a row.
  fn schema_version_after_write(&mut self) -> Option<i64> {
    self.schema_version()
  }
  /// Which writes can hand back the written row in the same statement (`RETURNING *`).
  fn returning(&self) -> Returning {
    Returning::default()
  }
}

/// `INSERT … RETURNING *` / `UPDATE … RETURNING *` support of a connection's server: a write
/// and its read-back in one statement (one round trip instead of two).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Returning {
  pub insert: bool,
  pub update: bool,
}

/// Schema-management and maintenance calls that take no schema handle.
#[derive(Debug, Clone, PartialEq)]
pub enum Admin {
  DropTable(String),
  DropAllTables,
  DropSchema(Vec<u32>),
  TruncateTable(String),
  /// `None`: every schema of the last `initSchema`.
  TruncateAll(Option<Vec<u32>>),
  TestConnection,
  ListTables,
}

impl Admin {
  /// Parses `(op, JSON argument)` as the binding receives them.
  pub fn parse(op: &str, arg: &str) -> crate::error::Result<Self> {
    use crate::error::Error;
    let v: serde_json::Value = if arg.is_empty() { serde_json::Value::Null } else { serde_json::from_str(arg)? };
    let name = || v.as_str().filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| Error::arg(format!("{op}: table name must be a non-empty string")).with_field("name"));
    let handles = || -> crate::error::Result<Vec<u32>> {
      match &v {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::Array(a) => a.iter().map(|h| h.as_u64().map(|h| h as u32).ok_or_else(|| Error::arg(format!("{op}: expected schemas")))).collect(),
        _ => Err(Error::arg(format!("{op}: expected a list of schemas"))),
      }
    };
    Ok(match op {
      "dropTable" => Admin::DropTable(name()?),
      "dropAllTables" => Admin::DropAllTables,
      "dropSchema" => Admin::DropSchema(handles()?),
      "truncateTable" => Admin::TruncateTable(name()?),
      "truncateAll" => Admin::TruncateAll(if v.is_null() { None } else { Some(handles()?) }),
      "testConnection" => Admin::TestConnection,
      "listTables" => Admin::ListTables,
      other => return Err(Error::arg(format!("unknown maintenance call \"{other}\""))),
    })
  }

  /// Runs the call with `engine` on `c`; the result is JSON text.
  pub async fn run<C: Conn>(&self, engine: &engine::SqlEngine, c: &mut C) -> Result<String> {
    use serde_json::Value;
    let names = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect()).to_string();
    Ok(match self {
      Admin::DropTable(n) => engine.drop_table(c, n).await.map(|_| "null".to_string())?,
      Admin::DropAllTables => engine.drop_all_tables(c).await.map(|_| "null".to_string())?,
      Admin::DropSchema(h) => names(engine.drop_schema_handles(c, h).await?),
      Admin::TruncateTable(n) => engine.truncate_table(c, n).await.map(|_| "null".to_string())?,
      Admin::TruncateAll(h) => names(engine.truncate_all(c, h.as_deref()).await?),
      Admin::TestConnection => engine.test_connection(c).await.to_string(),
      Admin::ListTables => names(engine.list_tables(c).await?),
    })
  }
}

/// A boxed, sendable future: what the object-safe async dialects return.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>;

/// A dialect whose calls may wait (pooled SQL servers, NET). Every method returns a
/// `'static` future so the binding can hand it to the runtime.
pub trait AsyncDialect: Send + Sync + 'static {
  /// `sqlite`, `postgres`, `mysql`, `mariadb`, `cockroachdb` or `net-proxy`.
  fn dialect_type(&self) -> &'static str;
  fn compile(&self, schema_json: &str) -> Result<u32>;
  /// Whether row answers may come shaped (`rows::Shapes`): the SQL dialects'. NET
  /// answers are the server's JSON, passed on as they are.
  fn shapes_rows(&self) -> bool {
    false
  }
  /// The keys of a shaped row this dialect answered with.
  fn shape_keys(&self, _shape: u32) -> Option<std::sync::Arc<[String]>> {
    None
  }
  fn init_schema(self: std::sync::Arc<Self>, handles: Vec<u32>) -> BoxFuture<()>;
  fn call(self: std::sync::Arc<Self>, method: String, handle: u32, args: String, tx: Option<String>) -> BoxFuture<String>;
  /// Whether calls may come already read (`request`): the SQL dialects'. NET forwards the
  /// JSON arguments it is given.
  fn takes_requests(&self) -> bool {
    false
  }
  /// A call whose arguments were read by the binding (`create` data sent as values, see
  /// `src/records.rs`), answered as `call` answers it; only where `takes_requests`.
  fn request(self: std::sync::Arc<Self>, _handle: u32, _req: Request, _tx: Option<String>) -> BoxFuture<String> {
    Box::pin(async { Err(crate::error::Error::internal("this dialect takes its calls as JSON")) })
  }
  /// A templated `create` answer's keys and where each value comes from (`rows::Template`).
  fn template(&self, _template: u32) -> Option<rows::Template> {
    None
  }
  /// Opens a transaction (or a savepoint inside `parent`); returns the TxHandle JSON.
  fn begin_tx(self: std::sync::Arc<Self>, parent: Option<String>, isolation: Option<String>, explicit: bool) -> BoxFuture<String>;
  fn commit_tx(self: std::sync::Arc<Self>, id: String) -> BoxFuture<()>;
  fn rollback_tx(self: std::sync::Arc<Self>, id: String) -> BoxFuture<()>;
  fn execute(self: std::sync::Arc<Self>, sql: String, params: String, rows: bool, tx: Option<String>) -> BoxFuture<String>;
  fn admin(self: std::sync::Arc<Self>, op: Admin, tx: Option<String>) -> BoxFuture<String>;
  /// Closes the pool (after the `create-drop` cleanup); later calls fail with `E_CLOSED`.
  fn close(self: std::sync::Arc<Self>) -> BoxFuture<()>;
}

/// A freshly opened dialect: SQLite runs synchronously on the caller's thread, the others
/// behind futures.
pub enum Opened {
  Sqlite(Box<sqlite::SqliteSession>),
  Async(Arc<dyn AsyncDialect>),
}

/// Opens the SQL dialect a configuration names.
pub async fn open_orm(config: crate::env::OrmConfig) -> Result<Opened> {
  use crate::env::Backend;
  Ok(match config.backend {
    Backend::Sqlite => Opened::Sqlite(Box::new(sqlite::SqliteSession::open(config)?)),
    Backend::Postgres | Backend::Cockroachdb => Opened::Async(postgres::open(config).await?),
    Backend::Mysql | Backend::Mariadb => Opened::Async(mysql::open(config).await?),
  })
}
