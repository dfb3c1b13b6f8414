//! MySQL and MariaDB over a sqlx pool.
//!
//! Session settings: the server's `sql_mode` is left exactly as configured (sqlx would
//! otherwise append `PIPES_AS_CONCAT`, which changes what `||` means in raw SQL), so under
//! the default `STRICT_TRANS_TABLES` a NOT NULL column left out of an INSERT is an error, as
//! with mysql2. The session `time_zone` is `+00:00` (sqlx's default), so TIMESTAMP columns
//! and `NOW()` are UTC; DATETIME columns, which is what the ORM writes, carry no zone and are
//! read in the process's local time zone, as mysql2 reads them. Affected-row counts are
//! *matched* rows (sqlx sets `CLIENT_FOUND_ROWS`, as mysql2 and the mariadb driver do), so
//! an UPDATE that sets a column to the value it already has still counts.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{Local, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use sqlx::encode::IsNull;
use sqlx::error::{BoxDynError, DatabaseError};
use sqlx::mysql::types::MySqlTime;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlDatabaseError, MySqlQueryResult, MySqlRow, MySqlSslMode, MySqlTypeInfo, MySqlValueRef};
use sqlx::{Column, Decode, Encode, Row, Type, TypeInfo, ValueRef};

use super::rows::{Cell, RowSink};
use super::sqlx_pool::{bad_url, join_query, split_query, Driver, ParamRef, Redactor};
use crate::iso_date::{epoch_ms, write_date};
use super::AsyncDialect;
use crate::env::OrmConfig;
use crate::error::{Code, Error, Result};
use crate::sql::{Param, Stmt};

pub async fn open(config: OrmConfig) -> Result<Arc<dyn AsyncDialect>> {
  super::sqlx_pool::open::<My>(config).await
}

/// Parses `mysql://` and `mariadb://` URLs (credentials percent-decoded). TLS:
/// `ssl-mode` (also `sslmode`) takes MySQL's names (`DISABLED`, `PREFERRED`, `REQUIRED`,
/// `VERIFY_CA`, `VERIFY_IDENTITY`) or libpq's (`disable`, `prefer`, `require`, `verify-ca`,
/// `verify-full`); `ssl-ca` (also `sslca`, `sslrootcert`) names the CA file. mysql2's `ssl`
/// works too: `ssl=false` is plain, `ssl=true` or a JSON object verifies the server
/// (`{"rejectUnauthorized":false}` only encrypts; a `ca` member is the CA in PEM). Without
/// any of these the connection is plain, as mysql2's is. mysql2's `timezone` option (how it
/// converts dates in JavaScript) has no meaning here and is ignored.
pub fn connect_options(uri: &str, redactor: &Redactor) -> Result<MySqlConnectOptions> {
  let bad = |why: &str| bad_url("mysql", redactor, why);
  let lower = uri.to_ascii_lowercase();
  let rest = if lower.starts_with("mysql://") {
    &uri["mysql://".len()..]
  } else if lower.starts_with("mariadb://") {
    &uri["mariadb://".len()..]
  } else {
    return Err(bad("expected mysql://user:password@host:port/database or mariadb://…"));
  };
  let url = format!("mysql://{rest}");
  let (base, pairs) = split_query(&url);
  let mut kept = Vec::with_capacity(pairs.len());
  let mut ssl_mode = MySqlSslMode::Disabled;
  let mut ssl_ca_file: Option<String> = None;
  let mut ssl_ca_pem: Option<String> = None;
  for (k, v) in pairs {
    match k.as_str() {
      "ssl-mode" | "sslmode" | "ssl_mode" => ssl_mode = ssl_mode_named(&v).ok_or_else(|| bad(&format!("unknown ssl-mode {v:?}")))?,
      "ssl-ca" | "sslca" | "sslrootcert" => ssl_ca_file = Some(v),
      "ssl" => (ssl_mode, ssl_ca_pem) = mysql2_ssl(&v),
      "timezone" | "time-zone" => {}
      _ => kept.push((k, v)),
    }
  }
  let mut o = MySqlConnectOptions::from_str(&join_query(base, &kept)).map_err(|e| bad(&e.to_string()))?;
  o = o.ssl_mode(ssl_mode).pipes_as_concat(false).no_engine_substitution(false);
  if let Some(f) = ssl_ca_file {
    o = o.ssl_ca(f);
  }
  if let Some(pem) = ssl_ca_pem {
    o = o.ssl_ca_from_pem(pem.into_bytes());
  }
  Ok(o)
}

fn ssl_mode_named(v: &str) -> Option<MySqlSslMode> {
  Some(match v.to_ascii_lowercase().replace('_', "-").as_str() {
    "disabled" | "disable" => MySqlSslMode::Disabled,
    "preferred" | "prefer" => MySqlSslMode::Preferred,
    "required" | "require" => MySqlSslMode::Required,
    "verify-ca" => MySqlSslMode::VerifyCa,
    "verify-identity" | "verify-full" => MySqlSslMode::VerifyIdentity,
    _ => return None,
  })
}

/// mysql2's `ssl` URL option: a JSON value (or a profile name, which means "verify").
fn mysql2_ssl(v: &str) -> (MySqlSslMode, Option<String>) {
  match v.trim().to_ascii_lowercase().as_str() {
    "false" | "0" => return (MySqlSslMode::Disabled, None),
    "true" | "1" => return (MySqlSslMode::VerifyIdentity, None),
    _ => {}
  }
  match serde_json::from_str::<serde_json::Value>(v) {
    Ok(serde_json::Value::Object(o)) => {
      let verify = o.get("rejectUnauthorized").and_then(|r| r.as_bool()).unwrap_or(true);
      let ca = o.get("ca").and_then(|c| c.as_str()).map(str::to_string);
      (if verify { MySqlSslMode::VerifyIdentity } else { MySqlSslMode::Required }, ca)
    }
    _ => (MySqlSslMode::VerifyIdentity, None),
  }
}

/// The MySQL/MariaDB `Driver`.
pub struct My;

// ------------------------------------------------------------------ parameters

impl Type<MySql> for ParamRef<'_> {
  fn type_info() -> MySqlTypeInfo {
    <&str as Type<MySql>>::type_info()
  }
}

impl Encode<'_, MySql> for ParamRef<'_> {
  fn encode_by_ref(&self, buf: &mut Vec<u8>) -> std::result::Result<IsNull, BoxDynError> {
    match self.0 {
      Param::Null => Ok(IsNull::Yes),
      Param::Bool(b) => <bool as Encode<MySql>>::encode_by_ref(b, buf),
      Param::Int(i) => <i64 as Encode<MySql>>::encode_by_ref(i, buf),
      Param::Float(f) => <f64 as Encode<MySql>>::encode_by_ref(f, buf),
      Param::Text(s) => <&str as Encode<MySql>>::encode_by_ref(&s.as_str(), buf),
      // DATETIME holds local time (orm-compat.md §4): bind the local wall-clock time.
      Param::Date(t) => <NaiveDateTime as Encode<MySql>>::encode_by_ref(&t.with_timezone(&chrono::Local).naive_local(), buf),
    }
  }
  /// MySQL takes each execution's parameter types with its values, so no caching issue.
  fn produces(&self) -> Option<MySqlTypeInfo> {
    Some(match self.0 {
      Param::Null | Param::Text(_) => <&str as Type<MySql>>::type_info(),
      Param::Date(_) => <NaiveDateTime as Type<MySql>>::type_info(),
      Param::Bool(_) => <bool as Type<MySql>>::type_info(),
      Param::Int(_) => <i64 as Type<MySql>>::type_info(),
      Param::Float(_) => <f64 as Type<MySql>>::type_info(),
    })
  }
}

// ------------------------------------------------------------------ cells

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
  Int,
  UInt,
  Float,
  /// DECIMAL (SUM/AVG of integers): a number, like every aggregate.
  Decimal,
  Text,
  /// BLOB types: text when the bytes are UTF-8. MariaDB's JSON is a LONGTEXT with a binary
  /// collation and reaches us flagged as a BLOB; it must come back as text.
  Blob,
  Json,
  /// DATETIME: no zone; local time of this process.
  DateTime,
  /// TIMESTAMP: UTC (the session time zone is `+00:00`).
  Timestamp,
  Date,
  Time,
  Bytes,
  Null,
}

fn kind_of(t: &MySqlTypeInfo) -> Kind {
  match t.name() {
    "BOOLEAN" | "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => Kind::Int,
    "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "INT UNSIGNED" | "MEDIUMINT UNSIGNED" | "BIGINT UNSIGNED" => Kind::UInt,
    "FLOAT" | "DOUBLE" => Kind::Float,
    "DECIMAL" => Kind::Decimal,
    "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" => Kind::Text,
    "JSON" => Kind::Json,
    "DATETIME" => Kind::DateTime,
    "TIMESTAMP" => Kind::Timestamp,
    "DATE" => Kind::Date,
    "TIME" => Kind::Time,
    "BIT" | "GEOMETRY" => Kind::Bytes,
    "NULL" => Kind::Null,
    _ => Kind::Blob,
  }
}

/// A zone-less date-time read as JavaScript's `new Date(y, m, d, h, mi, s)` does: in the
/// local zone; in a DST gap, an hour later; when ambiguous, the earlier instant.
fn local_to_utc(t: &NaiveDateTime) -> NaiveDateTime {
  let local = Local.from_local_datetime(t).earliest().or_else(|| Local.from_local_datetime(&(*t + chrono::Duration::hours(1))).earliest());
  local.map_or(*t, |l| l.naive_utc())
}

/// The local zone's offset over the last local hour a `DATETIME` of this result fell in.
/// Each zone conversion costs a clock read (chrono re-validates its zone data), and the rows
/// of one result mostly fall in few hours. The offset is kept only when both ends of the hour
/// convert with the same offset: no zone has two transitions within an hour, so the whole
/// hour then has it, ambiguous and skipped times included (they convert as `local_to_utc`
/// does). Kept per result, so a zone change between queries is always seen.
#[derive(Default)]
pub struct LocalZoneMemo(std::cell::Cell<Option<(NaiveDateTime, i64)>>);

impl LocalZoneMemo {
  fn epoch_ms(&self, t: &NaiveDateTime) -> i64 {
    self.epoch_ms_in(t, local_to_utc)
  }

  /// `to_utc`: the zone's conversion (the tests give zones other than the machine's).
  fn epoch_ms_in(&self, t: &NaiveDateTime, to_utc: fn(&NaiveDateTime) -> NaiveDateTime) -> i64 {
    let hour = t.with_minute(0).and_then(|h| h.with_second(0)).and_then(|h| h.with_nanosecond(0)).unwrap_or(*t);
    if let Some((start, offset)) = self.0.get() {
      if start == hour {
        return epoch_ms(t) - offset;
      }
    }
    let offset_at = |x: &NaiveDateTime| epoch_ms(x) - epoch_ms(&to_utc(x));
    let offset = offset_at(&hour);
    let last = hour + chrono::Duration::milliseconds(3_599_999);
    if offset_at(&last) != offset {
      // A transition inside this hour: each value is converted on its own.
      return epoch_ms(&to_utc(t));
    }
    self.0.set(Some((hour, offset)));
    epoch_ms(t) - offset
  }
}

/// How one result's columns are decoded.
pub struct Plan {
  kinds: Vec<Kind>,
  zone: LocalZoneMemo,
}

fn decode<'r, T: Decode<'r, MySql>>(v: &MySqlValueRef<'r>) -> Option<T> {
  T::decode(v.clone()).ok()
}

fn text_or_bytes(b: &[u8]) -> Cell<'_> {
  std::str::from_utf8(b).map_or(Cell::Bytes(b), Cell::Text)
}

/// Decodes one value (binary protocol, or text for a statement run unprepared).
pub fn decode_cell<'a>(kind: Kind, v: MySqlValueRef<'a>, buf: &'a mut String, zone: &LocalZoneMemo) -> Cell<'a> {
  buf.clear();
  let cell = match kind {
    Kind::Null => Some(Cell::Null),
    Kind::Int => decode::<i64>(&v).map(Cell::Int),
    Kind::UInt => decode::<u64>(&v).map(|u| i64::try_from(u).map_or(Cell::Float(u as f64), Cell::Int)),
    Kind::Float => decode::<f64>(&v).map(Cell::Float),
    Kind::Decimal => decode::<&str>(&v).map(|s| s.parse::<f64>().map_or(Cell::Text(s), Cell::Float)),
    Kind::Text => decode::<&[u8]>(&v).map(text_or_bytes),
    Kind::Blob => decode::<&[u8]>(&v).map(text_or_bytes),
    Kind::Json => decode::<&str>(&v).map(Cell::Json),
    Kind::Bytes => decode::<&[u8]>(&v).map(Cell::Bytes),
    Kind::DateTime => decode::<NaiveDateTime>(&v).map(|t| {
      Cell::Date(zone.epoch_ms(&t))
    }),
    Kind::Timestamp => decode::<NaiveDateTime>(&v).map(|t| {
      Cell::Date(epoch_ms(&t))
    }),
    Kind::Date => decode::<NaiveDate>(&v).map(|d| {
      write_date(buf, &d);
      Cell::Text(buf.as_str())
    }),
    Kind::Time => decode::<MySqlTime>(&v).map(|t| {
      crate::iso_date::push_time(buf, t.sign().is_negative(), t.hours().into(), t.minutes().into(), t.seconds().into(), t.microseconds().into());
      Cell::Text(buf.as_str())
    }),
  };
  // Zero dates ('0000-00-00') and other undecodable values read as null, like mysql2's
  // invalid Date.
  cell.unwrap_or(Cell::Null)
}

// ------------------------------------------------------------------ errors

/// The first `'…'`-quoted text after `marker`.
fn quoted_after(msg: &str, marker: &str, quote: char) -> Option<String> {
  let rest = msg.split_once(marker)?.1;
  let rest = rest.strip_prefix(quote)?;
  Some(rest.split_once(quote)?.0.to_string())
}

/// `Duplicate entry 'x' for key 'email'` (MariaDB) or `'users.email'` (MySQL 8) → `email`;
/// the primary key is the `id` column.
fn duplicate_key(msg: &str) -> Option<String> {
  let key = msg.rsplit_once("for key '")?.1.trim_end_matches('\'');
  let key = key.rsplit('.').next().unwrap_or(key);
  Some(if key == "PRIMARY" { "id".to_string() } else { key.to_string() })
}

fn map_mysql_error(e: &MySqlDatabaseError) -> Error {
  let n = e.number();
  let msg = e.message();
  let (code, field) = match n {
    1062 | 1586 => (Code::Unique, duplicate_key(msg)),
    1048 => (Code::NotNull, quoted_after(msg, "Column ", '\'')),
    1364 => (Code::NotNull, quoted_after(msg, "Field ", '\'')),
    1216 | 1217 | 1451 | 1452 => (Code::ForeignKey, quoted_after(msg, "FOREIGN KEY (", '`')),
    // MySQL 8 CHECK; MariaDB CHECK (including the json_valid() check of its JSON columns).
    3819 | 4025 => (Code::Constraint, quoted_after(msg, "CONSTRAINT ", '`').or_else(|| quoted_after(msg, "constraint ", '\''))),
    1054 => (Code::UnknownColumn, quoted_after(msg, "Unknown column ", '\'')),
    1146 => (Code::Schema, None),
    // Too many connections, access denied, unknown database, shutdown, network errors,
    // aborted or killed connections: the connection is unusable.
    1040 | 1045 | 1049 | 1053 | 1152 | 1153 | 1158..=1161 | 1184 | 1927 | 2006 | 2013 => (Code::Connection, None),
    _ if e.code().is_some_and(|s| s.starts_with("08")) => (Code::Connection, None),
    _ => (Code::Database, None),
  };
  let mut err = Error::new(code, msg.to_string()).with_db_code(n.to_string());
  err.field = field;
  err
}

/// Whether a `SELECT VERSION()` text (`10.11.19-MariaDB-0+deb12u1`, or with MySQL's
/// `5.5.5-` replication prefix) names MariaDB at `major.minor` or later.
fn mariadb_at_least(version: &str, major: u32, minor: u32) -> bool {
  if !version.contains("MariaDB") {
    return false;
  }
  let v = version.strip_prefix("5.5.5-").unwrap_or(version);
  let mut parts = v.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).map(|p| p.parse::<u32>().unwrap_or(0));
  let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
  (ma, mi) >= (major, minor)
}

impl Driver for My {
  type Db = MySql;
  type Args = sqlx::mysql::MySqlArguments;
  type Plan = Plan;
  const NAME: &'static str = "mysql";
  /// ER_CONNECTION_KILLED (MariaDB `KILL`), ER_SERVER_SHUTDOWN: sent when the session ends.
  const SESSION_ENDED_CODES: &'static [&'static str] = &["1927", "1053"];
  const TABLE_COLUMNS_SQL: &'static str =
    "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position";

  /// MariaDB has `INSERT … RETURNING` since 10.5 (not UPDATE); MySQL has neither.
  fn returning(server_version: &str) -> crate::dialect::Returning {
    crate::dialect::Returning { insert: mariadb_at_least(server_version, 10, 5), update: false }
  }

  fn connect_options(uri: &str, redactor: &Redactor) -> Result<MySqlConnectOptions> {
    connect_options(uri, redactor)
  }

  fn statement_sql(st: &Stmt) -> String {
    st.sql.clone()
  }

  fn plan(row: &MySqlRow) -> Plan {
    Plan { kinds: row.columns().iter().map(|c| kind_of(c.type_info())).collect(), zone: LocalZoneMemo::default() }
  }

  fn push_row(plan: &Plan, row: &MySqlRow, buf: &mut String, sink: &mut dyn RowSink) {
    for (i, kind) in plan.kinds.iter().enumerate() {
      let cell = match row.try_get_raw(i) {
        Ok(v) if v.is_null() => Cell::Null,
        Ok(v) => decode_cell(*kind, v, buf, &plan.zone),
        Err(_) => Cell::Null,
      };
      sink.cell(i, cell);
    }
  }

  fn rows_affected(r: &MySqlQueryResult) -> u64 {
    r.rows_affected()
  }

  /// 1615 "Prepared statement needs to be re-prepared".
  fn is_stale_statement(e: &(dyn DatabaseError + 'static)) -> bool {
    e.try_downcast_ref::<MySqlDatabaseError>().is_some_and(|m| m.number() == 1615)
  }

  fn map_db_error(e: &(dyn DatabaseError + 'static)) -> Option<Error> {
    e.try_downcast_ref::<MySqlDatabaseError>().map(map_mysql_error)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn urls_accept_both_schemes_and_ssl_forms() {
    let r = Redactor::new("mariadb://u:pw@h/db");
    let o = connect_options("mariadb://u:p%40ss@h:3307/db", &r).unwrap();
    assert_eq!((o.get_host(), o.get_port(), o.get_database(), o.get_username()), ("h", 3307, Some("db"), "u"));
    assert!(matches!(o.get_ssl_mode(), MySqlSslMode::Disabled));
    let mode = |u: &str| connect_options(u, &r).map(|o| o.get_ssl_mode());
    assert!(matches!(mode("mysql://h/db?ssl-mode=REQUIRED"), Ok(MySqlSslMode::Required)));
    assert!(matches!(mode("mysql://h/db?sslmode=verify-full"), Ok(MySqlSslMode::VerifyIdentity)));
    assert!(matches!(mode("mysql://h/db?ssl=true"), Ok(MySqlSslMode::VerifyIdentity)));
    assert!(matches!(mode("mysql://h/db?ssl=false"), Ok(MySqlSslMode::Disabled)));
    assert!(matches!(mode("mysql://h/db?ssl=%7B%22rejectUnauthorized%22%3Afalse%7D"), Ok(MySqlSslMode::Required)));
    let e = connect_options("mysql://u:topsecret@h/db?ssl-mode=bogus", &Redactor::new("mysql://u:topsecret@h/db?ssl-mode=bogus")).unwrap_err();
    assert_eq!(e.code, Code::Config);
    assert!(!e.message.contains("topsecret"), "{}", e.message);
    assert!(connect_options("postgres://h/db", &r).is_err());
  }

  #[test]
  fn error_fields_are_parsed_from_messages() {
    assert_eq!(duplicate_key("Duplicate entry 'a@b' for key 'email'").as_deref(), Some("email"));
    assert_eq!(duplicate_key("Duplicate entry 'a@b' for key 'users.email'").as_deref(), Some("email"));
    assert_eq!(duplicate_key("Duplicate entry 'x' for key 'PRIMARY'").as_deref(), Some("id"));
    assert_eq!(quoted_after("Column 'name' cannot be null", "Column ", '\'').as_deref(), Some("name"));
    assert_eq!(quoted_after("Field 'name' doesn't have a default value", "Field ", '\'').as_deref(), Some("name"));
    let fk = "Cannot add or update a child row: a foreign key constraint fails (`t`.`posts`, CONSTRAINT `fk_posts_author` FOREIGN KEY (`author`) REFERENCES `users` (`id`))";
    assert_eq!(quoted_after(fk, "FOREIGN KEY (", '`').as_deref(), Some("author"));
    assert_eq!(quoted_after("Unknown column 'nope' in 'field list'", "Unknown column ", '\'').as_deref(), Some("nope"));
  }

  /// A zone with one transition, at UTC `AT`, from offset `FROM` to `TO` (seconds east),
  /// converting local times as `local_to_utc` does: the earliest instant, a skipped time
  /// read one hour later.
  fn one_transition<const AT: i64, const FROM: i64, const TO: i64>(t: &NaiveDateTime) -> NaiveDateTime {
    let earliest = |t: &NaiveDateTime| {
      let local = t.and_utc().timestamp();
      [(local - FROM, local - FROM < AT), (local - TO, local - TO >= AT)].into_iter().filter(|c| c.1).map(|c| c.0).min()
    };
    let utc = earliest(t).or_else(|| earliest(&(*t + chrono::Duration::hours(1)))).unwrap();
    chrono::DateTime::from_timestamp(utc, t.and_utc().timestamp_subsec_nanos()).unwrap().naive_utc()
  }

  #[test]
  fn datetimes_of_one_hour_share_the_zone_offset_found_at_its_ends() {
    // 2024-03-31 01:00 UTC, a Sunday of European transitions.
    const AT: i64 = 1_711_846_800;
    type Zone = fn(&NaiveDateTime) -> NaiveDateTime;
    let zones: [(&str, Zone); 5] = [
      ("an hour forward", one_transition::<AT, 3600, 7200>),
      ("an hour back", one_transition::<AT, 7200, 3600>),
      ("half an hour forward", one_transition::<AT, 37_800, 39_600>),
      ("half an hour back", one_transition::<AT, 39_600, 37_800>),
      ("local mean time to UTC", one_transition::<AT, 561, 0>),
    ];
    let around = chrono::DateTime::from_timestamp(AT, 0).unwrap().naive_utc();
    for (name, zone) in zones {
      let memo = LocalZoneMemo::default();
      // Every 73 s over a day around the transition, forwards then backwards, so that the
      // memo is both hit and replaced.
      let steps: Vec<i64> = (-600..600).collect();
      for s in steps.iter().chain(steps.iter().rev()) {
        let t = around + chrono::Duration::milliseconds(s * 73_001);
        assert_eq!(memo.epoch_ms_in(&t, zone), epoch_ms(&zone(&t)), "{name}, at {t}");
      }
    }
  }

  #[test]
  fn datetime_is_local_time() {
    let t = NaiveDate::from_ymd_opt(2024, 6, 1).and_then(|d| d.and_hms_opt(12, 0, 0)).unwrap();
    let expected = Local.from_local_datetime(&t).earliest().map(|l| l.naive_utc()).unwrap();
    assert_eq!(local_to_utc(&t), expected);
  }
}
