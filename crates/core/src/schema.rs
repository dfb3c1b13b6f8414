//! `EntitySchema` as the reference ORM defines it, parsed once from the JSON the app
//! registers and compiled into lookups the query builder uses on every call.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{Code, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
  String,
  Text,
  Number,
  Boolean,
  Date,
  Json,
  Array,
  /// Any other declared type: stored like a string (TEXT / VARCHAR(255)).
  Other,
}

impl FieldType {
  fn parse(s: &str) -> Self {
    match s {
      "string" => FieldType::String,
      "text" => FieldType::Text,
      "number" => FieldType::Number,
      "boolean" => FieldType::Boolean,
      "date" => FieldType::Date,
      "json" => FieldType::Json,
      "array" => FieldType::Array,
      _ => FieldType::Other,
    }
  }

  /// The type the reference infers for an undeclared key from its JS value (§3).
  pub fn infer(v: &Value) -> Self {
    match v {
      Value::Number(_) => FieldType::Number,
      Value::Bool(_) => FieldType::Boolean,
      Value::Array(_) => FieldType::Array,
      Value::Object(_) => FieldType::Json,
      _ => FieldType::String,
    }
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
  pub name: String,
  pub ty: FieldType,
  pub required: bool,
  pub unique: bool,
  pub default: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
  ManyToOne,
  OneToOne,
  OneToMany,
  ManyToMany,
}

impl RelKind {
  /// Relations that own an FK column on this entity's table.
  pub fn has_column(self) -> bool {
    matches!(self, RelKind::ManyToOne | RelKind::OneToOne)
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
  pub name: String,
  pub target: String,
  pub kind: RelKind,
  pub required: bool,
  pub nullable: Option<bool>,
  pub select: Option<Vec<String>>,
  pub through: Option<String>,
  pub mapped_by: Option<String>,
  pub join_column: Option<String>,
  pub on_delete: Option<String>,
  pub eager: bool,
}

impl Relation {
  /// The FK column of an M2O/O2O relation: `joinColumn`, else the relation name.
  pub fn fk_column(&self) -> &str {
    self.join_column.as_deref().unwrap_or(&self.name)
  }

  /// `ON DELETE` keyword: `onDelete`, else SET NULL unless `nullable === false` (§2.5).
  pub fn on_delete_sql(&self) -> String {
    let action = match &self.on_delete {
      Some(a) => a.clone(),
      None if self.nullable == Some(false) => "restrict".into(),
      None => "set-null".into(),
    };
    action.to_uppercase().replacen('-', " ", 1)
  }

  /// A junction-backed many-to-many relation (one without `through` is inert).
  pub fn is_junction(&self) -> bool {
    self.kind == RelKind::ManyToMany && self.through.is_some()
  }

  /// The junction columns (source key, target key) of a many-to-many relation declared on
  /// `entity`: `lower(entity)+"Id"` and `lower(target)+"Id"`. A self-referencing relation
  /// would get the same name twice (the reference's CREATE then fails, §12.2 #20), so its
  /// target key is named after the relation instead.
  pub fn junction_keys(&self, entity: &str) -> (String, String) {
    let src = Schema::junction_key(entity);
    let tgt = Schema::junction_key(&self.target);
    if src == tgt {
      (src, Schema::junction_key(&self.name))
    } else {
      (src, tgt)
    }
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Index {
  /// (column, direction) in declaration order; direction is "asc", "desc" or "text".
  pub fields: Vec<(String, String)>,
  pub unique: bool,
  pub sparse: bool,
}

/// A compiled entity schema, bound to one dialect's table prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
  pub name: String,
  pub collection: String,
  /// `prefix + collection`.
  pub table: String,
  pub fields: Vec<Field>,
  pub relations: Vec<Relation>,
  pub indexes: Vec<Index>,
  pub timestamps: bool,
  pub discriminator: Option<String>,
  pub discriminator_value: Option<Value>,
  pub soft_delete: bool,
  field_pos: HashMap<String, usize>,
  relation_pos: HashMap<String, usize>,
  /// FK column name → relation position, for M2O/O2O.
  fk_pos: HashMap<String, usize>,
}

fn schema_err(entity: &str, msg: String) -> Error {
  Error::new(Code::Schema, msg).in_entity(entity)
}

fn opt_str(o: &Map<String, Value>, key: &str, what: &str, entity: &str) -> Result<Option<String>> {
  match o.get(key) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::String(s)) => Ok(Some(s.clone())),
    Some(other) => Err(schema_err(entity, format!("{what}.{key} must be a string, got {other}"))),
  }
}

fn truthy(v: Option<&Value>) -> bool {
  v.is_some_and(crate::sql::encode::js_truthy)
}

impl Schema {
  pub fn from_json(json: &str, prefix: &str) -> Result<Self> {
    let v: Value = serde_json::from_str(json).map_err(|e| Error::new(Code::Schema, format!("schema is not valid JSON: {e}")))?;
    Self::from_value(&v, prefix)
  }

  pub fn from_value(v: &Value, prefix: &str) -> Result<Self> {
    let o = v.as_object().ok_or_else(|| Error::new(Code::Schema, "an EntitySchema must be an object"))?;
    let name = match o.get("name") {
      Some(Value::String(s)) if !s.is_empty() => s.clone(),
      _ => return Err(Error::new(Code::Schema, "EntitySchema.name must be a non-empty string")),
    };
    let collection = match o.get("collection") {
      Some(Value::String(s)) if !s.is_empty() => s.clone(),
      _ => return Err(schema_err(&name, format!("schema \"{name}\": collection must be a non-empty string"))),
    };

    let mut fields = Vec::new();
    match o.get("fields") {
      None | Some(Value::Null) => {}
      Some(Value::Object(map)) => {
        for (fname, def) in map {
          let d = def.as_object().ok_or_else(|| schema_err(&name, format!("{name}.fields.{fname} must be an object")))?;
          let ty = match d.get("type") {
            Some(Value::String(t)) => FieldType::parse(t),
            _ => return Err(schema_err(&name, format!("{name}.fields.{fname}.type must be a string"))),
          };
          fields.push(Field {
            name: fname.clone(),
            ty,
            required: truthy(d.get("required")),
            unique: truthy(d.get("unique")),
            default: d.get("default").filter(|v| !v.is_null()).cloned(),
          });
        }
      }
      Some(_) => return Err(schema_err(&name, format!("{name}.fields must be an object"))),
    }

    let mut relations = Vec::new();
    match o.get("relations") {
      None | Some(Value::Null) => {}
      Some(Value::Object(map)) => {
        for (rname, def) in map {
          let what = format!("{name}.relations.{rname}");
          let d = def.as_object().ok_or_else(|| schema_err(&name, format!("{what} must be an object")))?;
          let target = opt_str(d, "target", &what, &name)?.filter(|t| !t.is_empty()).ok_or_else(|| schema_err(&name, format!("{what}.target must be a non-empty string")))?;
          let kind = match d.get("type").and_then(Value::as_str) {
            Some("many-to-one") => RelKind::ManyToOne,
            Some("one-to-one") => RelKind::OneToOne,
            Some("one-to-many") => RelKind::OneToMany,
            Some("many-to-many") => RelKind::ManyToMany,
            other => {
              return Err(schema_err(
                &name,
                format!("{what}.type must be many-to-one, one-to-one, one-to-many or many-to-many, got {}", other.unwrap_or("nothing")),
              ))
            }
          };
          let select = match d.get("select") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
              items.iter().map(|i| i.as_str().map(str::to_string).ok_or_else(|| schema_err(&name, format!("{what}.select must list field names")))).collect::<Result<Vec<_>>>()?,
            ),
            Some(_) => return Err(schema_err(&name, format!("{what}.select must be an array of field names"))),
          };
          let on_delete = opt_str(d, "onDelete", &what, &name)?;
          if let Some(a) = &on_delete {
            if !matches!(a.as_str(), "cascade" | "set-null" | "restrict" | "no-action") {
              return Err(schema_err(&name, format!("{what}.onDelete must be cascade, set-null, restrict or no-action, got {a:?}")));
            }
          }
          relations.push(Relation {
            name: rname.clone(),
            target,
            kind,
            required: truthy(d.get("required")),
            nullable: d.get("nullable").and_then(Value::as_bool),
            select,
            through: opt_str(d, "through", &what, &name)?.filter(|t| !t.is_empty()),
            mapped_by: opt_str(d, "mappedBy", &what, &name)?.filter(|t| !t.is_empty()),
            join_column: opt_str(d, "joinColumn", &what, &name)?.filter(|t| !t.is_empty()),
            on_delete,
            eager: d.get("fetch").and_then(Value::as_str) == Some("eager"),
          });
        }
      }
      Some(_) => return Err(schema_err(&name, format!("{name}.relations must be an object"))),
    }

    let mut indexes = Vec::new();
    match o.get("indexes") {
      None | Some(Value::Null) => {}
      Some(Value::Array(list)) => {
        for (i, def) in list.iter().enumerate() {
          let d = def.as_object().ok_or_else(|| schema_err(&name, format!("{name}.indexes[{i}] must be an object")))?;
          let fields = match d.get("fields") {
            // The list form ['a', 'b'] means ascending on each (reference ≥ 2.5.0).
            Some(Value::Array(items)) => items
              .iter()
              .map(|f| f.as_str().map(|s| (s.to_string(), "asc".to_string())).ok_or_else(|| schema_err(&name, format!("{name}.indexes[{i}].fields must list field names"))))
              .collect::<Result<Vec<_>>>()?,
            Some(Value::Object(map)) => map
              .iter()
              // Only the string 'desc' gives DESC in the reference's DDL (§2.6); -1 is ASC.
              .map(|(k, dir)| (k.clone(), dir.as_str().unwrap_or("asc").to_string()))
              .collect(),
            _ => return Err(schema_err(&name, format!("{name}.indexes[{i}].fields must be an object or an array"))),
          };
          indexes.push(Index { fields, unique: truthy(d.get("unique")), sparse: truthy(d.get("sparse")) });
        }
      }
      Some(_) => return Err(schema_err(&name, format!("{name}.indexes must be an array"))),
    }

    let discriminator = opt_str(o, "discriminator", &name, &name)?.filter(|d| !d.is_empty());
    let mut s = Schema {
      table: format!("{prefix}{collection}"),
      name,
      collection,
      fields,
      relations,
      indexes,
      timestamps: truthy(o.get("timestamps")),
      discriminator_value: o.get("discriminatorValue").filter(|v| !v.is_null()).cloned(),
      discriminator,
      soft_delete: truthy(o.get("softDelete")),
      field_pos: HashMap::new(),
      relation_pos: HashMap::new(),
      fk_pos: HashMap::new(),
    };
    s.field_pos = s.fields.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect();
    s.relation_pos = s.relations.iter().enumerate().map(|(i, r)| (r.name.clone(), i)).collect();
    s.fk_pos = s.relations.iter().enumerate().filter(|(_, r)| r.kind.has_column()).map(|(i, r)| (r.fk_column().to_string(), i)).collect();
    Ok(s)
  }

  pub fn field(&self, name: &str) -> Option<&Field> {
    self.field_pos.get(name).map(|&i| &self.fields[i])
  }

  pub fn relation(&self, name: &str) -> Option<&Relation> {
    self.relation_pos.get(name).map(|&i| &self.relations[i])
  }

  /// The M2O/O2O relation whose FK column is `col`.
  pub fn relation_by_fk(&self, col: &str) -> Option<&Relation> {
    self.fk_pos.get(col).map(|&i| &self.relations[i])
  }

  /// Declared fields that become columns: `id` and FK-named fields are skipped (§2.2).
  pub fn column_fields(&self) -> impl Iterator<Item = &Field> {
    self.fields.iter().filter(move |f| f.name != "id" && !self.fk_pos.contains_key(&f.name))
  }

  /// Every physical column the reference knows for this schema, in table order.
  pub fn known_columns(&self) -> Vec<&str> {
    let mut cols = vec!["id"];
    cols.extend(self.column_fields().map(|f| f.name.as_str()));
    cols.extend(self.relations.iter().filter(|r| r.kind.has_column()).map(|r| r.fk_column()));
    if self.timestamps {
      cols.push("createdAt");
      cols.push("updatedAt");
    }
    if let Some(d) = &self.discriminator {
      cols.push(d);
    }
    if self.soft_delete {
      cols.push("deletedAt");
    }
    cols
  }

  /// Is `col` a date-typed column (declared date field or a system timestamp)?
  pub fn is_date_column(&self, col: &str) -> bool {
    match self.field(col) {
      Some(f) => f.ty == FieldType::Date,
      None => (self.timestamps && (col == "createdAt" || col == "updatedAt")) || (self.soft_delete && col == "deletedAt"),
    }
  }

  /// Junction key of this entity in a many-to-many table: `lower(name) + "Id"`.
  pub fn junction_key(entity: &str) -> String {
    format!("{}Id", entity.to_lowercase())
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn compiles_fields_relations_indexes_in_order() {
    let s = Schema::from_value(
      &json!({
        "name": "Product", "collection": "products", "timestamps": true, "softDelete": true,
        "fields": { "name": {"type": "string", "required": true}, "category": {"type": "string"}, "price": {"type": "number"} },
        "relations": { "category": {"target": "Category", "type": "many-to-one"},
                        "owner": {"target": "Tag", "type": "one-to-one", "joinColumn": "ownerId", "onDelete": "cascade"} },
        "indexes": [ {"fields": ["name"]}, {"fields": {"price": "desc"}, "unique": true} ]
      }),
      "app_",
    )
    .unwrap();
    assert_eq!(s.table, "app_products");
    assert_eq!(s.column_fields().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["name", "price"]);
    assert_eq!(s.known_columns(), ["id", "name", "price", "category", "ownerId", "createdAt", "updatedAt", "deletedAt"]);
    assert_eq!(s.indexes[0].fields, [("name".to_string(), "asc".to_string())]);
    assert_eq!(s.relation("owner").unwrap().on_delete_sql(), "CASCADE");
    assert_eq!(s.relation("category").unwrap().on_delete_sql(), "SET NULL");
    assert!(s.is_date_column("deletedAt"));
  }

  #[test]
  fn bad_relation_type_is_a_schema_error_naming_the_relation() {
    let err = Schema::from_value(&json!({"name": "A", "collection": "as", "relations": {"b": {"target": "B", "type": "weird"}}}), "").unwrap_err();
    assert_eq!(err.code, Code::Schema);
    assert!(err.message.contains("A.relations.b.type"), "{}", err.message);
  }
}
