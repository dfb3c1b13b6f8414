//! Statement builders for the dialect methods (orm-compat.md §6, §7). Each returns a
//! `Stmt`; the engine decides when to run which.

use serde_json::{Map, Value};

use super::encode::{encode_date, encode_fk, encode_value, json_text};
use super::filter::{push_id_where, push_where, Auto, SqlBuf};
use super::{Flavour, Param, Stmt};
use crate::error::{Error, Result};
use crate::schema::{FieldType, RelKind, Schema};

/// Parsed `QueryOptions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOptions {
  /// (column, descending)
  pub sort: Vec<(String, bool)>,
  pub limit: Option<u64>,
  pub skip: Option<u64>,
  pub select: Option<Vec<String>>,
  pub exclude: Option<Vec<String>>,
  pub include_deleted: bool,
}

/// The prefix naming the entity in option errors ("" when there is none).
fn who(entity: &str) -> String {
  if entity.is_empty() {
    String::new()
  } else {
    format!("{entity}: ")
  }
}

/// `limit`/`skip`: a non-negative integer or its decimal text; 0 and null mean "none".
/// Shared with the NET query encoding, so both modes accept the same options.
pub(crate) fn count_opt(v: Option<&Value>, name: &str, entity: &str) -> Result<Option<u64>> {
  let bad = || Error::filter(format!("{}{name} must be a non-negative integer, got {}", who(entity), v.map(|v| v.to_string()).unwrap_or_default())).with_field(name);
  match v {
    None | Some(Value::Null) => Ok(None),
    Some(Value::Number(n)) => match n.as_f64() {
      Some(0.0) => Ok(None), // 0 means "no limit"/"no skip", as in the reference
      Some(f) if f > 0.0 && f.fract() == 0.0 && f < 9.007e15 => Ok(Some(f as u64)),
      _ => Err(bad()),
    },
    Some(Value::String(s)) => match s.trim().parse::<u64>() {
      Ok(0) => Ok(None),
      Ok(n) => Ok(Some(n)),
      Err(_) => Err(bad()),
    },
    Some(_) => Err(bad()),
  }
}

/// `1`/`'asc'` ascend; `-1`/`'desc'` descend (the reference sorts `'desc'` ascending, §12.2 #3).
pub fn sort_direction(v: &Value, key: &str, entity: &str) -> Result<bool> {
  match v {
    Value::Number(n) if n.as_f64() == Some(-1.0) => Ok(true),
    Value::Number(n) if n.as_f64() == Some(1.0) => Ok(false),
    Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
      "desc" | "descending" | "-1" => Ok(true),
      "asc" | "ascending" | "1" => Ok(false),
      _ => Err(Error::filter(format!("{entity}: sort direction for \"{key}\" must be 1, -1, 'asc' or 'desc', got {v}")).with_field(key)),
    },
    _ => Err(Error::filter(format!("{entity}: sort direction for \"{key}\" must be 1, -1, 'asc' or 'desc', got {v}")).with_field(key)),
  }
}

/// `select`/`exclude`/`relations`: an array of names, or "a,b" text (what the REST query
/// string carries); null means none.
pub(crate) fn name_list(v: Option<&Value>, name: &str, entity: &str) -> Result<Option<Vec<String>>> {
  match v {
    None | Some(Value::Null) => Ok(None),
    Some(Value::Array(items)) => items
      .iter()
      .map(|i| i.as_str().map(str::to_string).ok_or_else(|| Error::filter(format!("{}{name} must list field names", who(entity))).with_field(name)))
      .collect::<Result<Vec<_>>>()
      .map(Some),
    Some(Value::String(s)) => Ok(Some(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())),
    Some(other) => Err(Error::filter(format!("{}{name} must be an array of field names, got {other}", who(entity))).with_field(name)),
  }
}

impl QueryOptions {
  pub fn parse(v: &Value, schema: &Schema) -> Result<Self> {
    let o = match v {
      Value::Null => return Ok(QueryOptions::default()),
      Value::Object(o) => o,
      other => return Err(Error::filter(format!("{}: options must be an object, got {other}", schema.name))),
    };
    let mut sort = Vec::new();
    match o.get("sort") {
      None | Some(Value::Null) => {}
      Some(Value::Object(s)) => {
        for (k, d) in s {
          sort.push((sort_column(schema, k), sort_direction(d, k, &schema.name)?));
        }
      }
      Some(other) => return Err(Error::filter(format!("{}: sort must be an object like {{\"field\": 1}}, got {other}", schema.name)).with_field("sort")),
    }
    Ok(QueryOptions {
      sort,
      limit: count_opt(o.get("limit"), "limit", &schema.name)?,
      skip: count_opt(o.get("skip"), "skip", &schema.name)?,
      select: name_list(o.get("select"), "select", &schema.name)?.filter(|s| !s.is_empty()),
      exclude: name_list(o.get("exclude"), "exclude", &schema.name)?.filter(|s| !s.is_empty()),
      include_deleted: o.get("includeDeleted").and_then(Value::as_bool).unwrap_or(false),
    })
  }

  fn auto(&self) -> Auto {
    Auto { include_deleted: self.include_deleted, none: false }
  }
}

/// A relation name used as a sort key means its FK column.
fn sort_column(schema: &Schema, key: &str) -> String {
  match schema.relation(key) {
    Some(r) if r.kind.has_column() => r.fk_column().to_string(),
    _ => key.to_string(),
  }
}

/// The column list: `*`, `id` + select, or everything known minus exclude (§6, with the
/// §12.2 #5 fix: FK columns rather than relation names, and no one-to-many names).
fn push_columns(b: &mut SqlBuf, schema: &Schema, o: &QueryOptions) {
  let cols: Vec<&str> = if let Some(sel) = &o.select {
    let mut cols = vec!["id"];
    for s in sel {
      let col = match schema.relation(s) {
        Some(r) if r.kind.has_column() => r.fk_column(),
        Some(_) => continue, // to-many keys are not columns
        None => s.as_str(),
      };
      if !cols.contains(&col) {
        cols.push(col);
      }
    }
    cols
  } else if let Some(ex) = &o.exclude {
    schema
      .known_columns()
      .into_iter()
      .filter(|c| *c == "id" || !ex.iter().any(|e| e == c || schema.relation(e).is_some_and(|r| r.kind.has_column() && r.fk_column() == *c)))
      .collect()
  } else {
    b.push("*");
    return;
  };
  for (i, c) in cols.iter().enumerate() {
    if i > 0 {
      b.push(", ");
    }
    b.ident(c);
  }
}

fn push_order(b: &mut SqlBuf, sort: &[(String, bool)]) {
  for (i, (col, desc)) in sort.iter().enumerate() {
    b.push(if i == 0 { " ORDER BY " } else { ", " });
    b.ident(col).push(if *desc { " DESC" } else { " ASC" });
  }
}

pub fn select(f: &'static dyn Flavour, schema: &Schema, filter: &Value, o: &QueryOptions) -> Result<Stmt> {
  let mut b = SqlBuf::new(f);
  b.push("SELECT ");
  push_columns(&mut b, schema, o);
  b.push(" FROM ").ident(&schema.table).push(" WHERE ");
  push_where(&mut b, schema, filter, o.auto())?;
  push_order(&mut b, &o.sort);
  f.limit_offset(&mut b.sql, o.limit, o.skip);
  Ok(b.finish())
}

/// `SELECT … WHERE "id" = ?` plus the discriminator and soft-delete conditions.
pub fn select_by_id(f: &'static dyn Flavour, schema: &Schema, id: &str, o: &QueryOptions) -> Result<Stmt> {
  let mut b = SqlBuf::new(f);
  b.push("SELECT ");
  push_columns(&mut b, schema, o);
  b.push(" FROM ").ident(&schema.table).push(" WHERE ");
  push_id_where(&mut b, schema, id, o.auto())?;
  Ok(b.finish())
}

pub fn count(f: &'static dyn Flavour, schema: &Schema, filter: &Value, o: &QueryOptions) -> Result<Stmt> {
  let mut b = SqlBuf::new(f);
  b.push("SELECT COUNT(*) AS ").ident("cnt").push(" FROM ").ident(&schema.table).push(" WHERE ");
  push_where(&mut b, schema, filter, o.auto())?;
  Ok(b.finish())
}

pub fn distinct(f: &'static dyn Flavour, schema: &Schema, field: &str, filter: &Value, o: &QueryOptions) -> Result<Stmt> {
  let mut b = SqlBuf::new(f);
  b.push("SELECT DISTINCT ").ident(&sort_column(schema, field)).push(" FROM ").ident(&schema.table).push(" WHERE ");
  push_where(&mut b, schema, filter, o.auto())?;
  push_order(&mut b, &o.sort);
  f.limit_offset(&mut b.sql, o.limit, o.skip);
  Ok(b.finish())
}

/// `(f1 LIKE ? OR f2 LIKE ?)` with `%query%`, then the automatic conditions.
pub fn search(f: &'static dyn Flavour, schema: &Schema, query: &str, fields: &[String], o: &QueryOptions) -> Result<Stmt> {
  if fields.is_empty() {
    return Err(Error::arg(format!("search on {} needs at least one field: pass `fields` or declare a field of type string", schema.name)).in_entity(&schema.name));
  }
  let mut b = SqlBuf::new(f);
  b.push("SELECT ");
  push_columns(&mut b, schema, o);
  b.push(" FROM ").ident(&schema.table).push(" WHERE (");
  for (i, field) in fields.iter().enumerate() {
    if i > 0 {
      b.push(" OR ");
    }
    b.ident(field).push(" LIKE ");
    b.param(Param::Text(format!("%{query}%")), None);
  }
  b.push(") AND ");
  push_where(&mut b, schema, &Value::Null, o.auto())?;
  push_order(&mut b, &o.sort);
  f.limit_offset(&mut b.sql, o.limit, o.skip);
  Ok(b.finish())
}

/// How a value for column `col` is encoded: declared type, FK, system date, or inferred.
pub fn encode_for_column(f: &'static dyn Flavour, schema: &Schema, col: &str, v: &Value) -> Result<(Param, Option<FieldType>)> {
  if let Some(field) = schema.field(col) {
    return Ok((encode_value(f, v, Some(field.ty)), Some(field.ty)));
  }
  if let Some(rel) = schema.relation_by_fk(col) {
    return Ok((encode_fk(v, &rel.name)?, Some(FieldType::String)));
  }
  if schema.is_date_column(col) {
    return Ok((encode_date_or_null(f, v), Some(FieldType::Date)));
  }
  let ty = FieldType::infer(v);
  Ok((encode_value(f, v, Some(ty)), Some(ty).filter(|_| !v.is_null())))
}

fn encode_date_or_null(f: &'static dyn Flavour, v: &Value) -> Param {
  if v.is_null() {
    Param::Null
  } else {
    encode_date(f, v)
  }
}

/// SET clauses for `update`/`updateMany` (§7.5 step 3), in `data` key order. Returns `None`
/// when nothing would be set.
fn push_set(b: &mut SqlBuf, schema: &Schema, data: &Map<String, Value>) -> Result<bool> {
  let f = b.flavour;
  let mut set: Vec<String> = Vec::new();
  for (k, v) in data {
    if k == "id" || k == "_id" {
      continue;
    }
    let (col, p) = if let Some(field) = schema.field(k) {
      if schema.relation_by_fk(k).is_some() {
        (k.as_str(), encode_fk(v, k)?)
      } else {
        (k.as_str(), encode_value(f, v, Some(field.ty)))
      }
    } else if let Some(rel) = schema.relation(k) {
      if !rel.kind.has_column() {
        continue; // to-many relations are written through junction tables, not SET
      }
      (rel.fk_column(), encode_fk(v, &rel.name)?)
    } else {
      (k.as_str(), encode_for_column(f, schema, k, v)?.0)
    };
    if set.iter().any(|c| c == col) {
      continue;
    }
    let cast = cast_for(schema, col, v);
    b.push(if set.is_empty() { "" } else { ", " });
    b.ident(col).push(" = ").param(p, cast);
    set.push(col.to_string());
  }
  if schema.timestamps && !set.iter().any(|c| c == "updatedAt") {
    b.push(if set.is_empty() { "" } else { ", " });
    b.ident("updatedAt").push(" = ").param(Param::Text(f.format_now()), Some(FieldType::Date));
    set.push("updatedAt".into());
  }
  Ok(!set.is_empty())
}

fn cast_for(schema: &Schema, col: &str, v: &Value) -> Option<FieldType> {
  if let Some(f) = schema.field(col) {
    return Some(f.ty);
  }
  if schema.relation_by_fk(col).is_some() {
    return Some(FieldType::String);
  }
  if schema.is_date_column(col) {
    return Some(FieldType::Date);
  }
  if v.is_null() {
    None
  } else {
    Some(FieldType::infer(v))
  }
}

/// How a write by id names its row, and whether the row comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ById {
  /// `WHERE id [AND disc]`, as the reference writes it (liveness checked beforehand).
  Plain,
  /// `WHERE id [AND disc] [AND deletedAt IS NULL] RETURNING *`: the liveness check, the
  /// write and the read-back in one statement.
  LiveReturning,
}

fn push_by_id(b: &mut SqlBuf, schema: &Schema, id: &str, how: ById) -> Result<()> {
  b.push(" WHERE ");
  push_id_where(b, schema, id, Auto { include_deleted: how == ById::Plain, none: false })?;
  if how == ById::LiveReturning {
    b.push(" RETURNING *");
  }
  Ok(())
}

pub fn update_by_id(f: &'static dyn Flavour, schema: &Schema, id: &str, data: &Map<String, Value>, how: ById) -> Result<Option<Stmt>> {
  let mut b = SqlBuf::new(f);
  b.push("UPDATE ").ident(&schema.table).push(" SET ");
  if !push_set(&mut b, schema, data)? {
    return Ok(None);
  }
  push_by_id(&mut b, schema, id, how)?;
  Ok(Some(b.finish()))
}

pub fn update_many(f: &'static dyn Flavour, schema: &Schema, filter: &Value, data: &Map<String, Value>) -> Result<Option<Stmt>> {
  let mut b = SqlBuf::new(f);
  b.push("UPDATE ").ident(&schema.table).push(" SET ");
  if !push_set(&mut b, schema, data)? {
    return Ok(None);
  }
  b.push(" WHERE ");
  push_where(&mut b, schema, filter, Auto::default())?;
  Ok(Some(b.finish()))
}

pub fn id_filter(id: &str) -> Value {
  let mut m = Map::new();
  m.insert("id".into(), Value::String(id.to_string()));
  Value::Object(m)
}

/// Soft delete: `UPDATE … SET "deletedAt" = now WHERE id [AND disc]` (§7.7).
pub fn soft_delete_by_id(f: &'static dyn Flavour, schema: &Schema, id: &str) -> Result<Stmt> {
  let mut b = SqlBuf::new(f);
  b.push("UPDATE ").ident(&schema.table).push(" SET ").ident("deletedAt").push(" = ");
  b.param(Param::Text(f.format_now()), Some(FieldType::Date));
  b.push(" WHERE ");
  push_id_where(&mut b, schema, id, Auto { include_deleted: true, none: false })?;
  Ok(b.finish())
}

pub fn soft_delete_many(f: &'static dyn Flavour, schema: &Schema, filter: &Value) -> Result<Stmt> {
  let mut b = SqlBuf::new(f);
  b.push("UPDATE ").ident(&schema.table).push(" SET ").ident("deletedAt").push(" = ");
  b.param(Param::Text(f.format_now()), Some(FieldType::Date));
  b.push(" WHERE ");
  push_where(&mut b, schema, filter, Auto::default())?;
  Ok(b.finish())
}

pub fn delete_where(f: &'static dyn Flavour, schema: &Schema, filter: &Value) -> Result<Stmt> {
  let mut b = SqlBuf::new(f);
  b.push("DELETE FROM ").ident(&schema.table).push(" WHERE ");
  // A hard delete sees every row the filter names, soft-deleted or not.
  push_where(&mut b, schema, filter, Auto { include_deleted: true, none: false })?;
  Ok(b.finish())
}

pub fn select_ids(f: &'static dyn Flavour, schema: &Schema, filter: &Value) -> Result<Stmt> {
  let mut b = SqlBuf::new(f);
  b.push("SELECT ").ident("id").push(" FROM ").ident(&schema.table).push(" WHERE ");
  push_where(&mut b, schema, filter, Auto { include_deleted: true, none: false })?;
  Ok(b.finish())
}

/// `UPDATE t SET f = COALESCE(f, 0) + ?[, updatedAt = now] WHERE id`.
pub fn increment(f: &'static dyn Flavour, schema: &Schema, id: &str, field: &str, amount: &Value, how: ById) -> Result<Stmt> {
  let p = match amount {
    Value::Number(n) => super::encode::number_param(n),
    other => return Err(Error::arg(format!("{}.increment: amount must be a number, got {other}", schema.name)).with_field(field)),
  };
  let mut b = SqlBuf::new(f);
  b.push("UPDATE ").ident(&schema.table).push(" SET ").ident(field).push(" = COALESCE(").ident(field).push(", 0) + ");
  b.param(p, Some(FieldType::Number));
  if schema.timestamps && field != "updatedAt" {
    b.push(", ").ident("updatedAt").push(" = ");
    b.param(Param::Text(f.format_now()), Some(FieldType::Date));
  }
  push_by_id(&mut b, schema, id, how)?;
  Ok(b.finish())
}

/// `UPDATE t SET f = <json array>[, updatedAt] WHERE id` for addToSet/pull on array columns.
pub fn set_array(f: &'static dyn Flavour, schema: &Schema, id: &str, field: &str, arr: &[Value]) -> Result<Stmt> {
  let ty = schema.field(field).map(|f| f.ty).unwrap_or(FieldType::Array);
  let mut b = SqlBuf::new(f);
  b.push("UPDATE ").ident(&schema.table).push(" SET ").ident(field).push(" = ");
  b.param(Param::Text(json_text(&Value::Array(arr.to_vec()))), Some(if matches!(ty, FieldType::Json | FieldType::Array) { ty } else { FieldType::String }));
  if schema.timestamps {
    b.push(", ").ident("updatedAt").push(" = ");
    b.param(Param::Text(f.format_now()), Some(FieldType::Date));
  }
  b.push(" WHERE ");
  push_id_where(&mut b, schema, id, Auto { include_deleted: true, none: false })?;
  Ok(b.finish())
}

/// Junction statements for a many-to-many relation: (srcKey, tgtKey, prefixed table).
pub struct Junction<'a> {
  pub table: String,
  pub src_key: String,
  pub tgt_key: String,
  pub relation: &'a str,
}

impl<'a> Junction<'a> {
  pub fn of(schema: &'a Schema, rel: &'a crate::schema::Relation, prefix: &str) -> Option<Self> {
    let through = rel.through.as_ref().filter(|_| rel.kind == RelKind::ManyToMany)?;
    let (src_key, tgt_key) = rel.junction_keys(&schema.name);
    Some(Junction { table: format!("{prefix}{through}"), src_key, tgt_key, relation: &rel.name })
  }

  pub fn targets(&self, f: &'static dyn Flavour, src: &str) -> Stmt {
    let mut b = SqlBuf::new(f);
    b.push("SELECT ").ident(&self.tgt_key).push(" FROM ").ident(&self.table).push(" WHERE ").ident(&self.src_key).push(" = ");
    b.param(Param::Text(src.into()), Some(FieldType::String));
    b.finish()
  }

  /// The (source, target) pairs of several sources, in the table's order.
  pub fn pairs(&self, f: &'static dyn Flavour, srcs: &[String]) -> Stmt {
    let mut b = SqlBuf::new(f);
    b.push("SELECT ").ident(&self.src_key).push(", ").ident(&self.tgt_key).push(" FROM ").ident(&self.table).push(" WHERE ").ident(&self.src_key).push(" IN (");
    for (i, src) in srcs.iter().enumerate() {
      if i > 0 {
        b.push(", ");
      }
      b.param(Param::Text(src.clone()), Some(FieldType::String));
    }
    b.push(")");
    b.finish()
  }

  pub fn insert(&self, f: &'static dyn Flavour, src: &str, tgt: &str) -> Stmt {
    let mut b = SqlBuf::new(f);
    b.push("INSERT INTO ").ident(&self.table).push(" (").ident(&self.src_key).push(", ").ident(&self.tgt_key).push(") VALUES (");
    b.param(Param::Text(src.into()), Some(FieldType::String)).push(", ");
    b.param(Param::Text(tgt.into()), Some(FieldType::String)).push(")");
    b.finish()
  }

  pub fn delete_pair(&self, f: &'static dyn Flavour, src: &str, tgt: &str) -> Stmt {
    let mut b = SqlBuf::new(f);
    b.push("DELETE FROM ").ident(&self.table).push(" WHERE ").ident(&self.src_key).push(" = ");
    b.param(Param::Text(src.into()), Some(FieldType::String)).push(" AND ").ident(&self.tgt_key).push(" = ");
    b.param(Param::Text(tgt.into()), Some(FieldType::String));
    b.finish()
  }

  pub fn delete_source(&self, f: &'static dyn Flavour, src: &str) -> Stmt {
    let mut b = SqlBuf::new(f);
    b.push("DELETE FROM ").ident(&self.table).push(" WHERE ").ident(&self.src_key).push(" = ");
    b.param(Param::Text(src.into()), Some(FieldType::String));
    b.finish()
  }
}

/// Normalises a many-to-many value: an array as is, a string split on `,`, anything else a
/// one-element list; `null` is the empty list. Items become id strings.
pub fn id_list(v: &Value) -> Vec<String> {
  let one = |v: &Value| -> Option<String> {
    match v {
      Value::String(s) => Some(s.clone()),
      Value::Number(n) => Some(n.to_string()),
      Value::Object(o) => o.get("id").and_then(|i| i.as_str().map(str::to_string).or_else(|| i.as_number().map(|n| n.to_string()))),
      Value::Bool(b) => Some(b.to_string()),
      Value::Null | Value::Array(_) => None,
    }
  };
  match v {
    Value::Null => Vec::new(),
    Value::Array(items) => items.iter().filter_map(one).collect(),
    Value::String(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
    other => one(other).into_iter().collect(),
  }
}

/// One `aggregate` pipeline compiled to a single SELECT (§7.11).
pub fn aggregate(f: &'static dyn Flavour, schema: &Schema, stages: &Value, o: &QueryOptions) -> Result<Stmt> {
  let list = stages.as_array().ok_or_else(|| Error::filter(format!("{}: aggregate stages must be an array", schema.name)))?;
  let mut matched: Option<&Value> = None;
  let mut group: Option<&Map<String, Value>> = None;
  let mut sort: Vec<(String, bool)> = Vec::new();
  let mut limit: Option<u64> = None;
  for stage in list {
    let st = stage.as_object().filter(|s| s.len() == 1).ok_or_else(|| Error::filter(format!("{}: each aggregate stage must be an object with one key", schema.name)))?;
    let (name, arg) = st.iter().next().expect("len checked");
    match name.as_str() {
      "$match" => matched = Some(arg), // a later $match replaces an earlier one, as in the reference
      "$group" => group = Some(arg.as_object().ok_or_else(|| Error::filter(format!("{}: $group must be an object", schema.name)))?),
      "$sort" => {
        let s = arg.as_object().ok_or_else(|| Error::filter(format!("{}: $sort must be an object", schema.name)))?;
        sort = s.iter().map(|(k, d)| Ok((k.clone(), sort_direction(d, k, &schema.name)?))).collect::<Result<_>>()?;
      }
      "$limit" => limit = count_opt(Some(arg), "$limit", &schema.name)?,
      other => return Err(Error::filter(format!("{}: unsupported aggregate stage \"{other}\" (supported: $match, $group, $sort, $limit)", schema.name)).with_field(other)),
    }
  }
  let mut b = SqlBuf::new(f);
  b.push("SELECT ");
  let mut group_by: Option<String> = None;
  match group {
    None => {
      b.push("*");
    }
    Some(g) => {
      let mut first = true;
      let mut comma = |b: &mut SqlBuf| {
        if !first {
          b.push(", ");
        }
        first = false;
      };
      for (k, v) in g {
        if k == "_by" {
          comma(&mut b);
          match v.as_str().filter(|s| !s.is_empty()) {
            Some(field) => {
              let col = field.trim_start_matches('$');
              b.ident(col).push(" AS ").ident(col);
              group_by = Some(col.to_string());
            }
            None => {
              b.push("NULL AS ").ident("_group");
            }
          }
          continue;
        }
        let acc = match v {
          Value::Object(acc) => acc,
          _ => continue, // non-object values are ignored, as in the reference
        };
        if acc.len() != 1 {
          return Err(Error::filter(format!("{}: $group.{k} must hold exactly one accumulator", schema.name)).with_field(k));
        }
        let (op, arg) = acc.iter().next().expect("len checked");
        comma(&mut b);
        let col_arg = |arg: &Value| -> Result<String> {
          arg.as_str().map(|s| s.trim_start_matches('$').to_string()).ok_or_else(|| Error::filter(format!("{}: $group.{k}.{op} expects a field name", schema.name)).with_field(k))
        };
        match op.as_str() {
          "$sum" => match arg {
            Value::Number(n) => {
              b.push(&format!("SUM({n})"));
            }
            other => {
              let c = col_arg(other)?;
              b.push("SUM(").ident(&c).push(")");
            }
          },
          "$count" => {
            b.push("COUNT(*)");
          }
          "$avg" | "$min" | "$max" => {
            let c = col_arg(arg)?;
            b.push(&op[1..].to_ascii_uppercase()).push("(").ident(&c).push(")");
          }
          other => return Err(Error::filter(format!("{}: unsupported accumulator \"{other}\" in $group.{k} (supported: $sum $count $avg $min $max)", schema.name)).with_field(k)),
        }
        b.push(" AS ").ident(k);
      }
      if first {
        return Err(Error::filter(format!("{}: $group has no outputs", schema.name)));
      }
    }
  }
  b.push(" FROM ").ident(&schema.table).push(" WHERE ");
  match matched {
    Some(m) => push_where(&mut b, schema, m, o.auto())?,
    // Without $match the reference applies no automatic condition (§12.2 #12, kept).
    None => push_where(&mut b, schema, &Value::Null, Auto { include_deleted: true, none: true })?,
  }
  if let Some(g) = &group_by {
    b.push(" GROUP BY ").ident(g);
  }
  push_order(&mut b, &sort);
  f.limit_offset(&mut b.sql, limit, None);
  Ok(b.finish())
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::sql::{mysql::Mysql, postgres::Postgres, sqlite::Sqlite};
  use serde_json::json;

  fn schema() -> Schema {
    Schema::from_value(
      &json!({"name": "Post", "collection": "posts", "timestamps": true, "softDelete": true,
        "fields": {"title": {"type": "string", "required": true}, "views": {"type": "number", "default": 0}, "tags": {"type": "array"}, "on": {"type": "boolean"}},
        "relations": {"author": {"target": "User", "type": "many-to-one", "joinColumn": "authorId"}, "comments": {"target": "Comment", "type": "one-to-many"}, "cats": {"target": "Cat", "type": "many-to-many", "through": "post_cats"}}}),
      "p_",
    )
    .unwrap()
  }

  #[test]
  fn id_conditions_match_the_id_filter() {
    let plain = Schema::from_value(&json!({"name": "A", "collection": "as", "fields": {"x": {"type": "string"}}}), "").unwrap();
    let sub = Schema::from_value(&json!({"name": "B", "collection": "bs", "softDelete": true, "discriminator": "kind", "discriminatorValue": "b", "fields": {}}), "").unwrap();
    for f in [&Sqlite as &'static dyn Flavour, &Postgres, &Mysql] {
      for s in [&schema(), &plain, &sub] {
        for auto in [Auto::default(), Auto { include_deleted: true, none: false }, Auto { include_deleted: false, none: true }] {
          let (mut a, mut b) = (SqlBuf::new(f), SqlBuf::new(f));
          push_where(&mut a, s, &id_filter("x1"), auto).unwrap();
          push_id_where(&mut b, s, "x1", auto).unwrap();
          assert_eq!((a.sql, a.params), (b.sql, b.params));
        }
      }
    }
  }

  #[test]
  fn select_with_options() {
    let s = schema();
    let o = QueryOptions::parse(&json!({"sort": {"views": "desc", "title": 1}, "limit": 10, "skip": 5}), &s).unwrap();
    let st = select(&Sqlite, &s, &json!({"title": "a"}), &o).unwrap();
    assert_eq!(st.sql, "SELECT * FROM \"p_posts\" WHERE \"title\" = ? AND \"deletedAt\" IS NULL ORDER BY \"views\" DESC, \"title\" ASC LIMIT 10 OFFSET 5");
    let o = QueryOptions::parse(&json!({"skip": 5}), &s).unwrap();
    assert!(select(&Sqlite, &s, &json!({}), &o).unwrap().sql.ends_with(" LIMIT -1 OFFSET 5"));
    assert!(select(&Mysql, &s, &json!({}), &o).unwrap().sql.ends_with(" LIMIT 18446744073709551615 OFFSET 5"));
  }

  #[test]
  fn select_and_exclude_use_columns() {
    let s = schema();
    let o = QueryOptions::parse(&json!({"select": ["title", "author", "cats"]}), &s).unwrap();
    assert!(select(&Sqlite, &s, &json!({}), &o).unwrap().sql.starts_with("SELECT \"id\", \"title\", \"authorId\" FROM"));
    let o = QueryOptions::parse(&json!({"exclude": ["tags", "author"], "includeDeleted": true}), &s).unwrap();
    assert_eq!(
      select(&Sqlite, &s, &json!({}), &o).unwrap().sql,
      "SELECT \"id\", \"title\", \"views\", \"on\", \"createdAt\", \"updatedAt\", \"deletedAt\" FROM \"p_posts\" WHERE 1=1"
    );
  }

  #[test]
  fn bad_options_are_errors() {
    let s = schema();
    for bad in [json!({"limit": -1}), json!({"limit": "1; DROP"}), json!({"sort": {"x": "sideways"}}), json!({"select": "x"}).get("nope").cloned().unwrap_or(json!({"select": 3}))] {
      assert_eq!(QueryOptions::parse(&bad, &s).unwrap_err().code.as_str(), "E_INVALID_FILTER", "{bad}");
    }
  }

  #[test]
  fn update_sets_in_key_order_then_updated_at() {
    let s = schema();
    let data = json!({"views": 2, "author": "", "comments": [1], "createdAt": "2020-01-01"});
    let st = update_by_id(&Sqlite, &s, "x", data.as_object().unwrap(), ById::Plain).unwrap().unwrap();
    assert_eq!(st.sql, "UPDATE \"p_posts\" SET \"views\" = ?, \"authorId\" = ?, \"createdAt\" = ?, \"updatedAt\" = ? WHERE \"id\" = ?");
    assert_eq!(st.params[1], Param::Null);
    let live = update_by_id(&Sqlite, &s, "x", json!({"views": 2}).as_object().unwrap(), ById::LiveReturning).unwrap().unwrap();
    assert_eq!(live.sql, "UPDATE \"p_posts\" SET \"views\" = ?, \"updatedAt\" = ? WHERE \"id\" = ? AND \"deletedAt\" IS NULL RETURNING *");
  }

  #[test]
  fn aggregate_group_match_sort_limit() {
    let s = schema();
    let st = aggregate(&Postgres, &s, &json!([{"$match": {"on": true}}, {"$group": {"_by": "$title", "n": {"$sum": 1}, "avg": {"$avg": "$views"}}}, {"$sort": {"n": -1}}, {"$limit": 3}]), &QueryOptions::default()).unwrap();
    assert_eq!(
      st.sql,
      "SELECT \"title\" AS \"title\", SUM(1) AS \"n\", AVG(\"views\") AS \"avg\" FROM \"p_posts\" WHERE \"on\" = $1::BOOLEAN AND \"deletedAt\" IS NULL GROUP BY \"title\" ORDER BY \"n\" DESC LIMIT 3"
    );
    let st = aggregate(&Sqlite, &s, &json!([{"$group": {"_by": null, "c": {"$count": true}}}]), &QueryOptions::default()).unwrap();
    assert_eq!(st.sql, "SELECT NULL AS \"_group\", COUNT(*) AS \"c\" FROM \"p_posts\" WHERE 1=1");
    assert!(aggregate(&Sqlite, &s, &json!([{"$project": {}}]), &QueryOptions::default()).is_err());
  }

  #[test]
  fn id_lists() {
    assert_eq!(id_list(&json!("a, b,,c")), ["a", "b", "c"]);
    assert_eq!(id_list(&json!(["a", {"id": "b"}])), ["a", "b"]);
    assert!(id_list(&json!(null)).is_empty());
  }

  #[test]
  fn junction_pairs_of_several_sources() {
    let s = schema();
    let j = Junction::of(&s, s.relation("cats").unwrap(), "p_").unwrap();
    let st = j.pairs(&Postgres, &["a".into(), "b".into()]);
    assert_eq!(st.sql, format!("SELECT \"{0}\", \"{1}\" FROM \"p_post_cats\" WHERE \"{0}\" IN ($1::TEXT, $2::TEXT)", j.src_key, j.tgt_key));
    assert_eq!(st.params.len(), 2);
    assert!(j.pairs(&Mysql, &["a".into()]).sql.ends_with("IN (?)"));
  }
}
