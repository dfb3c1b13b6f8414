//! PostgreSQL (and CockroachDB): `$n` placeholders with a cast to the column's declared type,
//! because values are bound with their own types and PostgreSQL will not compare `text` with
//! `timestamptz` implicitly (node-postgres sidesteps this by sending every value as untyped
//! text; an explicit cast gives the same result).

use super::{Flavour, Isolation, Param};
use crate::schema::FieldType;

pub struct Postgres;

impl Flavour for Postgres {
  fn label(&self) -> &'static str {
    "PostgreSQL"
  }
  fn quote_char(&self) -> char {
    '"'
  }
  fn push_placeholder(&self, sql: &mut String, n: usize, cast: Option<FieldType>) {
    sql.push('$');
    sql.push_str(itoa::Buffer::new().format(n));
    if let Some(ty) = cast {
      sql.push_str("::");
      sql.push_str(self.sql_type(ty));
    }
  }
  fn sql_type(&self, ty: FieldType) -> &'static str {
    match ty {
      FieldType::Number => "DOUBLE PRECISION",
      FieldType::Boolean => "BOOLEAN",
      FieldType::Date => "TIMESTAMPTZ",
      FieldType::Json | FieldType::Array => "JSONB",
      _ => "TEXT",
    }
  }
  fn id_type(&self) -> &'static str {
    "TEXT"
  }
  /// The reference passes the JS value through and lets PostgreSQL parse it.
  fn encode_bool(&self, v: &serde_json::Value) -> Param {
    match v {
      serde_json::Value::Bool(b) => Param::Bool(*b),
      serde_json::Value::String(s) => Param::Text(s.clone()),
      serde_json::Value::Number(n) => Param::Text(n.to_string()),
      _ => Param::Bool(super::encode::js_truthy(v)),
    }
  }
  fn partial_indexes(&self) -> bool {
    true
  }
  fn index_if_not_exists(&self) -> bool {
    true
  }
  fn inline_foreign_keys(&self) -> bool {
    false
  }
  fn like_keyword(&self, flags: &str) -> &'static str {
    if flags.contains('i') {
      "ILIKE"
    } else {
      "LIKE"
    }
  }
  fn unbounded_limit(&self) -> Option<&'static str> {
    None
  }
  fn begin(&self, isolation: Option<Isolation>) -> Vec<String> {
    match isolation {
      None => vec!["BEGIN".into()],
      Some(i) => vec![format!("BEGIN ISOLATION LEVEL {}", i.sql())],
    }
  }
  fn drop_table(&self, table: &str) -> String {
    format!("DROP TABLE IF EXISTS {} CASCADE", self.quote(table))
  }
  fn foreign_key_checks(&self, _on: bool) -> Option<&'static str> {
    None
  }
  fn foreign_keys_sql(&self) -> Option<&'static str> {
    Some(
      "SELECT c.relname AS t, con.conname AS n FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
       JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE con.contype = 'f' AND ns.nspname = current_schema()",
    )
  }
  fn constraint_names_per_table(&self) -> bool {
    true
  }
  fn list_tables_sql(&self) -> &'static str {
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
  }
}
