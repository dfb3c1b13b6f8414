//! The NET dialect: every call is one REST request to a `@mostajs/net` server
//! (net-protocol.md §1.3, §2.2), with the corrections of §2 and §5: no `Content-Type`
//! without a body, encoded ids, only a record 404 reads as `null`/`false` (an outage is an
//! error), `delete` reports the server's boolean, `findOne`/`findById` pass their options,
//! `distinct` pages and keeps falsy values, aggregate numeric strings become numbers.
//!
//! The API key is resolved when the dialect opens. A 401 on a call clears the cached key,
//! runs one forced device flow and replays the call once, unless the key came from
//! `MOSTA_NET_API_KEY` or `MOSTA_NO_AUTOREGISTER=true`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};

use super::{Admin, AsyncDialect, BoxFuture, Request};
use crate::auth::{self, ApiKey, DeviceCode, EnsureOptions, KeySource};
use crate::env::{EnvSource, NetConfig};
use crate::error::{Code, Error, Result};
use crate::net::envelope::{number_text, numeric_text};
use crate::net::{api_path, is_missing_record, parse_success, Body, Envelope, HttpCall, HttpClient, HttpReply, Method, Query};
use crate::schema::Schema;

pub const DIALECT_TYPE: &str = "net-proxy";
/// Rows per page of the `distinct` emulation.
pub const DISTINCT_PAGE: u64 = 1000;
/// A server that ignores `skip` would page forever; 10 M rows is where we stop.
const DISTINCT_MAX_PAGES: u64 = 10_000;
/// Words that are routes of their own at `/:col/<word>`: as ids they would reach those
/// routes instead of the record (`GET /users/one` is findOne), so they are refused.
const RESERVED_IDS: &[&str] = &["count", "one", "bulk", "search", "upsert", "aggregate"];

/// `onCodeIssued` as the dialect keeps it: shared between the flow at open time and any
/// re-authorization after a 401.
pub type SharedOnCode = Arc<dyn Fn(DeviceCode) + Send + Sync>;

fn boxed(on_code: &Option<SharedOnCode>) -> Option<auth::OnCode> {
  on_code.clone().map(|f| Box::new(move |c: DeviceCode| f(c)) as auth::OnCode)
}

pub async fn open(env: EnvSource) -> Result<Arc<dyn AsyncDialect>> {
  open_with(env, None).await
}

/// `open`, with the callback that shows a device code (else the default terminal renderer).
pub async fn open_with(env: EnvSource, on_code: Option<SharedOnCode>) -> Result<Arc<dyn AsyncDialect>> {
  let config = NetConfig::from_env(&env)?;
  let client = HttpClient::shared(&config.url, &config.http)?;
  let key = auth::resolve_api_key(&env, EnsureOptions::default(), boxed(&on_code)).await?;
  Ok(NetDialect::new(client, env, key, on_code))
}

/// The key in use and whether a 401 may replace it.
struct KeyState {
  current: RwLock<ApiKey>,
  /// One re-authorization at a time; the calls that failed meanwhile reuse its result.
  refresh: tokio::sync::Mutex<()>,
  can_refresh: bool,
}

pub struct NetDialect {
  client: HttpClient,
  env: EnvSource,
  on_code: Option<SharedOnCode>,
  schemas: RwLock<Vec<Arc<Schema>>>,
  key: KeyState,
  closed: AtomicBool,
}

/// How a response body becomes the call's result.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
  /// `data ?? []`
  List,
  /// `data ?? null`
  Record,
  /// The server's `data` boolean (`delete`).
  Bool,
  /// `metadata.count`, `metadata.total` or a numeric `data`.
  Count,
  /// `data ?? []` with the named accumulator fields turned into numbers.
  Aggregate(Vec<String>),
}

/// One HTTP request and how to read its answer.
#[derive(Debug)]
struct Plan {
  method: Method,
  path: String,
  query: Query,
  body: Option<Value>,
  idempotent: bool,
  shape: Shape,
  /// The result of a record 404 (`null`/`false`); `None`: a 404 is an error.
  on_missing: Option<&'static str>,
}

fn unsupported(what: &str) -> Error {
  Error::new(Code::Unsupported, format!("{what} is not available in NET mode: the @mostajs/net REST protocol has no such operation"))
}

/// The JavaScript name of a maintenance call, for messages.
fn admin_name(op: &Admin) -> &'static str {
  match op {
    Admin::DropTable(_) => "dropTable",
    Admin::DropAllTables => "dropAllTables",
    Admin::DropSchema(_) => "dropSchema",
    Admin::TruncateTable(_) => "truncateTable",
    Admin::TruncateAll(_) => "truncateAll",
    Admin::TestConnection => "testConnection",
    Admin::ListTables => "listTables",
  }
}

fn poisoned() -> Error {
  Error::internal("NET dialect lock poisoned by an earlier panic")
}

/// The `$group` output fields computed by `$sum`, `$count` or `$avg`: PostgreSQL returns
/// them as text (bigint/numeric), so they are turned back into numbers. `$min`/`$max`
/// may be strings on purpose and `_group` holds keys: both are left alone.
fn numeric_outputs(stages: &Value) -> Vec<String> {
  let mut out = Vec::new();
  for stage in stages.as_array().into_iter().flatten() {
    let Some(group) = stage.get("$group").and_then(Value::as_object) else { continue };
    let mut add = |fields: &serde_json::Map<String, Value>| {
      for (name, acc) in fields {
        let numeric = acc.as_object().is_some_and(|a| a.contains_key("$sum") || a.contains_key("$count") || a.contains_key("$avg"));
        if numeric && name != "_by" && name != "_id" {
          out.push(name.clone());
        }
      }
    };
    add(group);
    // The protocol notes write the accumulators under `out`.
    if let Some(o) = group.get("out").and_then(Value::as_object) {
      add(o);
    }
  }
  out
}

fn numberify(rows: &mut Value, fields: &[String]) {
  for row in rows.as_array_mut().into_iter().flatten() {
    let Some(o) = row.as_object_mut() else { continue };
    for f in fields {
      if let Some(v) = o.get_mut(f) {
        if let Some(n) = v.as_str().and_then(numeric_text) {
          *v = if n.fract() == 0.0 && n.abs() < 9.007e15 { Value::from(n as i64) } else { serde_json::Number::from_f64(n).map(Value::Number).unwrap_or(Value::Null) };
        }
      }
    }
  }
}

/// The result text of a 2xx envelope.
fn shape_result(env: &Envelope<'_>, shape: &Shape) -> Result<String> {
  Ok(match shape {
    Shape::List => env.data_or("[]"),
    Shape::Record => env.data_or("null"),
    Shape::Bool => match env.data.map(|d| d.get().trim()) {
      Some("true") => "true".into(),
      Some("false") | Some("null") => "false".into(),
      // A 2xx without `data`: the delete happened.
      None => "true".into(),
      Some(other) => (other != "0" && other != "\"\"").to_string(),
    },
    Shape::Count => number_text(env.count()),
    Shape::Aggregate(fields) => match env.data {
      None => "[]".into(),
      Some(raw) if fields.is_empty() => raw.get().to_string(),
      Some(raw) => {
        let mut rows: Value = serde_json::from_str(raw.get()).map_err(|e| Error::new(Code::NetHttp, format!("aggregate: the server's data is not JSON: {e}")))?;
        numberify(&mut rows, fields);
        rows.to_string()
      }
    },
  })
}

fn record_path(schema: &Schema, id: &str, op: Option<&str>) -> Result<String> {
  if op.is_none() && RESERVED_IDS.contains(&id) {
    return Err(Error::arg(format!("id {id:?} cannot be sent: /{}/{id} is a route of its own in the REST protocol", schema.collection)).with_field("id"));
  }
  let mut segs = vec![(schema.collection.as_str(), "collection"), (id, "id")];
  if let Some(op) = op {
    segs.push((op, "op"));
  }
  api_path(&segs)
}

fn non_null(v: Value) -> Value {
  if v.is_null() {
    json!({})
  } else {
    v
  }
}

/// The request for one call, or the call's result when no request is needed (no id).
fn plan(schema: &Schema, req: Request) -> Result<std::result::Result<Plan, &'static str>> {
  let col = || api_path(&[(schema.collection.as_str(), "collection")]);
  let sub = |s: &str| api_path(&[(schema.collection.as_str(), "collection"), (s, "op")]);
  let read = |path: String, query: Query, shape: Shape, on_missing: Option<&'static str>| Plan { method: Method::Get, path, query, body: None, idempotent: true, shape, on_missing };
  let write = |method: Method, path: String, body: Option<Value>, shape: Shape, on_missing: Option<&'static str>| Plan { method, path, query: Query::new(), body, idempotent: false, shape, on_missing };
  let mut q = Query::new();
  Ok(Ok(match req {
    Request::Find { filter, options } => {
      q.filter(&filter, false)?.options(&options, false)?;
      read(col()?, q, Shape::List, None)
    }
    Request::FindOne { filter, options } => {
      q.filter(&filter, true)?.options(&options, false)?;
      read(sub("one")?, q, Shape::Record, None)
    }
    Request::FindById { id, options } => {
      let Some(id) = id else { return Ok(Err("null")) };
      q.options(&options, false)?;
      read(record_path(schema, &id, None)?, q, Shape::Record, Some("null"))
    }
    Request::FindWithRelations { filter, relations, options } => {
      q.filter(&filter, false)?.relations(&relations).options(&options, !relations.is_empty())?;
      read(col()?, q, Shape::List, None)
    }
    Request::FindByIdWithRelations { id, relations, options } => {
      let Some(id) = id else { return Ok(Err("null")) };
      q.relations(&relations).options(&options, !relations.is_empty())?;
      read(record_path(schema, &id, None)?, q, Shape::Record, Some("null"))
    }
    Request::Count { filter, options: _ } => {
      q.filter(&filter, false)?;
      read(sub("count")?, q, Shape::Count, None)
    }
    Request::Create { data, .. } => write(Method::Post, col()?, Some(data.into_value()), Shape::Record, None),
    Request::Update { id, data } => {
      let Some(id) = id else { return Ok(Err("null")) };
      write(Method::Put, record_path(schema, &id, None)?, Some(data), Shape::Record, Some("null"))
    }
    Request::UpdateMany { filter, data } => write(Method::Put, sub("bulk")?, Some(json!({"filter": non_null(filter), "data": data})), Shape::Count, None),
    Request::Delete { id } => {
      let Some(id) = id else { return Ok(Err("false")) };
      write(Method::Delete, record_path(schema, &id, None)?, None, Shape::Bool, Some("false"))
    }
    Request::DeleteMany { filter } => write(Method::Delete, sub("bulk")?, Some(json!({"filter": non_null(filter)})), Shape::Count, None),
    Request::Aggregate { stages, options: _ } => {
      let stages = if stages.is_null() { json!([]) } else { stages };
      let fields = numeric_outputs(&stages);
      let mut p = write(Method::Post, sub("aggregate")?, Some(json!({"stages": stages})), Shape::Aggregate(fields), None);
      p.idempotent = true;
      p
    }
    Request::Upsert { filter, data } => write(Method::Post, sub("upsert")?, Some(json!({"filter": non_null(filter), "data": data})), Shape::Record, None),
    Request::Increment { id, field, amount } => {
      let Some(id) = id else { return Ok(Err("null")) };
      write(Method::Post, record_path(schema, &id, Some("increment"))?, Some(json!({"field": field, "amount": amount})), Shape::Record, Some("null"))
    }
    Request::AddToSet { id, field, value } => {
      let Some(id) = id else { return Ok(Err("null")) };
      write(Method::Post, record_path(schema, &id, Some("addToSet"))?, Some(json!({"field": field, "value": value})), Shape::Record, Some("null"))
    }
    Request::Pull { id, field, value } => {
      let Some(id) = id else { return Ok(Err("null")) };
      write(Method::Post, record_path(schema, &id, Some("pull"))?, Some(json!({"field": field, "value": value})), Shape::Record, Some("null"))
    }
    Request::Search { query, fields, options } => {
      let mut body = json!({"query": query});
      if let Some(f) = fields {
        body["fields"] = json!(f);
      }
      if !options.is_null() {
        body["options"] = options;
      }
      let mut p = write(Method::Post, sub("search")?, Some(body), Shape::List, None);
      p.idempotent = true;
      p
    }
    Request::Distinct { .. } => return Err(Error::internal("distinct is paged, not planned")),
  }))
}

impl NetDialect {
  pub fn new(client: HttpClient, env: EnvSource, key: ApiKey, on_code: Option<SharedOnCode>) -> Arc<Self> {
    let can_refresh = key.source != KeySource::Env && !env.get_bool("MOSTA_NO_AUTOREGISTER", false);
    Arc::new(NetDialect {
      client,
      env,
      on_code,
      schemas: RwLock::default(),
      key: KeyState { current: RwLock::new(key), refresh: tokio::sync::Mutex::new(()), can_refresh },
      closed: AtomicBool::new(false),
    })
  }

  fn check_open(&self) -> Result<()> {
    if self.closed.load(Ordering::Acquire) {
      return Err(Error::new(Code::Closed, "the net-proxy dialect was disconnected; call getDialect() again"));
    }
    Ok(())
  }

  fn schema(&self, handle: u32) -> Result<Arc<Schema>> {
    self.schemas.read().map_err(|_| poisoned())?.get(handle as usize).cloned().ok_or_else(|| Error::arg(format!("unknown schema handle {handle}")))
  }

  fn current_key(&self) -> Result<String> {
    Ok(self.key.current.read().map_err(|_| poisoned())?.key.clone())
  }

  /// After a 401 with `used`: one forced device flow, unless another call already replaced
  /// the key. Any failure is `E_AUTH_REQUIRED` naming its cause.
  async fn reauthorize(&self, used: &str, refused: Error) -> Result<String> {
    let _one_at_a_time = self.key.refresh.lock().await;
    let now = self.current_key()?;
    if now != used {
      return Ok(now);
    }
    let env = self.env.clone();
    let cleared = match tokio::task::spawn_blocking(move || auth::clear_cached_api_key(&env, None, None)).await {
      Ok(r) => r,
      Err(e) => Err(Error::internal(e.to_string())),
    };
    // The forced flow overwrites the entry anyway; a cache we cannot touch is not fatal.
    if let Err(e) = cleared {
      tracing::warn!(target: "mosta::auth", "could not clear the cached API key: {}", e.message);
    }
    let fresh = auth::resolve_api_key(&self.env, EnsureOptions { force_refresh: true, ..Default::default() }, boxed(&self.on_code)).await.map_err(|e| Error {
      code: Code::AuthRequired,
      message: format!("{}; re-authorization failed: {}", refused.message, e.message),
      ..refused.clone()
    })?;
    let key = fresh.key.clone();
    *self.key.current.write().map_err(|_| poisoned())? = fresh;
    Ok(key)
  }

  /// Sends one request with the current key; a 401 leads to one re-authorization and one
  /// replay (the server refused before running anything, so even writes are safe).
  async fn fetch(&self, call: HttpCall) -> Result<HttpReply> {
    let key = self.current_key()?;
    match self.client.fetch(&call.clone().api_key(Some(&key))).await {
      Err(e) if e.code == Code::AuthRequired && self.key.can_refresh => {
        let fresh = self.reauthorize(&key, e).await?;
        self.client.fetch(&call.api_key(Some(&fresh))).await
      }
      other => other,
    }
  }

  async fn run_plan(&self, p: Plan) -> Result<String> {
    let url = self.client.url(&p.path, &p.query)?;
    let mut call = HttpCall::new(p.method, url).idempotent(p.idempotent);
    if let Some(b) = &p.body {
      call = call.body(Body::json(b));
    }
    let what = call.describe();
    match (self.fetch(call).await, p.on_missing) {
      (Ok(reply), _) => shape_result(&parse_success(&reply.body, &what, reply.status)?, &p.shape),
      (Err(e), Some(missing)) if is_missing_record(&e) => Ok(missing.to_string()),
      (Err(e), _) => Err(e),
    }
  }

  /// `distinct` has no route: pages of `GET /:col?select=field` sorted by `id` (a stable
  /// order, so no row is seen twice or skipped), deduplicated by JSON value. Falsy values
  /// (0, "", false, null) are kept, unlike the reference.
  async fn distinct(&self, schema: &Schema, field: &str, filter: &Value) -> Result<String> {
    let mut seen = HashSet::new();
    let mut values = Vec::new();
    for page in 0..DISTINCT_MAX_PAGES {
      let mut q = Query::new();
      q.filter(filter, false)?.push("select", field).push("sort", r#"{"id":1}"#).push("limit", DISTINCT_PAGE.to_string());
      if page > 0 {
        q.push("skip", (page * DISTINCT_PAGE).to_string());
      }
      let plan = Plan { method: Method::Get, path: api_path(&[(schema.collection.as_str(), "collection")])?, query: q, body: None, idempotent: true, shape: Shape::List, on_missing: None };
      let text = self.run_plan(plan).await?;
      let rows: Vec<Value> = serde_json::from_str(&text).map_err(|e| Error::new(Code::NetHttp, format!("distinct: the server's data is not an array: {e}")))?;
      let n = rows.len() as u64;
      for mut row in rows {
        if let Some(v) = row.get_mut(field).map(Value::take) {
          if seen.insert(v.to_string()) {
            values.push(v);
          }
        }
      }
      // A short page is the last; a long one means the server ignored `limit`.
      if n != DISTINCT_PAGE {
        return Ok(Value::Array(values).to_string());
      }
    }
    Err(Error::new(Code::NetHttp, format!("distinct on {}.{field} stopped after {DISTINCT_MAX_PAGES} pages: the server does not seem to honour skip", schema.name)))
  }

  async fn run(&self, schema: &Schema, req: Request) -> Result<String> {
    if let Request::Distinct { field, filter, options: _ } = &req {
      return self.distinct(schema, field, filter).await;
    }
    match plan(schema, req)? {
      Ok(p) => self.run_plan(p).await,
      Err(no_request) => Ok(no_request.to_string()),
    }
  }

  /// `GET /health`, without the key (as the reference): any 2xx is true, anything else
  /// (HTTP error, network error) false.
  async fn test_connection(&self) -> bool {
    let Ok(url) = self.client.url("/health", &Query::new()) else { return false };
    matches!(self.client.send(&HttpCall::new(Method::Get, url).idempotent(false)).await, Ok(r) if r.is_success())
  }
}

impl AsyncDialect for NetDialect {
  fn dialect_type(&self) -> &'static str {
    DIALECT_TYPE
  }

  fn compile(&self, schema_json: &str) -> Result<u32> {
    let s = Schema::from_json(schema_json, "")?;
    let mut all = self.schemas.write().map_err(|_| poisoned())?;
    all.push(Arc::new(s));
    Ok((all.len() - 1) as u32)
  }

  /// An explicit no-op: the server manages its own schema (`/api/apply-schema` ignores the
  /// client's schemas anyway, net-protocol.md §1.5).
  fn init_schema(self: Arc<Self>, _handles: Vec<u32>) -> BoxFuture<()> {
    Box::pin(async move { self.check_open() })
  }

  fn call(self: Arc<Self>, method: String, handle: u32, args: String, _tx: Option<String>) -> BoxFuture<String> {
    Box::pin(async move {
      self.check_open()?;
      let schema = self.schema(handle)?;
      let req = Request::parse(&method, &args).map_err(|e| e.in_entity(&schema.name))?;
      self.run(&schema, req).await.map_err(|e| e.in_entity(&schema.name))
    })
  }

  fn begin_tx(self: Arc<Self>, _parent: Option<String>, _isolation: Option<String>, _explicit: bool) -> BoxFuture<String> {
    Box::pin(async move { Err(unsupported("transactions ($transaction, beginTx)")) })
  }

  fn commit_tx(self: Arc<Self>, _id: String) -> BoxFuture<()> {
    Box::pin(async move { Err(unsupported("transactions (commitTx)")) })
  }

  fn rollback_tx(self: Arc<Self>, _id: String) -> BoxFuture<()> {
    Box::pin(async move { Err(unsupported("transactions (rollbackTx)")) })
  }

  fn execute(self: Arc<Self>, _sql: String, _params: String, rows: bool, _tx: Option<String>) -> BoxFuture<String> {
    let what = if rows { "raw SQL (executeQuery)" } else { "raw SQL (executeRun)" };
    Box::pin(async move { Err(unsupported(what)) })
  }

  fn admin(self: Arc<Self>, op: Admin, _tx: Option<String>) -> BoxFuture<String> {
    Box::pin(async move {
      match op {
        Admin::TestConnection => Ok((!self.closed.load(Ordering::Acquire) && self.test_connection().await).to_string()),
        other => Err(unsupported(admin_name(&other))),
      }
    })
  }

  fn close(self: Arc<Self>) -> BoxFuture<()> {
    Box::pin(async move {
      self.closed.store(true, Ordering::Release);
      Ok(())
    })
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::auth::store::tests::TempDir;
  use crate::auth::store::{now_secs, CachedToken, TokenStore};
  use crate::net::test_server::{dead_base, json as reply, Recorded, TestServer};
  use std::sync::atomic::AtomicUsize;
  use std::sync::Mutex;

  const USER: &str = r#"{"name":"User","collection":"users","fields":{"name":{"type":"string"},"age":{"type":"number"}}}"#;

  fn env(base: &str, extra: &[(&str, &str)]) -> EnvSource {
    let mut pairs = vec![("MOSTA_NET_URL".to_string(), base.to_string()), ("MOSTA_NET_RETRY_BASE_MS".into(), "1".into())];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    EnvSource::from_pairs(pairs)
  }

  async fn open_with_key(base: &str) -> (Arc<dyn AsyncDialect>, u32) {
    let d = open(env(base, &[("MOSTA_NET_API_KEY", "sk_test_k")])).await.unwrap();
    let h = d.compile(USER).unwrap();
    (d, h)
  }

  async fn call(d: &Arc<dyn AsyncDialect>, h: u32, method: &str, args: Value) -> Result<String> {
    d.clone().call(method.into(), h, args.to_string(), None).await
  }

  fn parsed(text: Result<String>) -> Value {
    serde_json::from_str(&text.unwrap()).unwrap()
  }

  #[tokio::test]
  async fn reads_map_to_routes_with_their_options() {
    let srv = TestServer::start(|r: &Recorded| match r.path() {
      "/api/v1/users" => reply(200, json!({"status": "ok", "data": [{"id": "1", "name": "a"}], "metadata": {"count": 1}})),
      "/api/v1/users/one" => reply(200, json!({"status": "ok", "data": {"id": "1"}})),
      "/api/v1/users/count" => reply(200, json!({"status": "ok", "data": 5, "metadata": {"total": 5}})),
      "/api/v1/users/a%2Fb" => reply(200, json!({"status": "ok", "data": {"id": "a/b"}})),
      _ => reply(404, json!({"message": "Route not found", "error": "Not Found", "statusCode": 404})),
    })
    .await;
    let (d, h) = open_with_key(&srv.base).await;
    assert_eq!(d.dialect_type(), "net-proxy");
    assert_eq!(parsed(call(&d, h, "find", json!([{}])).await), json!([{"id": "1", "name": "a"}]));
    call(&d, h, "find", json!([{"age": {"$gt": 3}}, {"sort": {"age": -1}, "limit": 2, "skip": 4, "select": ["name"], "includeDeleted": true}])).await.unwrap();
    assert_eq!(parsed(call(&d, h, "findOne", json!([{}, {"sort": {"name": 1}, "select": ["name"]}])).await), json!({"id": "1"}));
    assert_eq!(parsed(call(&d, h, "findById", json!(["a/b", {"select": ["name"], "relations": ["team"]}])).await), json!({"id": "a/b"}));
    call(&d, h, "findWithRelations", json!([{"name": "a"}, ["team", "roles"], {"limit": 1}])).await.unwrap();
    call(&d, h, "findByIdWithRelations", json!(["a/b", ["team"]])).await.unwrap();
    assert_eq!(call(&d, h, "count", json!([{}])).await.unwrap(), "5");
    call(&d, h, "count", json!([{"name": "a"}])).await.unwrap();
    let reqs = srv.requests();
    let q = |i: usize| reqs[i].query();
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(q(0), pairs(&[]), "an empty filter is omitted");
    assert_eq!(q(1), pairs(&[("filter", r#"{"age":{"$gt":3}}"#), ("sort", r#"{"age":-1}"#), ("limit", "2"), ("skip", "4"), ("select", "name")]));
    assert_eq!(q(2), pairs(&[("filter", "{}"), ("sort", r#"{"name":1}"#), ("select", "name")]), "findOne passes its options");
    assert_eq!(q(3), pairs(&[("select", "name"), ("relations", "team")]));
    assert_eq!(q(4), pairs(&[("filter", r#"{"name":"a"}"#), ("relations", "team,roles"), ("limit", "1")]));
    assert_eq!((reqs[5].path(), q(5)), ("/api/v1/users/a%2Fb", pairs(&[("relations", "team")])));
    assert_eq!((reqs[6].path(), q(6)), ("/api/v1/users/count", pairs(&[])));
    assert_eq!(q(7), pairs(&[("filter", r#"{"name":"a"}"#)]));
    for r in &reqs {
      assert_eq!((r.method.as_str(), r.header("content-type"), r.header("x-api-key")), ("GET", None, Some("sk_test_k")));
    }
  }

  #[tokio::test]
  async fn writes_send_their_bodies_and_results_are_shaped() {
    let srv = TestServer::start(|r: &Recorded| match (r.method.as_str(), r.path()) {
      ("POST", "/api/v1/users") => reply(201, json!({"status": "ok", "data": {"id": "n1", "name": "x"}})),
      ("PUT", "/api/v1/users/bulk") => reply(200, json!({"status": "ok", "metadata": {"count": 3}})),
      ("DELETE", "/api/v1/users/bulk") => reply(200, json!({"status": "ok", "data": 2, "metadata": {"count": 2}})),
      ("DELETE", "/api/v1/users/gone") => reply(200, json!({"status": "ok", "data": false})),
      ("DELETE", _) => reply(200, json!({"status": "ok", "data": true})),
      ("PUT", _) => reply(200, json!({"status": "ok", "data": null})),
      _ => reply(200, json!({"status": "ok", "data": {"id": "1", "tags": ["a"]}})),
    })
    .await;
    let (d, h) = open_with_key(&srv.base).await;
    assert_eq!(parsed(call(&d, h, "create", json!([{"name": "x"}])).await), json!({"id": "n1", "name": "x"}));
    assert_eq!(call(&d, h, "update", json!(["1", {"name": "y"}])).await.unwrap(), "null");
    assert_eq!(call(&d, h, "updateMany", json!([{"age": 1}, {"name": "z"}])).await.unwrap(), "3");
    assert_eq!(call(&d, h, "delete", json!(["1"])).await.unwrap(), "true");
    assert_eq!(call(&d, h, "delete", json!(["gone"])).await.unwrap(), "false", "the server's boolean");
    assert_eq!(call(&d, h, "deleteMany", json!([null])).await.unwrap(), "2");
    call(&d, h, "upsert", json!([{"name": "x"}, {"name": "x", "age": 2}])).await.unwrap();
    call(&d, h, "increment", json!(["1", "age", 2])).await.unwrap();
    call(&d, h, "addToSet", json!(["1", "tags", "b"])).await.unwrap();
    call(&d, h, "pull", json!(["1", "tags", "a"])).await.unwrap();
    assert_eq!(parsed(call(&d, h, "search", json!(["al", ["name"], {"limit": 5}])).await), json!({"id": "1", "tags": ["a"]}));
    let reqs = srv.requests();
    let seen: Vec<(String, String, Option<String>, Value)> =
      reqs.iter().map(|r| (r.method.clone(), r.path().to_string(), r.header("content-type").map(str::to_string), r.json())).collect();
    let ct = Some("application/json".to_string());
    assert_eq!(seen[0], ("POST".into(), "/api/v1/users".into(), ct.clone(), json!({"name": "x"})));
    assert_eq!(seen[1], ("PUT".into(), "/api/v1/users/1".into(), ct.clone(), json!({"name": "y"})));
    assert_eq!(seen[2], ("PUT".into(), "/api/v1/users/bulk".into(), ct.clone(), json!({"filter": {"age": 1}, "data": {"name": "z"}})));
    assert_eq!(seen[3], ("DELETE".into(), "/api/v1/users/1".into(), None, Value::Null), "no Content-Type without a body");
    assert!(reqs[3].body.is_empty());
    assert_eq!(seen[5], ("DELETE".into(), "/api/v1/users/bulk".into(), ct.clone(), json!({"filter": {}})));
    assert_eq!(seen[6], ("POST".into(), "/api/v1/users/upsert".into(), ct.clone(), json!({"filter": {"name": "x"}, "data": {"name": "x", "age": 2}})));
    assert_eq!(seen[7], ("POST".into(), "/api/v1/users/1/increment".into(), ct.clone(), json!({"field": "age", "amount": 2})));
    assert_eq!(seen[8], ("POST".into(), "/api/v1/users/1/addToSet".into(), ct.clone(), json!({"field": "tags", "value": "b"})));
    assert_eq!(seen[9], ("POST".into(), "/api/v1/users/1/pull".into(), ct.clone(), json!({"field": "tags", "value": "a"})));
    assert_eq!(seen[10], ("POST".into(), "/api/v1/users/search".into(), ct, json!({"query": "al", "fields": ["name"], "options": {"limit": 5}})));
  }

  #[tokio::test]
  async fn only_a_record_404_reads_as_missing() {
    let srv = TestServer::start(|r: &Recorded| match r.path() {
      "/api/v1/users/nope" => reply(404, json!({"status": "error", "error": {"code": "ENTITY_NOT_FOUND", "message": "not found"}})),
      "/api/v1/ghosts/1" => reply(404, json!({"status": "error", "error": {"code": "UNKNOWN_ENTITY", "message": "Unknown collection ghosts"}})),
      _ => reply(500, json!({"status": "error", "error": {"code": "SqliteError", "message": "NOT NULL constraint failed: users.name"}})),
    })
    .await;
    let (d, h) = open_with_key(&srv.base).await;
    assert_eq!(call(&d, h, "findById", json!(["nope"])).await.unwrap(), "null");
    assert_eq!(call(&d, h, "delete", json!(["nope"])).await.unwrap(), "false");
    assert_eq!(call(&d, h, "update", json!(["nope", {"name": "x"}])).await.unwrap(), "null");
    let e = call(&d, h, "findById", json!(["1"])).await.unwrap_err();
    assert_eq!((e.code, e.status, e.db_code.as_deref(), e.entity.as_deref()), (Code::NetHttp, Some(500), Some("SqliteError"), Some("User")));
    assert!(e.message.contains("NOT NULL constraint failed"), "{}", e.message);
    let ghosts = d.compile(r#"{"name":"Ghost","collection":"ghosts"}"#).unwrap();
    let e = call(&d, ghosts, "findById", json!(["1"])).await.unwrap_err();
    assert_eq!((e.status, e.db_code.as_deref()), (Some(404), Some("UNKNOWN_ENTITY")));
    let before = srv.requests().len();
    assert_eq!(call(&d, h, "findById", json!([null])).await.unwrap(), "null");
    assert_eq!(call(&d, h, "delete", json!([""])).await.unwrap(), "false");
    assert_eq!(call(&d, h, "findById", json!(["count"])).await.unwrap_err().code, Code::InvalidArgument);
    assert_eq!(srv.requests().len(), before, "no id, no request");
    // A server that is down is an error, not "not found".
    let (d, h) = open_with_key(&dead_base().await).await;
    assert_eq!(call(&d, h, "findById", json!(["1"])).await.unwrap_err().code, Code::NetHttp);
    assert_eq!(call(&d, h, "delete", json!(["1"])).await.unwrap_err().code, Code::NetHttp);
  }

  #[tokio::test]
  async fn distinct_pages_keeps_falsy_values_and_dedupes_by_value() {
    let cycle = [json!(0), json!(""), json!(false), Value::Null, json!("a"), json!({"x": 1}), json!(0), json!({"x": 1})];
    let rows: Vec<Value> = (0..2500).map(|i| json!({"id": format!("{i:05}"), "v": cycle[i % cycle.len()].clone()})).collect();
    let srv = TestServer::start(move |r: &Recorded| {
      let skip: usize = r.query_value("skip").and_then(|s| s.parse().ok()).unwrap_or(0);
      let limit: usize = r.query_value("limit").and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
      let page: Vec<Value> = rows.iter().skip(skip).take(limit).cloned().collect();
      reply(200, json!({"status": "ok", "data": page}))
    })
    .await;
    let (d, h) = open_with_key(&srv.base).await;
    assert_eq!(parsed(call(&d, h, "distinct", json!(["v", {"age": 1}])).await), json!([0, "", false, null, "a", {"x": 1}]));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].query_value("select").as_deref(), Some("v"));
    assert_eq!(reqs[0].query_value("sort").as_deref(), Some(r#"{"id":1}"#));
    assert_eq!(reqs[0].query_value("filter").as_deref(), Some(r#"{"age":1}"#));
    assert_eq!((reqs[0].query_value("skip"), reqs[2].query_value("skip").as_deref()), (None, Some("2000")));
  }

  #[tokio::test]
  async fn aggregate_sums_come_back_as_numbers() {
    let srv = TestServer::start(|_| reply(200, json!({"status": "ok", "data": [{"_group": "007", "n": "3", "avg": "2.5000", "top": "42"}]}))).await;
    let (d, h) = open_with_key(&srv.base).await;
    let stages = json!([{"$match": {"age": {"$gt": 1}}}, {"$group": {"_by": "$role", "n": {"$sum": 1}, "avg": {"$avg": "$age"}, "top": {"$max": "$name"}}}]);
    assert_eq!(parsed(call(&d, h, "aggregate", json!([stages.clone()])).await), json!([{"_group": "007", "n": 3, "avg": 2.5, "top": "42"}]));
    assert_eq!(srv.requests()[0].json(), json!({"stages": stages}));
  }

  #[tokio::test]
  async fn transactions_sql_and_maintenance_are_unsupported_and_health_is_keyless() {
    let healthy = Arc::new(AtomicBool::new(true));
    let hv = healthy.clone();
    let srv = TestServer::start(move |r: &Recorded| match (r.path(), hv.load(Ordering::SeqCst)) {
      ("/health", true) => reply(200, json!({"status": "ok", "transports": ["rest"], "entities": ["User"]})),
      _ => reply(503, json!({})),
    })
    .await;
    let (d, h) = open_with_key(&srv.base).await;
    assert_eq!(d.clone().begin_tx(None, None, true).await.unwrap_err().code, Code::Unsupported);
    assert_eq!(d.clone().commit_tx("t".into()).await.unwrap_err().code, Code::Unsupported);
    let e = d.clone().execute("SELECT 1".into(), "[]".into(), true, None).await.unwrap_err();
    assert_eq!(e.code, Code::Unsupported);
    assert!(e.message.contains("executeQuery"));
    assert!(d.clone().admin(Admin::DropAllTables, None).await.unwrap_err().message.contains("dropAllTables"));
    d.clone().init_schema(vec![h]).await.unwrap();
    assert_eq!(d.clone().admin(Admin::TestConnection, None).await.unwrap(), "true");
    assert_eq!(srv.requests()[0].header("x-api-key"), None, "health sends no key");
    healthy.store(false, Ordering::SeqCst);
    assert_eq!(d.clone().admin(Admin::TestConnection, None).await.unwrap(), "false");
    d.clone().close().await.unwrap();
    assert_eq!(call(&d, h, "find", json!([{}])).await.unwrap_err().code, Code::Closed);
    assert_eq!(d.clone().admin(Admin::TestConnection, None).await.unwrap(), "false");
    let (d, _) = open_with_key(&dead_base().await).await;
    assert_eq!(d.clone().admin(Admin::TestConnection, None).await.unwrap(), "false");
  }

  #[tokio::test]
  async fn configuration_errors_name_the_variable() {
    let e = open(EnvSource::from_pairs([("MOSTA_ENV", "STAGE"), ("MOSTA_NET_API_KEY", "k")])).await.err().unwrap();
    assert_eq!((e.code, e.field.as_deref()), (Code::Config, Some("MOSTA_NET_URL")));
    assert!(e.message.contains("MOSTA_ENV=STAGE"));
    let e = open(env("http://127.0.0.1:9", &[("MOSTA_NET_TRANSPORT", "graphql"), ("MOSTA_NET_API_KEY", "k")])).await.err().unwrap();
    assert_eq!(e.field.as_deref(), Some("MOSTA_NET_TRANSPORT"));
    let e = open(env("http://127.0.0.1:9", &[("MOSTA_NET_TIMEOUT_MS", "fast"), ("MOSTA_NET_API_KEY", "k")])).await.err().unwrap();
    assert_eq!(e.field.as_deref(), Some("MOSTA_NET_TIMEOUT_MS"));
  }

  /// A server whose data routes accept only `valid` and whose device flow issues `issued`.
  struct AuthServer {
    srv: TestServer,
    authorizations: Arc<AtomicUsize>,
  }

  #[derive(Clone, Copy, PartialEq)]
  enum Mode {
    /// The issued key is accepted from then on.
    Honest,
    /// The issued key is refused too.
    Lying,
    /// Every data call is a 403.
    Forbidden,
  }

  async fn auth_server(valid: &str, issued: &'static str, mode: Mode) -> AuthServer {
    let valid = Arc::new(Mutex::new(valid.to_string()));
    let authorizations = Arc::new(AtomicUsize::new(0));
    let (v, n) = (valid.clone(), authorizations.clone());
    let srv = TestServer::start(move |r: &Recorded| match r.path() {
      "/api/v1/auth/device/authorize" => {
        n.fetch_add(1, Ordering::SeqCst);
        reply(200, json!({"device_code": "d", "user_code": "U", "verification_uri": "http://v", "expires_in": 60, "interval": 1}))
      }
      "/api/v1/auth/device/token" => {
        if mode == Mode::Honest {
          *v.lock().unwrap() = issued.to_string();
        }
        reply(200, json!({"access_token": issued, "token_type": "Bearer", "expires_in": 3600}))
      }
      _ if mode == Mode::Forbidden => reply(403, json!({"error": {"code": "FORBIDDEN", "message": "scope operations:write required"}})),
      _ if r.header("x-api-key") == Some(v.lock().unwrap().as_str()) => reply(200, json!({"status": "ok", "data": [{"id": "1"}]})),
      _ => reply(401, json!({"error": {"code": "UNAUTHORIZED", "message": "Invalid or revoked API key"}})),
    })
    .await;
    AuthServer { srv, authorizations }
  }

  fn seed(tmp: &TempDir, server: &str, key: &str) {
    let store = TokenStore::for_host(&tmp.0.join(".config"), "octonet");
    store.put(server, &CachedToken { access_token: key.into(), token_type: "Bearer".into(), expires_at: Some(now_secs() + 3600), scope: None, obtained_at: 0 }).unwrap();
  }

  #[tokio::test]
  async fn a_401_runs_one_device_flow_and_replays_the_call() {
    let tmp = TempDir::new();
    let a = auth_server("sk_revoked_elsewhere", "sk_new", Mode::Honest).await;
    seed(&tmp, &a.srv.base, "sk_old");
    let home = tmp.0.display().to_string();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let s2 = shown.clone();
    let on_code: SharedOnCode = Arc::new(move |c: DeviceCode| s2.lock().unwrap().push(c.user_code));
    let d = open_with(env(&a.srv.base, &[("HOME", &home), ("MOSTA_AUTH_POLL_SCALE", "0.01")]), Some(on_code)).await.unwrap();
    let h = d.compile(USER).unwrap();
    // A write is replayed too: the 401 came before anything ran.
    assert_eq!(parsed(call(&d, h, "create", json!([{"name": "x"}])).await), json!([{"id": "1"}]));
    assert_eq!(a.authorizations.load(Ordering::SeqCst), 1);
    assert_eq!(*shown.lock().unwrap(), vec!["U".to_string()], "the re-authorization shows its code through the callback");
    let keys: Vec<Option<String>> = a.srv.requests().iter().filter(|r| r.path().starts_with("/api/v1/users")).map(|r| r.header("x-api-key").map(str::to_string)).collect();
    assert_eq!(keys, vec![Some("sk_old".into()), Some("sk_new".into())]);
    let cached = TokenStore::for_host(&tmp.0.join(".config"), "octonet").get(&a.srv.base).unwrap();
    assert_eq!(cached.access_token, "sk_new");
    // Later calls use the new key directly.
    call(&d, h, "find", json!([{}])).await.unwrap();
    assert_eq!(a.authorizations.load(Ordering::SeqCst), 1);
  }

  #[tokio::test]
  async fn a_refused_fresh_key_is_auth_required_after_one_flow() {
    let tmp = TempDir::new();
    let a = auth_server("sk_never_issued", "sk_refused", Mode::Lying).await;
    seed(&tmp, &a.srv.base, "sk_old");
    let d = open(env(&a.srv.base, &[("HOME", &tmp.0.display().to_string()), ("MOSTA_AUTH_POLL_SCALE", "0.01")])).await.unwrap();
    let h = d.compile(USER).unwrap();
    let e = call(&d, h, "find", json!([{}])).await.unwrap_err();
    assert_eq!((e.code, e.status), (Code::AuthRequired, Some(401)));
    assert_eq!(a.authorizations.load(Ordering::SeqCst), 1, "exactly one re-authorization");
    assert_eq!(a.srv.requests().iter().filter(|r| r.path() == "/api/v1/users").count(), 2, "one replay");
  }

  #[tokio::test]
  async fn env_keys_and_opt_out_never_reauthorize() {
    let tmp = TempDir::new();
    let home = tmp.0.display().to_string();
    let a = auth_server("sk_valid", "sk_issued", Mode::Honest).await;
    let d = open(env(&a.srv.base, &[("HOME", &home), ("MOSTA_NET_API_KEY", "sk_env_bad"), ("MOSTA_AUTH_POLL_SCALE", "0.01")])).await.unwrap();
    let h = d.compile(USER).unwrap();
    let e = call(&d, h, "find", json!([{}])).await.unwrap_err();
    assert_eq!((e.code, e.status, e.db_code.as_deref(), e.entity.as_deref()), (Code::AuthRequired, Some(401), Some("UNAUTHORIZED"), Some("User")));
    assert!(!e.message.contains("sk_env_bad"), "the key never appears in messages");
    seed(&tmp, &a.srv.base, "sk_cached_bad");
    let d = open(env(&a.srv.base, &[("HOME", &home), ("MOSTA_NO_AUTOREGISTER", "true")])).await.unwrap();
    let h = d.compile(USER).unwrap();
    assert_eq!(call(&d, h, "find", json!([{}])).await.unwrap_err().code, Code::AuthRequired);
    assert_eq!(a.authorizations.load(Ordering::SeqCst), 0);
    // 403 is a permission error, never a re-authorization.
    let f = auth_server("x", "y", Mode::Forbidden).await;
    seed(&tmp, &f.srv.base, "sk_cached");
    let d = open(env(&f.srv.base, &[("HOME", &home), ("MOSTA_AUTH_POLL_SCALE", "0.01")])).await.unwrap();
    let h = d.compile(USER).unwrap();
    let e = call(&d, h, "find", json!([{}])).await.unwrap_err();
    assert_eq!((e.code, e.status), (Code::Forbidden, Some(403)));
    assert!(e.message.contains("scope operations:write required"));
    assert_eq!(f.authorizations.load(Ordering::SeqCst), 0);
  }
}
