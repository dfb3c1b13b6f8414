//! Mongo-style `FilterQuery` → SQL `WHERE` text with bound parameters (orm-compat.md §5).
//! Malformed filters are rejected with `E_INVALID_FILTER` instead of being ignored; the
//! reference's one deliberate silent case (a plain object value without operators) is kept.

use serde_json::{Map, Value};

use super::encode::{encode_fk, encode_value};
use super::{Flavour, Param};
use crate::error::{Error, Result};
use crate::schema::{FieldType, RelKind, Schema};

/// SQL text and parameters under construction; parameter numbers follow the text order.
pub struct SqlBuf {
  pub flavour: &'static dyn Flavour,
  pub sql: String,
  pub params: Vec<Param>,
}

impl SqlBuf {
  pub fn new(flavour: &'static dyn Flavour) -> Self {
    SqlBuf { flavour, sql: String::with_capacity(128), params: Vec::new() }
  }
  pub fn push(&mut self, s: &str) -> &mut Self {
    self.sql.push_str(s);
    self
  }
  pub fn ident(&mut self, name: &str) -> &mut Self {
    self.flavour.push_quoted(&mut self.sql, name);
    self
  }
  pub fn param(&mut self, p: Param, cast: Option<FieldType>) -> &mut Self {
    self.params.push(p);
    self.flavour.push_placeholder(&mut self.sql, self.params.len(), cast);
    self
  }
  pub fn finish(self) -> super::Stmt {
    super::Stmt { sql: self.sql, params: self.params }
  }
}

/// What a filter key resolves to on the table.
#[derive(Clone, Copy)]
enum Target<'s> {
  /// A declared field, the id, a system column: encoded with its type.
  Typed(FieldType),
  /// An M2O/O2O foreign key column.
  ForeignKey(&'s str),
  /// A column the schema does not declare (auto-added, legacy): values bound as given.
  Undeclared,
}

/// Resolves a filter key to (column, target). Relation names map to their FK column.
fn resolve<'s>(schema: &'s Schema, key: &'s str) -> Result<(&'s str, Target<'s>)> {
  if key == "id" {
    return Ok(("id", Target::Typed(FieldType::String)));
  }
  if let Some(rel) = schema.relation(key) {
    return match rel.kind {
      RelKind::ManyToOne | RelKind::OneToOne => Ok((rel.fk_column(), Target::ForeignKey(&rel.name))),
      _ => Err(Error::filter(format!("cannot filter {} on relation \"{key}\": it has no column on {}", schema.name, schema.table)).with_field(key)),
    };
  }
  if let Some(rel) = schema.relation_by_fk(key) {
    return Ok((key, Target::ForeignKey(&rel.name)));
  }
  if let Some(f) = schema.field(key) {
    return Ok((key, Target::Typed(f.ty)));
  }
  if schema.is_date_column(key) {
    return Ok((key, Target::Typed(FieldType::Date)));
  }
  if schema.discriminator.as_deref() == Some(key) {
    return Ok((key, Target::Typed(FieldType::String)));
  }
  if key.contains('.') {
    return Err(Error::filter(format!("{}: \"{key}\" looks like a nested path; filtering inside JSON is not supported", schema.name)).with_field(key));
  }
  Ok((key, Target::Undeclared))
}

fn encode(buf: &SqlBuf, target: Target, v: &Value) -> Result<(Param, Option<FieldType>)> {
  Ok(match target {
    Target::Typed(ty) => (encode_value(buf.flavour, v, Some(ty)), Some(ty)),
    Target::ForeignKey(rel) => (encode_fk(v, rel)?, Some(FieldType::String)),
    Target::Undeclared => (encode_value(buf.flavour, v, None), None),
  })
}

const OPERATORS: &[&str] = &["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$exists"];

/// Options that change the automatic conditions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Auto {
  pub include_deleted: bool,
  /// Skip the discriminator and soft-delete conditions entirely (aggregate without `$match`).
  pub none: bool,
}

/// Appends the WHERE body for `filter` plus the automatic discriminator and soft-delete
/// conditions. Writes `1=1` when nothing restricts.
pub fn push_where(buf: &mut SqlBuf, schema: &Schema, filter: &Value, auto: Auto) -> Result<()> {
  let empty = Map::new();
  let obj = match filter {
    Value::Null => &empty,
    Value::Object(o) => o,
    other => return Err(Error::filter(format!("{}: a filter must be an object, got {}", schema.name, kind(other)))),
  };
  let mut n = 0usize;
  let disc = auto_discriminator(schema, auto);
  for (k, v) in obj {
    if Some(k.as_str()) == disc {
      continue; // the schema's discriminator value overrides the caller's
    }
    push_condition(buf, schema, k, v, &mut n)?;
  }
  push_auto(buf, schema, disc, obj.contains_key("deletedAt"), auto, &mut n);
  if n == 0 {
    buf.push("1=1");
  }
  Ok(())
}

/// `push_where` for the filter `{ "id": id }`, written without building that filter.
pub fn push_id_where(buf: &mut SqlBuf, schema: &Schema, id: &str, auto: Auto) -> Result<()> {
  let mut n = 0usize;
  let disc = auto_discriminator(schema, auto);
  if disc != Some("id") {
    sep(buf, &mut n);
    buf.ident("id").push(" = ").param(Param::Text(id.to_string()), Some(FieldType::String));
  }
  push_auto(buf, schema, disc, false, auto, &mut n);
  if n == 0 {
    buf.push("1=1");
  }
  Ok(())
}

/// The discriminator column the automatic condition pins, which then replaces any filter
/// on that column: only when the schema names a value (a base schema with a discriminator
/// column but no value of its own filters on it like any other column).
fn auto_discriminator(schema: &Schema, auto: Auto) -> Option<&str> {
  if auto.none || schema.discriminator_value.is_none() {
    return None;
  }
  schema.discriminator.as_deref()
}

/// The automatic conditions: the discriminator value, and `deletedAt IS NULL` unless the
/// filter names `deletedAt` itself.
fn push_auto(buf: &mut SqlBuf, schema: &Schema, disc: Option<&str>, names_deleted_at: bool, auto: Auto, n: &mut usize) {
  if let (Some(d), Some(dv)) = (disc, schema.discriminator_value.as_ref()) {
    sep(buf, n);
    buf.ident(d).push(" = ");
    let p = encode_value(buf.flavour, dv, Some(FieldType::String));
    buf.param(p, Some(FieldType::String));
  }
  if !auto.none && schema.soft_delete && !auto.include_deleted && !names_deleted_at {
    sep(buf, n);
    buf.ident("deletedAt").push(" IS NULL");
  }
}

fn sep(buf: &mut SqlBuf, n: &mut usize) {
  if *n > 0 {
    buf.push(" AND ");
  }
  *n += 1;
}

fn kind(v: &Value) -> &'static str {
  match v {
    Value::Null => "null",
    Value::Bool(_) => "a boolean",
    Value::Number(_) => "a number",
    Value::String(_) => "a string",
    Value::Array(_) => "an array",
    Value::Object(_) => "an object",
  }
}

/// A filter with no keys (and no automatic conditions) for nested `$or`/`$and` members.
fn push_nested(buf: &mut SqlBuf, schema: &Schema, member: &Value, op: &str) -> Result<()> {
  let o = member.as_object().ok_or_else(|| Error::filter(format!("{}: every {op} member must be an object, got {}", schema.name, kind(member))))?;
  let mut n = 0;
  for (k, v) in o {
    push_condition(buf, schema, k, v, &mut n)?;
  }
  if n == 0 {
    buf.push("1=1");
  }
  Ok(())
}

fn push_condition(buf: &mut SqlBuf, schema: &Schema, key: &str, v: &Value, n: &mut usize) -> Result<()> {
  if key == "$or" || key == "$and" {
    let list = v.as_array().ok_or_else(|| Error::filter(format!("{}: {key} must be an array, got {}", schema.name, kind(v))))?;
    if list.is_empty() {
      return Ok(());
    }
    sep(buf, n);
    buf.push("(");
    for (i, member) in list.iter().enumerate() {
      if i > 0 {
        buf.push(if key == "$or" { " OR " } else { " AND " });
      }
      buf.push("(");
      push_nested(buf, schema, member, key)?;
      buf.push(")");
    }
    buf.push(")");
    return Ok(());
  }
  if key.starts_with('$') {
    return Err(Error::filter(format!("{}: unknown top-level operator \"{key}\" (supported: $or, $and)", schema.name)).with_field(key));
  }
  let (col, target) = resolve(schema, key)?;
  match v {
    Value::Null => {
      sep(buf, n);
      buf.ident(col).push(" IS NULL");
    }
    Value::Object(ops) => {
      if let Some(re) = regexp_object(ops) {
        // A RegExp given as the value, Mongo style (serialised by the JS layer).
        return push_regex(buf, schema, col, key, re.0, re.1, n);
      }
      if !ops.keys().any(|k| k.starts_with('$')) {
        // A plain object without operators is ignored, as in the reference (§12.2 #14).
        return Ok(());
      }
      for op in ops.keys() {
        if !OPERATORS.contains(&op.as_str()) && op != "$regexFlags" {
          return Err(Error::filter(format!("{}.{key}: unknown operator \"{op}\" (supported: {})", schema.name, OPERATORS.join(" "))).with_field(key));
        }
      }
      for &op in OPERATORS {
        if let Some(arg) = ops.get(op) {
          push_operator(buf, schema, col, key, target, op, arg, ops, n)?;
        }
      }
    }
    _ => {
      sep(buf, n);
      let (p, cast) = encode(buf, target, v)?;
      buf.ident(col).push(" = ").param(p, cast);
    }
  }
  Ok(())
}

/// `{ "$re": source, "flags": flags }`: how the JS layer sends a RegExp object.
fn regexp_object(o: &Map<String, Value>) -> Option<(&str, &str)> {
  match (o.get("$re"), o.len()) {
    (Some(Value::String(src)), 1 | 2) => Some((src.as_str(), o.get("flags").and_then(Value::as_str).unwrap_or(""))),
    _ => None,
  }
}

#[allow(clippy::too_many_arguments)]
fn push_operator(buf: &mut SqlBuf, schema: &Schema, col: &str, key: &str, target: Target, op: &str, arg: &Value, ops: &Map<String, Value>, n: &mut usize) -> Result<()> {
  let bad = |what: &str| Error::filter(format!("{}.{key}: {op} expects {what}, got {}", schema.name, kind(arg))).with_field(key);
  match op {
    "$eq" | "$ne" if arg.is_null() => {
      sep(buf, n);
      buf.ident(col).push(if op == "$eq" { " IS NULL" } else { " IS NOT NULL" });
    }
    "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" => {
      if matches!(arg, Value::Object(_)) || (arg.is_array() && op != "$eq" && op != "$ne") || arg.is_null() {
        return Err(bad("a string, number, boolean or date"));
      }
      let sym = match op {
        "$eq" => " = ",
        "$ne" => " != ",
        "$gt" => " > ",
        "$gte" => " >= ",
        "$lt" => " < ",
        _ => " <= ",
      };
      sep(buf, n);
      let (p, cast) = encode(buf, target, arg)?;
      buf.ident(col).push(sym).param(p, cast);
    }
    "$in" | "$nin" => {
      let list = arg.as_array().ok_or_else(|| bad("an array"))?;
      if list.is_empty() {
        if op == "$in" {
          sep(buf, n);
          buf.push("1=0");
        }
        return Ok(());
      }
      sep(buf, n);
      buf.ident(col).push(if op == "$in" { " IN (" } else { " NOT IN (" });
      for (i, item) in list.iter().enumerate() {
        if matches!(item, Value::Object(_) | Value::Array(_)) {
          return Err(bad("an array of scalars"));
        }
        if i > 0 {
          buf.push(", ");
        }
        let (p, cast) = encode(buf, target, item)?;
        buf.param(p, cast);
      }
      buf.push(")");
    }
    "$regex" => {
      let flags_given = match ops.get("$regexFlags") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) => Some(f.as_str()),
        Some(other) => return Err(Error::filter(format!("{}.{key}: $regexFlags expects a string, got {}", schema.name, kind(other))).with_field(key)),
      };
      match arg {
        Value::String(pat) => push_regex(buf, schema, col, key, pat, flags_given.unwrap_or(""), n)?,
        Value::Object(o) => match regexp_object(o) {
          Some((src, flags)) => push_regex(buf, schema, col, key, src, flags_given.unwrap_or(flags), n)?,
          None => return Err(bad("a string or a RegExp")),
        },
        _ => return Err(bad("a string or a RegExp")),
      }
    }
    "$exists" => {
      sep(buf, n);
      buf.ident(col).push(if super::encode::js_truthy(arg) { " IS NOT NULL" } else { " IS NULL" });
    }
    _ => unreachable!("operator list is fixed"),
  }
  Ok(())
}

fn push_regex(buf: &mut SqlBuf, _schema: &Schema, col: &str, _key: &str, pat: &str, flags: &str, n: &mut usize) -> Result<()> {
  sep(buf, n);
  let like = buf.flavour.like_keyword(flags);
  buf.ident(col).push(" ").push(like).push(" ");
  buf.param(Param::Text(regex_to_like(pat)), None);
  Ok(())
}

/// The reference's `regexToLike`: `^`/`$` anchors, `.*` → `%`, `.` → `_`, nothing else.
pub fn regex_to_like(pat: &str) -> String {
  let start = pat.starts_with('^');
  let end = pat.ends_with('$') && !(pat.len() == 1 && start);
  let mut core = pat;
  if start {
    core = &core[1..];
  }
  if end && !core.is_empty() {
    core = &core[..core.len() - 1];
  }
  let body = core.replace(".*", "%").replace('.', "_");
  let mut out = String::with_capacity(body.len() + 2);
  if !start {
    out.push('%');
  }
  out.push_str(&body);
  if !end {
    out.push('%');
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::sql::{postgres::Postgres, sqlite::Sqlite};
  use serde_json::json;

  fn schema() -> Schema {
    Schema::from_value(
      &json!({"name": "User", "collection": "users", "softDelete": true, "discriminator": "_type", "discriminatorValue": "admin",
        "fields": {"name": {"type": "string"}, "age": {"type": "number"}, "active": {"type": "boolean"}, "born": {"type": "date"}},
        "relations": {"team": {"target": "Team", "type": "many-to-one", "joinColumn": "teamId"}, "tags": {"target": "Tag", "type": "many-to-many", "through": "user_tags"}}}),
      "",
    )
    .unwrap()
  }

  fn w(f: &'static dyn Flavour, filter: Value) -> Result<(String, Vec<Param>)> {
    let mut b = SqlBuf::new(f);
    push_where(&mut b, &schema(), &filter, Auto::default())?;
    Ok((b.sql, b.params))
  }

  #[test]
  fn operators_and_automatic_conditions() {
    let (sql, params) = w(&Sqlite, json!({"age": {"$gte": 18, "$lt": 65}, "name": null, "_type": "x"})).unwrap();
    assert_eq!(sql, "\"age\" >= ? AND \"age\" < ? AND \"name\" IS NULL AND \"_type\" = ? AND \"deletedAt\" IS NULL");
    assert_eq!(params, vec![Param::Int(18), Param::Int(65), Param::Text("admin".into())]);
  }

  #[test]
  fn or_in_nin_regex_exists() {
    let (sql, params) = w(&Postgres, json!({"$or": [{"name": "a"}, {"age": {"$in": [1, 2]}}], "active": true, "born": {"$exists": false}, "name": {"$regex": "^Al.*e$", "$regexFlags": "i"}, "deletedAt": null})).unwrap();
    assert_eq!(
      sql,
      "((\"name\" = $1::TEXT) OR (\"age\" IN ($2::DOUBLE PRECISION, $3::DOUBLE PRECISION))) AND \"active\" = $4::BOOLEAN AND \"born\" IS NULL AND \"name\" ILIKE $5 AND \"deletedAt\" IS NULL AND \"_type\" = $6::TEXT"
    );
    assert_eq!(params[4], Param::Text("Al%e".into()));
  }

  #[test]
  fn a_discriminator_without_value_filters_like_a_column() {
    let base = Schema::from_value(&json!({"name": "Node", "collection": "nodes", "discriminator": "_type"}), "").unwrap();
    let mut b = SqlBuf::new(&Sqlite);
    push_where(&mut b, &base, &json!({"_type": "page"}), Auto::default()).unwrap();
    assert_eq!(b.sql, "\"_type\" = ?");
    assert_eq!(b.params, vec![Param::Text("page".into())]);
  }

  #[test]
  fn empty_in_matches_nothing_and_empty_nin_nothing_added() {
    let (sql, _) = w(&Sqlite, json!({"age": {"$in": []}, "name": {"$nin": []}})).unwrap();
    assert_eq!(sql, "1=0 AND \"_type\" = ? AND \"deletedAt\" IS NULL");
  }

  #[test]
  fn relation_names_map_to_join_columns() {
    let (sql, params) = w(&Sqlite, json!({"team": "t1"})).unwrap();
    assert!(sql.starts_with("\"teamId\" = ?"), "{sql}");
    assert_eq!(params[0], Param::Text("t1".into()));
    assert_eq!(w(&Sqlite, json!({"tags": "x"})).unwrap_err().code.as_str(), "E_INVALID_FILTER");
  }

  #[test]
  fn malformed_filters_are_errors() {
    for bad in [json!({"age": {"$bogus": 1}}), json!({"age": {"$in": 3}}), json!({"$or": {}}), json!({"$nor": []}), json!({"age": {"$gt": {}}}), json!({"name": {"$regex": 5}}), json!([1])] {
      let e = w(&Sqlite, bad.clone()).unwrap_err();
      assert_eq!(e.code.as_str(), "E_INVALID_FILTER", "{bad}");
    }
  }

  #[test]
  fn plain_object_values_are_ignored_and_quotes_escaped() {
    let (sql, _) = w(&Sqlite, json!({"meta": {"a": 1}, "we\"ird": 1})).unwrap();
    assert!(sql.starts_with("\"we\"\"ird\" = ?"), "{sql}");
  }

  #[test]
  fn regex_translation() {
    assert_eq!(regex_to_like("abc"), "%abc%");
    assert_eq!(regex_to_like("^abc"), "abc%");
    assert_eq!(regex_to_like("a.c$"), "%a_c");
    assert_eq!(regex_to_like("^a.*c$"), "a%c");
  }
}
