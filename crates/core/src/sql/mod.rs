//! SQL generation. Everything that differs between SQLite, PostgreSQL and MySQL lives in a
//! `Flavour` implementation (quoting, placeholders, type names, value encodings, LIMIT
//! forms); the builders in `filter`, `query` and `ddl` are written once against it.

pub mod ddl;
pub mod encode;
pub mod filter;
pub mod insert;
pub mod mysql;
pub mod postgres;
pub mod query;
pub mod sqlite;

use crate::env::Backend;
use crate::schema::FieldType;

/// A bound parameter. Values never enter SQL text; identifiers are quoted by the flavour.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
  Null,
  Bool(bool),
  Int(i64),
  Float(f64),
  Text(String),
  /// A `Date` given as a raw SQL parameter: bound as a `TIMESTAMPTZ` on PostgreSQL, local
  /// `DATETIME` on MySQL, ISO text on SQLite (how each stores dates).
  Date(chrono::DateTime<chrono::Utc>),
}

/// Whether a statement's first word is one of `words` (any case): how raw SQL and the
/// engine's own transaction control and DDL are told apart.
pub fn starts_with_word(sql: &str, words: &[&str]) -> bool {
  let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
  words.iter().any(|w| first.eq_ignore_ascii_case(w))
}

/// Plain DML, which never changes a table's shape (a trigger body cannot run DDL either).
/// Anything else (DDL, a PRAGMA, transaction control) may.
pub fn is_plain_dml(sql: &str) -> bool {
  starts_with_word(sql, &["SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES"])
}

/// A statement ready for a driver.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stmt {
  pub sql: String,
  pub params: Vec<Param>,
}

impl Stmt {
  pub fn new(sql: impl Into<String>) -> Self {
    Stmt { sql: sql.into(), params: Vec::new() }
  }
}

/// Transaction isolation levels accepted by `$transaction(cb, { isolation })`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
  ReadUncommitted,
  ReadCommitted,
  RepeatableRead,
  Serializable,
}

impl Isolation {
  pub fn parse(s: &str) -> Option<Self> {
    Some(match s.trim().to_ascii_uppercase().replace('_', " ").as_str() {
      "READ UNCOMMITTED" => Isolation::ReadUncommitted,
      "READ COMMITTED" => Isolation::ReadCommitted,
      "REPEATABLE READ" => Isolation::RepeatableRead,
      "SERIALIZABLE" => Isolation::Serializable,
      _ => return None,
    })
  }
  /// The `isolation` option of `$transaction`/`beginTx`: absent, or one of the four levels.
  pub fn from_option(i: Option<&str>) -> crate::error::Result<Option<Self>> {
    match i {
      None => Ok(None),
      Some(s) => Self::parse(s).map(Some).ok_or_else(|| {
        crate::error::Error::arg(format!("isolation must be READ UNCOMMITTED, READ COMMITTED, REPEATABLE READ or SERIALIZABLE, got {s:?}")).with_field("isolation")
      }),
    }
  }
  pub fn sql(self) -> &'static str {
    match self {
      Isolation::ReadUncommitted => "READ UNCOMMITTED",
      Isolation::ReadCommitted => "READ COMMITTED",
      Isolation::RepeatableRead => "REPEATABLE READ",
      Isolation::Serializable => "SERIALIZABLE",
    }
  }
}

/// The per-database differences, in small named places.
pub trait Flavour: Send + Sync + 'static {
  /// The label used in logs (`[DAL:<label>]`).
  fn label(&self) -> &'static str;
  fn quote_char(&self) -> char;
  /// `?` or `$n`; `cast` is the declared type of the column the value goes to.
  fn push_placeholder(&self, sql: &mut String, n: usize, cast: Option<FieldType>);
  fn sql_type(&self, ty: FieldType) -> &'static str;
  fn id_type(&self) -> &'static str;
  /// How a value bound to a boolean column is encoded (§4.1 rule 2): 1/0 by JavaScript
  /// truthiness, unless the engine has a boolean type.
  fn encode_bool(&self, v: &serde_json::Value) -> Param {
    Param::Int(encode::js_truthy(v) as i64)
  }
  /// How a date string is written (§4.1 rule 3): verbatim unless the engine needs a format.
  fn encode_date(&self, v: &str) -> String {
    v.to_string()
  }
  /// "Now" as this engine stores dates: `toISOString()` text unless overridden.
  fn format_now(&self) -> String {
    crate::iso_date::iso_now()
  }
  /// Partial (`WHERE deletedAt IS NULL`) unique indexes.
  fn partial_indexes(&self) -> bool;
  /// `CREATE INDEX IF NOT EXISTS` is understood.
  fn index_if_not_exists(&self) -> bool;
  /// Foreign keys are declared inside CREATE TABLE (SQLite cannot ALTER them in).
  fn inline_foreign_keys(&self) -> bool;
  /// `LIKE`, or `ILIKE` where the flags ask for case-insensitivity and the engine has it.
  fn like_keyword(&self, _flags: &str) -> &'static str {
    "LIKE"
  }
  /// The LIMIT value meaning "no limit", for engines that refuse an OFFSET without a LIMIT.
  fn unbounded_limit(&self) -> Option<&'static str>;
  /// The `LIMIT`/`OFFSET` tail; `skip` without `limit` stays valid SQL (§12.2 #4).
  fn limit_offset(&self, sql: &mut String, limit: Option<u64>, skip: Option<u64>) {
    use std::fmt::Write;
    match (limit, self.unbounded_limit()) {
      (Some(l), _) => {
        let _ = write!(sql, " LIMIT {l}");
      }
      (None, Some(all)) if skip.is_some() => {
        let _ = write!(sql, " LIMIT {all}");
      }
      _ => {}
    }
    if let Some(s) = skip {
      let _ = write!(sql, " OFFSET {s}");
    }
  }
  /// Statements that open a transaction.
  fn begin(&self, isolation: Option<Isolation>) -> Vec<String>;
  /// `DROP TABLE` for one (already prefixed) table.
  fn drop_table(&self, table: &str) -> String;
  /// Lists the foreign keys of the current database/schema as rows `t` (table), `n`
  /// (constraint name); `None` where they are declared inside CREATE TABLE.
  fn foreign_keys_sql(&self) -> Option<&'static str> {
    None
  }
  /// Constraint names are unique per table (PostgreSQL), not per database (MySQL).
  fn constraint_names_per_table(&self) -> bool {
    false
  }
  /// Lists the tables of the current database/schema (one text column).
  fn list_tables_sql(&self) -> &'static str;
  /// Turns foreign-key enforcement off/on for this connection, so `create` and
  /// `dropAllTables` can drop parents before children (§12.2 #7); `None` where `DROP …
  /// CASCADE` already does it.
  fn foreign_key_checks(&self, on: bool) -> Option<&'static str>;

  fn quote(&self, ident: &str) -> String {
    let q = self.quote_char();
    let mut s = String::with_capacity(ident.len() + 2);
    push_quoted(&mut s, q, ident);
    s
  }

  fn push_quoted(&self, sql: &mut String, ident: &str) {
    push_quoted(sql, self.quote_char(), ident);
  }
}

/// Quotes an identifier, doubling embedded quote characters so no input can end the
/// identifier early.
fn push_quoted(sql: &mut String, q: char, ident: &str) {
  sql.push(q);
  if !ident.contains(q) {
    sql.push_str(ident);
  } else {
    for c in ident.chars() {
      if c == q {
        sql.push(q);
      }
      sql.push(c);
    }
  }
  sql.push(q);
}

pub fn flavour_for(backend: Backend) -> &'static dyn Flavour {
  match backend {
    Backend::Sqlite => &sqlite::Sqlite,
    Backend::Postgres | Backend::Cockroachdb => &postgres::Postgres,
    Backend::Mysql | Backend::Mariadb => &mysql::Mysql,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn only_plain_dml_keeps_the_schema() {
    for sql in ["SELECT 1", "  insert INTO t VALUES (1)", "WITH x AS (SELECT 1) DELETE FROM t", "update t SET a = 1", "REPLACE INTO t VALUES (1)"] {
      assert!(is_plain_dml(sql), "{sql}");
    }
    for sql in ["ALTER TABLE t ADD c", "PRAGMA schema_version = 9", "CREATE TRIGGER x", "COMMIT", "ROLLBACK TO SAVEPOINT s", "SELECTX", ""] {
      assert!(!is_plain_dml(sql), "{sql}");
    }
  }

  #[test]
  fn quoting_doubles_embedded_quotes() {
    assert_eq!(sqlite::Sqlite.quote("a\"b"), "\"a\"\"b\"");
    assert_eq!(mysql::Mysql.quote("a`b"), "`a``b`");
    assert_eq!(postgres::Postgres.quote("x"), "\"x\"");
  }
}
