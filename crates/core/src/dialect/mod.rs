//! Dialects: the `IDialect` methods over one trait, one module per backend. The SQL
//! backends share `engine` (the reference's semantics written once) and differ only in
//! their `Conn` (how a statement runs and how cells and errors come back); the NET dialect
//! maps the same requests onto HTTP.

pub mod engine;
pub mod request;
pub mod rows;
pub mod sqlite;
pub mod tx;

use std::future::Future;

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
}
