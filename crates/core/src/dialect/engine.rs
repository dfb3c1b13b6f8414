//! The SQL dialect semantics of the reference ORM (orm-compat.md §3, §7, §9), written once
//! over `Conn`. Backends differ only in their `Flavour` (SQL text) and `Conn` (execution).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use foldhash::{HashMap as FastMap, HashSet as FastSet};

use serde_json::{Map, Value};

use super::echo::{self, TableLayout};
use super::rows::{FirstColumn, JsonRows, PlanCache, Template, TemplateRow, ValueRows};
use super::{Conn, Request};
use crate::env::{OrmConfig, SchemaStrategy};
use crate::error::{Code, Error, Result};
use crate::fields::Fields;
use crate::schema::{FieldType, RelKind, Schema};
use crate::sql::encode::{js_truthy, json_text};
use crate::sql::query::{self, id_list, ById, Junction, QueryOptions};
use crate::sql::insert::{Insert, InsertPlans};
use crate::sql::{ddl, is_plain_dml, Flavour, Isolation, Param, Stmt};

/// The schemas a dialect knows: every compiled one (by handle) and the list the last
/// `initSchema` received, which relation population looks targets up in first.
#[derive(Default)]
struct Registry {
  all: Vec<Arc<Schema>>,
  active: Vec<Arc<Schema>>,
}

/// A created row the engine answers from the values bound, not by reading it back (see
/// `echo`): the table's layout, each column's parameter, and each parameter's index in the
/// caller's data (`Insert::given`).
#[derive(Clone, Copy)]
struct Echo<'a> {
  layout: &'a TableLayout,
  plan: &'a [Option<usize>],
  from: &'a [Option<u32>],
}

pub struct SqlEngine {
  pub flavour: &'static dyn Flavour,
  pub config: OrmConfig,
  registry: RwLock<Registry>,
  /// Live columns per (prefixed) table, for the auto-ALTER on write.
  columns: Mutex<FastMap<String, LiveColumns>>,
  /// Row decoding plans, built once per schema and column list.
  plans: PlanCache,
  /// SQLite table layouts, for `create` without a read-back (see `echo`).
  layouts: Mutex<FastMap<String, Arc<TableLayout>>>,
  /// `create`'s INSERT plans, built once per schema and key order.
  inserts: InsertPlans,
}

/// What the auto-ALTER knows of one table.
#[derive(Default)]
struct LiveColumns {
  cols: FastSet<String>,
  /// Per entity, the data keys already handled (their column exists, was added, or is not
  /// a column): a write whose keys are all here needs no look at the table.
  handled: Vec<(String, FastSet<String>)>,
}

impl LiveColumns {
  fn handled<'d>(&self, entity: &str, mut data: impl Iterator<Item = (&'d String, &'d Value)>) -> bool {
    let Some((_, keys)) = self.handled.iter().find(|(e, _)| e == entity) else { return false };
    data.all(|(k, _)| k == "id" || k == "_id" || keys.contains(k.as_str()))
  }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The savepoint of a multi-statement write inside a transaction.
const ATOMIC_SAVEPOINT: &str = "mosta_atomic";

/// Eager relations stop nesting here, so a cycle of eager relations terminates.
const MAX_EAGER_DEPTH: usize = 4;

/// Ids bound per `IN (…)` when relations are read for many rows: far below every backend's
/// limit on bound parameters.
const IN_BATCH: usize = 500;

fn lock_poisoned() -> Error {
  Error::internal("schema registry lock poisoned by an earlier panic")
}

impl SqlEngine {
  pub fn new(config: OrmConfig) -> Self {
    SqlEngine {
      flavour: crate::sql::flavour_for(config.backend),
      config,
      registry: RwLock::default(),
      columns: Mutex::default(),
      plans: PlanCache::default(),
      layouts: Mutex::default(),
      inserts: InsertPlans::default(),
    }
  }

  // ---------------------------------------------------------------- schemas

  /// Compiles a schema once; the handle is what later calls name it by.
  pub fn compile(&self, schema_json: &str) -> Result<u32> {
    let s = Schema::from_json(schema_json, &self.config.table_prefix)?;
    let mut r = self.registry.write().map_err(|_| lock_poisoned())?;
    r.all.push(Arc::new(s));
    Ok((r.all.len() - 1) as u32)
  }

  pub fn schema(&self, handle: u32) -> Result<Arc<Schema>> {
    let r = self.registry.read().map_err(|_| lock_poisoned())?;
    r.all.get(handle as usize).cloned().ok_or_else(|| Error::arg(format!("unknown schema handle {handle}")))
  }

  /// The keys of a shaped row (see `rows::Shapes`).
  pub fn shape_keys(&self, shape: u32) -> Option<Arc<[String]>> {
    self.plans.shape_keys(shape)
  }

  /// A created row's template (see `rows::TemplateRow`).
  pub fn template(&self, template: u32) -> Option<Template> {
    self.plans.template(template)
  }

  /// A relation target by entity name: the last `initSchema` list first, then any schema
  /// this dialect has seen (newest first).
  fn target(&self, name: &str) -> Option<Arc<Schema>> {
    let r = self.registry.read().ok()?;
    r.active.iter().find(|s| s.name == name).or_else(|| r.all.iter().rev().find(|s| s.name == name)).cloned()
  }

  fn active(&self) -> Vec<Arc<Schema>> {
    self.registry.read().map(|r| r.active.clone()).unwrap_or_default()
  }

  fn log(&self, st: &Stmt) {
    if self.config.show_sql {
      tracing::info!(target: "mosta::sql", "[DAL:{}] {} {:?}", self.flavour.label(), st.sql, st.params);
    }
  }

  async fn query_json<C: Conn>(&self, c: &mut C, st: &Stmt, s: Option<&Arc<Schema>>, single: bool) -> Result<String> {
    self.json_into(c, st, JsonRows::cached(&self.plans, s, single)).await
  }

  /// `query_json` for a list that is the call's whole answer: it may go out in pieces.
  async fn answer_rows<C: Conn>(&self, c: &mut C, st: &Stmt, s: &Arc<Schema>) -> Result<String> {
    self.json_into(c, st, JsonRows::cached(&self.plans, Some(s), false).streamed()).await
  }

  async fn json_into<C: Conn>(&self, c: &mut C, st: &Stmt, mut sink: JsonRows<'_>) -> Result<String> {
    self.log(st);
    c.query(st, &mut sink).await?;
    Ok(sink.finish())
  }

  async fn query_rows<C: Conn>(&self, c: &mut C, st: &Stmt, s: Option<&Arc<Schema>>) -> Result<Vec<Map<String, Value>>> {
    self.log(st);
    let mut sink = ValueRows::cached(&self.plans, s);
    c.query(st, &mut sink).await?;
    Ok(sink.rows)
  }

  async fn query_column<C: Conn>(&self, c: &mut C, st: &Stmt, s: Option<&Arc<Schema>>) -> Result<Vec<Value>> {
    self.log(st);
    let mut sink = FirstColumn::cached(&self.plans, s);
    c.query(st, &mut sink).await?;
    Ok(sink.values())
  }

  async fn exec<C: Conn>(&self, c: &mut C, st: &Stmt) -> Result<u64> {
    self.log(st);
    c.execute(st).await
  }

  async fn batch<C: Conn>(&self, c: &mut C, sql: &str) -> Result<()> {
    if self.config.show_sql {
      tracing::info!(target: "mosta::sql", "[DAL:{}] {sql}", self.flavour.label());
    }
    c.batch(sql).await
  }

  /// Runs DDL whose failure the reference logs and swallows (indexes, FKs, ALTERs);
  /// returns whether it succeeded.
  async fn batch_logged<C: Conn>(&self, c: &mut C, sql: &str, what: &str) -> bool {
    match self.batch(c, sql).await {
      Ok(()) => true,
      Err(e) => {
        let m = e.message.to_ascii_lowercase();
        if m.contains("already exists") || m.contains("duplicate") {
          tracing::debug!(target: "mosta::ddl", "{what}: {}", e.message);
        } else {
          tracing::warn!(target: "mosta::ddl", "{what} failed: {}", e.message);
        }
        false
      }
    }
  }

  // ---------------------------------------------------------------- dispatch

  /// Runs one dialect call and returns its result as JSON text.
  pub async fn run<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, req: &Request) -> Result<String> {
    self.run_inner(c, s, req).await.map_err(|e| e.in_entity(&s.name))
  }

  async fn run_inner<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, req: &Request) -> Result<String> {
    let f = self.flavour;
    match req {
      Request::Find { filter, options } => {
        let o = QueryOptions::parse(options, s)?;
        self.answer_rows(c, &query::select(f, s, filter, &o)?, s).await
      }
      Request::FindOne { filter, options } => {
        let mut o = QueryOptions::parse(options, s)?;
        o.limit = Some(1);
        self.query_json(c, &query::select(f, s, filter, &o)?, Some(s), true).await
      }
      Request::FindById { id, options } => {
        let o = QueryOptions::parse(options, s)?;
        match id {
          None => Ok("null".into()),
          Some(id) => self.find_by_id_json(c, s, id, &o).await,
        }
      }
      Request::FindWithRelations { filter, relations, options } => {
        let o = QueryOptions::parse(options, s)?;
        let mut rows = self.query_rows(c, &query::select(f, s, filter, &o)?, Some(s)).await?;
        self.populate(c, s, &mut rows, relations, 0).await?;
        Ok(json_text(&Value::Array(rows.into_iter().map(Value::Object).collect())))
      }
      Request::FindByIdWithRelations { id, relations, options } => {
        let o = QueryOptions::parse(options, s)?;
        let Some(id) = id else { return Ok("null".into()) };
        match self.find_by_id_value(c, s, id, &o, 0).await? {
          None => Ok("null".into()),
          Some(row) => {
            let mut rows = vec![row];
            self.populate(c, s, &mut rows, relations, 0).await?;
            Ok(json_text(&Value::Object(rows.remove(0))))
          }
        }
      }
      Request::Create { data, template } => self.create(c, s, data, *template).await,
      Request::Update { id, data } => match id {
        None => Ok("null".into()),
        Some(id) => self.update(c, s, id, data).await,
      },
      Request::UpdateMany { filter, data } => {
        let data = data.as_object().cloned().unwrap_or_default();
        match query::update_many(f, s, filter, &data)? {
          None => Ok("0".into()),
          Some(st) => Ok(self.exec(c, &st).await?.to_string()),
        }
      }
      Request::Delete { id } => match id {
        None => Ok("false".into()),
        Some(id) => Ok(self.delete(c, s, id).await?.to_string()),
      },
      Request::DeleteMany { filter } => Ok(self.delete_many(c, s, filter).await?.to_string()),
      Request::Count { filter, options } => {
        let o = QueryOptions::parse(options, s)?;
        let v = self.query_column(c, &query::count(f, s, filter, &o)?, None).await?;
        Ok(count_value(v.first()).to_string())
      }
      Request::Distinct { field, filter, options } => {
        let o = QueryOptions::parse(options, s)?;
        let v = self.query_column(c, &query::distinct(f, s, field, filter, &o)?, Some(s)).await?;
        Ok(json_text(&Value::Array(v)))
      }
      Request::Aggregate { stages, options } => {
        let o = QueryOptions::parse(options, s)?;
        self.query_json(c, &query::aggregate(f, s, stages, &o)?, None, false).await
      }
      Request::Upsert { filter, data } => {
        let mut o = QueryOptions { limit: Some(1), ..Default::default() };
        o.select = Some(vec!["id".into()]);
        let ids = self.query_column(c, &query::select(f, s, filter, &o)?, None).await?;
        match ids.first().and_then(Value::as_str) {
          Some(id) => {
            let id = id.to_string();
            self.update(c, s, &id, data).await
          }
          None => self.create(c, s, &Fields::from(data.as_object().cloned().unwrap_or_default()), false).await,
        }
      }
      Request::Increment { id, field, amount } => {
        let Some(id) = id else { return Err(Error::arg("increment: id is required").with_field("id")) };
        if !amount.is_number() {
          return Err(Error::arg(format!("increment: amount must be a number, got {amount}")).with_field("amount"));
        }
        let updated = if c.returning().update && !Self::has_eager(s) {
          let row = self.query_json(c, &query::increment(f, s, id, field, amount, ById::LiveReturning)?, Some(s), true).await?;
          (row != "null").then_some(row)
        } else if self.exists(c, s, id).await? {
          self.exec(c, &query::increment(f, s, id, field, amount, ById::Plain)?).await?;
          Some(self.find_by_id_json(c, s, id, &QueryOptions::default()).await?)
        } else {
          None
        };
        match updated {
          Some(row) => Ok(row),
          None => {
            // The reference creates the row with that id (§12.2 #10, kept).
            let data = Fields::from_iter([("id".to_string(), Value::String(id.clone())), (field.clone(), amount.clone())]);
            self.create(c, s, &data, false).await
          }
        }
      }
      Request::AddToSet { id, field, value } => self.array_op(c, s, id.clone(), field, value.clone(), true).await,
      Request::Pull { id, field, value } => self.array_op(c, s, id.clone(), field, value.clone(), false).await,
      Request::Search { query: q, fields, options } => {
        let o = QueryOptions::parse(options, s)?;
        let fields = fields.clone().unwrap_or_else(|| s.fields.iter().filter(|f| f.ty == FieldType::String).map(|f| f.name.clone()).collect());
        self.answer_rows(c, &query::search(f, s, q, &fields, &o)?, s).await
      }
    }
  }

  // ---------------------------------------------------------------- reads

  async fn exists<C: Conn>(&self, c: &mut C, s: &Schema, id: &str) -> Result<bool> {
    let o = QueryOptions { select: Some(vec!["id".into()]), ..Default::default() };
    Ok(!self.query_column(c, &query::select_by_id(self.flavour, s, id, &o)?, None).await?.is_empty())
  }

  fn has_eager(s: &Schema) -> bool {
    s.relations.iter().any(|r| r.eager)
  }

  /// `findById` as JSON: the row, with its eager relations populated.
  async fn find_by_id_json<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, id: &str, o: &QueryOptions) -> Result<String> {
    if !Self::has_eager(s) {
      return self.query_json(c, &query::select_by_id(self.flavour, s, id, o)?, Some(s), true).await;
    }
    Ok(match self.find_by_id_value(c, s, id, o, 0).await? {
      Some(row) => json_text(&Value::Object(row)),
      None => "null".into(),
    })
  }

  fn find_by_id_value<'a, C: Conn>(&'a self, c: &'a mut C, s: &'a Arc<Schema>, id: &'a str, o: &'a QueryOptions, depth: usize) -> BoxFut<'a, Option<Map<String, Value>>> {
    Box::pin(async move {
      let mut rows = self.query_rows(c, &query::select_by_id(self.flavour, s, id, o)?, Some(s)).await?;
      if rows.is_empty() {
        return Ok(None);
      }
      if depth < MAX_EAGER_DEPTH {
        let eager: Vec<String> = s.relations.iter().filter(|r| r.eager).map(|r| r.name.clone()).collect();
        if !eager.is_empty() {
          self.populate(c, s, &mut rows, &eager, depth + 1).await?;
        }
      }
      Ok(rows.pop())
    })
  }

  /// Fills the named relations of each row (§7.12). Unknown names and unknown targets are
  /// skipped, as in the reference. Each relation is read for all rows at once (a few
  /// `IN (…)` queries), where the reference runs one query per row and relation.
  fn populate<'a, C: Conn>(&'a self, c: &'a mut C, s: &'a Arc<Schema>, rows: &'a mut [Map<String, Value>], relations: &'a [String], depth: usize) -> BoxFut<'a, ()> {
    Box::pin(async move {
      for name in relations {
        let Some(rel) = s.relation(name) else { continue };
        let Some(target) = self.target(&rel.target) else { continue };
        let opts = QueryOptions { select: rel.select.clone(), ..Default::default() };
        match rel.kind {
          RelKind::ManyToOne | RelKind::OneToOne => {
            let fks: Vec<Option<String>> = rows.iter().map(|row| row.get(rel.fk_column()).filter(|v| js_truthy(v)).map(value_to_id)).collect();
            let wanted = dedup(fks.iter().flatten().cloned().collect());
            let mut found = self.rows_in(c, &target, "id", wanted.into_iter().map(Value::String).collect(), &opts).await?;
            // As `find_by_id_value(…, depth + 1)` would: the targets' eager relations too.
            if depth + 1 < MAX_EAGER_DEPTH {
              let eager: Vec<String> = target.relations.iter().filter(|r| r.eager).map(|r| r.name.clone()).collect();
              if !eager.is_empty() {
                self.populate(c, &target, &mut found, &eager, depth + 2).await?;
              }
            }
            let by_id = index_by_id(&found);
            for (row, fk) in rows.iter_mut().zip(fks) {
              let Some(fk) = fk else { continue };
              match by_id.get(&fk) {
                Some(obj) => {
                  row.insert(rel.name.clone(), Value::Object((*obj).clone()));
                }
                None if rel.join_column.is_none() => {
                  row.insert(rel.name.clone(), Value::String(fk));
                }
                None => {}
              }
            }
          }
          RelKind::OneToMany => {
            let col = rel.mapped_by.clone().unwrap_or_else(|| Schema::junction_key(&s.name));
            // The children's column naming their parent, read even when `select` leaves it out.
            let key = target.relation(&col).filter(|r| r.kind.has_column()).map_or(col.as_str(), |r| r.fk_column()).to_string();
            let mut opts = opts;
            let key_added = opts.select.as_mut().is_some_and(|sel| {
              let missing = !sel.iter().any(|x| *x == col || *x == key);
              if missing {
                sel.push(col.clone());
              }
              missing
            });
            let parents: Vec<Value> = rows.iter().filter_map(|r| r.get("id").cloned()).collect();
            let mut kids: HashMap<String, Vec<Value>> = HashMap::new();
            for mut kid in self.rows_in(c, &target, &col, parents, &opts).await? {
              let parent = kid.get(&key).map(value_to_id).unwrap_or_default();
              if key_added {
                kid.remove(&key);
              }
              kids.entry(parent).or_default().push(Value::Object(kid));
            }
            for row in rows.iter_mut() {
              let Some(id) = row.get("id").map(value_to_id) else { continue };
              row.insert(rel.name.clone(), Value::Array(kids.remove(&id).unwrap_or_default()));
            }
          }
          RelKind::ManyToMany => {
            let Some(j) = Junction::of(s, rel, &self.config.table_prefix) else { continue };
            let sources = dedup(rows.iter().filter_map(|r| r.get("id").map(value_to_id)).collect());
            // Each source's targets, in the junction table's order.
            let mut linked: HashMap<String, Vec<String>> = HashMap::new();
            for chunk in sources.chunks(IN_BATCH) {
              for pair in self.query_rows(c, &j.pairs(self.flavour, chunk), None).await? {
                let (Some(src), Some(tgt)) = (pair.get(&j.src_key), pair.get(&j.tgt_key)) else { continue };
                linked.entry(value_to_id(src)).or_default().push(value_to_id(tgt));
              }
            }
            let wanted = dedup(linked.values().flatten().cloned().collect());
            let found = self.rows_in(c, &target, "id", wanted.into_iter().map(Value::String).collect(), &opts).await?;
            let by_id = index_by_id(&found);
            for row in rows.iter_mut() {
              let Some(id) = row.get("id").map(value_to_id) else { continue };
              // Missing or soft-deleted targets drop out; a target listed twice shows once.
              let targets = dedup(linked.get(&id).cloned().unwrap_or_default());
              let list = targets.iter().filter_map(|t| by_id.get(t)).map(|r| Value::Object((*r).clone())).collect();
              row.insert(rel.name.clone(), Value::Array(list));
            }
          }
        }
      }
      Ok(())
    })
  }

  /// The live rows of `s` whose `col` is one of `values` (soft-deleted and other-discriminator
  /// rows drop out, as in `findById`), read `IN_BATCH` values at a time.
  async fn rows_in<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, col: &str, values: Vec<Value>, o: &QueryOptions) -> Result<Vec<Map<String, Value>>> {
    let mut rows = Vec::new();
    for chunk in values.chunks(IN_BATCH) {
      let filter = serde_json::json!({ col: { "$in": chunk } });
      rows.extend(self.query_rows(c, &query::select(self.flavour, s, &filter, o)?, Some(s)).await?);
    }
    Ok(rows)
  }

  // ---------------------------------------------------------------- writes

  /// Opens an atomic section for a multi-statement write: a savepoint inside a
  /// transaction, else a transaction. Returns whether one was opened.
  async fn atomic_begin<C: Conn>(&self, c: &mut C, in_tx: bool) -> Result<()> {
    if in_tx {
      self.savepoint(c, ATOMIC_SAVEPOINT).await
    } else {
      self.begin(c, None).await
    }
  }

  async fn atomic_end<C: Conn, T>(&self, c: &mut C, in_tx: bool, r: Result<T>) -> Result<T> {
    let sp = in_tx.then_some(ATOMIC_SAVEPOINT);
    match &r {
      Ok(_) => self.commit(c, sp).await?,
      Err(_) => {
        let _ = self.rollback(c, sp).await;
        if let Some(sp) = sp {
          let _ = self.commit(c, Some(sp)).await;
        }
      }
    }
    r
  }

  /// `create` (§7.4). The row and its junction rows are written atomically. With `template`,
  /// the row (echoed from the values bound, or read back by `RETURNING`) is answered as a
  /// template of `given`.
  async fn create<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, given: &Fields, template: bool) -> Result<String> {
    // The discriminator value overrides the caller's: only then is the data copied.
    let with_discriminator;
    let data = match (&s.discriminator, &s.discriminator_value) {
      (Some(d), Some(v)) => {
        let mut m = given.clone();
        m.insert(d.clone(), v.clone());
        with_discriminator = m;
        &with_discriminator
      }
      _ => given,
    };
    self.ensure_columns(c, s, data.iter()).await;
    let id = match data.get("id") {
      Some(v) if js_truthy(v) => value_to_id(v),
      _ => uuid::Uuid::new_v4().to_string(),
    };
    let links: Vec<(Junction, Vec<String>)> = s
      .relations
      .iter()
      .filter_map(|r| {
        let v = data.get(&r.name).filter(|v| !v.is_null())?;
        let j = Junction::of(s, r, &self.config.table_prefix)?;
        Some((j, dedup(id_list(v))))
      })
      .filter(|(_, ids)| !ids.is_empty())
      .collect();
    let mut returning = c.returning().insert && Self::reads_back_plainly(s, data.contains_key("deletedAt"));
    let Insert { stmt: mut insert, columns, given: from } = self.inserts.insert(self.flavour, s, &id, data)?;
    let layout = if returning { self.table_layout(c, s).await } else { None };
    // `RETURNING` shows the row before AFTER triggers ran: read it back instead.
    returning &= !layout.as_ref().is_some_and(|l| l.has_triggers);
    let echo = layout.filter(|_| returning).and_then(|l| l.echo_plan(&columns, &insert.params).map(|p| (l, p)));
    if returning && echo.is_none() {
      insert.sql.push_str(" RETURNING *");
    }
    let echo = echo.as_ref().map(|(l, p)| Echo { layout: l, plan: p, from: &from[..] });
    let template = template.then_some(given);
    let row = if links.is_empty() {
      self.write_created(c, &insert, s, returning, echo.as_ref(), template).await?
    } else {
      let in_tx = c.in_transaction();
      self.atomic_begin(c, in_tx).await?;
      let r = async {
        let row = self.write_created(c, &insert, s, returning, echo.as_ref(), template).await?;
        for (j, ids) in &links {
          for t in ids {
            self.exec(c, &j.insert(self.flavour, &id, t)).await.map_err(|e| e.with_field(j.relation))?;
          }
        }
        Ok(row)
      }
      .await;
      self.atomic_end(c, in_tx, r).await?
    };
    match row {
      Some(json) => Ok(json),
      None => self.find_by_id_json(c, s, &id, &QueryOptions::default()).await,
    }
  }

  /// Forgets the columns (auto-ALTER) and layouts (`echo`) learnt of tables: after DDL, a
  /// rollback, or raw SQL that may be either.
  fn forget_learnt_tables(&self) {
    if let Ok(mut m) = self.columns.lock() {
      m.clear();
    }
    if let Ok(mut l) = self.layouts.lock() {
      l.clear();
    }
  }

  fn forget_learnt_tables_unless_dml(&self, sql: &str) {
    if !is_plain_dml(sql) {
      self.forget_learnt_tables();
    }
  }

  /// The table's layout where the connection tells schema changes apart (SQLite): the one
  /// known, or read now. `write_created` checks after the INSERT that it still holds.
  async fn table_layout<C: Conn>(&self, c: &mut C, s: &Schema) -> Option<Arc<TableLayout>> {
    if let Some(l) = self.layouts.lock().ok()?.get(&s.table) {
      return Some(l.clone());
    }
    let version = c.schema_version()?;
    let table = || vec![Param::Text(s.table.clone())];
    let rows = self.query_rows(c, &Stmt { sql: echo::LAYOUT_SQL.into(), params: table() }, None).await.ok()?;
    let triggers = self.query_column(c, &Stmt { sql: echo::TRIGGERS_SQL.into(), params: table() }, None).await.ok()?;
    let layout = Arc::new(TableLayout::from_rows(version, &rows, count_value(triggers.first()) > 0));
    self.layouts.lock().ok()?.insert(s.table.clone(), layout.clone());
    Some(layout)
  }

  /// Whether the row a write hands back (`RETURNING *`) is what `findById` would show:
  /// not when eager relations must be populated, nor when the data sets the soft-delete
  /// marker (the row may then be hidden).
  fn reads_back_plainly(s: &Schema, sets_deleted_at: bool) -> bool {
    !(Self::has_eager(s) || (s.soft_delete && sets_deleted_at))
  }

  /// Runs `create`'s INSERT: with `echo`, the row is the values bound (see `echo`) if the
  /// schema is still the layout's after the write, else `None` (the caller reads it back);
  /// otherwise as `write_row`. With `template` (the caller's data), the row is answered as
  /// a template of it where it can be (see `TemplateRow`).
  async fn write_created<C: Conn>(&self, c: &mut C, st: &Stmt, s: &Arc<Schema>, returning: bool, echo: Option<&Echo<'_>>, template: Option<&Fields>) -> Result<Option<String>> {
    let Some(&Echo { layout, plan, from }) = echo else {
      return match template.filter(|_| returning) {
        Some(given) => self.templated_row(c, st, s, given).await,
        None => self.write_row(c, st, s, returning).await,
      };
    };
    let written = self.exec(c, st).await?;
    if written != 1 || c.schema_version_after_write() != Some(layout.schema_version) {
      if let Ok(mut l) = self.layouts.lock() {
        l.remove(&s.table);
      }
      return Ok(None);
    }
    if let Some(given) = template {
      // Each column's value as the caller gave it, when it was bound from one.
      let by_column: Vec<Option<(u32, &Value)>> = plan
        .iter()
        .map(|p| {
          let i = from.get((*p)?).copied().flatten()?;
          ((i as usize) < given.len()).then(|| (i, given.at(i as usize).1))
        })
        .collect();
      let mut sink = TemplateRow::new(&self.plans, s, by_column);
      layout.feed(plan, &st.params, &mut sink);
      if let Some(answer) = sink.finish() {
        return Ok(Some(answer));
      }
    }
    let mut sink = JsonRows::cached(&self.plans, Some(s), true);
    layout.feed(plan, &st.params, &mut sink);
    Ok(Some(sink.finish()))
  }

  /// Runs a write whose `RETURNING *` row is answered as a template of the caller's data
  /// (see `TemplateRow`); `None` when it cannot be (the caller reads the row back).
  async fn templated_row<C: Conn>(&self, c: &mut C, st: &Stmt, s: &Arc<Schema>, given: &Fields) -> Result<Option<String>> {
    self.log(st);
    let mut sink = TemplateRow::by_key(&self.plans, s, given);
    c.query(st, &mut sink).await?;
    Ok(sink.finish())
  }

  /// Runs a write; with `returning`, its `RETURNING *` row as JSON (`null` when no row
  /// matched).
  async fn write_row<C: Conn>(&self, c: &mut C, st: &Stmt, s: &Arc<Schema>, returning: bool) -> Result<Option<String>> {
    if returning {
      Ok(Some(self.query_json(c, st, Some(s), true).await?))
    } else {
      self.exec(c, st).await?;
      Ok(None)
    }
  }

  /// `update` (§7.5): null when the row is missing or soft-deleted.
  async fn update<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, id: &str, data: &Value) -> Result<String> {
    let Value::Object(data) = data else { return Err(Error::arg("update: data must be an object").with_field("data")) };
    // With RETURNING, one statement checks the row is alive, writes it and reads it back;
    // otherwise the reference's three steps (exists, UPDATE, findById).
    let how = if c.returning().update && Self::reads_back_plainly(s, data.contains_key("deletedAt")) { ById::LiveReturning } else { ById::Plain };
    if how == ById::Plain && !self.exists(c, s, id).await? {
      return Ok("null".into());
    }
    self.ensure_columns(c, s, data.iter()).await;
    let st = query::update_by_id(self.flavour, s, id, data, how)?;
    if st.is_none() && how == ById::LiveReturning && !self.exists(c, s, id).await? {
      return Ok("null".into()); // nothing to SET: only the liveness check remains
    }
    let returning = how == ById::LiveReturning && st.is_some();
    let diffs: Vec<(Junction, Vec<String>)> =
      s.relations.iter().filter_map(|r| Some((Junction::of(s, r, &self.config.table_prefix)?, dedup(id_list(data.get(&r.name)?))))).collect();
    let row = if diffs.is_empty() {
      match &st {
        Some(st) => self.write_row(c, st, s, returning).await?,
        None => None,
      }
    } else {
      let in_tx = c.in_transaction();
      self.atomic_begin(c, in_tx).await?;
      let r = async {
        let row = match &st {
          Some(st) => self.write_row(c, st, s, returning).await?,
          None => None,
        };
        if row.as_deref() == Some("null") {
          return Ok(row); // the row is gone: no junction writes
        }
        for (j, wanted) in &diffs {
          let current: Vec<String> = self.query_column(c, &j.targets(self.flavour, id), None).await?.iter().map(value_to_id).collect();
          for t in wanted.iter().filter(|t| !current.contains(t)) {
            self.exec(c, &j.insert(self.flavour, id, t)).await.map_err(|e| e.with_field(j.relation))?;
          }
          for t in current.iter().filter(|t| !wanted.contains(t)) {
            self.exec(c, &j.delete_pair(self.flavour, id, t)).await?;
          }
        }
        Ok(row)
      }
      .await;
      self.atomic_end(c, in_tx, r).await?
    };
    match row {
      Some(json) => Ok(json),
      None => self.find_by_id_json(c, s, id, &QueryOptions::default()).await,
    }
  }

  fn junctions<'s>(&self, s: &'s Schema) -> Vec<Junction<'s>> {
    s.relations.iter().filter_map(|r| Junction::of(s, r, &self.config.table_prefix)).collect()
  }

  /// `delete` (§7.7).
  async fn delete<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, id: &str) -> Result<bool> {
    let f = self.flavour;
    if s.soft_delete {
      return Ok(self.exec(c, &query::soft_delete_by_id(f, s, id)?).await? > 0);
    }
    let js = self.junctions(s);
    let del = query::delete_where(f, s, &query::id_filter(id))?;
    if js.is_empty() {
      return Ok(self.exec(c, &del).await? > 0);
    }
    let in_tx = c.in_transaction();
    self.atomic_begin(c, in_tx).await?;
    let r = async {
      for j in &js {
        self.exec(c, &j.delete_source(f, id)).await?;
      }
      self.exec(c, &del).await
    }
    .await;
    Ok(self.atomic_end(c, in_tx, r).await? > 0)
  }

  /// `deleteMany` (§7.8), junction cleanup on the prefixed tables (§12.2 #6 fix).
  async fn delete_many<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, filter: &Value) -> Result<u64> {
    let f = self.flavour;
    if s.soft_delete {
      return self.exec(c, &query::soft_delete_many(f, s, filter)?).await;
    }
    let js = self.junctions(s);
    let del = query::delete_where(f, s, filter)?;
    if js.is_empty() {
      return self.exec(c, &del).await;
    }
    let in_tx = c.in_transaction();
    self.atomic_begin(c, in_tx).await?;
    let r = async {
      let ids = self.query_column(c, &query::select_ids(f, s, filter)?, None).await?;
      for id in ids.iter().map(value_to_id) {
        for j in &js {
          self.exec(c, &j.delete_source(f, &id)).await?;
        }
      }
      self.exec(c, &del).await
    }
    .await;
    self.atomic_end(c, in_tx, r).await
  }

  /// `addToSet` / `pull` (§7.15).
  async fn array_op<C: Conn>(&self, c: &mut C, s: &Arc<Schema>, id: Option<String>, field: &str, value: Value, add: bool) -> Result<String> {
    let f = self.flavour;
    let Some(id) = id else { return Ok("null".into()) };
    let Some(row) = self.query_rows(c, &query::select_by_id(f, s, &id, &QueryOptions::default())?, Some(s)).await?.pop() else {
      return Ok("null".into());
    };
    if let Some(j) = s.relation(field).and_then(|r| Junction::of(s, r, &self.config.table_prefix)) {
      let current: Vec<String> = self.query_column(c, &j.targets(f, &id), None).await?.iter().map(value_to_id).collect();
      let changes: Vec<Stmt> = dedup(id_list(&value))
        .into_iter()
        .filter(|t| current.contains(t) != add)
        .map(|t| if add { j.insert(f, &id, &t) } else { j.delete_pair(f, &id, &t) })
        .collect();
      // Several ids are written all or none.
      if changes.len() > 1 {
        let in_tx = c.in_transaction();
        self.atomic_begin(c, in_tx).await?;
        let r = async {
          for st in &changes {
            self.exec(c, st).await.map_err(|e| e.with_field(field))?;
          }
          Ok(())
        }
        .await;
        self.atomic_end(c, in_tx, r).await?;
      } else if let Some(st) = changes.first() {
        self.exec(c, st).await.map_err(|e| e.with_field(field))?;
      }
    } else {
      let mut arr = match row.get(field) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
      };
      let key = json_text(&value);
      let before = arr.len();
      if add {
        if !arr.iter().any(|v| json_text(v) == key) {
          arr.push(value);
        }
      } else {
        arr.retain(|v| json_text(v) != key);
      }
      if arr.len() != before {
        self.exec(c, &query::set_array(f, s, &id, field, &arr)?).await?;
      }
    }
    self.find_by_id_json(c, s, &id, &QueryOptions::default()).await
  }

  /// The auto-ALTER on write (§3 `ensureColumnsForData`): adds a column for each key of
  /// `data` the table lacks, on the prefixed table (§12.2 #6 fix). Failures are logged.
  async fn ensure_columns<'d, C: Conn>(&self, c: &mut C, s: &Schema, data: impl Iterator<Item = (&'d String, &'d Value)> + Clone + Send) {
    if self.config.schema_strategy == SchemaStrategy::None {
      return;
    }
    let known = match self.columns.lock() {
      Ok(m) => match m.get(&s.table) {
        Some(live) if live.handled(&s.name, data.clone()) => return,
        Some(live) => Some(live.cols.clone()),
        None => None,
      },
      Err(_) => None,
    };
    let mut cols = match known {
      Some(k) => k,
      None => match c.table_columns(&s.table).await {
        Ok(list) => list.into_iter().collect::<FastSet<String>>(),
        Err(_) => return,
      },
    };
    if cols.is_empty() {
      return;
    }
    let mut all_added = true;
    let in_tx = c.in_transaction();
    for (k, v) in data.clone() {
      if k == "id" || k == "_id" {
        continue;
      }
      let (col, decl) = match s.relation(k) {
        Some(r) if r.kind.has_column() => (r.fk_column(), self.flavour.id_type()),
        Some(_) => continue,
        None => {
          let ty = s.field(k).map(|f| f.ty).unwrap_or_else(|| if s.is_date_column(k) { FieldType::Date } else { FieldType::infer(v) });
          (k.as_str(), self.flavour.sql_type(ty))
        }
      };
      if cols.iter().any(|c| c.eq_ignore_ascii_case(col)) {
        continue;
      }
      let sql = ddl::add_column(self.flavour, &s.table, col, decl);
      if self.batch_logged(c, &sql, &format!("auto-ALTER {}.{col}", s.table)).await {
        cols.insert(col.to_string());
        if in_tx {
          *c.ddl_in_tx() = true;
        }
      } else {
        all_added = false;
      }
    }
    // After an ALTER in the open transaction, the columns read may still be rolled back:
    // remember nothing until it ends. Nothing either about keys whose column could not be
    // added. (Other transactions' uncommitted ALTERs are invisible here: PostgreSQL's and
    // SQLite's DDL is transactional, a MySQL ALTER commits at once.)
    if (in_tx && *c.ddl_in_tx()) || !all_added {
      return;
    }
    if let Ok(mut m) = self.columns.lock() {
      let live = m.entry(s.table.clone()).or_default();
      live.cols = cols;
      let keys = data.map(|(k, _)| k).filter(|k| *k != "id" && *k != "_id").cloned();
      match live.handled.iter_mut().find(|(e, _)| *e == s.name) {
        Some((_, set)) => set.extend(keys),
        None => live.handled.push((s.name.clone(), keys.collect())),
      }
    }
  }

  // ---------------------------------------------------------------- schema management

  /// `initSchema(schemas)` under the configured strategy (§3). The list replaces the
  /// previous one for relation lookups.
  pub async fn init_schema<C: Conn>(&self, c: &mut C, handles: &[u32]) -> Result<()> {
    let schemas: Vec<Arc<Schema>> = handles.iter().map(|h| self.schema(*h)).collect::<Result<_>>()?;
    self.registry.write().map_err(|_| lock_poisoned())?.active = schemas.clone();
    self.forget_learnt_tables();
    let strategy = self.config.schema_strategy;
    if strategy == SchemaStrategy::None || schemas.is_empty() {
      return Ok(());
    }
    let f = self.flavour;
    let tables: HashSet<String> = self.list_tables(c).await?.into_iter().collect();
    if strategy == SchemaStrategy::Validate {
      for s in &schemas {
        if !tables.contains(&s.table) {
          return Err(Error::new(
            Code::Schema,
            format!("Schema validation failed: table \"{}\" does not exist (entity: {}). Set schemaStrategy to \"update\" or \"create\".", s.collection, s.name),
          )
          .in_entity(&s.name));
        }
      }
      return Ok(());
    }
    let fresh = matches!(strategy, SchemaStrategy::Create | SchemaStrategy::CreateDrop);
    if fresh {
      self.drop_schema(c, &schemas).await?;
    }
    let all: Vec<&Schema> = schemas.iter().map(|s| s.as_ref()).collect();
    let prefix = &self.config.table_prefix;
    for s in &schemas {
      let existed = !fresh && tables.contains(&s.table);
      self.batch(c, &ddl::create_table(f, s, &all, prefix)).await.map_err(|e| e.in_entity(&s.name))?;
      if existed {
        let live = c.table_columns(&s.table).await?;
        for (col, sql) in ddl::missing_columns(f, s, &live) {
          self.batch_logged(c, &sql, &format!("add column {}.{col}", s.table)).await;
        }
      }
      for idx in ddl::create_indexes(f, s) {
        match idx {
          Ok(sql) => {
            self.batch_logged(c, &sql, &format!("index on {}", s.table)).await;
          }
          Err(why) => tracing::warn!(target: "mosta::ddl", "DDL_INDEX_SKIP {why}"),
        }
      }
    }
    for s in &schemas {
      for sql in ddl::create_junctions(f, s, &all, prefix) {
        self.batch(c, &sql).await.map_err(|e| e.in_entity(&s.name))?;
      }
    }
    let mut existing = self.foreign_keys(c).await.unwrap_or_default();
    for s in &schemas {
      for fk in ddl::foreign_keys(f, s, &all, prefix) {
        let key = self.fk_key(&fk.table, &fk.name);
        if !existing.contains(&key) && self.batch_logged(c, &fk.sql, &format!("foreign key {}", fk.name)).await {
          existing.insert(key);
        }
      }
    }
    Ok(())
  }

  /// The foreign keys that exist, as `fk_key`s, so `update` does not re-issue them.
  async fn foreign_keys<C: Conn>(&self, c: &mut C) -> Result<HashSet<String>> {
    let Some(sql) = self.flavour.foreign_keys_sql() else { return Ok(HashSet::new()) };
    let rows = self.query_rows(c, &Stmt::new(sql), None).await?;
    Ok(rows.iter().map(|r| self.fk_key(&r.get("t").map(value_to_id).unwrap_or_default(), &r.get("n").map(value_to_id).unwrap_or_default())).collect())
  }

  /// A constraint's identity: its name where names are unique per database (MySQL),
  /// its table and name where they are unique per table (PostgreSQL).
  fn fk_key(&self, table: &str, name: &str) -> String {
    if self.flavour.constraint_names_per_table() {
      format!("{table}\u{0}{name}")
    } else {
      name.to_string()
    }
  }

  pub async fn list_tables<C: Conn>(&self, c: &mut C) -> Result<Vec<String>> {
    Ok(self.query_column(c, &Stmt::new(self.flavour.list_tables_sql()), None).await?.iter().map(value_to_id).collect())
  }

  /// Runs `body` with foreign-key checks off where the engine needs that to drop parents.
  async fn without_fk_checks<C: Conn>(&self, c: &mut C, tables: &[String]) -> Vec<std::result::Result<String, Error>> {
    if let Some(off) = self.flavour.foreign_key_checks(false) {
      let _ = self.batch(c, off).await;
    }
    let mut out = Vec::new();
    for t in tables {
      out.push(self.batch(c, &self.flavour.drop_table(t)).await.map(|_| t.clone()));
    }
    if let Some(on) = self.flavour.foreign_key_checks(true) {
      let _ = self.batch(c, on).await;
    }
    out
  }

  /// `dropSchema(schemas)`: junctions, then entity tables; returns the logical names
  /// dropped. Per-table failures are logged.
  pub async fn drop_schema<C: Conn>(&self, c: &mut C, schemas: &[Arc<Schema>]) -> Result<Vec<String>> {
    let prefix = &self.config.table_prefix;
    let logical = junctions_then_entities(schemas);
    let physical: Vec<String> = logical.iter().map(|t| format!("{prefix}{t}")).collect();
    let mut dropped = Vec::new();
    for (name, r) in logical.iter().zip(self.without_fk_checks(c, &physical).await) {
      match r {
        Ok(_) => dropped.push(name.clone()),
        Err(e) => tracing::warn!(target: "mosta::ddl", "drop {name} failed: {}", e.message),
      }
    }
    self.forget_learnt_tables();
    Ok(dropped)
  }

  pub async fn drop_schema_handles<C: Conn>(&self, c: &mut C, handles: &[u32]) -> Result<Vec<String>> {
    let schemas: Vec<Arc<Schema>> = handles.iter().map(|h| self.schema(*h)).collect::<Result<_>>()?;
    self.drop_schema(c, &schemas).await
  }

  /// `dropTable(name)` on the prefixed table (the reference forgets the prefix on SQLite).
  pub async fn drop_table<C: Conn>(&self, c: &mut C, name: &str) -> Result<()> {
    let t = format!("{}{name}", self.config.table_prefix);
    let r = self.without_fk_checks(c, &[t]).await;
    self.forget_learnt_tables();
    r.into_iter().next().unwrap_or(Ok(String::new())).map(|_| ())
  }

  /// `dropAllTables()`: every table of the database, children or not.
  pub async fn drop_all_tables<C: Conn>(&self, c: &mut C) -> Result<()> {
    let tables = self.list_tables(c).await?;
    let r = self.without_fk_checks(c, &tables).await;
    self.forget_learnt_tables();
    r.into_iter().find_map(|r| r.err()).map_or(Ok(()), Err)
  }

  /// `truncateTable(name)`: `DELETE FROM` the prefixed table.
  pub async fn truncate_table<C: Conn>(&self, c: &mut C, name: &str) -> Result<()> {
    let st = Stmt::new(format!("DELETE FROM {}", self.flavour.quote(&format!("{}{name}", self.config.table_prefix))));
    self.exec(c, &st).await.map(|_| ())
  }

  /// `truncateAll(schemas)`: junctions first, then entities; returns the names emptied.
  /// `handles: None` (the no-argument call) means the last `initSchema` list.
  pub async fn truncate_all<C: Conn>(&self, c: &mut C, handles: Option<&[u32]>) -> Result<Vec<String>> {
    let schemas: Vec<Arc<Schema>> = match handles {
      None => self.active(),
      Some(h) => h.iter().map(|h| self.schema(*h)).collect::<Result<_>>()?,
    };
    let mut done = Vec::new();
    for n in junctions_then_entities(&schemas) {
      match self.truncate_table(c, &n).await {
        Ok(()) => done.push(n),
        Err(e) => tracing::warn!(target: "mosta::ddl", "truncate {n} failed: {}", e.message),
      }
    }
    Ok(done)
  }

  /// What `disconnect()` does before closing under `create-drop` (§9).
  pub async fn on_disconnect<C: Conn>(&self, c: &mut C) -> Result<()> {
    if self.config.schema_strategy != SchemaStrategy::CreateDrop {
      return Ok(());
    }
    let active = self.active();
    if active.is_empty() {
      self.drop_all_tables(c).await
    } else {
      self.drop_schema(c, &active).await.map(|_| ())
    }
  }

  // ---------------------------------------------------------------- raw SQL and transactions

  /// `executeQuery(sql, params)`: rows as the driver gives them.
  pub async fn execute_query<C: Conn>(&self, c: &mut C, sql: &str, params: &str) -> Result<String> {
    let st = Stmt { sql: sql.to_string(), params: raw_params(params)? };
    self.forget_learnt_tables_unless_dml(sql);
    self.query_json(c, &st, None, false).await
  }

  /// `executeRun(sql, params)`: `{ changes }`.
  pub async fn execute_run<C: Conn>(&self, c: &mut C, sql: &str, params: &str) -> Result<String> {
    let st = Stmt { sql: sql.to_string(), params: raw_params(params)? };
    self.forget_learnt_tables_unless_dml(sql);
    Ok(format!("{{\"changes\":{}}}", self.exec(c, &st).await?))
  }

  pub async fn test_connection<C: Conn>(&self, c: &mut C) -> bool {
    self.query_column(c, &Stmt::new("SELECT 1"), None).await.is_ok()
  }

  pub async fn begin<C: Conn>(&self, c: &mut C, isolation: Option<Isolation>) -> Result<()> {
    *c.ddl_in_tx() = false;
    for sql in self.flavour.begin(isolation) {
      self.batch(c, &sql).await?;
    }
    Ok(())
  }

  pub async fn savepoint<C: Conn>(&self, c: &mut C, name: &str) -> Result<()> {
    self.batch(c, &format!("SAVEPOINT {}", self.flavour.quote(name))).await
  }

  pub async fn commit<C: Conn>(&self, c: &mut C, savepoint: Option<&str>) -> Result<()> {
    match savepoint {
      None => self.batch(c, "COMMIT").await,
      Some(sp) => self.batch(c, &format!("RELEASE SAVEPOINT {}", self.flavour.quote(sp))).await,
    }
  }

  pub async fn rollback<C: Conn>(&self, c: &mut C, savepoint: Option<&str>) -> Result<()> {
    // What was learnt of the tables inside the transaction may be undone with it (and a
    // rolled-back ALTER takes `schema_version` back to a value a layout was read at).
    self.forget_learnt_tables();
    match savepoint {
      None => self.batch(c, "ROLLBACK").await,
      Some(sp) => self.batch(c, &format!("ROLLBACK TO SAVEPOINT {}", self.flavour.quote(sp))).await,
    }
  }
}

/// The (unprefixed) tables of `schemas`, junction tables first: the order that empties or
/// drops children before the tables they reference.
fn junctions_then_entities(schemas: &[Arc<Schema>]) -> Vec<String> {
  let mut names: Vec<String> = Vec::new();
  for r in schemas.iter().flat_map(|s| s.relations.iter()).filter(|r| r.is_junction()) {
    let t = r.through.clone().unwrap_or_default();
    if !names.contains(&t) {
      names.push(t);
    }
  }
  names.extend(schemas.iter().map(|s| s.collection.clone()));
  names
}

fn dedup(v: Vec<String>) -> Vec<String> {
  let mut seen = HashSet::new();
  v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

/// Rows by their id as text.
fn index_by_id(rows: &[Map<String, Value>]) -> HashMap<String, &Map<String, Value>> {
  rows.iter().map(|r| (r.get("id").map(value_to_id).unwrap_or_default(), r)).collect()
}

/// An id-like value as text (ids are TEXT/VARCHAR, FK values may be numbers).
fn value_to_id(v: &Value) -> String {
  match v {
    Value::String(s) => s.clone(),
    Value::Null => String::new(),
    other => other.to_string(),
  }
}

/// COUNT as a number whatever the driver returned (PostgreSQL int8 text, MariaDB BigInt).
fn count_value(v: Option<&Value>) -> u64 {
  match v {
    Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)).unwrap_or(0),
    Some(Value::String(s)) => s.parse().unwrap_or(0),
    _ => 0,
  }
}

/// The parameters of `executeQuery`/`executeRun`: JSON scalars as they are, a `Date` (sent
/// by the JS layer as `{"$date": iso}`) as the backend stores dates, other values as JSON text.
fn raw_params(json: &str) -> Result<Vec<Param>> {
  let v: Value = if json.is_empty() { Value::Null } else { serde_json::from_str(json)? };
  let list = match v {
    Value::Null => return Ok(Vec::new()),
    Value::Array(a) => a,
    other => return Err(Error::arg(format!("params must be an array, got {other}")).with_field("params")),
  };
  list
    .into_iter()
    .enumerate()
    .map(|(i, v)| {
      Ok(match v {
        Value::Null => Param::Null,
        Value::Bool(b) => Param::Bool(b),
        Value::Number(n) => crate::sql::encode::number_param(&n),
        Value::String(s) => Param::Text(s),
        Value::Object(o) if o.len() == 1 && o.contains_key("$date") => {
          let t = o["$date"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
          let t = t.ok_or_else(|| Error::arg(format!("params[{i}]: {} is not an ISO date", o["$date"])).with_field(format!("params[{i}]")))?;
          Param::Date(t.with_timezone(&chrono::Utc))
        }
        other => Param::Text(json_text(&other)),
      })
    })
    .collect()
}
