//! Value encoding on the write path (`serializeValue`, orm-compat.md §4.1), shared by
//! INSERT/UPDATE values, DDL defaults and filter parameters.

use serde_json::Value;

use super::{Flavour, Param};
use crate::error::{Error, Result};
use crate::schema::FieldType;

/// JavaScript truthiness of a JSON value.
pub fn js_truthy(v: &Value) -> bool {
  match v {
    Value::Null => false,
    Value::Bool(b) => *b,
    Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
    Value::String(s) => !s.is_empty(),
    Value::Array(_) | Value::Object(_) => true,
  }
}

/// `'now'` and `'__MOSTA_NOW__'` mean "the current time" wherever a date is expected.
pub fn is_now_sentinel(v: &Value) -> bool {
  matches!(v.as_str(), Some("now" | "__MOSTA_NOW__"))
}

pub fn number_param(n: &serde_json::Number) -> Param {
  match n.as_i64() {
    Some(i) => Param::Int(i),
    None => Param::Float(n.as_f64().unwrap_or(f64::NAN)),
  }
}

/// Compact JSON text, key order kept (what `JSON.stringify` writes).
pub fn json_text(v: &Value) -> String {
  serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Encodes a date value: the sentinels give now, strings are written per flavour, anything
/// else (an epoch number, an object) is NULL, as in the reference.
pub fn encode_date(f: &dyn Flavour, v: &Value) -> Param {
  match v {
    Value::String(_) if is_now_sentinel(v) => Param::Text(f.format_now()),
    Value::String(s) => Param::Text(f.encode_date(s)),
    _ => Param::Null,
  }
}

/// `serializeValue(value, field?)`: `ty` is the declared type of the target column, if any.
pub fn encode_value(f: &dyn Flavour, v: &Value, ty: Option<FieldType>) -> Param {
  if v.is_null() {
    return Param::Null;
  }
  if ty == Some(FieldType::Boolean) || v.is_boolean() {
    return f.encode_bool(v);
  }
  if ty == Some(FieldType::Date) {
    return encode_date(f, v);
  }
  if matches!(ty, Some(FieldType::Json | FieldType::Array)) {
    return match v {
      Value::String(s) => Param::Text(s.clone()),
      other => Param::Text(json_text(other)),
    };
  }
  match v {
    Value::Array(_) | Value::Object(_) => Param::Text(json_text(v)),
    Value::Number(n) => number_param(n),
    Value::String(s) => Param::Text(s.clone()),
    Value::Bool(_) | Value::Null => unreachable!("handled above"),
  }
}

/// An M2O/O2O foreign-key value: `''` is NULL, a populated object stands for its `id`,
/// scalars are bound as they are (0 and false kept).
pub fn encode_fk(v: &Value, relation: &str) -> Result<Param> {
  Ok(match v {
    Value::Null => Param::Null,
    Value::String(s) if s.is_empty() => Param::Null,
    Value::String(s) => Param::Text(s.clone()),
    Value::Number(n) => number_param(n),
    Value::Bool(b) => Param::Bool(*b),
    Value::Object(o) => match o.get("id") {
      Some(Value::String(s)) if !s.is_empty() => Param::Text(s.clone()),
      Some(Value::Number(n)) => Param::Text(n.to_string()),
      _ => return Err(Error::arg(format!("relation \"{relation}\" expects an id (string) or an object with an id")).with_field(relation)),
    },
    Value::Array(_) => return Err(Error::arg(format!("relation \"{relation}\" expects a single id, got an array")).with_field(relation)),
  })
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::sql::{mysql::Mysql, postgres::Postgres, sqlite::Sqlite};
  use serde_json::json;

  #[test]
  fn booleans_use_truthiness_on_sqlite_and_mysql_and_pass_through_on_pg() {
    assert_eq!(encode_value(&Sqlite, &json!("false"), Some(FieldType::Boolean)), Param::Int(1));
    assert_eq!(encode_value(&Sqlite, &json!(0), Some(FieldType::Boolean)), Param::Int(0));
    assert_eq!(encode_value(&Mysql, &json!(true), Some(FieldType::String)), Param::Int(1));
    assert_eq!(encode_value(&Postgres, &json!("false"), Some(FieldType::Boolean)), Param::Text("false".into()));
    assert_eq!(encode_value(&Postgres, &json!(true), None), Param::Bool(true));
  }

  #[test]
  fn dates_json_and_plain_values() {
    assert_eq!(encode_value(&Sqlite, &json!("2024-01-02"), Some(FieldType::Date)), Param::Text("2024-01-02".into()));
    assert_eq!(encode_value(&Sqlite, &json!(1700000000), Some(FieldType::Date)), Param::Null);
    match encode_value(&Sqlite, &json!("now"), Some(FieldType::Date)) {
      Param::Text(s) => assert!(s.ends_with('Z') && s.len() == 24, "{s}"),
      p => panic!("{p:?}"),
    }
    assert_eq!(encode_value(&Sqlite, &json!({"a": [1, 2]}), Some(FieldType::Json)), Param::Text("{\"a\":[1,2]}".into()));
    assert_eq!(encode_value(&Sqlite, &json!("[1]"), Some(FieldType::Array)), Param::Text("[1]".into()));
    assert_eq!(encode_value(&Sqlite, &json!(["x"]), None), Param::Text("[\"x\"]".into()));
    assert_eq!(encode_value(&Sqlite, &json!(2.5), Some(FieldType::Number)), Param::Float(2.5));
    assert_eq!(encode_value(&Sqlite, &json!("12"), Some(FieldType::Number)), Param::Text("12".into()));
  }

  #[test]
  fn foreign_keys_keep_zero_and_map_empty_to_null() {
    assert_eq!(encode_fk(&json!(""), "r").unwrap(), Param::Null);
    assert_eq!(encode_fk(&json!(0), "r").unwrap(), Param::Int(0));
    assert_eq!(encode_fk(&json!({"id": "a"}), "r").unwrap(), Param::Text("a".into()));
    assert!(encode_fk(&json!({"x": 1}), "r").is_err());
  }

  #[test]
  fn mysql_dates_are_local_seconds() {
    // The formatted value depends on the process TZ; check the shape.
    match encode_value(&Mysql, &json!("2024-01-02T03:04:05.678Z"), Some(FieldType::Date)) {
      Param::Text(s) => assert_eq!(s.len(), 19, "{s}"),
      p => panic!("{p:?}"),
    }
    assert_eq!(encode_value(&Mysql, &json!("not a date"), Some(FieldType::Date)), Param::Text("not a date".into()));
  }
}
