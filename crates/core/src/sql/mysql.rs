//! MySQL and MariaDB: backtick quoting, `?` placeholders, DATETIME in the process time zone
//! without milliseconds (as the reference writes it), booleans as 1/0.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone};

use super::{Flavour, Isolation};
use crate::schema::FieldType;

pub struct Mysql;


/// Parses the date strings JavaScript's `Date` parses in practice (ISO forms); `None` when
/// the text is not a date, in which case the reference stores it verbatim.
pub fn parse_js_date(s: &str) -> Option<DateTime<Local>> {
  if let Ok(d) = DateTime::parse_from_rfc3339(s) {
    return Some(d.with_timezone(&Local));
  }
  // Date-only ISO strings are UTC in JavaScript.
  if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
    return Some(d.and_hms_opt(0, 0, 0)?.and_utc().with_timezone(&Local));
  }
  // Date-time strings without an offset are local time in JavaScript.
  for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
    if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
      return Local.from_local_datetime(&n).earliest();
    }
  }
  None
}

impl Flavour for Mysql {
  fn label(&self) -> &'static str {
    "MySQL"
  }
  fn quote_char(&self) -> char {
    '`'
  }
  fn push_placeholder(&self, sql: &mut String, _n: usize, _cast: Option<FieldType>) {
    sql.push('?');
  }
  fn sql_type(&self, ty: FieldType) -> &'static str {
    match ty {
      FieldType::Text => "LONGTEXT",
      FieldType::Number => "DOUBLE",
      FieldType::Boolean => "TINYINT(1)",
      FieldType::Date => "DATETIME",
      FieldType::Json | FieldType::Array => "JSON",
      _ => "VARCHAR(255)",
    }
  }
  fn id_type(&self) -> &'static str {
    "VARCHAR(36)"
  }
  fn encode_date(&self, v: &str) -> String {
    match parse_js_date(v) {
      Some(d) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
      None => v.to_string(),
    }
  }
  fn format_now(&self) -> String {
    Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
  }
  fn partial_indexes(&self) -> bool {
    false
  }
  fn index_if_not_exists(&self) -> bool {
    false
  }
  fn inline_foreign_keys(&self) -> bool {
    false
  }
  /// MySQL's largest LIMIT, its documented way to write an OFFSET without a LIMIT.
  fn unbounded_limit(&self) -> Option<&'static str> {
    Some("18446744073709551615")
  }
  /// The isolation applies to the next transaction only (no `SET SESSION`, which would change
  /// the pooled connection for good), and each statement is sent on its own.
  fn begin(&self, isolation: Option<Isolation>) -> Vec<String> {
    match isolation {
      None => vec!["START TRANSACTION".into()],
      Some(i) => vec![format!("SET TRANSACTION ISOLATION LEVEL {}", i.sql()), "START TRANSACTION".into()],
    }
  }
  fn drop_table(&self, table: &str) -> String {
    format!("DROP TABLE IF EXISTS {} CASCADE", self.quote(table))
  }
  fn foreign_key_checks(&self, on: bool) -> Option<&'static str> {
    Some(if on { "SET FOREIGN_KEY_CHECKS = 1" } else { "SET FOREIGN_KEY_CHECKS = 0" })
  }
  fn foreign_keys_sql(&self) -> Option<&'static str> {
    Some("SELECT table_name AS t, constraint_name AS n FROM information_schema.table_constraints WHERE constraint_schema = DATABASE() AND constraint_type = 'FOREIGN KEY'")
  }
  fn list_tables_sql(&self) -> &'static str {
    "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name"
  }
}
