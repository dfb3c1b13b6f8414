//! SQLite: `"x"` quoting, `?` placeholders, dates and JSON as TEXT, booleans as 1/0.

use super::{Flavour, Isolation};
use crate::schema::FieldType;

pub struct Sqlite;

impl Flavour for Sqlite {
  fn label(&self) -> &'static str {
    "Sqlite"
  }
  fn quote_char(&self) -> char {
    '"'
  }
  fn push_placeholder(&self, sql: &mut String, _n: usize, _cast: Option<FieldType>) {
    sql.push('?');
  }
  fn sql_type(&self, ty: FieldType) -> &'static str {
    match ty {
      FieldType::Number => "REAL",
      FieldType::Boolean => "INTEGER",
      _ => "TEXT",
    }
  }
  fn id_type(&self) -> &'static str {
    "TEXT"
  }
  fn partial_indexes(&self) -> bool {
    true
  }
  fn index_if_not_exists(&self) -> bool {
    true
  }
  fn inline_foreign_keys(&self) -> bool {
    true
  }
  /// SQLite has no OFFSET without LIMIT; -1 means "no limit".
  fn unbounded_limit(&self) -> Option<&'static str> {
    Some("-1")
  }
  fn begin(&self, isolation: Option<Isolation>) -> Vec<String> {
    vec![match isolation {
      None => "BEGIN".into(),
      Some(Isolation::ReadUncommitted | Isolation::ReadCommitted) => "BEGIN DEFERRED TRANSACTION".into(),
      Some(Isolation::RepeatableRead) => "BEGIN IMMEDIATE TRANSACTION".into(),
      Some(Isolation::Serializable) => "BEGIN EXCLUSIVE TRANSACTION".into(),
    }]
  }
  fn drop_table(&self, table: &str) -> String {
    format!("DROP TABLE IF EXISTS {}", self.quote(table))
  }
  fn foreign_key_checks(&self, on: bool) -> Option<&'static str> {
    Some(if on { "PRAGMA foreign_keys = ON" } else { "PRAGMA foreign_keys = OFF" })
  }
  fn list_tables_sql(&self) -> &'static str {
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
  }
}
