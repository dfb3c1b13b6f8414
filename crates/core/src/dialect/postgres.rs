//! PostgreSQL (and CockroachDB) over a sqlx pool. Rows arrive in PostgreSQL's binary format
//! and are decoded here by type OID straight into cells: numbers as numbers (COUNT, SUM and
//! NUMERIC included), json/jsonb as JSON text, timestamps as `toISOString()` text.

use std::fmt::Write;
use std::str::FromStr;
use std::sync::Arc;

use chrono::NaiveDate;
use sqlx::encode::IsNull;
use sqlx::error::{BoxDynError, DatabaseError};
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgConnectOptions, PgDatabaseError, PgQueryResult, PgRow, PgTypeInfo, PgValueFormat, Postgres};
use sqlx::{Column, Encode, Row, Type, ValueRef};

use super::rows::{write_json_str, Cell, RowSink};
use super::sqlx_pool::{bad_url, join_query, split_query, Driver, ParamRef, Redactor};
use super::AsyncDialect;
use crate::env::OrmConfig;
use crate::error::{Code, Error, Result};
use crate::sql::{Param, Stmt};

pub async fn open(config: OrmConfig) -> Result<Arc<dyn AsyncDialect>> {
  super::sqlx_pool::open::<Pg>(config).await
}

/// Parses `postgres://` / `postgresql://` URLs as node-postgres does, TLS included:
/// `sslmode=disable|prefer|require|verify-ca|verify-full` (libpq meanings) with
/// `sslrootcert`, `sslcert`, `sslkey`; `sslmode=no-verify` (node-postgres) encrypts without
/// checking the certificate; `ssl=true` verifies it and `ssl=false` turns TLS off. Without
/// any of these, and without `PGSSLMODE`, the connection is plain, as node-postgres's is.
pub fn connect_options(uri: &str, redactor: &Redactor) -> Result<PgConnectOptions> {
  let lower = uri.to_ascii_lowercase();
  if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
    return Err(bad_url("postgres", redactor, "expected postgres://user:password@host:port/database"));
  }
  let (base, pairs) = split_query(uri);
  let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len() + 1);
  let mut ssl_given = std::env::var_os("PGSSLMODE").is_some_and(|v| !v.is_empty());
  for (k, v) in pairs {
    let mode = match (k.as_str(), v.to_ascii_lowercase().as_str()) {
      ("ssl", "true" | "1") => Some("verify-full".to_string()),
      ("ssl", "false" | "0") => Some("disable".to_string()),
      ("ssl", other) => return Err(bad_url("postgres", redactor, &format!("ssl must be true or false, got {other:?}"))),
      ("sslmode" | "ssl-mode", "no-verify") => Some("require".to_string()),
      ("sslmode" | "ssl-mode", m) => Some(m.to_string()),
      _ => None,
    };
    match mode {
      Some(m) => {
        ssl_given = true;
        out.push(("sslmode".into(), m));
      }
      None => out.push((k, v)),
    }
  }
  if !ssl_given {
    out.push(("sslmode".into(), "disable".into()));
  }
  PgConnectOptions::from_str(&join_query(base, &out)).map_err(|e| bad_url("postgres", redactor, &e.to_string()))
}

/// The PostgreSQL `Driver`.
pub struct Pg;

// ------------------------------------------------------------------ parameters

/// How each parameter is typed on the wire. NULL goes untyped (OID 0) so the server infers
/// the column's type, as node-postgres lets it; other values carry their own type, and the
/// flavour casts placeholders to the column type where that matters (`$1::TIMESTAMPTZ`).
fn param_type(p: &Param) -> PgTypeInfo {
  match p {
    Param::Null => PgTypeInfo::with_oid(Oid(0)),
    Param::Date(_) => <chrono::DateTime<chrono::Utc> as Type<Postgres>>::type_info(),
    Param::Bool(_) => <bool as Type<Postgres>>::type_info(),
    Param::Int(_) => <i64 as Type<Postgres>>::type_info(),
    Param::Float(_) => <f64 as Type<Postgres>>::type_info(),
    Param::Text(_) => <&str as Type<Postgres>>::type_info(),
  }
}

impl Type<Postgres> for ParamRef<'_> {
  fn type_info() -> PgTypeInfo {
    <&str as Type<Postgres>>::type_info()
  }
}

impl Encode<'_, Postgres> for ParamRef<'_> {
  fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> std::result::Result<IsNull, BoxDynError> {
    match self.0 {
      Param::Null => Ok(IsNull::Yes),
      Param::Bool(b) => <bool as Encode<Postgres>>::encode_by_ref(b, buf),
      Param::Int(i) => <i64 as Encode<Postgres>>::encode_by_ref(i, buf),
      Param::Float(f) => <f64 as Encode<Postgres>>::encode_by_ref(f, buf),
      Param::Text(s) => <&str as Encode<Postgres>>::encode_by_ref(&s.as_str(), buf),
      Param::Date(t) => <chrono::DateTime<chrono::Utc> as Encode<Postgres>>::encode_by_ref(t, buf),
    }
  }
  fn produces(&self) -> Option<PgTypeInfo> {
    Some(param_type(self.0))
  }
}

/// sqlx caches one prepared statement per SQL text, with the parameter types of its first
/// use. The same text bound later with other types (an id given as a number, then as a
/// string; a NULL, then a value) would be decoded by the server with the old types, so the
/// types are written into the text as a leading comment whenever a value is not a string.
fn type_tag(params: &[Param]) -> Option<String> {
  if params.iter().all(|p| matches!(p, Param::Text(_))) {
    return None;
  }
  let mut tag = String::with_capacity(params.len() + 5);
  tag.push_str("/*");
  for p in params {
    tag.push(match p {
      Param::Null => 'N',
      Param::Bool(_) => 'B',
      Param::Int(_) => 'I',
      Param::Float(_) => 'F',
      Param::Text(_) => 'T',
      Param::Date(_) => 'D',
    });
  }
  tag.push_str("*/ ");
  Some(tag)
}

// ------------------------------------------------------------------ cells

/// Type OIDs decoded natively (pg_type.dat).
mod oid {
  pub const BOOL: u32 = 16;
  pub const BYTEA: u32 = 17;
  pub const CHAR: u32 = 18;
  pub const NAME: u32 = 19;
  pub const INT8: u32 = 20;
  pub const INT2: u32 = 21;
  pub const INT4: u32 = 23;
  pub const TEXT: u32 = 25;
  pub const OID: u32 = 26;
  pub const JSON: u32 = 114;
  pub const XML: u32 = 142;
  pub const FLOAT4: u32 = 700;
  pub const FLOAT8: u32 = 701;
  pub const BPCHAR: u32 = 1042;
  pub const VARCHAR: u32 = 1043;
  pub const DATE: u32 = 1082;
  pub const TIME: u32 = 1083;
  pub const TIMESTAMP: u32 = 1114;
  pub const TIMESTAMPTZ: u32 = 1184;
  pub const NUMERIC: u32 = 1700;
  pub const UUID: u32 = 2950;
  pub const JSONB: u32 = 3802;
  /// Array types whose elements are decoded (to a JSON array, as node-postgres gives arrays).
  pub const ARRAYS: &[u32] = &[199, 1000, 1001, 1002, 1003, 1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1115, 1182, 1185, 1231, 2951, 3807];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
  Bool,
  Int2,
  Int4,
  Int8,
  Oid,
  Float4,
  Float8,
  Numeric,
  Text,
  Json,
  Jsonb,
  Uuid,
  Bytea,
  Date,
  Time,
  Timestamp,
  Array,
  /// Anything else (enums, citext, ...): its bytes as text when they are readable.
  Other,
}

fn kind_of(oid: u32) -> Kind {
  match oid {
    oid::BOOL => Kind::Bool,
    oid::INT2 => Kind::Int2,
    oid::INT4 => Kind::Int4,
    oid::INT8 => Kind::Int8,
    oid::OID => Kind::Oid,
    oid::FLOAT4 => Kind::Float4,
    oid::FLOAT8 => Kind::Float8,
    oid::NUMERIC => Kind::Numeric,
    oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::CHAR | oid::XML => Kind::Text,
    oid::JSON => Kind::Json,
    oid::JSONB => Kind::Jsonb,
    oid::UUID => Kind::Uuid,
    oid::BYTEA => Kind::Bytea,
    oid::DATE => Kind::Date,
    oid::TIME => Kind::Time,
    oid::TIMESTAMP | oid::TIMESTAMPTZ => Kind::Timestamp,
    o if oid::ARRAYS.contains(&o) => Kind::Array,
    _ => Kind::Other,
  }
}

/// Microseconds and days between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS_FROM_CE: i32 = 730_120;

fn be_i16(b: &[u8]) -> Option<i16> {
  Some(i16::from_be_bytes(b.get(..2)?.try_into().ok()?))
}
fn be_i32(b: &[u8]) -> Option<i32> {
  Some(i32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}
fn be_i64(b: &[u8]) -> Option<i64> {
  Some(i64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// Readable text, or `None` for bytes that are not (binary data of an unknown type).
fn readable(b: &[u8]) -> Option<&str> {
  let s = std::str::from_utf8(b).ok()?;
  s.bytes().all(|c| c >= 0x20 || matches!(c, b'\t' | b'\n' | b'\r')).then_some(s)
}

/// NUMERIC's binary form (base-10000 digits) written as decimal text, then parsed, so the
/// f64 is the correctly rounded value. NaN and infinities give NaN (written as `null`).
fn numeric(b: &[u8], buf: &mut String) -> f64 {
  let (Some(ndigits), Some(weight), Some(sign)) = (be_i16(b), be_i16(b.get(2..).unwrap_or(&[])), b.get(4..6)) else { return f64::NAN };
  let sign = u16::from_be_bytes([sign[0], sign[1]]);
  if sign & 0xC000 == 0xC000 {
    return f64::NAN;
  }
  if ndigits <= 0 {
    return 0.0;
  }
  buf.clear();
  if sign == 0x4000 {
    buf.push('-');
  }
  for i in 0..ndigits as usize {
    let Some(d) = be_i16(b.get(8 + 2 * i..).unwrap_or(&[])) else { return f64::NAN };
    let _ = write!(buf, "{d:04}");
  }
  let _ = write!(buf, "e{}", 4 * (weight as i32 - ndigits as i32 + 1));
  buf.parse().unwrap_or(f64::NAN)
}

/// A timestamp as a date (epoch milliseconds), or `infinity`/`-infinity` (text).
fn timestamp(b: &[u8]) -> Cell<'static> {
  let Some(micros) = be_i64(b) else { return Cell::Null };
  match micros {
    i64::MAX => Cell::Text("infinity"),
    i64::MIN => Cell::Text("-infinity"),
    m => match m.checked_add(PG_EPOCH_MICROS) {
      Some(unix_micros) => Cell::Date(unix_micros.div_euclid(1000)),
      None => Cell::Null,
    },
  }
}

fn date(b: &[u8], buf: &mut String) -> Option<()> {
  match be_i32(b)? {
    i32::MAX => buf.push_str("infinity"),
    i32::MIN => buf.push_str("-infinity"),
    days => crate::iso_date::write_date(buf, &NaiveDate::from_num_days_from_ce_opt(PG_EPOCH_DAYS_FROM_CE.checked_add(days)?)?),
  }
  Some(())
}

/// `HH:MM:SS[.ffffff]` with trailing fraction zeros dropped, as PostgreSQL prints a time.
fn time(b: &[u8], buf: &mut String) -> Option<()> {
  let us = u64::try_from(be_i64(b)?).ok()?;
  let s = us / 1_000_000;
  crate::iso_date::push_time(buf, false, s / 3600, s / 60 % 60, s % 60, us % 1_000_000);
  Some(())
}

fn uuid(b: &[u8], buf: &mut String) -> Option<()> {
  let b: &[u8; 16] = b.try_into().ok()?;
  for (i, byte) in b.iter().enumerate() {
    if matches!(i, 4 | 6 | 8 | 10) {
      buf.push('-');
    }
    let _ = write!(buf, "{byte:02x}");
  }
  Some(())
}

/// Decodes one binary value. Formatted kinds are written into `buf` (cleared first).
pub fn decode<'a>(kind: Kind, b: &'a [u8], buf: &'a mut String) -> Cell<'a> {
  buf.clear();
  let formatted = |ok: Option<()>, buf: &'a mut String| if ok.is_some() { Cell::Text(buf.as_str()) } else { Cell::Null };
  match kind {
    Kind::Bool => b.first().map_or(Cell::Null, |v| Cell::Bool(*v != 0)),
    Kind::Int2 => be_i16(b).map_or(Cell::Null, |v| Cell::Int(v as i64)),
    Kind::Int4 => be_i32(b).map_or(Cell::Null, |v| Cell::Int(v as i64)),
    Kind::Int8 => be_i64(b).map_or(Cell::Null, Cell::Int),
    Kind::Oid => be_i32(b).map_or(Cell::Null, |v| Cell::Int(v as u32 as i64)),
    Kind::Float4 => b.get(..4).and_then(|s| s.try_into().ok()).map_or(Cell::Null, |a: [u8; 4]| Cell::Float(f32::from_be_bytes(a) as f64)),
    Kind::Float8 => b.get(..8).and_then(|s| s.try_into().ok()).map_or(Cell::Null, |a: [u8; 8]| Cell::Float(f64::from_be_bytes(a))),
    Kind::Numeric => Cell::Float(numeric(b, buf)),
    Kind::Text => std::str::from_utf8(b).map_or(Cell::Bytes(b), Cell::Text),
    Kind::Json => std::str::from_utf8(b).map_or(Cell::Null, Cell::Json),
    // jsonb's binary form is a version byte (1) and the JSON text.
    Kind::Jsonb => b.get(1..).and_then(|t| std::str::from_utf8(t).ok()).map_or(Cell::Null, Cell::Json),
    Kind::Uuid => formatted(uuid(b, buf), buf),
    Kind::Bytea => Cell::Bytes(b),
    Kind::Date => formatted(date(b, buf), buf),
    Kind::Time => formatted(time(b, buf), buf),
    Kind::Timestamp => timestamp(b),
    Kind::Array => as_json(formatted(array(b, buf), buf)),
    Kind::Other => readable(b).map_or(Cell::Null, Cell::Text),
  }
}

/// Text that is known to hold JSON (an array written by `array`).
fn as_json(cell: Cell<'_>) -> Cell<'_> {
  match cell {
    Cell::Text(t) => Cell::Json(t),
    other => other,
  }
}

/// Writes one decoded element as JSON.
fn push_json(out: &mut String, cell: Cell<'_>) {
  match cell {
    Cell::Null => out.push_str("null"),
    Cell::Bool(b) => out.push_str(if b { "true" } else { "false" }),
    Cell::Int(i) => {
      let _ = write!(out, "{i}");
    }
    Cell::Float(f) if f.is_finite() => {
      let _ = write!(out, "{f}");
    }
    Cell::Float(_) => out.push_str("null"),
    Cell::Text(t) => write_json_str(out, t),
    Cell::Date(ms) => write_json_str(out, &crate::iso_date::iso_ms(ms)),
    Cell::Json(j) => out.push_str(j),
    Cell::Bytes(b) => write_json_str(out, &String::from_utf8_lossy(b)),
  }
}

/// An array's binary form as JSON text: header (dimensions, null flag, element OID), the
/// dimension sizes, then each element as a length and its bytes (-1 for NULL).
fn array(b: &[u8], out: &mut String) -> Option<()> {
  let ndim = be_i32(b)?;
  let elem = kind_of(be_i32(b.get(8..)?)? as u32);
  if ndim <= 0 {
    out.push_str("[]");
    return Some(());
  }
  let dims: Vec<usize> = (0..ndim as usize).map(|d| be_i32(b.get(12 + 8 * d..)?).map(|n| n.max(0) as usize)).collect::<Option<_>>()?;
  let mut pos = 12 + 8 * ndim as usize;
  let mut scratch = String::new();
  fn level(b: &[u8], pos: &mut usize, dims: &[usize], elem: Kind, out: &mut String, scratch: &mut String) -> Option<()> {
    out.push('[');
    for i in 0..dims[0] {
      if i > 0 {
        out.push(',');
      }
      if dims.len() > 1 {
        level(b, pos, &dims[1..], elem, out, scratch)?;
        continue;
      }
      let len = be_i32(b.get(*pos..)?)?;
      *pos += 4;
      if len < 0 {
        out.push_str("null");
        continue;
      }
      let bytes = b.get(*pos..*pos + len as usize)?;
      *pos += len as usize;
      push_json(out, decode(elem, bytes, scratch));
    }
    out.push(']');
    Some(())
  }
  level(b, &mut pos, &dims, elem, out, &mut scratch)
}

// ------------------------------------------------------------------ errors

/// `Key (email)=(a@b.c) already exists.` → `email`.
fn key_column(detail: &str) -> Option<String> {
  let rest = detail.split_once("Key (")?.1;
  let cols = rest.split_once(")=")?.0;
  Some(cols.trim_matches('"').to_string())
}

/// `column "x" does not exist` / `column "x" of relation "t" does not exist` → `x`.
fn quoted_column(msg: &str) -> Option<String> {
  let rest = msg.split_once("column \"")?.1;
  Some(rest.split_once('"')?.0.to_string())
}

fn map_pg_error(e: &PgDatabaseError) -> Error {
  let state = e.code();
  let class = &state[..state.len().min(2)];
  let (code, field) = match state {
    "23505" => (Code::Unique, e.detail().and_then(key_column).or_else(|| e.constraint().map(str::to_string))),
    "23502" => (Code::NotNull, e.column().map(str::to_string)),
    "23503" => (Code::ForeignKey, e.detail().and_then(key_column).or_else(|| e.constraint().map(str::to_string))),
    "42703" => (Code::UnknownColumn, e.column().map(str::to_string).or_else(|| quoted_column(e.message()))),
    "42P01" => (Code::Schema, e.table().map(str::to_string)),
    // admin_shutdown (pg_terminate_backend), crash_shutdown, cannot_connect_now, database
    // missing, too many connections: the connection is unusable.
    "57P01" | "57P02" | "57P03" | "3D000" | "53300" => (Code::Connection, None),
    _ if class == "23" => (Code::Constraint, e.constraint().map(str::to_string)),
    _ if class == "08" || class == "28" => (Code::Connection, None),
    _ => (Code::Database, None),
  };
  let mut err = Error::new(code, e.message().to_string()).with_db_code(state);
  err.field = field;
  err
}

impl Driver for Pg {
  type Db = Postgres;
  type Args = sqlx::postgres::PgArguments;
  type Plan = Vec<Kind>;
  const NAME: &'static str = "postgres";
  /// admin_shutdown (`pg_terminate_backend`, a fast shutdown): sent when the backend ends,
  /// before it reads our statement. (Not crash_shutdown: the crash may follow a commit.)
  const SESSION_ENDED_CODES: &'static [&'static str] = &["57P01"];
  const TABLE_COLUMNS_SQL: &'static str =
    "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";

  /// PostgreSQL and CockroachDB return rows from INSERT and UPDATE.
  fn returning(_server_version: &str) -> crate::dialect::Returning {
    crate::dialect::Returning { insert: true, update: true }
  }

  fn connect_options(uri: &str, redactor: &Redactor) -> Result<PgConnectOptions> {
    connect_options(uri, redactor)
  }

  fn statement_sql(st: &Stmt) -> String {
    match type_tag(&st.params) {
      None => st.sql.clone(),
      Some(mut tag) => {
        tag.push_str(&st.sql);
        tag
      }
    }
  }

  fn plan(row: &PgRow) -> Vec<Kind> {
    row.columns().iter().map(|c| c.type_info().oid().map_or(Kind::Other, |o| kind_of(o.0))).collect()
  }

  fn push_row(plan: &Vec<Kind>, row: &PgRow, buf: &mut String, sink: &mut dyn RowSink) {
    for (i, kind) in plan.iter().enumerate() {
      let cell = match row.try_get_raw(i) {
        Ok(v) if v.is_null() => Cell::Null,
        Ok(v) => match (v.format(), v.as_bytes()) {
          (PgValueFormat::Binary, Ok(b)) => decode(*kind, b, buf),
          (PgValueFormat::Text, Ok(b)) => std::str::from_utf8(b).map_or(Cell::Null, Cell::Text),
          (_, Err(_)) => Cell::Null,
        },
        Err(_) => Cell::Null,
      };
      sink.cell(i, cell);
    }
  }

  fn rows_affected(r: &PgQueryResult) -> u64 {
    r.rows_affected()
  }

  /// 0A000 "cached plan must not change result type" (a `SELECT *` after ALTER TABLE).
  fn is_stale_statement(e: &(dyn DatabaseError + 'static)) -> bool {
    e.code().as_deref() == Some("0A000") && e.message().contains("cached plan")
  }

  fn map_db_error(e: &(dyn DatabaseError + 'static)) -> Option<Error> {
    e.try_downcast_ref::<PgDatabaseError>().map(map_pg_error)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn num(bytes: &[u8]) -> f64 {
    numeric(bytes, &mut String::new())
  }

  #[test]
  fn numeric_binary_to_float() {
    // 12345.67: ndigits 3, weight 1, sign +, dscale 2, digits 1 2345 6700
    assert_eq!(num(&[0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1a, 0x2c]), 12345.67);
    // -0.5: ndigits 1, weight -1, sign -, digits 5000
    assert_eq!(num(&[0, 1, 0xff, 0xff, 0x40, 0, 0, 1, 0x13, 0x88]), -0.5);
    assert_eq!(num(&[0, 0, 0, 0, 0, 0, 0, 0]), 0.0);
    assert!(num(&[0, 0, 0, 0, 0xC0, 0, 0, 0]).is_nan());
  }

  #[test]
  fn dates_and_times() {
    let mut buf = String::new();
    // 2024-01-02T03:04:05.678901Z in microseconds since 2000-01-01
    let us: i64 = 1_704_164_645_678_901 - PG_EPOCH_MICROS;
    assert!(matches!(decode(Kind::Timestamp, &us.to_be_bytes(), &mut buf), Cell::Date(1_704_164_645_678)));
    assert!(matches!(decode(Kind::Date, &(-1i32).to_be_bytes(), &mut buf), Cell::Text("1999-12-31")));
    assert!(matches!(decode(Kind::Time, &(45_296_500_000i64).to_be_bytes(), &mut buf), Cell::Text("12:34:56.5")));
    assert_eq!(NaiveDate::from_ymd_opt(2000, 1, 1).map(|d| chrono::Datelike::num_days_from_ce(&d)), Some(PG_EPOCH_DAYS_FROM_CE));
  }

  #[test]
  fn uuid_and_arrays() {
    let mut buf = String::new();
    let u = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
    assert!(matches!(decode(Kind::Uuid, &u, &mut buf), Cell::Text("12345678-9abc-def0-1234-56789abcdef0")));
    // int4[] {1,NULL,3}
    let mut a = Vec::new();
    for v in [1i32, 1, 23, 3, 1] {
      a.extend_from_slice(&v.to_be_bytes());
    }
    for (len, v) in [(4i32, Some(1i32)), (-1, None), (4, Some(3))] {
      a.extend_from_slice(&len.to_be_bytes());
      if let Some(v) = v {
        a.extend_from_slice(&v.to_be_bytes());
      }
    }
    assert!(matches!(decode(Kind::Array, &a, &mut buf), Cell::Json("[1,null,3]")));
  }

  #[test]
  fn urls_default_to_plain_and_map_ssl_options() {
    let r = Redactor::new("postgres://u:pw@h/db");
    let o = connect_options("postgres://u:pw@h:5433/db", &r).unwrap();
    assert_eq!((o.get_host(), o.get_port(), o.get_database()), ("h", 5433, Some("db")));
    if std::env::var_os("PGSSLMODE").is_none() {
      assert!(matches!(o.get_ssl_mode(), sqlx::postgres::PgSslMode::Disable));
    }
    let o = connect_options("postgresql://u:p%40ss@h/db?sslmode=verify-full&sslrootcert=/tmp/ca.pem", &r).unwrap();
    assert!(matches!(o.get_ssl_mode(), sqlx::postgres::PgSslMode::VerifyFull));
    let o = connect_options("postgres://h/db?sslmode=no-verify", &r).unwrap();
    assert!(matches!(o.get_ssl_mode(), sqlx::postgres::PgSslMode::Require));
    let o = connect_options("postgres://h/db?ssl=true", &r).unwrap();
    assert!(matches!(o.get_ssl_mode(), sqlx::postgres::PgSslMode::VerifyFull));
    let r = Redactor::new("mysql://u:secret@h/db");
    let e = connect_options("mysql://u:secret@h/db", &r).unwrap_err();
    assert_eq!(e.code, Code::Config);
    assert!(e.message.contains("SGBD_URI") && !e.message.contains("secret"), "{}", e.message);
  }

  #[test]
  fn type_tags_separate_statement_cache_entries() {
    assert_eq!(type_tag(&[Param::Text("a".into())]), None);
    assert_eq!(type_tag(&[Param::Int(1), Param::Null, Param::Text("x".into())]).as_deref(), Some("/*INT*/ "));
  }
}
