//! Reading rows: drivers push cells into a `RowSink`; the sink decodes each column the way
//! the reference's `deserializeRow` does (orm-compat.md §4.2) and either writes JSON text
//! straight away (the rows cross into JavaScript once, as one string) or builds values the
//! engine works on (relations, array operators).

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::chunks::{self, Sender, CHUNK_BYTES};
use crate::fields::Fields;
use crate::per_schema::PerSchema;
use crate::schema::{FieldType, RelKind, Schema};

/// One column value as a driver hands it over.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
  Null,
  Int(i64),
  Float(f64),
  Text(&'a str),
  /// A date-time, as milliseconds since the epoch (PostgreSQL timestamps, MySQL DATETIME and
  /// TIMESTAMP). JSON rows carry it as that number and name its column (`JsonRows::finish`),
  /// so that JavaScript builds the `Date` without parsing text; values for the engine's own
  /// use are `toISOString()` text.
  Date(i64),
  Bool(bool),
  /// Text that the database guarantees is JSON (PostgreSQL json/jsonb, MySQL JSON).
  Json(&'a str),
  Bytes(&'a [u8]),
}

pub trait RowSink: Send {
  /// The result's column names, once, before the first cell.
  fn columns(&mut self, names: &[&str]);
  /// Each column of a row, in column order, then `end_row`.
  fn cell(&mut self, col: usize, cell: Cell<'_>);
  fn end_row(&mut self);
}

/// How one column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
  Raw,
  Boolean,
  Json,
  Array,
  /// A legacy column named after a to-many relation: always `[]`.
  ToMany,
}

/// What a decoded value is, before it becomes JSON text or a `Value`.
enum Decoded<'a> {
  Null,
  Bool(bool),
  Int(i64),
  Float(f64),
  Str(&'a str),
  RawJson(&'a str),
  EmptyArray,
  DateMs(i64),
}

fn is_json(s: &str) -> bool {
  serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

fn decode<'a>(kind: Kind, cell: &Cell<'a>) -> Decoded<'a> {
  match (kind, *cell) {
    (Kind::ToMany, _) => Decoded::EmptyArray,
    (_, Cell::Null) => Decoded::Null,
    (Kind::Boolean, c) => Decoded::Bool(match c {
      Cell::Int(i) => i == 1,
      Cell::Float(f) => f == 1.0,
      Cell::Bool(b) => b,
      Cell::Text(t) => matches!(t, "1" | "t" | "true"),
      _ => false,
    }),
    (Kind::Json, Cell::Text(t)) => {
      if is_json(t) {
        Decoded::RawJson(t)
      } else {
        Decoded::Str(t) // unparseable JSON comes back as the stored text
      }
    }
    (Kind::Array, Cell::Text(t)) => {
      if is_json(t) {
        Decoded::RawJson(t)
      } else {
        Decoded::EmptyArray // unparseable arrays come back empty
      }
    }
    (_, Cell::Int(i)) => Decoded::Int(i),
    (_, Cell::Float(f)) => Decoded::Float(f),
    (_, Cell::Text(t)) => Decoded::Str(t),
    (_, Cell::Date(ms)) => Decoded::DateMs(ms),
    (_, Cell::Bool(b)) => Decoded::Bool(b),
    (_, Cell::Json(j)) => Decoded::RawJson(j),
    (_, Cell::Bytes(b)) => match std::str::from_utf8(b) {
      Ok(s) => Decoded::Str(s),
      Err(_) => Decoded::Null,
    },
  }
}

/// The per-query decoding plan: column names, kinds, and to-many keys to append.
#[derive(Default)]
struct Plan {
  names: Vec<String>,
  /// Each column's object key as JSON text (`"name":`), written once per plan.
  keys: Vec<String>,
  kinds: Vec<Kind>,
  /// Many-to-many relation names not among the columns: appended as `[]`.
  trailing_empty: Vec<String>,
  /// The number naming this plan's keys in a shaped row (see `Shapes`).
  shape: Option<u32>,
}

impl Plan {
  fn build(schema: Option<&Schema>, names: &[&str]) -> Self {
    let keys = names
      .iter()
      .map(|n| {
        let mut k = String::with_capacity(n.len() + 3);
        write_json_str(&mut k, n);
        k.push(':');
        k
      })
      .collect();
    let mut p = Plan { names: names.iter().map(|s| s.to_string()).collect(), keys, ..Default::default() };
    let Some(s) = schema else {
      p.kinds = vec![Kind::Raw; names.len()];
      return p;
    };
    p.kinds = names
      .iter()
      .map(|n| {
        if *n == "id" {
          return Kind::Raw;
        }
        if let Some(f) = s.field(n) {
          if s.relation_by_fk(n).is_none() {
            return match f.ty {
              FieldType::Boolean => Kind::Boolean,
              FieldType::Json => Kind::Json,
              FieldType::Array => Kind::Array,
              _ => Kind::Raw,
            };
          }
        }
        match s.relation(n) {
          Some(r) if !r.kind.has_column() => Kind::ToMany,
          _ => Kind::Raw,
        }
      })
      .collect();
    p.trailing_empty = s.relations.iter().filter(|r| r.kind == RelKind::ManyToMany && !names.contains(&r.name.as_str())).map(|r| r.name.clone()).collect();
    p
  }

  fn is_for(&self, names: &[&str]) -> bool {
    self.names.len() == names.len() && self.names.iter().zip(names).all(|(a, b)| a == b)
  }

  /// The keys of a row, in the order they are written.
  fn row_keys(&self) -> Arc<[String]> {
    self.names.iter().chain(&self.trailing_empty).cloned().collect()
  }
}

/// Keys numbered in order of first sight, at most `MAX` of them. A number is never reused
/// while the dialect lives, so JavaScript may keep what it learnt of one.
struct Numbered<K, const MAX: usize> {
  ids: foldhash::HashMap<K, u32>,
  list: Vec<K>,
}

impl<K, const MAX: usize> Default for Numbered<K, MAX> {
  fn default() -> Self {
    Numbered { ids: Default::default(), list: Vec::new() }
  }
}

impl<K: Clone + Eq + std::hash::Hash, const MAX: usize> Numbered<K, MAX> {
  /// `key`'s number; `None` once `MAX` keys are numbered and `key` is not one of them.
  fn number(&mut self, key: K) -> Option<u32> {
    if let Some(id) = self.ids.get(&key) {
      return Some(*id);
    }
    if self.list.len() >= MAX {
      return None;
    }
    let id = self.list.len() as u32;
    self.list.push(key.clone());
    self.ids.insert(key, id);
    Some(id)
  }

  fn get(&self, id: u32) -> Option<&K> {
    self.list.get(id as usize)
  }
}

/// Key lists of row answers read through a schema, numbered. Each row (of findById, create,
/// update, and of find's lists) goes to JavaScript as a *shaped row*, `[shape, value, …]`:
/// a JSON array parses in about half the time of the same object, whose keys and short
/// values V8 must look up one by one, and JavaScript builds the object from the values with
/// a constructor made once per shape (it asks for the keys of a number it has not seen).
/// Beyond `SHAPES_MAX` distinct key lists (select lists can vary without bound), rows are
/// written as objects.
type Shapes = Numbered<Arc<[String]>, SHAPES_MAX>;

const SHAPES_MAX: usize = 4096;

/// Where one value of a templated row comes from (see `TemplateRow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
  /// The caller's value at this index, unchanged.
  Given(u32),
  /// The answer's next value.
  Made,
  /// The answer's next value, a date-time as epoch milliseconds (PostgreSQL, MySQL).
  MadeDate,
  /// `[]` (a to-many relation with no column).
  Empty,
}

/// The keys of a templated row, and where the value of each comes from.
pub struct Template {
  pub keys: Arc<[String]>,
  pub slots: Arc<[Slot]>,
}

/// Templates of created rows: a row shape and where each of its values comes from. Calls
/// with the same keys and the same kinds of values share one. Beyond `TEMPLATES_MAX`,
/// created rows are answered whole.
type Templates = Numbered<(u32, Arc<[Slot]>), TEMPLATES_MAX>;

const TEMPLATES_MAX: usize = 1024;

/// Plans already built, per schema and column list: a query on a table returns the same
/// columns call after call, so its plan is built once.
#[derive(Default)]
pub struct PlanCache {
  plans: PerSchema<Plan>,
  shapes: Mutex<Shapes>,
  templates: Mutex<Templates>,
}

impl PlanCache {
  fn plan(&self, schema: Option<&Arc<Schema>>, names: &[&str]) -> Arc<Plan> {
    let Some(schema) = schema else { return Arc::new(Plan::build(None, names)) };
    let build = || {
      let mut p = Plan::build(Some(schema), names);
      p.shape = self.shapes.lock().ok().and_then(|mut s| s.number(p.row_keys()));
      p
    };
    self.plans.get_or_build(schema, |p| p.is_for(names), build, |_| true)
  }

  /// The keys of a shaped row's `shape`.
  pub fn shape_keys(&self, shape: u32) -> Option<Arc<[String]>> {
    self.shapes.lock().ok()?.get(shape).cloned()
  }

  /// A templated row's keys and where each value comes from (see `TemplateRow`).
  pub fn template(&self, template: u32) -> Option<Template> {
    let (shape, slots) = self.templates.lock().ok()?.get(template).cloned()?;
    Some(Template { keys: self.shape_keys(shape)?, slots })
  }
}

/// Where a sink gets its plan: built for this query, or from a cache.
enum PlanSource<'s> {
  Build(Option<&'s Schema>),
  Cached(&'s PlanCache, Option<&'s Arc<Schema>>),
}

impl PlanSource<'_> {
  fn plan(&self, names: &[&str]) -> Arc<Plan> {
    match self {
      PlanSource::Build(s) => Arc::new(Plan::build(*s, names)),
      PlanSource::Cached(cache, s) => cache.plan(*s, names),
    }
  }
}

/// Writes rows as a JSON array (or, in `single` mode, the first row or `null`).
pub struct JsonRows<'s> {
  source: PlanSource<'s>,
  plan: Arc<Plan>,
  out: String,
  rows: usize,
  in_row: bool,
  single: bool,
  /// Columns that held a `Cell::Date`, in order of first sight.
  date_cols: Vec<usize>,
  /// `out` starts with `head` bytes: the date line of the first `head_dates` date columns,
  /// written when a piece's buffer began, so that sending the piece copies nothing unless a
  /// date column appeared since.
  head: usize,
  head_dates: usize,
  /// Where full pieces of a large answer go (see `chunks`), the number of the first one
  /// this answer sent, and how many it sent.
  chunks: Option<Arc<Sender>>,
  first: usize,
  sent: usize,
}

impl<'s> JsonRows<'s> {
  pub fn new(schema: Option<&'s Schema>) -> Self {
    Self::from_source(PlanSource::Build(schema), false)
  }
  /// Only the first row is kept; the result is that object or `null`.
  pub fn single(schema: Option<&'s Schema>) -> Self {
    Self::from_source(PlanSource::Build(schema), true)
  }
  /// Like `new`/`single`, with plans taken from (and kept in) `cache`.
  pub fn cached(cache: &'s PlanCache, schema: Option<&'s Arc<Schema>>, single: bool) -> Self {
    Self::from_source(PlanSource::Cached(cache, schema), single)
  }
  fn from_source(source: PlanSource<'s>, single: bool) -> Self {
    JsonRows { source, plan: Arc::default(), out: String::with_capacity(512), rows: 0, in_row: false, single, date_cols: Vec::new(), head: 0, head_dates: 0, chunks: None, first: 0, sent: 0 }
  }
  /// Sends the rows on in pieces when the running call asked for that (`chunks::scope`).
  pub fn streamed(mut self) -> Self {
    self.chunks = if self.single { None } else { chunks::current() };
    self.first = self.chunks.as_ref().map_or(0, |c| c.next_number());
    self
  }
  /// The rows as JSON text: an array of rows (or, in `single` mode, the row or `null`),
  /// each shaped when the plan is numbered. When a date-time column was seen, the text
  /// starts with a line `D["col",…]` naming those columns, whose values are epoch
  /// milliseconds (JSON text never starts with `D`).
  pub fn finish(mut self) -> String {
    let body = if self.single {
      if self.rows == 0 {
        "null".into()
      } else {
        std::mem::take(&mut self.out)
      }
    } else {
      self.out.push_str(if self.out.len() == self.head { "[]" } else { "]" });
      std::mem::take(&mut self.out)
    };
    let body = self.with_date_line(body);
    if self.sent == 0 {
      return body;
    }
    format!("C{},{}\n{body}", self.first, self.sent)
  }

  /// `body` (the text of `out`) behind a line `D["col",…]` naming the date-time columns
  /// seen so far, if any: as it is when its head already says that.
  fn with_date_line(&self, body: String) -> String {
    if self.head_dates == self.date_cols.len() {
      return body;
    }
    let mut marked = String::with_capacity(body.len() + 32);
    self.write_date_line(&mut marked);
    marked.push_str(&body[self.head..]);
    marked
  }

  fn write_date_line(&self, out: &mut String) {
    if self.date_cols.is_empty() {
      return;
    }
    out.push_str("D[");
    for (i, &c) in self.date_cols.iter().enumerate() {
      if i > 0 {
        out.push(',');
      }
      write_json_str(out, &self.plan.names[c]);
    }
    out.push_str("]\n");
  }

  /// Sends the rows so far as one piece once they fill `CHUNK_BYTES`.
  fn send_full_piece(&mut self) {
    let Some(sender) = self.chunks.as_ref().filter(|_| self.out.len() >= CHUNK_BYTES).cloned() else { return };
    let mut next = String::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 8);
    self.write_date_line(&mut next);
    let mut body = std::mem::replace(&mut self.out, next);
    body.push(']');
    sender.send(self.with_date_line(body));
    (self.head, self.head_dates) = (self.out.len(), self.date_cols.len());
    self.sent += 1;
  }

  fn open_row(&mut self) {
    if self.in_row {
      return;
    }
    self.in_row = true;
    if !self.single {
      self.out.push(if self.out.len() == self.head { '[' } else { ',' });
    }
    // Rows are written shaped (`Shapes`) when the plan has a shape number.
    if let Some(shape) = self.plan.shape {
      self.out.push('[');
      self.out.push_str(itoa::Buffer::new().format(shape));
    } else {
      self.out.push('{');
    }
  }
}

/// What each byte becomes in a JSON string: 0 = itself, `u` = `\u00XX`, else `\<byte>`.
static ESCAPES: [u8; 256] = {
  let mut t = [0u8; 256];
  let mut i = 0;
  while i < 0x20 {
    t[i] = b'u';
    i += 1;
  }
  t[b'"' as usize] = b'"';
  t[b'\\' as usize] = b'\\';
  t[b'\n' as usize] = b'n';
  t[b'\r' as usize] = b'r';
  t[b'\t' as usize] = b't';
  t
};

/// Whether any of the 8 bytes of `w` needs escaping (a control character, `"` or `\`).
/// Exact as a yes/no answer; bytes of multi-byte UTF-8 sequences never match.
#[inline]
fn word_needs_escape(w: u64) -> bool {
  const LO: u64 = 0x0101_0101_0101_0101;
  const HI: u64 = 0x8080_8080_8080_8080;
  let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
  let below_space = w.wrapping_sub(LO * 0x20) & !w & HI;
  (below_space | has_zero(w ^ (LO * b'"' as u64)) | has_zero(w ^ (LO * b'\\' as u64))) != 0
}

pub fn write_json_str(out: &mut String, s: &str) {
  let bytes = s.as_bytes();
  out.reserve(bytes.len() + 2);
  out.push('"');
  let (mut start, mut i) = (0, 0);
  while i < bytes.len() {
    // Eight clean bytes at a time; byte by byte only around characters to escape.
    if let Some(chunk) = bytes.get(i..i + 8) {
      let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
      if !word_needs_escape(w) {
        i += 8;
        continue;
      }
    }
    let b = bytes[i];
    let esc = ESCAPES[b as usize];
    if esc != 0 {
      out.push_str(&s[start..i]);
      if esc == b'u' {
        let _ = write!(out, "\\u{:04x}", b);
      } else {
        out.push('\\');
        out.push(esc as char);
      }
      start = i + 1;
    }
    i += 1;
  }
  out.push_str(&s[start..]);
  out.push('"');
}

fn write_decoded(out: &mut String, d: Decoded<'_>) {
  match d {
    Decoded::Null => out.push_str("null"),
    Decoded::Bool(b) => out.push_str(if b { "true" } else { "false" }),
    Decoded::Int(i) | Decoded::DateMs(i) => out.push_str(itoa::Buffer::new().format(i)),
    Decoded::Float(f) if f.is_finite() => {
      if f.fract() == 0.0 && f.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(f as i64));
      } else {
        out.push_str(zmij::Buffer::new().format_finite(f));
      }
    }
    Decoded::Float(_) => out.push_str("null"),
    Decoded::Str(s) => write_json_str(out, s),
    Decoded::RawJson(j) => out.push_str(j.trim()),
    Decoded::EmptyArray => out.push_str("[]"),
  }
}

impl RowSink for JsonRows<'_> {
  fn columns(&mut self, names: &[&str]) {
    self.plan = self.source.plan(names);
  }
  fn cell(&mut self, col: usize, cell: Cell<'_>) {
    if self.single && self.rows > 0 {
      return;
    }
    let first = !self.in_row;
    self.open_row();
    if self.plan.shape.is_some() {
      // Values by position: every column of a row comes, in order (see `RowSink`).
      self.out.push(',');
    } else {
      if !first {
        self.out.push(',');
      }
      self.out.push_str(&self.plan.keys[col]);
    }
    if matches!(cell, Cell::Date(_)) && !self.date_cols.contains(&col) && !(self.single && self.rows > 0) {
      self.date_cols.push(col);
    }
    write_decoded(&mut self.out, decode(self.plan.kinds[col], &cell));
  }
  fn end_row(&mut self) {
    if self.single && self.rows > 0 {
      return;
    }
    self.open_row();
    if self.plan.shape.is_some() {
      for _ in &self.plan.trailing_empty {
        self.out.push_str(",[]");
      }
      self.out.push(']');
    } else {
      let mut first = self.out.ends_with('{');
      for name in &self.plan.trailing_empty {
        if !first {
          self.out.push(',');
        }
        first = false;
        write_json_str(&mut self.out, name);
        self.out.push_str(":[]");
      }
      self.out.push('}');
    }
    self.in_row = false;
    self.rows += 1;
    self.send_full_piece();
  }
}

/// Whether the value JavaScript would read from `d`'s JSON text is the caller's `v`:
/// same type and same value (numbers as the doubles they print as; `-0`, which prints as
/// `0`, is never the caller's).
fn decoded_is(d: &Decoded<'_>, v: &Value) -> bool {
  match (d, v) {
    (Decoded::Null, Value::Null) => true,
    (Decoded::Bool(a), Value::Bool(b)) => a == b,
    (Decoded::Int(i), Value::Number(n)) => n.as_f64() == Some(*i as f64) && !is_negative_zero(n),
    (Decoded::Float(f), Value::Number(n)) => f.is_finite() && !(*f == 0.0 && f.is_sign_negative()) && n.as_f64() == Some(*f) && !is_negative_zero(n),
    (Decoded::Str(a), Value::String(b)) => a == b,
    _ => false,
  }
}

fn is_negative_zero(n: &serde_json::Number) -> bool {
  n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative())
}

/// One created row, answered as a *template* when the caller holds values of it (`create`
/// with values, see `src/records.rs`): `E[template, made…]`. The template, numbered
/// per dialect, gives the row's keys and, for each, whether its value is the caller's value
/// at some index, unchanged, or the answer's next made value. JavaScript builds the object
/// from its own values and the few made ones (id, timestamps), instead of parsing them all
/// back (`E` starts no JSON text).
pub struct TemplateRow<'s> {
  cache: &'s PlanCache,
  schema: &'s Arc<Schema>,
  /// For each column, the caller's value it was written from, and that value's index.
  given: Vec<Option<(u32, &'s Value)>>,
  /// The caller's data, when `given` is matched to the columns by key once they are known.
  data: Option<&'s Fields>,
  plan: Arc<Plan>,
  slots: Vec<Slot>,
  made: String,
}

impl<'s> TemplateRow<'s> {
  /// A row whose columns are known to come from `given` (SQLite's echo, in table order).
  pub fn new(cache: &'s PlanCache, schema: &'s Arc<Schema>, given: Vec<Option<(u32, &'s Value)>>) -> Self {
    let slots = Vec::with_capacity(given.len());
    TemplateRow { cache, schema, given, data: None, plan: Arc::default(), slots, made: String::with_capacity(128) }
  }

  /// A row read back (`RETURNING *`): each column is matched to the caller's value of the
  /// same key. Only values that read back unchanged are left out of the answer, so the
  /// match needs no knowledge of how the database stored them.
  pub fn by_key(cache: &'s PlanCache, schema: &'s Arc<Schema>, data: &'s Fields) -> Self {
    TemplateRow { data: Some(data), ..Self::new(cache, schema, Vec::new()) }
  }

  /// The answer; `None` when the row cannot be numbered (no shape, too many templates).
  pub fn finish(self) -> Option<String> {
    // No row came (a row has its id column at least).
    if self.slots.is_empty() {
      return None;
    }
    let shape = self.plan.shape?;
    let template = self.cache.templates.lock().ok()?.number((shape, self.slots.into()))?;
    let mut out = String::with_capacity(self.made.len() + 16);
    out.push_str("E[");
    out.push_str(itoa::Buffer::new().format(template));
    out.push_str(&self.made);
    out.push(']');
    Some(out)
  }
}

impl RowSink for TemplateRow<'_> {
  fn columns(&mut self, names: &[&str]) {
    self.plan = self.cache.plan(Some(self.schema), names);
    if let Some(data) = self.data {
      let by_key = |key: &String| data.iter().enumerate().find(|(_, (k, _))| *k == key).map(|(i, (_, v))| (i as u32, v));
      self.given = self.plan.names.iter().map(by_key).collect();
    }
  }
  fn cell(&mut self, col: usize, cell: Cell<'_>) {
    let d = decode(self.plan.kinds[col], &cell);
    match self.given.get(col).copied().flatten() {
      Some((i, v)) if decoded_is(&d, v) => self.slots.push(Slot::Given(i)),
      _ => {
        self.made.push(',');
        self.slots.push(if matches!(d, Decoded::DateMs(_)) { Slot::MadeDate } else { Slot::Made });
        write_decoded(&mut self.made, d);
      }
    }
  }
  fn end_row(&mut self) {
    self.slots.extend(self.plan.trailing_empty.iter().map(|_| Slot::Empty));
  }
}

/// Builds `serde_json` rows for the engine's own use.
pub struct ValueRows<'s> {
  source: PlanSource<'s>,
  plan: Arc<Plan>,
  /// Many-to-many names appended to each row (none for `FirstColumn`).
  trailing: bool,
  pub rows: Vec<Map<String, Value>>,
  cur: Map<String, Value>,
}

impl<'s> ValueRows<'s> {
  pub fn new(schema: Option<&'s Schema>) -> Self {
    Self::from_source(PlanSource::Build(schema))
  }
  /// Like `new`, with plans taken from (and kept in) `cache`.
  pub fn cached(cache: &'s PlanCache, schema: Option<&'s Arc<Schema>>) -> Self {
    Self::from_source(PlanSource::Cached(cache, schema))
  }
  fn from_source(source: PlanSource<'s>) -> Self {
    ValueRows { source, plan: Arc::default(), trailing: true, rows: Vec::new(), cur: Map::new() }
  }
}

fn to_value(d: Decoded<'_>) -> Value {
  match d {
    Decoded::Null => Value::Null,
    Decoded::Bool(b) => Value::Bool(b),
    Decoded::Int(i) => Value::from(i),
    Decoded::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Value::from(f as i64),
    Decoded::Float(f) => serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
    Decoded::Str(s) => Value::String(s.to_string()),
    Decoded::RawJson(j) => serde_json::from_str(j).unwrap_or(Value::Null),
    Decoded::EmptyArray => Value::Array(Vec::new()),
    Decoded::DateMs(ms) => Value::String(crate::iso_date::iso_ms(ms)),
  }
}

impl RowSink for ValueRows<'_> {
  fn columns(&mut self, names: &[&str]) {
    self.plan = self.source.plan(names);
  }
  fn cell(&mut self, col: usize, cell: Cell<'_>) {
    let v = to_value(decode(self.plan.kinds[col], &cell));
    self.cur.insert(self.plan.names[col].clone(), v);
  }
  fn end_row(&mut self) {
    if self.trailing {
      for name in &self.plan.trailing_empty {
        self.cur.insert(name.clone(), Value::Array(Vec::new()));
      }
    }
    self.rows.push(std::mem::take(&mut self.cur));
  }
}

/// Keeps the first column of every row as a value (ids, distinct values, counts).
pub struct FirstColumn<'s> {
  inner: ValueRows<'s>,
}

impl<'s> FirstColumn<'s> {
  pub fn new(schema: Option<&'s Schema>) -> Self {
    FirstColumn { inner: ValueRows { trailing: false, ..ValueRows::new(schema) } }
  }
  /// Like `new`, with plans taken from (and kept in) `cache`.
  pub fn cached(cache: &'s PlanCache, schema: Option<&'s Arc<Schema>>) -> Self {
    FirstColumn { inner: ValueRows { trailing: false, ..ValueRows::cached(cache, schema) } }
  }
  pub fn values(self) -> Vec<Value> {
    self.inner.rows.into_iter().map(|r| r.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null)).collect()
  }
}

impl RowSink for FirstColumn<'_> {
  fn columns(&mut self, names: &[&str]) {
    self.inner.columns(names);
  }
  fn cell(&mut self, col: usize, cell: Cell<'_>) {
    if col == 0 {
      self.inner.cell(col, cell);
    }
  }
  fn end_row(&mut self) {
    self.inner.end_row();
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  fn schema() -> Schema {
    Schema::from_value(
      &json!({"name": "P", "collection": "ps", "fields": {"on": {"type": "boolean"}, "meta": {"type": "json"}, "tags": {"type": "array"}, "n": {"type": "number"}},
        "relations": {"cats": {"target": "C", "type": "many-to-many", "through": "pc"}, "kids": {"target": "K", "type": "one-to-many"}}}),
      "",
    )
    .unwrap()
  }

  fn feed(sink: &mut dyn RowSink, names: &[&str], rows: &[Vec<Cell<'_>>]) {
    sink.columns(names);
    for r in rows {
      for (i, c) in r.iter().enumerate() {
        sink.cell(i, *c);
      }
      sink.end_row();
    }
  }

  #[test]
  fn json_rows_decode_like_deserialize_row() {
    let s = schema();
    let mut sink = JsonRows::new(Some(&s));
    feed(
      &mut sink,
      &["id", "on", "meta", "tags", "n", "kids", "extra"],
      &[
        vec![Cell::Text("a"), Cell::Int(1), Cell::Text("{\"k\":[1,2]}"), Cell::Text("not json"), Cell::Float(2.0), Cell::Text("[\"x\"]"), Cell::Int(0)],
        vec![Cell::Text("b\"q"), Cell::Null, Cell::Text("oops"), Cell::Text("[1]"), Cell::Float(2.5), Cell::Null, Cell::Null],
      ],
    );
    let out = sink.finish();
    assert_eq!(
      out,
      r#"[{"id":"a","on":true,"meta":{"k":[1,2]},"tags":[],"n":2,"kids":[],"extra":0,"cats":[]},{"id":"b\"q","on":null,"meta":"oops","tags":[1],"n":2.5,"kids":[],"extra":null,"cats":[]}]"#
    );
    let parsed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed[1]["id"], "b\"q");
  }

  #[test]
  fn single_and_empty() {
    let s = schema();
    let mut sink = JsonRows::single(Some(&s));
    feed(&mut sink, &["id"], &[]);
    assert_eq!(sink.finish(), "null");
    let mut sink = JsonRows::new(None);
    feed(&mut sink, &["id"], &[]);
    assert_eq!(sink.finish(), "[]");
    let mut sink = JsonRows::single(Some(&s));
    feed(&mut sink, &["id"], &[vec![Cell::Text("1")], vec![Cell::Text("2")]]);
    assert_eq!(sink.finish(), r#"{"id":"1","cats":[]}"#);
  }

  #[test]
  fn value_rows_match_json_rows() {
    let s = schema();
    let mut v = ValueRows::new(Some(&s));
    feed(&mut v, &["id", "on", "meta"], &[vec![Cell::Text("a"), Cell::Text("1"), Cell::Json("{\"a\":1}")]]);
    assert_eq!(Value::Object(v.rows.remove(0)), json!({"id": "a", "on": true, "meta": {"a": 1}, "cats": []}));
  }

  /// The byte-at-a-time escaper `write_json_str` replaced, kept as the reference.
  fn escape_bytewise(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
      match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
      }
    }
    out.push('"');
    out
  }

  #[test]
  fn escaping_matches_the_bytewise_reference_at_every_position() {
    let specials = ["\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1f}", "\u{8}", "é", "€", "😀", "\u{7f}", " "];
    for len in 0..20 {
      for sp in specials {
        for at in 0..=len {
          let mut s: String = "abcdefghijklmnopqrst"[..len].to_string();
          s.insert_str(at, sp);
          let mut out = String::new();
          write_json_str(&mut out, &s);
          assert_eq!(out, escape_bytewise(&s), "{s:?}");
          assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
      }
    }
  }

  #[test]
  fn cached_plans_are_reused_per_schema_and_column_list() {
    let s = Arc::new(schema());
    let other = Arc::new(schema());
    let cache = PlanCache::default();
    let a = cache.plan(Some(&s), &["id", "on"]);
    assert!(Arc::ptr_eq(&a, &cache.plan(Some(&s), &["id", "on"])));
    assert!(!Arc::ptr_eq(&a, &cache.plan(Some(&s), &["id", "meta"])));
    assert!(!Arc::ptr_eq(&a, &cache.plan(Some(&other), &["id", "on"])));
    let mut sink = JsonRows::cached(&cache, Some(&s), false);
    feed(&mut sink, &["id", "on"], &[vec![Cell::Text("a"), Cell::Int(1)]]);
    assert_eq!(sink.finish(), r#"[[0,"a",true,[]]]"#);
  }

  #[test]
  fn a_value_is_the_callers_exactly_when_its_json_reads_back_as_it() {
    // What JavaScript reads from the JSON text of `d`, against what the caller sent.
    let reads_as = |d: Decoded<'_>, v: &Value| {
      let mut text = String::new();
      write_decoded(&mut text, d);
      let back: Value = serde_json::from_str(&text).unwrap();
      match (&back, v) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64() && !is_negative_zero(b),
        _ => &back == v,
      }
    };
    let values = [json!(null), json!(true), json!(false), json!(1), json!(0), json!(2.5), json!(-7), json!(-0.0), json!("1"), json!("a"), json!(""), json!(1e300)];
    let decoded = || {
      vec![
        Decoded::Null,
        Decoded::Bool(true),
        Decoded::Bool(false),
        Decoded::Int(1),
        Decoded::Int(0),
        Decoded::Int(-7),
        Decoded::Float(2.5),
        Decoded::Float(1.0),
        Decoded::Float(-0.0),
        Decoded::Float(1e300),
        Decoded::Float(f64::NAN),
        Decoded::Str("1"),
        Decoded::Str("a"),
        Decoded::Str(""),
        Decoded::RawJson("1"),
        Decoded::RawJson("\"a\""),
        Decoded::EmptyArray,
        Decoded::DateMs(1),
      ]
    };
    let mut matched = 0;
    for v in &values {
      for (d, again) in decoded().into_iter().zip(decoded()) {
        // Sound: a value taken for the caller's reads back as it. (Raw JSON, lists and dates
        // are never taken for it, nor `null` written for NaN, even where they read alike.)
        if decoded_is(&d, v) {
          assert!(reads_as(again, v), "{v}");
          matched += 1;
        }
      }
    }
    // null, true, false, 1 (Int and Float), 0, 2.5, -7, 1e300 and three strings.
    assert_eq!(matched, 12);
  }

  #[test]
  fn template_rows_carry_only_values_the_caller_does_not_hold() {
    let s = Arc::new(schema());
    let cache = PlanCache::default();
    let (on, n, one) = (json!(true), json!(2.5), json!(1));
    let answer = |given: &[Option<(u32, &Value)>], cells: Vec<Cell<'_>>| {
      let mut sink = TemplateRow::new(&cache, &s, given.to_vec());
      feed(&mut sink, &["id", "on", "n", "meta"], &[cells]);
      sink.finish()
    };
    // id made, `on` and `n` given back unchanged, `meta` made, `cats` an empty list.
    let given = [None, Some((1, &on)), Some((0, &n)), None];
    let first = answer(&given, vec![Cell::Text("x"), Cell::Int(1), Cell::Float(2.5), Cell::Null]);
    assert_eq!(first.as_deref(), Some("E[0,\"x\",null]"));
    let t = cache.template(0).unwrap();
    assert_eq!(&*t.keys, ["id", "on", "n", "meta", "cats"]);
    assert_eq!(&*t.slots, [Slot::Made, Slot::Given(1), Slot::Given(0), Slot::Made, Slot::Empty]);
    // Same keys and kinds: the same template.
    assert_eq!(answer(&given, vec![Cell::Text("y"), Cell::Int(1), Cell::Float(2.5), Cell::Null]).as_deref(), Some("E[0,\"y\",null]"));
    // A stored value that reads otherwise than the one sent (1 for a boolean) is made.
    let changed = [None, Some((1, &one)), Some((0, &n)), None];
    assert_eq!(answer(&changed, vec![Cell::Text("z"), Cell::Int(1), Cell::Float(2.5), Cell::Null]).as_deref(), Some("E[1,\"z\",true,null]"));
    assert_eq!(&*cache.template(1).unwrap().slots, [Slot::Made, Slot::Made, Slot::Given(0), Slot::Made, Slot::Empty]);
    assert!(cache.template(2).is_none());
  }

  #[test]
  fn rows_read_back_are_templated_by_key() {
    let s = Arc::new(schema());
    let cache = PlanCache::default();
    // The caller's keys in its own order, one of them not a column.
    let data = Fields::from_distinct(vec![("n".into(), json!(2.5)), ("extra".into(), json!("x")), ("on".into(), json!(true))]);
    let mut sink = TemplateRow::by_key(&cache, &s, &data);
    feed(&mut sink, &["id", "on", "n", "at"], &[vec![Cell::Text("a"), Cell::Int(1), Cell::Float(2.5), Cell::Date(5)]]);
    assert_eq!(sink.finish().as_deref(), Some("E[0,\"a\",5]"));
    assert_eq!(&*cache.template(0).unwrap().slots, [Slot::Made, Slot::Given(2), Slot::Given(0), Slot::MadeDate, Slot::Empty]);
    // No row (nothing matched): no template, the caller reads the row back.
    let mut none = TemplateRow::by_key(&cache, &s, &data);
    feed(&mut none, &["id", "on", "n", "at"], &[]);
    assert_eq!(none.finish(), None);
  }

  #[test]
  fn single_rows_of_cached_plans_are_shaped() {
    let s = Arc::new(schema());
    let cache = PlanCache::default();
    let mut one = JsonRows::cached(&cache, Some(&s), true);
    feed(&mut one, &["id", "on", "meta", "at"], &[vec![Cell::Text("a"), Cell::Int(1), Cell::Text("{\"k\":[1]}"), Cell::Date(5)], vec![Cell::Text("b"), Cell::Int(0), Cell::Null, Cell::Null]]);
    assert_eq!(one.finish(), "D[\"at\"]\n[0,\"a\",true,{\"k\":[1]},5,[]]", "values by position, to-many keys last, dates named");
    assert_eq!(&*cache.shape_keys(0).unwrap(), ["id", "on", "meta", "at", "cats"]);
    let mut none = JsonRows::cached(&cache, Some(&s), true);
    feed(&mut none, &["id", "on", "meta", "at"], &[]);
    assert_eq!(none.finish(), "null");
    // The same keys through another schema: the same shape; other keys: the next number.
    let s2 = Arc::new(schema());
    let mut other = JsonRows::cached(&cache, Some(&s2), true);
    feed(&mut other, &["id", "on", "meta", "at"], &[vec![Cell::Null, Cell::Null, Cell::Null, Cell::Null]]);
    assert_eq!(other.finish(), "[0,null,null,null,null,[]]");
    let mut narrow = JsonRows::cached(&cache, Some(&s), true);
    feed(&mut narrow, &["id"], &[vec![Cell::Text("c")]]);
    assert_eq!(narrow.finish(), "[1,\"c\",[]]");
    assert!(cache.shape_keys(2).is_none());
    // Each row of a list is shaped; uncached plans stay objects.
    let mut list = JsonRows::cached(&cache, Some(&s), false);
    feed(&mut list, &["id"], &[vec![Cell::Text("c")], vec![Cell::Text("d")]]);
    assert_eq!(list.finish(), r#"[[1,"c",[]],[1,"d",[]]]"#);
    let mut empty = JsonRows::cached(&cache, Some(&s), false);
    feed(&mut empty, &["id"], &[]);
    assert_eq!(empty.finish(), "[]");
    let mut plain = JsonRows::single(Some(&s));
    feed(&mut plain, &["id"], &[vec![Cell::Text("c")]]);
    assert_eq!(plain.finish(), r#"{"id":"c","cats":[]}"#);
  }

  #[test]
  fn shapes_stop_being_numbered_at_the_limit() {
    let mut shapes = Shapes::default();
    for i in 0..SHAPES_MAX {
      assert_eq!(shapes.number([format!("k{i}")].into()), Some(i as u32));
    }
    assert_eq!(shapes.number(["k7".to_string()].into()), Some(7), "known keys keep their number");
    assert_eq!(shapes.number(["new".to_string()].into()), None);
    let s = Arc::new(schema());
    let cache = PlanCache { shapes: Mutex::new(shapes), ..Default::default() };
    let mut one = JsonRows::cached(&cache, Some(&s), true);
    feed(&mut one, &["n"], &[vec![Cell::Int(2)]]);
    assert_eq!(one.finish(), r#"{"n":2,"cats":[]}"#, "beyond the limit, an object");
  }

  #[test]
  fn date_time_columns_are_epoch_milliseconds_named_on_a_first_line() {
    let mut sink = JsonRows::new(None);
    feed(&mut sink, &["n", "at", "d"], &[vec![Cell::Int(1), Cell::Null, Cell::Text("2024-01-02")], vec![Cell::Int(2), Cell::Date(1_704_164_645_000), Cell::Null]]);
    assert_eq!(sink.finish(), "D[\"at\"]\n[{\"n\":1,\"at\":null,\"d\":\"2024-01-02\"},{\"n\":2,\"at\":1704164645000,\"d\":null}]");
    let mut one = JsonRows::single(None);
    feed(&mut one, &["at"], &[vec![Cell::Date(-1)], vec![Cell::Date(5)]]);
    assert_eq!(one.finish(), "D[\"at\"]\n{\"at\":-1}");
    let mut plain = JsonRows::new(None);
    feed(&mut plain, &["n"], &[vec![Cell::Int(1)]]);
    assert_eq!(plain.finish(), r#"[{"n":1}]"#);
    // Values for the engine's own use are ISO text.
    let mut values = ValueRows::new(None);
    feed(&mut values, &["at"], &[vec![Cell::Date(1_704_164_645_678)]]);
    assert_eq!(values.rows[0]["at"], "2024-01-02T03:04:05.678Z");
  }

  #[test]
  fn numbers_are_json_that_reads_back_exactly() {
    for f in [0.0, -0.5, 25.5, 0.1, 1.5e-7, 123456.789, 1e15, 1e21, -3.0e300, f64::MAX, f64::MIN_POSITIVE, 5e-324] {
      let mut out = String::new();
      write_decoded(&mut out, Decoded::Float(f));
      assert_eq!(serde_json::from_str::<f64>(&out).unwrap(), f, "{out}");
    }
    for i in [0i64, -1, 42, i64::MAX, i64::MIN] {
      let mut out = String::new();
      write_decoded(&mut out, Decoded::Int(i));
      assert_eq!(out, i.to_string());
    }
    let mut out = String::new();
    write_decoded(&mut out, Decoded::Float(3.0));
    assert_eq!(out, "3", "integral doubles are written as integers");
  }

  #[test]
  fn control_characters_are_escaped() {
    let mut out = String::new();
    write_json_str(&mut out, "a\u{1}b\nc");
    assert_eq!(out, "\"a\\u0001b\\nc\"");
  }

  /// A streamed answer's pieces and its last part, each as (date line, rows).
  fn split_answer(text: &str) -> (Option<&str>, Vec<Value>) {
    let (dates, body) = match text.strip_prefix('D') {
      Some(rest) => {
        let (line, body) = rest.split_once('\n').unwrap();
        (Some(line), body)
      }
      None => (None, text),
    };
    (dates, serde_json::from_str::<Vec<Value>>(body).unwrap())
  }

  #[test]
  fn a_streamed_answer_goes_out_in_pieces_that_add_up_to_the_whole() {
    // Rows of about CHUNK_BYTES / 400 bytes: a piece holds about 400 rows.
    let pad = "p".repeat(CHUNK_BYTES / 400);
    // The date column holds values only from row 1500 on: earlier pieces have no date line.
    let rows: Vec<Vec<Cell<'_>>> =
      (0..3000).map(|i| vec![Cell::Int(i), Cell::Text(&pad), if i >= 1500 { Cell::Date(i * 1000) } else { Cell::Null }]).collect();
    let names = ["n", "pad", "at"];
    let mut whole = JsonRows::new(None);
    feed(&mut whole, &names, &rows);
    let (_, expected) = split_answer(&whole.finish());

    let pieces = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = pieces.clone();
    let send: chunks::ChunkFn = Arc::new(move |p| sent.lock().unwrap().push(p));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (answer, single, first_try) = rt.block_on(chunks::scope(send, async {
      // A first run that dies half-way (a read run again on a fresh connection).
      let mut failed = JsonRows::new(None).streamed();
      feed(&mut failed, &names, &rows[..1000]);
      let first_try = failed.sent;
      let mut sink = JsonRows::new(None).streamed();
      feed(&mut sink, &names, &rows);
      let mut one = JsonRows::single(None).streamed();
      feed(&mut one, &names, &rows);
      (sink.finish(), one.finish(), first_try)
    }));
    let pieces = pieces.lock().unwrap();
    assert!(first_try >= 1 && pieces.len() >= first_try + 4, "{first_try} then {} pieces", pieces.len());
    let (count, last) = answer.split_once('\n').unwrap();
    assert_eq!(count, format!("C{first_try},{}", pieces.len() - first_try), "the answer names its own pieces");
    let mut all = Vec::new();
    for p in &pieces[first_try..] {
      assert!(p.len() >= CHUNK_BYTES, "a piece is sent once full");
      let (dates, rows) = split_answer(p);
      let has_dates = rows.iter().any(|r| r["at"].is_number());
      assert_eq!(dates, has_dates.then_some("[\"at\"]"), "a piece names its date columns when it has some");
      all.extend(rows);
    }
    all.extend(split_answer(last).1);
    assert_eq!(all, expected);
    assert!(single.starts_with('{'), "a single row is never split");
    // Outside a scope nothing is streamed.
    let mut plain = JsonRows::new(None).streamed();
    feed(&mut plain, &names, &rows);
    assert_eq!(split_answer(&plain.finish()).1, expected);
  }
}
