//! DDL from `EntitySchema`s, byte-compatible with what the reference ORM writes
//! (orm-compat.md §2): CREATE TABLE column order and clauses, index and constraint names,
//! junction tables, and the ALTERs the `update` strategy issues.

use serde_json::Value;

use super::encode::{encode_value, is_now_sentinel};
use super::{Flavour, Param};
use crate::schema::{FieldType, RelKind, Schema};

/// Finds a schema by entity name among those passed to `initSchema`.
pub fn find_target<'a>(all: &'a [&'a Schema], name: &str) -> Option<&'a Schema> {
  all.iter().copied().find(|s| s.name == name)
}

/// The `DEFAULT …` clause of a field, or "" (§2.4).
pub fn default_clause(f: &dyn Flavour, ty: FieldType, default: Option<&Value>) -> String {
  let Some(d) = default else { return String::new() };
  if d.is_null() || is_now_sentinel(d) {
    return String::new();
  }
  match encode_value(f, d, Some(ty)) {
    Param::Text(s) => format!(" DEFAULT '{}'", s.replace('\'', "''")),
    Param::Int(i) => format!(" DEFAULT {i}"),
    Param::Float(x) if x.is_finite() => format!(" DEFAULT {x}"),
    _ => String::new(),
  }
}

/// `CREATE TABLE IF NOT EXISTS` for one entity (§2.2).
pub fn create_table(f: &dyn Flavour, schema: &Schema, all: &[&Schema], prefix: &str) -> String {
  let mut lines: Vec<String> = Vec::new();
  lines.push(format!("{} {} PRIMARY KEY", f.quote("id"), f.id_type()));
  for field in schema.column_fields() {
    let mut l = format!("{} {}", f.quote(&field.name), f.sql_type(field.ty));
    l.push_str(&default_clause(f, field.ty, field.default.as_ref()));
    if field.required {
      l.push_str(" NOT NULL");
    }
    // With soft delete, uniqueness moves to a partial index where the engine has them.
    if field.unique && !(schema.soft_delete && f.partial_indexes()) {
      l.push_str(" UNIQUE");
    }
    lines.push(l);
  }
  for rel in schema.relations.iter().filter(|r| r.kind.has_column()) {
    let mut l = format!("{} {}", f.quote(rel.fk_column()), f.id_type());
    if rel.required {
      l.push_str(" NOT NULL");
    }
    if rel.kind == RelKind::OneToOne {
      l.push_str(" UNIQUE");
    }
    lines.push(l);
  }
  if schema.timestamps {
    lines.push(format!("{} {}", f.quote("createdAt"), f.sql_type(FieldType::Date)));
    lines.push(format!("{} {}", f.quote("updatedAt"), f.sql_type(FieldType::Date)));
  }
  if let Some(d) = &schema.discriminator {
    lines.push(format!("{} VARCHAR(100) NOT NULL", f.quote(d)));
  }
  if schema.soft_delete {
    lines.push(format!("{} {}", f.quote("deletedAt"), f.sql_type(FieldType::Date)));
  }
  if f.inline_foreign_keys() {
    for rel in schema.relations.iter().filter(|r| r.kind.has_column()) {
      let target_coll = find_target(all, &rel.target).map(|t| t.collection.clone()).unwrap_or_else(|| rel.target.to_lowercase());
      lines.push(format!(
        "FOREIGN KEY ({}) REFERENCES {}({}) ON DELETE {}",
        f.quote(rel.fk_column()),
        f.quote(&format!("{prefix}{target_coll}")),
        f.quote("id"),
        rel.on_delete_sql()
      ));
    }
  }
  format!("CREATE TABLE IF NOT EXISTS {} (\n  {}\n)", f.quote(&schema.table), lines.join(",\n  "))
}

/// Index statements (§2.6). Names are never prefixed; `i` is the position in `indexes`.
/// Returns (statement, skipped reason) pairs: a skipped index has no statement.
pub fn create_indexes(f: &dyn Flavour, schema: &Schema) -> Vec<Result<String, String>> {
  let known = schema.known_columns();
  let mut out = Vec::new();
  for (i, idx) in schema.indexes.iter().enumerate() {
    if idx.fields.iter().any(|(_, d)| d == "text") {
      continue; // text indexes are never created on SQL
    }
    if let Some((bad, _)) = idx.fields.iter().find(|(c, _)| !known.contains(&c.as_str())) {
      out.push(Err(format!("index {i} of {} names unknown column \"{bad}\"; skipped", schema.name)));
      continue;
    }
    let cols: Vec<String> = idx.fields.iter().map(|(c, d)| format!("{} {}", f.quote(c), if d == "desc" { "DESC" } else { "ASC" })).collect();
    let mut sql = format!(
      "CREATE {}INDEX {}{} ON {} ({})",
      if idx.unique { "UNIQUE " } else { "" },
      if f.index_if_not_exists() { "IF NOT EXISTS " } else { "" },
      f.quote(&format!("idx_{}_{i}", schema.collection)),
      f.quote(&schema.table),
      cols.join(", ")
    );
    if idx.unique && idx.sparse && schema.soft_delete && f.partial_indexes() {
      sql.push_str(&format!(" WHERE {} IS NULL", f.quote("deletedAt")));
    }
    out.push(Ok(sql));
  }
  if schema.soft_delete && f.partial_indexes() {
    for field in schema.column_fields().filter(|fd| fd.unique) {
      // "Covered" ignores `sparse`, as the reference does (§12.2 #18).
      let covered = schema.indexes.iter().any(|i| i.unique && i.fields.len() == 1 && i.fields[0].0 == field.name);
      if !covered {
        out.push(Ok(format!(
          "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({}) WHERE {} IS NULL",
          f.quote(&format!("uidx_{}_{}_softdelete", schema.collection, field.name)),
          f.quote(&schema.table),
          f.quote(&field.name),
          f.quote("deletedAt")
        )));
      }
    }
  }
  out
}

/// Junction tables of the schema's many-to-many relations whose target is known (§2.7).
pub fn create_junctions(f: &dyn Flavour, schema: &Schema, all: &[&Schema], prefix: &str) -> Vec<String> {
  schema
    .relations
    .iter()
    .filter(|r| r.is_junction() && find_target(all, &r.target).is_some())
    .map(|r| {
      let (src, tgt) = r.junction_keys(&schema.name);
      let through = r.through.as_deref().unwrap_or_default();
      format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  {} {} NOT NULL,\n  {} {} NOT NULL,\n  PRIMARY KEY ({}, {})\n)",
        f.quote(&format!("{prefix}{through}")),
        f.quote(&src),
        f.id_type(),
        f.quote(&tgt),
        f.id_type(),
        f.quote(&src),
        f.quote(&tgt)
      )
    })
    .collect()
}

/// A named FK constraint: (constraint name, ALTER statement).
pub struct ForeignKey {
  pub name: String,
  pub table: String,
  pub sql: String,
}

/// `ALTER TABLE … ADD CONSTRAINT` for PostgreSQL and MySQL (§2.5), in schema then relation
/// order. SQLite declares them inline instead.
pub fn foreign_keys(f: &dyn Flavour, schema: &Schema, all: &[&Schema], prefix: &str) -> Vec<ForeignKey> {
  if f.inline_foreign_keys() {
    return Vec::new();
  }
  let mut out = Vec::new();
  let fk = |table: &str, name: &str, col: &str, target_table: &str, action: &str| ForeignKey {
    name: name.to_string(),
    table: table.to_string(),
    sql: format!(
      "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {}({}) ON DELETE {action}",
      f.quote(table),
      f.quote(name),
      f.quote(col),
      f.quote(target_table),
      f.quote("id")
    ),
  };
  for rel in &schema.relations {
    let Some(target) = find_target(all, &rel.target) else { continue };
    let target_table = format!("{prefix}{}", target.collection);
    if rel.kind.has_column() {
      let col = rel.fk_column();
      out.push(fk(&schema.table, &format!("fk_{}_{col}", schema.collection), col, &target_table, &rel.on_delete_sql()));
    } else if rel.is_junction() {
      let through = rel.through.as_deref().unwrap_or_default();
      let jt = format!("{prefix}{through}");
      let (src, tgt) = rel.junction_keys(&schema.name);
      out.push(fk(&jt, &format!("fk_{through}_{src}"), &src, &schema.table, "CASCADE"));
      out.push(fk(&jt, &format!("fk_{through}_{tgt}"), &tgt, &target_table, "CASCADE"));
    }
  }
  out
}

/// Columns `update` adds to an existing table (§3 addMissingColumns): (column, ALTER).
/// Added columns are nullable and never UNIQUE; the discriminator comes in as a string.
pub fn missing_columns(f: &dyn Flavour, schema: &Schema, existing: &[String]) -> Vec<(String, String)> {
  let has = |c: &str| existing.iter().any(|e| e.eq_ignore_ascii_case(c));
  let table = f.quote(&schema.table);
  let mut out = Vec::new();
  let mut add = |col: &str, decl: String| {
    if !has(col) && !out.iter().any(|(c, _): &(String, String)| c == col) {
      out.push((col.to_string(), format!("ALTER TABLE {table} ADD {} {decl}", f.quote(col))));
    }
  };
  for field in schema.fields.iter().filter(|fd| schema.relation_by_fk(&fd.name).is_none()) {
    let decl = if field.name == "id" { f.id_type().to_string() } else { format!("{}{}", f.sql_type(field.ty), default_clause(f, field.ty, field.default.as_ref())) };
    add(&field.name, decl);
  }
  for rel in schema.relations.iter().filter(|r| r.kind.has_column()) {
    // SQLite refuses to add a UNIQUE column, so there the O2O column is not added (kept
    // as the reference does it, §12.2 #19; the error is logged).
    let unique = rel.kind == RelKind::OneToOne;
    add(rel.fk_column(), format!("{}{}", f.id_type(), if unique { " UNIQUE" } else { "" }));
  }
  if schema.timestamps {
    add("createdAt", f.sql_type(FieldType::Date).to_string());
    add("updatedAt", f.sql_type(FieldType::Date).to_string());
  }
  if schema.soft_delete {
    add("deletedAt", f.sql_type(FieldType::Date).to_string());
  }
  if let Some(d) = &schema.discriminator {
    add(d, f.sql_type(FieldType::String).to_string());
  }
  out
}

/// `ALTER TABLE … ADD <col> <type>` for a key written by create/update that the table
/// lacks (§3); `decl` is the column's SQL type.
pub fn add_column(f: &dyn Flavour, table: &str, col: &str, decl: &str) -> String {
  format!("ALTER TABLE {} ADD {} {decl}", f.quote(table), f.quote(col))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::sql::{mysql::Mysql, postgres::Postgres, sqlite::Sqlite};
  use serde_json::json;

  fn schemas() -> Vec<Schema> {
    let cat = json!({"name": "Category", "collection": "categories", "fields": {"name": {"type": "string"}}});
    let tag = json!({"name": "Tag", "collection": "tags", "fields": {"label": {"type": "string"}}});
    let product = json!({
      "name": "Product", "collection": "products", "timestamps": true, "softDelete": true,
      "fields": {
        "name": {"type": "string", "required": true}, "slug": {"type": "string", "required": true, "unique": true},
        "body": {"type": "text"}, "price": {"type": "number", "required": true}, "stock": {"type": "number", "default": 0},
        "flag": {"type": "boolean"}, "status": {"type": "string", "default": "draft"}, "tags": {"type": "array"},
        "metadata": {"type": "json"}, "publishedAt": {"type": "date"}, "seenAt": {"type": "date", "default": "now"},
        "jdef": {"type": "json", "default": {"a": 1}}, "category": {"type": "string"}
      },
      "relations": {
        "category": {"target": "Category", "type": "many-to-one"},
        "owner": {"target": "Tag", "type": "one-to-one", "required": true, "joinColumn": "ownerId", "onDelete": "cascade"},
        "labels": {"target": "Tag", "type": "many-to-many", "through": "product_tags"}
      },
      "indexes": [{"fields": {"status": "asc", "price": "desc"}}, {"fields": ["name"]}, {"fields": {"slug": "asc"}, "unique": true, "sparse": true}, {"fields": {"nope": "asc"}}]
    });
    let node = json!({"name": "Node", "collection": "nodes", "discriminator": "_type", "discriminatorValue": "n", "fields": {"title": {"type": "string"}}});
    [cat, tag, product, node].iter().map(|v| Schema::from_value(v, "").unwrap()).collect()
  }

  #[test]
  fn sqlite_create_table_matches_the_reference_example() {
    let s = schemas();
    let all: Vec<&Schema> = s.iter().collect();
    let sql = create_table(&Sqlite, &s[2], &all, "");
    assert_eq!(
      sql,
      "CREATE TABLE IF NOT EXISTS \"products\" (\n  \"id\" TEXT PRIMARY KEY,\n  \"name\" TEXT NOT NULL,\n  \"slug\" TEXT NOT NULL,\n  \"body\" TEXT,\n  \"price\" REAL NOT NULL,\n  \"stock\" REAL DEFAULT 0,\n  \"flag\" INTEGER,\n  \"status\" TEXT DEFAULT 'draft',\n  \"tags\" TEXT,\n  \"metadata\" TEXT,\n  \"publishedAt\" TEXT,\n  \"seenAt\" TEXT,\n  \"jdef\" TEXT DEFAULT '{\"a\":1}',\n  \"category\" TEXT,\n  \"ownerId\" TEXT NOT NULL UNIQUE,\n  \"createdAt\" TEXT,\n  \"updatedAt\" TEXT,\n  \"deletedAt\" TEXT,\n  FOREIGN KEY (\"category\") REFERENCES \"categories\"(\"id\") ON DELETE SET NULL,\n  FOREIGN KEY (\"ownerId\") REFERENCES \"tags\"(\"id\") ON DELETE CASCADE\n)"
    );
    assert_eq!(create_table(&Sqlite, &s[3], &all, ""), "CREATE TABLE IF NOT EXISTS \"nodes\" (\n  \"id\" TEXT PRIMARY KEY,\n  \"title\" TEXT,\n  \"_type\" VARCHAR(100) NOT NULL\n)");
  }

  #[test]
  fn indexes_and_partial_uniques() {
    let s = schemas();
    let idx = create_indexes(&Sqlite, &s[2]);
    assert_eq!(idx[0].as_ref().unwrap(), "CREATE INDEX IF NOT EXISTS \"idx_products_0\" ON \"products\" (\"status\" ASC, \"price\" DESC)");
    assert_eq!(idx[1].as_ref().unwrap(), "CREATE INDEX IF NOT EXISTS \"idx_products_1\" ON \"products\" (\"name\" ASC)");
    assert_eq!(idx[2].as_ref().unwrap(), "CREATE UNIQUE INDEX IF NOT EXISTS \"idx_products_2\" ON \"products\" (\"slug\" ASC) WHERE \"deletedAt\" IS NULL");
    assert!(idx[3].is_err());
    assert_eq!(idx.len(), 4, "slug is covered by idx_products_2, so no uidx");
    let my = create_indexes(&Mysql, &s[2]);
    assert_eq!(my[2].as_ref().unwrap(), "CREATE UNIQUE INDEX `idx_products_2` ON `products` (`slug` ASC)");
  }

  #[test]
  fn postgres_types_defaults_and_foreign_keys() {
    let s = schemas();
    let all: Vec<&Schema> = s.iter().collect();
    let sql = create_table(&Postgres, &s[2], &all, "");
    assert!(sql.contains("\"flag\" BOOLEAN,\n"), "{sql}");
    assert!(sql.contains("\"price\" DOUBLE PRECISION NOT NULL"));
    assert!(sql.contains("\"jdef\" JSONB DEFAULT '{\"a\":1}'"));
    assert!(!sql.contains("FOREIGN KEY"));
    let fks = foreign_keys(&Postgres, &s[2], &all, "");
    let names: Vec<&str> = fks.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["fk_products_category", "fk_products_ownerId", "fk_product_tags_productId", "fk_product_tags_tagId"]);
    assert_eq!(fks[1].sql, "ALTER TABLE \"products\" ADD CONSTRAINT \"fk_products_ownerId\" FOREIGN KEY (\"ownerId\") REFERENCES \"tags\"(\"id\") ON DELETE CASCADE");
    let my = create_table(&Mysql, &s[2], &all, "");
    assert!(my.contains("`slug` VARCHAR(255) NOT NULL UNIQUE"), "{my}");
    assert!(my.contains("`id` VARCHAR(36) PRIMARY KEY"));
    assert!(my.contains("`body` LONGTEXT"));
  }

  #[test]
  fn junction_tables() {
    let s = schemas();
    let all: Vec<&Schema> = s.iter().collect();
    assert_eq!(
      create_junctions(&Sqlite, &s[2], &all, "app_"),
      ["CREATE TABLE IF NOT EXISTS \"app_product_tags\" (\n  \"productId\" TEXT NOT NULL,\n  \"tagId\" TEXT NOT NULL,\n  PRIMARY KEY (\"productId\", \"tagId\")\n)"]
    );
  }

  #[test]
  fn missing_columns_are_nullable() {
    let s = schemas();
    let alters = missing_columns(&Sqlite, &s[2], &["id".into(), "NAME".into()]);
    assert_eq!(alters[0].1, "ALTER TABLE \"products\" ADD \"slug\" TEXT");
    assert!(alters.iter().any(|(c, a)| c == "stock" && a.ends_with("REAL DEFAULT 0")));
    assert!(alters.iter().any(|(c, a)| c == "ownerId" && a.ends_with("\"ownerId\" TEXT UNIQUE")));
    assert!(!alters.iter().any(|(c, _)| c == "name"));
  }
}
