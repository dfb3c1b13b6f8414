//! `create`'s INSERT (orm-compat.md §7.4 step 3).
//!
//! Which columns the INSERT names, and where each of its values comes from, depend only on
//! the schema and on the keys the data has, in their order. An application creates rows of
//! the same shape call after call, so that plan (with its SQL text) is built once per schema
//! and key order; a `create` then only encodes its values.

use std::sync::Arc;


use super::encode::{encode_fk, encode_value};
use super::filter::SqlBuf;
use super::query::encode_for_column;
use super::{Flavour, Param, Stmt};
use crate::error::Result;
use crate::fields::Fields;
use crate::per_schema::PerSchema;
use crate::schema::{FieldType, Schema};

/// An `INSERT` and the column each of its parameters goes to.
pub struct Insert {
  pub stmt: Stmt,
  pub columns: Arc<[String]>,
  /// For each parameter, the index of the data value it was encoded from, if any.
  pub given: Arc<[Option<u32>]>,
}

/// Where one parameter of the INSERT comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
  /// The row's id (given or generated).
  Id,
  /// The data's value at this position, encoded as this field type.
  Field { at: usize, ty: FieldType },
  /// A relation's value at this position, bound as its foreign key.
  ForeignKey { at: usize, relation: String },
  /// A key the schema does not declare: encoded from its value (see `encode_for_column`).
  Undeclared { at: usize },
  /// A field default, encoded once.
  Default(Param),
  /// The time of the call (timestamps, `"now"` defaults).
  Now,
}

/// The INSERT for one schema and one key order.
#[derive(Debug)]
pub struct InsertPlan {
  keys: Vec<String>,
  sql: String,
  columns: Arc<[String]>,
  sources: Vec<Source>,
  /// Per parameter, the data value it comes from (`Insert::given`).
  given: Arc<[Option<u32>]>,
  /// No undeclared key: the SQL text holds no cast chosen from a value (PostgreSQL), so
  /// the plan fits any data with these keys.
  reusable: bool,
  /// Some value is the time of the call.
  stamps: bool,
}

impl InsertPlan {
  /// The plan for `data`'s keys. The columns follow the reference's order: id, declared
  /// fields (given, or their default), foreign keys, timestamps, then undeclared keys.
  pub fn build(f: &'static dyn Flavour, schema: &Schema, data: &Fields) -> Self {
    let at = |name: &str| data.keys().position(|k| k == name);
    let mut cols: Vec<&str> = vec!["id"];
    let mut sources = vec![Source::Id];
    let mut casts = vec![Some(FieldType::String)];
    for field in schema.column_fields() {
      if field.name == "_id" {
        continue;
      }
      let source = match (at(&field.name), &field.default) {
        (Some(i), _) => Source::Field { at: i, ty: field.ty },
        // A "now" default fills in the current time whatever the field type (§7.4).
        (None, Some(d)) if super::encode::is_now_sentinel(d) => Source::Now,
        (None, Some(d)) => Source::Default(encode_value(f, d, Some(field.ty))),
        (None, None) => continue,
      };
      cols.push(&field.name);
      sources.push(source);
      casts.push(Some(field.ty));
    }
    for rel in schema.relations.iter().filter(|r| r.kind.has_column()) {
      if let Some(i) = at(&rel.name) {
        if !cols.contains(&rel.fk_column()) {
          cols.push(rel.fk_column());
          sources.push(Source::ForeignKey { at: i, relation: rel.name.clone() });
          casts.push(Some(FieldType::String));
        }
      }
    }
    if schema.timestamps {
      for c in ["createdAt", "updatedAt"] {
        if !cols.contains(&c) {
          cols.push(c);
          sources.push(Source::Now);
          casts.push(Some(FieldType::Date));
        }
      }
    }
    let mut reusable = true;
    for (i, (k, v)) in data.iter().enumerate() {
      if k == "id" || k == "_id" || cols.contains(&k.as_str()) || schema.relation(k).is_some() {
        continue;
      }
      // The cast only matters where placeholders carry one; a bad value fails in `bind`.
      let cast = encode_for_column(f, schema, k, v).map(|(_, c)| c).unwrap_or(None);
      reusable = false;
      cols.push(k);
      sources.push(Source::Undeclared { at: i });
      casts.push(cast);
    }
    let mut b = SqlBuf::new(f);
    b.push("INSERT INTO ").ident(&schema.table).push(" (");
    for (i, c) in cols.iter().enumerate() {
      if i > 0 {
        b.push(", ");
      }
      b.ident(c);
    }
    b.push(") VALUES (");
    for (i, cast) in casts.into_iter().enumerate() {
      if i > 0 {
        b.push(", ");
      }
      b.param(Param::Null, cast);
    }
    b.push(")");
    let given = sources
      .iter()
      .map(|s| match s {
        Source::Field { at, .. } | Source::ForeignKey { at, .. } | Source::Undeclared { at } => Some(*at as u32),
        Source::Id | Source::Default(_) | Source::Now => None,
      })
      .collect();
    InsertPlan {
      given,
      stamps: sources.contains(&Source::Now),
      keys: data.keys().cloned().collect(),
      sql: b.sql,
      columns: cols.iter().map(|c| c.to_string()).collect(),
      sources,
      reusable,
    }
  }

  fn fits(&self, data: &Fields) -> bool {
    self.keys.len() == data.len() && self.keys.iter().zip(data.keys()).all(|(a, b)| a == b)
  }

  /// The INSERT of row `id` with `data` (which has this plan's keys, in order).
  pub fn bind(&self, f: &'static dyn Flavour, schema: &Schema, id: &str, data: &Fields) -> Result<Insert> {
    let now = self.stamps.then(|| f.format_now());
    let mut params = Vec::with_capacity(self.sources.len());
    for s in &self.sources {
      params.push(match s {
        Source::Id => Param::Text(id.to_string()),
        Source::Field { at, ty } => encode_value(f, data.at(*at).1, Some(*ty)),
        Source::ForeignKey { at, relation } => encode_fk(data.at(*at).1, relation)?,
        Source::Undeclared { at } => {
          let (k, v) = data.at(*at);
          encode_for_column(f, schema, k, v)?.0
        }
        Source::Default(p) => p.clone(),
        Source::Now => Param::Text(now.clone().unwrap_or_default()),
      });
    }
    Ok(Insert { stmt: Stmt { sql: self.sql.clone(), params }, columns: self.columns.clone(), given: self.given.clone() })
  }
}

/// Insert plans by schema and key order.
#[derive(Default)]
pub struct InsertPlans(PerSchema<InsertPlan>);

impl InsertPlans {
  /// The INSERT of row `id` with `data`, through the kept plan for its keys.
  pub fn insert(&self, f: &'static dyn Flavour, schema: &Arc<Schema>, id: &str, data: &Fields) -> Result<Insert> {
    let plan = self.0.get_or_build(schema, |p| p.fits(data), || InsertPlan::build(f, schema, data), |p| p.reusable);
    plan.bind(f, schema, id, data)
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::sql::{mysql::Mysql, postgres::Postgres, sqlite::Sqlite};
  use serde_json::json;

  fn schema() -> Arc<Schema> {
    Arc::new(
      Schema::from_value(
        &json!({"name": "Post", "collection": "posts", "timestamps": true,
          "fields": {"title": {"type": "string", "required": true}, "views": {"type": "number", "default": 0}, "seen": {"type": "date", "default": "now"}, "on": {"type": "boolean"}},
          "relations": {"author": {"target": "User", "type": "many-to-one", "joinColumn": "authorId"}, "cats": {"target": "Cat", "type": "many-to-many", "through": "post_cats"}}}),
        "p_",
      )
      .unwrap(),
    )
  }

  fn obj(v: serde_json::Value) -> Fields {
    serde_json::from_value(v).unwrap()
  }

  #[test]
  fn insert_order_defaults_and_timestamps() {
    let s = schema();
    let data = obj(json!({"title": "T", "author": "u1", "cats": ["c"], "extra": 3, "createdAt": "x"}));
    let ins = InsertPlans::default().insert(&Sqlite, &s, "id1", &data).unwrap();
    assert_eq!(&*ins.columns, ["id", "title", "views", "seen", "authorId", "createdAt", "updatedAt", "extra"]);
    let st = ins.stmt;
    assert_eq!(st.sql, "INSERT INTO \"p_posts\" (\"id\", \"title\", \"views\", \"seen\", \"authorId\", \"createdAt\", \"updatedAt\", \"extra\") VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    assert_eq!(st.params[0], Param::Text("id1".into()));
    assert_eq!(st.params[2], Param::Int(0));
    // "now" defaults and timestamps share one time; a given createdAt is not used (§7.4).
    assert!(matches!(&st.params[3], Param::Text(t) if t.ends_with('Z') && Param::Text(t.clone()) == st.params[5]));
    assert_eq!(st.params[4], Param::Text("u1".into()));
    assert_eq!(st.params[7], Param::Int(3));
    let pg = InsertPlans::default().insert(&Postgres, &s, "id1", &obj(json!({"title": "T", "on": true}))).unwrap().stmt;
    assert!(pg.sql.contains("VALUES ($1::TEXT, $2::TEXT, $3::DOUBLE PRECISION, $4::TIMESTAMPTZ, $5::BOOLEAN, $6::TIMESTAMPTZ, $7::TIMESTAMPTZ)"), "{}", pg.sql);
  }

  #[test]
  fn a_plan_is_reused_only_for_the_same_keys_in_the_same_order() {
    let s = schema();
    let plans = InsertPlans::default();
    let a = plans.insert(&Mysql, &s, "1", &obj(json!({"title": "A", "on": false}))).unwrap();
    let b = plans.insert(&Mysql, &s, "2", &obj(json!({"title": "B", "on": true}))).unwrap();
    assert!(Arc::ptr_eq(&a.columns, &b.columns), "same keys: one plan");
    assert_eq!(b.stmt.params[0..2], [Param::Text("2".into()), Param::Text("B".into())]);
    let c = plans.insert(&Mysql, &s, "3", &obj(json!({"on": true, "title": "C"}))).unwrap();
    assert!(!Arc::ptr_eq(&a.columns, &c.columns), "another order: another plan");
    assert_eq!(c.stmt.sql, a.stmt.sql, "the columns still follow the schema");
    let d = plans.insert(&Mysql, &s, "4", &obj(json!({"title": "D"}))).unwrap();
    assert!(!d.columns.contains(&"on".to_string()));
    let other = schema();
    let e = plans.insert(&Mysql, &other, "5", &obj(json!({"title": "A", "on": false}))).unwrap();
    assert!(!Arc::ptr_eq(&a.columns, &e.columns), "another schema: another plan");
  }

  #[test]
  fn undeclared_keys_are_cast_from_their_value() {
    let s = schema();
    let plans = InsertPlans::default();
    let a = plans.insert(&Postgres, &s, "1", &obj(json!({"title": "A", "extra": 3}))).unwrap().stmt;
    let b = plans.insert(&Postgres, &s, "2", &obj(json!({"title": "B", "extra": "x"}))).unwrap().stmt;
    assert!(a.sql.ends_with("$7::DOUBLE PRECISION)"), "{}", a.sql);
    assert!(b.sql.ends_with("$7::TEXT)"), "{}", b.sql);
    assert_eq!(b.params[6], Param::Text("x".into()));
  }

  #[test]
  fn a_bad_foreign_key_is_an_error_each_time() {
    let s = schema();
    let plans = InsertPlans::default();
    plans.insert(&Sqlite, &s, "1", &obj(json!({"title": "A", "author": "u"}))).unwrap();
    let e = plans.insert(&Sqlite, &s, "2", &obj(json!({"title": "A", "author": [1, 2]}))).err().unwrap();
    assert_eq!(e.code.as_str(), "E_INVALID_ARGUMENT", "{e:?}");
  }
}
