//! `create` on SQLite without reading the row back.
//!
//! `create` returns the row as `findById` would read it (orm-compat.md §4.3). On SQLite,
//! `INSERT … RETURNING *` costs about as much again as the INSERT itself (SQLite stages the
//! returned row in a temporary table). But when SQLite stores every bound value unchanged and
//! the other columns are NULL, the row read back is exactly the values bound: the engine then
//! writes the INSERT alone and decodes those values as it would decode the row.
//!
//! The values are stored unchanged when no type affinity converts them (SQLite §3.4: a TEXT
//! column turns numbers into text, a numeric column turns numeric-looking text into numbers),
//! no NULL goes to a NOT NULL column (`ON CONFLICT REPLACE` would store its default), every
//! column left out has no DEFAULT and is neither generated nor a primary key (a rowid alias
//! gets a number), and no trigger may change the row. The table's layout comes from
//! `pragma_table_xinfo`; `PRAGMA schema_version`, read after the INSERT, must still be the one
//! the layout was read at (any ALTER, from this process or another, moves it), else the row
//! is read back. Anything else takes the `RETURNING` path.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::rows::{Cell, RowSink};
use crate::sql::Param;

/// A column's type affinity (SQLite "Datatypes", §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
  Integer,
  Text,
  Blob,
  Real,
  Numeric,
}

impl Affinity {
  /// The affinity of a declared column type, by SQLite's rules in their order.
  pub fn of(declared: &str) -> Self {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
      Affinity::Integer
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
      Affinity::Text
    } else if t.is_empty() || t.contains("BLOB") {
      Affinity::Blob
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
      Affinity::Real
    } else {
      Affinity::Numeric
    }
  }
}

/// Integers beyond this lose digits in a REAL column.
const EXACT_IN_DOUBLE: u64 = 1 << 53;

/// Whether SQLite keeps `p` as bound in a column of affinity `a` (a number stored in a
/// numeric column may change storage class, integer or real, but not the number it reads back
/// as, which is all the JSON row shows).
fn stored_as_bound(p: &Param, a: Affinity) -> bool {
  match (p, a) {
    (Param::Null, _) => true,
    (Param::Text(_), Affinity::Text | Affinity::Blob) => true,
    (Param::Int(_), Affinity::Integer | Affinity::Numeric | Affinity::Blob) => true,
    (Param::Int(i), Affinity::Real) => i.unsigned_abs() < EXACT_IN_DOUBLE,
    (Param::Bool(_), Affinity::Integer | Affinity::Numeric | Affinity::Real | Affinity::Blob) => true,
    (Param::Float(f), Affinity::Real | Affinity::Numeric | Affinity::Integer | Affinity::Blob) => f.is_finite(),
    _ => false,
  }
}

pub struct LayoutColumn {
  pub name: String,
  pub affinity: Affinity,
  /// It has a DEFAULT, is generated or is the primary key: when left out, not NULL.
  pub filled_in: bool,
  pub not_null: bool,
}

/// A table's columns in order, as of one `schema_version`.
pub struct TableLayout {
  pub schema_version: i64,
  pub columns: Vec<LayoutColumn>,
  /// A trigger exists on the table: the row written may differ from the values bound.
  pub has_triggers: bool,
  /// `mapping`s by INSERT column list (the list is kept alive here, so its address names it).
  mappings: Mutex<Vec<KnownMapping>>,
}

/// For each table column, the INSERT parameter it gets (`None`: left out, so NULL).
type Mapping = Arc<[Option<usize>]>;

/// An INSERT column list and its mapping (`None`: the row cannot be echoed).
type KnownMapping = (Arc<[String]>, Option<Mapping>);

/// Column lists whose mapping a layout keeps (one per INSERT plan of the table).
const MAPPINGS_MAX: usize = 16;

impl TableLayout {
  /// From `LAYOUT_SQL` rows (`name`, `type`, `filled_in`, `not_null`).
  pub fn from_rows(schema_version: i64, rows: &[serde_json::Map<String, Value>], has_triggers: bool) -> Self {
    let flag = |r: &serde_json::Map<String, Value>, k: &str| r.get(k).is_some_and(|v| v.as_i64() != Some(0));
    let columns = rows
      .iter()
      .map(|r| LayoutColumn {
        name: r.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        affinity: Affinity::of(r.get("type").and_then(Value::as_str).unwrap_or_default()),
        filled_in: flag(r, "filled_in"),
        not_null: flag(r, "not_null"),
      })
      .collect();
    TableLayout { schema_version, columns, has_triggers, mappings: Mutex::default() }
  }

  /// For each column of the table, the index of the bound value it gets, when the row read
  /// back would be exactly the bound values; `None` otherwise. `columns` are the INSERT's
  /// (a plan's list, shared call after call: the matching of names is kept per list).
  pub fn echo_plan(&self, columns: &Arc<[String]>, params: &[Param]) -> Option<Mapping> {
    if columns.len() != params.len() || self.has_triggers {
      return None;
    }
    let map = self.mapping(columns)?;
    let kept = map.iter().zip(&self.columns).all(|(at, col)| match at {
      Some(i) => stored_as_bound(&params[*i], col.affinity) && !(col.not_null && params[*i] == Param::Null),
      None => true,
    });
    kept.then_some(map)
  }

  /// Which bound value each table column gets, by name; `None` when a column left out
  /// would not be NULL, or a bound column is not in the table (it changed under us).
  fn mapping(&self, columns: &Arc<[String]>) -> Option<Mapping> {
    let mut known = self.mappings.lock().ok()?;
    if let Some((_, m)) = known.iter().find(|(c, _)| Arc::ptr_eq(c, columns)) {
      return m.clone();
    }
    let mut map = Vec::with_capacity(self.columns.len());
    let mut used = 0;
    // The INSERT names its columns mostly in table order: look at the next one first.
    let mut next = 0;
    for col in &self.columns {
      let at = match columns.get(next) {
        Some(c) if c.eq_ignore_ascii_case(&col.name) => Some(next),
        _ => columns.iter().position(|c| c.eq_ignore_ascii_case(&col.name)),
      };
      if let Some(i) = at {
        next = i + 1;
        used += 1;
      } else if col.filled_in {
        map.clear();
        break;
      }
      map.push(at);
    }
    let found = (used == columns.len() && map.len() == self.columns.len()).then(|| Arc::from(map));
    if known.len() >= MAPPINGS_MAX {
      known.remove(0);
    }
    known.push((columns.clone(), found.clone()));
    found
  }

  /// Feeds the row the INSERT wrote to `sink`, as a read of it would.
  pub fn feed(&self, plan: &[Option<usize>], params: &[Param], sink: &mut dyn RowSink) {
    let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
    sink.columns(&names);
    for (col, p) in plan.iter().enumerate() {
      let cell = match p.map(|i| &params[i]) {
        None | Some(Param::Null) => Cell::Null,
        Some(Param::Text(t)) => Cell::Text(t),
        Some(Param::Int(i)) => Cell::Int(*i),
        Some(Param::Bool(b)) => Cell::Int(*b as i64),
        Some(Param::Float(f)) => Cell::Float(*f),
        // Never bound by an INSERT of `create`; `echo_plan` refuses it anyway.
        Some(Param::Date(_)) => Cell::Null,
      };
      sink.cell(col, cell);
    }
    sink.end_row();
  }
}

/// Layout columns as `pragma_table_xinfo` gives them: `hidden` is non-zero for generated
/// columns, `pk` for primary-key columns.
pub const LAYOUT_SQL: &str =
  "SELECT name, type, (dflt_value IS NOT NULL OR hidden <> 0 OR pk > 0) AS filled_in, \"notnull\" AS not_null FROM pragma_table_xinfo(?1) ORDER BY cid";

/// Triggers on a table (`?1`), as `n`.
pub const TRIGGERS_SQL: &str = "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE";

#[cfg(test)]
mod tests {
  use super::*;

  fn layout(cols: &[(&str, &str, bool)]) -> TableLayout {
    TableLayout {
      schema_version: 1,
      columns: cols.iter().map(|(n, t, f)| LayoutColumn { name: n.to_string(), affinity: Affinity::of(t), filled_in: *f, not_null: *n == "on" }).collect(),
      has_triggers: false,
      mappings: Mutex::default(),
    }
  }

  #[test]
  fn affinity_follows_sqlite_rules() {
    assert_eq!(Affinity::of("INTEGER"), Affinity::Integer);
    assert_eq!(Affinity::of("VARCHAR(36)"), Affinity::Text);
    assert_eq!(Affinity::of("TEXT"), Affinity::Text);
    assert_eq!(Affinity::of(""), Affinity::Blob);
    assert_eq!(Affinity::of("REAL"), Affinity::Real);
    assert_eq!(Affinity::of("DOUBLE PRECISION"), Affinity::Real);
    assert_eq!(Affinity::of("BOOLEAN"), Affinity::Numeric);
    assert_eq!(Affinity::of("FLOATING POINT"), Affinity::Integer, "INT wins, as in SQLite");
  }

  #[test]
  fn echo_only_when_every_value_is_stored_unchanged() {
    let l = layout(&[("id", "TEXT", false), ("n", "REAL", false), ("on", "INTEGER", false), ("note", "TEXT", false)]);
    let cols: Arc<[String]> = ["id", "n", "on"].iter().map(|s| s.to_string()).collect();
    let ok = [Param::Text("a".into()), Param::Float(2.5), Param::Int(1)];
    assert_eq!(l.echo_plan(&cols, &ok).as_deref(), Some(&[Some(0), Some(1), Some(2), None][..]));
    // Names in another case and order match the same columns; the matching is kept per list.
    let other: Arc<[String]> = ["N", "id", "on"].iter().map(|s| s.to_string()).collect();
    let swapped = [Param::Float(2.5), Param::Text("a".into()), Param::Int(1)];
    assert_eq!(l.echo_plan(&other, &swapped).as_deref(), Some(&[Some(1), Some(0), Some(2), None][..]));
    assert!(Arc::ptr_eq(&l.echo_plan(&cols, &ok).unwrap(), &l.echo_plan(&cols, &ok).unwrap()));
    // A number into a TEXT column is stored as text: read it back.
    assert_eq!(l.echo_plan(&cols, &[Param::Int(5), Param::Float(2.5), Param::Int(1)]), None);
    // Text into a REAL column may become a number.
    assert_eq!(l.echo_plan(&cols, &[Param::Text("a".into()), Param::Text("5".into()), Param::Int(1)]), None);
    // A big integer loses digits in a REAL column.
    assert_eq!(l.echo_plan(&cols, &[Param::Text("a".into()), Param::Int(1 << 60), Param::Int(1)]), None);
    // A left-out column with a DEFAULT is not NULL.
    let d = layout(&[("id", "TEXT", false), ("n", "REAL", false), ("on", "INTEGER", false), ("note", "TEXT", true)]);
    assert_eq!(d.echo_plan(&cols, &ok), None);
    // A bound column the layout does not list.
    let short = layout(&[("id", "TEXT", false), ("n", "REAL", false)]);
    assert_eq!(short.echo_plan(&cols, &ok), None);
    // NULL into a NOT NULL column (ON CONFLICT REPLACE would store the default).
    assert_eq!(l.echo_plan(&cols, &[Param::Text("a".into()), Param::Float(2.5), Param::Null]), None);
    // A trigger may change the row.
    let t = TableLayout { has_triggers: true, ..layout(&[("id", "TEXT", false), ("n", "REAL", false), ("on", "INTEGER", false)]) };
    assert_eq!(t.echo_plan(&cols, &ok), None);
  }
}
