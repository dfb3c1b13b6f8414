//! The pooled dialects (PostgreSQL, MariaDB/MySQL) against real servers, one suite run on
//! each: DDL layout (orm-compat.md §2), value round trips, error codes, transactions held on
//! one connection, pool timeouts, reconnects and schema strategies.
//!
//! Servers: `MOSTA_TEST_PG_URI` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! `MOSTA_TEST_MYSQL_URI` (default `mariadb://root@127.0.0.1:3306/test`). Every test makes
//! its own database and drops it afterwards. An unreachable server is skipped with one
//! `SKIP:` line, except under `CI=true`, where it fails the test.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mosta_core::dialect::{open_orm, Admin, AsyncDialect, Opened};
use mosta_core::env::{Backend, OrmConfig, SchemaStrategy};
use mosta_core::{Code, Error};
use serde_json::{json, Value};

// ------------------------------------------------------------------ servers and databases

#[derive(Debug, Clone, Copy, PartialEq)]
enum Server {
  Postgres,
  Mariadb,
}

const SERVERS: [Server; 2] = [Server::Postgres, Server::Mariadb];

impl Server {
  fn name(self) -> &'static str {
    match self {
      Server::Postgres => "postgres",
      Server::Mariadb => "mariadb",
    }
  }
  fn backend(self) -> Backend {
    match self {
      Server::Postgres => Backend::Postgres,
      Server::Mariadb => Backend::Mariadb,
    }
  }
  fn admin_uri(self) -> String {
    let (var, default) = match self {
      Server::Postgres => ("MOSTA_TEST_PG_URI", "postgres://postgres@127.0.0.1:5432/test"),
      Server::Mariadb => ("MOSTA_TEST_MYSQL_URI", "mariadb://root@127.0.0.1:3306/test"),
    };
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
  }
  /// The admin URL with its database replaced.
  fn uri_for(self, db: &str) -> String {
    let admin = self.admin_uri();
    let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
    let host_end = base.find("://").map_or(0, |i| i + 3);
    let cut = base[host_end..].find('/').map_or(base.len(), |i| host_end + i);
    let mut u = format!("{}/{db}", &base[..cut]);
    if let Some(q) = query {
      u.push('?');
      u.push_str(q);
    }
    u
  }
  /// The current schema (PostgreSQL) or database (MySQL) in catalog queries.
  fn current_schema(self) -> &'static str {
    match self {
      Server::Postgres => "current_schema()",
      Server::Mariadb => "DATABASE()",
    }
  }
  fn quote(self, ident: &str) -> String {
    match self {
      Server::Postgres => format!("\"{ident}\""),
      Server::Mariadb => format!("`{ident}`"),
    }
  }
}

fn config(server: Server, uri: String, strategy: SchemaStrategy) -> OrmConfig {
  OrmConfig { backend: server.backend(), uri, schema_strategy: strategy, table_prefix: String::new(), pool_size: None, pool_timeout_ms: 10_000, show_sql: false }
}

async fn open(c: OrmConfig) -> Result<Arc<dyn AsyncDialect>, Error> {
  match open_orm(c).await? {
    Opened::Async(d) => Ok(d),
    Opened::Sqlite(_) => panic!("a server backend opened as SQLite"),
  }
}

/// One test's database on one server.
#[derive(Clone)]
struct TestDb {
  server: Server,
  name: String,
  admin: Arc<dyn AsyncDialect>,
}

impl TestDb {
  /// Creates a uniquely named database, or `None` (after the SKIP line) when the server is
  /// unreachable outside CI.
  async fn create(server: Server, test: &str) -> Option<TestDb> {
    let admin = match open(OrmConfig { pool_size: Some(2), pool_timeout_ms: 5_000, ..config(server, server.admin_uri(), SchemaStrategy::None) }).await {
      Ok(a) => a,
      Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("{} not reachable under CI=true: {e}", server.name()),
      Err(_) => {
        println!("SKIP: {} not reachable", server.name());
        return None;
      }
    };
    let name = format!("mosta_{test}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    exec(&admin, &format!("CREATE DATABASE {}", server.quote(&name))).await.expect("create test database");
    Some(TestDb { server, name, admin })
  }

  fn uri(&self) -> String {
    self.server.uri_for(&self.name)
  }

  fn config(&self, strategy: SchemaStrategy) -> OrmConfig {
    config(self.server, self.uri(), strategy)
  }

  async fn open(&self, strategy: SchemaStrategy) -> Arc<dyn AsyncDialect> {
    open(self.config(strategy)).await.expect("open the test database")
  }

  /// Ends every session on the test database (what a DBA's kill or a server restart does).
  async fn kill_sessions(&self) {
    match self.server {
      Server::Postgres => {
        let sql = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()", self.name);
        rows(&self.admin, &sql, json!([])).await.expect("terminate backends");
      }
      Server::Mariadb => {
        let sql = format!("SELECT id AS id FROM information_schema.processlist WHERE db = '{}'", self.name);
        for r in rows(&self.admin, &sql, json!([])).await.expect("list sessions").as_array().cloned().unwrap_or_default() {
          // A session may end on its own between the listing and the KILL.
          let _ = exec(&self.admin, &format!("KILL {}", r["id"])).await;
        }
      }
    }
  }

  async fn drop_db(&self) {
    if self.server == Server::Mariadb {
      // An open transaction's metadata locks would make DROP DATABASE wait.
      self.kill_sessions().await;
    }
    let sql = match self.server {
      Server::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.server.quote(&self.name)),
      Server::Mariadb => format!("DROP DATABASE IF EXISTS {}", self.server.quote(&self.name)),
    };
    if let Err(e) = exec(&self.admin, &sql).await {
      eprintln!("could not drop test database {}: {e}", self.name);
    }
    let _ = self.admin.clone().close().await;
  }
}

/// Runs `test` once per server, each time on a fresh database that is dropped afterwards,
/// even when the test panics.
async fn on_each_server<F, Fut>(test: &str, body: F)
where
  F: Fn(TestDb) -> Fut,
  Fut: Future<Output = ()> + Send + 'static,
{
  for server in SERVERS {
    let Some(db) = TestDb::create(server, test).await else { continue };
    let outcome = tokio::spawn(body(db.clone())).await;
    db.drop_db().await;
    if let Err(e) = outcome {
      eprintln!("{test} failed on {}", server.name());
      match e.try_into_panic() {
        Ok(p) => std::panic::resume_unwind(p),
        Err(e) => panic!("{test} on {}: {e}", server.name()),
      }
    }
  }
}

// ------------------------------------------------------------------ calls

async fn exec(d: &Arc<dyn AsyncDialect>, sql: &str) -> Result<Value, Error> {
  let out = d.clone().execute(sql.to_string(), "[]".into(), false, None).await?;
  Ok(serde_json::from_str(&out).expect("executeRun result is JSON"))
}

/// Rows as the binding hands them to JavaScript: date-time columns named on a first line
/// `D[…]` hold epoch milliseconds; here they become ISO text. Shaped rows
/// (`[shape, value, …]`, alone or in a list) become their objects, with the keys `d` gives
/// for that shape.
fn parse_rows_of(d: &Arc<dyn AsyncDialect>, out: &str) -> Value {
  parse_with(out, Some(d))
}

fn parse_rows(out: &str) -> Value {
  parse_with(out, None)
}

fn parse_with(out: &str, d: Option<&Arc<dyn AsyncDialect>>) -> Value {
  let (dates, body) = match out.strip_prefix('D') {
    Some(rest) => {
      let (names, body) = rest.split_once('\n').expect("a D line ends with a newline");
      (serde_json::from_str::<Vec<String>>(names).expect("date column names"), body)
    }
    None => (Vec::new(), out),
  };
  let mut v: Value = serde_json::from_str(body).expect("rows are JSON");
  let shaped = |v: &Value| v.as_array().is_some_and(|a| a.first().is_some_and(Value::is_u64));
  let unshape = |v: &mut Value| {
    let (Some(d), true) = (d, shaped(v)) else { return };
    let list = v.as_array().unwrap();
    let keys = d.shape_keys(list[0].as_u64().unwrap() as u32).expect("a shaped row names a known shape");
    assert_eq!(keys.len(), list.len() - 1, "one value per key");
    *v = keys.iter().cloned().zip(list[1..].iter().cloned()).collect::<serde_json::Map<_, _>>().into();
  };
  let revive = |r: &mut Value| {
    for k in &dates {
      if let Some(ms) = r.get(k).and_then(Value::as_i64) {
        r[k] = Value::String(mosta_core::iso_date::iso_ms(ms));
      }
    }
  };
  if shaped(&v) {
    unshape(&mut v);
  } else if let Value::Array(list) = &mut v {
    list.iter_mut().for_each(unshape);
  }
  match &mut v {
    Value::Array(list) => list.iter_mut().for_each(revive),
    Value::Object(_) => revive(&mut v),
    _ => {}
  }
  v
}

async fn rows(d: &Arc<dyn AsyncDialect>, sql: &str, params: Value) -> Result<Value, Error> {
  let out = d.clone().execute(sql.to_string(), params.to_string(), true, None).await?;
  Ok(parse_rows(&out))
}

async fn call_in(d: &Arc<dyn AsyncDialect>, method: &str, h: u32, args: Value, tx: Option<&str>) -> Result<Value, Error> {
  let out = d.clone().call(method.to_string(), h, args.to_string(), tx.map(str::to_string)).await?;
  Ok(parse_rows_of(d, &out))
}

async fn call(d: &Arc<dyn AsyncDialect>, method: &str, h: u32, args: Value) -> Result<Value, Error> {
  call_in(d, method, h, args, None).await
}

async fn begin(d: &Arc<dyn AsyncDialect>, parent: Option<&str>, isolation: Option<&str>) -> String {
  let handle = d.clone().begin_tx(parent.map(str::to_string), isolation.map(str::to_string), false).await.expect("begin");
  let v: Value = serde_json::from_str(&handle).expect("TxHandle JSON");
  v["id"].as_str().expect("TxHandle.id").to_string()
}

async fn count(d: &Arc<dyn AsyncDialect>, h: u32, filter: Value) -> u64 {
  call(d, "count", h, json!([filter])).await.expect("count").as_u64().expect("count is a number")
}

/// Compiles schemas and runs `initSchema` on them; returns the handles in order.
async fn init(d: &Arc<dyn AsyncDialect>, schemas: &[Value]) -> Vec<u32> {
  let handles: Vec<u32> = schemas.iter().map(|s| d.compile(&s.to_string()).expect("schema compiles")).collect();
  d.clone().init_schema(handles.clone()).await.expect("initSchema");
  handles
}

fn catalog_rows(v: &Value) -> Vec<Vec<String>> {
  let text = |c: &Value| match c {
    Value::String(s) => s.clone(),
    Value::Null => "NULL".into(),
    other => other.to_string(),
  };
  v.as_array().map(|rs| rs.iter().map(|r| r.as_object().map(|o| o.values().map(text).collect()).unwrap_or_default()).collect()).unwrap_or_default()
}

// ------------------------------------------------------------------ schemas

fn category() -> Value {
  json!({"name": "Category", "collection": "categories", "fields": {"title": {"type": "string", "required": true}}})
}

fn tag() -> Value {
  json!({"name": "Tag", "collection": "tags", "fields": {"label": {"type": "string"}}})
}

/// Every field type, M2O/O2O/M2M, indexes of each kind, soft delete and timestamps.
fn product() -> Value {
  json!({
    "name": "Product", "collection": "products", "timestamps": true, "softDelete": true,
    "fields": {
      "name": {"type": "string", "required": true},
      "slug": {"type": "string", "required": true, "unique": true},
      "sku": {"type": "string", "unique": true},
      "body": {"type": "text"},
      "price": {"type": "number", "required": true},
      "stock": {"type": "number", "default": 0},
      "flag": {"type": "boolean"},
      "active": {"type": "boolean", "default": true},
      "status": {"type": "string", "default": "draft"},
      "tags": {"type": "array"},
      "metadata": {"type": "json"},
      "publishedAt": {"type": "date"},
      "seenAt": {"type": "date", "default": "now"},
      "jdef": {"type": "json", "default": {"a": 1}}
    },
    "relations": {
      "category": {"target": "Category", "type": "many-to-one"},
      "owner": {"target": "Tag", "type": "one-to-one", "required": true, "joinColumn": "ownerId", "onDelete": "cascade"},
      "labels": {"target": "Tag", "type": "many-to-many", "through": "product_tags"}
    },
    "indexes": [
      {"fields": {"status": "asc", "price": "desc"}},
      {"fields": ["name"]},
      {"fields": {"slug": "asc"}, "unique": true, "sparse": true}
    ]
  })
}

fn node() -> Value {
  json!({"name": "Node", "collection": "nodes", "fields": {"title": {"type": "string"}}, "discriminator": "_type", "discriminatorValue": "node"})
}

/// A fresh `tags` table on a dialect opened with `c`; returns the dialect and the handle.
async fn open_tags(c: OrmConfig) -> (Arc<dyn AsyncDialect>, u32) {
  let d = open(c).await.expect("open the test database");
  let h = init(&d, &[tag()]).await[0];
  (d, h)
}

fn shop() -> Vec<Value> {
  vec![category(), tag(), product(), node()]
}

/// Handles of `shop()` after `initSchema`.
struct Shop {
  category: u32,
  tag: u32,
  product: u32,
  node: u32,
}

async fn open_shop(t: &TestDb, strategy: SchemaStrategy) -> (Arc<dyn AsyncDialect>, Shop) {
  open_shop_with(t.config(strategy)).await
}

async fn open_shop_with(c: OrmConfig) -> (Arc<dyn AsyncDialect>, Shop) {
  let d = open(c).await.expect("open the test database");
  let h = init(&d, &shop()).await;
  (d, Shop { category: h[0], tag: h[1], product: h[2], node: h[3] })
}

// ------------------------------------------------------------------ layout (§2)

/// The column type the reference writes for a logical type (orm-compat.md §2.3), as the
/// catalog reports it (PostgreSQL `data_type`, MySQL `COLUMN_TYPE`).
fn spec_type(server: Server, ty: &str) -> &'static [&'static str] {
  match (server, ty) {
    (Server::Postgres, "id" | "string" | "text") => &["text"],
    (Server::Postgres, "number") => &["double precision"],
    (Server::Postgres, "boolean") => &["boolean"],
    (Server::Postgres, "date") => &["timestamp with time zone"],
    (Server::Postgres, "json") => &["jsonb"],
    (Server::Postgres, "disc") => &["character varying"],
    (Server::Mariadb, "id") => &["varchar(36)"],
    (Server::Mariadb, "string") => &["varchar(255)"],
    (Server::Mariadb, "text") => &["longtext"],
    (Server::Mariadb, "number") => &["double"],
    (Server::Mariadb, "boolean") => &["tinyint(1)"],
    (Server::Mariadb, "date") => &["datetime"],
    // MariaDB's JSON is an alias of LONGTEXT (with a json_valid CHECK); MySQL 8 has JSON.
    (Server::Mariadb, "json") => &["longtext", "json"],
    (Server::Mariadb, "disc") => &["varchar(100)"],
    _ => panic!("no spec type for {ty}"),
  }
}

async fn columns(d: &Arc<dyn AsyncDialect>, server: Server, table: &str) -> Vec<(String, String, String)> {
  let ty = if server == Server::Postgres { "data_type" } else { "column_type" };
  let sql = format!(
    "SELECT column_name AS c, {ty} AS t, is_nullable AS n FROM information_schema.columns WHERE table_schema = {} AND table_name = '{table}' ORDER BY ordinal_position",
    server.current_schema()
  );
  catalog_rows(&rows(d, &sql, json!([])).await.expect("columns")).into_iter().map(|r| (r[0].clone(), r[1].to_lowercase(), r[2].clone())).collect()
}

fn assert_columns(server: Server, table: &str, got: &[(String, String, String)], want: &[(&str, &str, bool)]) {
  let names: Vec<&str> = got.iter().map(|c| c.0.as_str()).collect();
  let want_names: Vec<&str> = want.iter().map(|c| c.0).collect();
  assert_eq!(names, want_names, "{}: column order of {table}", server.name());
  for ((name, ty, nullable), (_, want_ty, want_null)) in got.iter().zip(want) {
    assert!(spec_type(server, want_ty).contains(&ty.as_str()), "{}: {table}.{name} is {ty}, spec says {want_ty}", server.name());
    assert_eq!(nullable == "YES", *want_null, "{}: {table}.{name} nullability", server.name());
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_layout_matches_the_reference() {
  on_each_server("layout", |t| async move {
    let (d, _) = open_shop(&t, SchemaStrategy::Create).await;
    let s = t.server;
    assert_columns(
      s,
      "products",
      &columns(&d, s, "products").await,
      &[
        ("id", "id", false),
        ("name", "string", false),
        ("slug", "string", false),
        ("sku", "string", true),
        ("body", "text", true),
        ("price", "number", false),
        ("stock", "number", true),
        ("flag", "boolean", true),
        ("active", "boolean", true),
        ("status", "string", true),
        ("tags", "json", true),
        ("metadata", "json", true),
        ("publishedAt", "date", true),
        ("seenAt", "date", true),
        ("jdef", "json", true),
        ("category", "id", true),
        ("ownerId", "id", false),
        ("createdAt", "date", true),
        ("updatedAt", "date", true),
        ("deletedAt", "date", true),
      ],
    );
    assert_columns(s, "product_tags", &columns(&d, s, "product_tags").await, &[("productId", "id", false), ("tagId", "id", false)]);
    assert_columns(s, "nodes", &columns(&d, s, "nodes").await, &[("id", "id", false), ("title", "string", true), ("_type", "disc", false)]);
    if s == Server::Postgres {
      let typ = rows(&d, "SELECT character_maximum_length AS l FROM information_schema.columns WHERE table_name = 'nodes' AND column_name = '_type'", json!([])).await.unwrap();
      assert_eq!(typ[0]["l"], 100);
    }

    // DEFAULT clauses (§2.4): none for booleans on PostgreSQL, none for 'now'.
    let defaults = catalog_rows(
      &rows(&d, &format!("SELECT column_name AS c, column_default AS d FROM information_schema.columns WHERE table_schema = {} AND table_name = 'products' ORDER BY ordinal_position", s.current_schema()), json!([]))
        .await
        .unwrap(),
    );
    let default_of = |c: &str| defaults.iter().find(|r| r[0] == c).map(|r| r[1].clone()).unwrap_or_default();
    assert!(default_of("status").contains("draft"), "{}: status default {}", s.name(), default_of("status"));
    assert!(default_of("stock").starts_with('0') || default_of("stock").starts_with("'0"), "{}: stock default {}", s.name(), default_of("stock"));
    assert!(default_of("jdef").contains("{\"a\":1}") || default_of("jdef").contains("{\"a\": 1}"), "{}: jdef default {}", s.name(), default_of("jdef"));
    assert_eq!(default_of("seenAt"), "NULL", "{}: 'now' has no DDL default", s.name());
    match s {
      Server::Postgres => assert_eq!(default_of("active"), "NULL"),
      Server::Mariadb => assert_eq!(default_of("active"), "1"),
    }

    // Named foreign keys with their ON DELETE actions (§2.5), junction FKs included.
    let fks = catalog_rows(
      &rows(
        &d,
        &format!("SELECT constraint_name AS n, delete_rule AS r FROM information_schema.referential_constraints WHERE constraint_schema = {}", s.current_schema()),
        json!([]),
      )
      .await
      .unwrap(),
    );
    let mut fks = fks;
    fks.sort();
    assert_eq!(
      fks,
      vec![
        vec!["fk_product_tags_productId".to_string(), "CASCADE".to_string()],
        vec!["fk_product_tags_tagId".to_string(), "CASCADE".to_string()],
        vec!["fk_products_category".to_string(), "SET NULL".to_string()],
        vec!["fk_products_ownerId".to_string(), "CASCADE".to_string()],
      ],
      "{}: foreign keys",
      s.name()
    );

    // The junction's composite primary key.
    let pk = catalog_rows(
      &rows(
        &d,
        &format!(
          "SELECT k.column_name AS c FROM information_schema.table_constraints t JOIN information_schema.key_column_usage k \
           ON k.constraint_name = t.constraint_name AND k.table_name = t.table_name AND k.constraint_schema = t.constraint_schema \
           WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_name = 'product_tags' AND t.constraint_schema = {} ORDER BY k.ordinal_position",
          s.current_schema()
        ),
        json!([]),
      )
      .await
      .unwrap(),
    );
    assert_eq!(pk, vec![vec!["productId".to_string()], vec!["tagId".to_string()]], "{}: junction primary key", s.name());

    // Index names and shapes (§2.6).
    match s {
      Server::Postgres => {
        let idx = catalog_rows(&rows(&d, "SELECT indexname AS n, indexdef AS d FROM pg_indexes WHERE tablename = 'products' ORDER BY indexname", json!([])).await.unwrap());
        let def = |n: &str| idx.iter().find(|r| r[0] == n).map(|r| r[1].clone()).unwrap_or_else(|| panic!("postgres: index {n} missing: {idx:?}"));
        assert!(def("idx_products_0").contains("(status, price DESC)"), "{}", def("idx_products_0"));
        assert!(def("idx_products_1").contains("(name)"));
        assert!(def("idx_products_2").starts_with("CREATE UNIQUE INDEX") && def("idx_products_2").contains("WHERE (\"deletedAt\" IS NULL)"), "{}", def("idx_products_2"));
        // slug's explicit unique index covers it; sku gets the automatic partial index.
        assert!(def("uidx_products_sku_softdelete").contains("(sku) WHERE (\"deletedAt\" IS NULL)"));
        assert!(!idx.iter().any(|r| r[0] == "uidx_products_slug_softdelete"));
      }
      Server::Mariadb => {
        let idx = catalog_rows(
          &rows(
            &d,
            "SELECT index_name AS n, column_name AS c, non_unique AS u, collation AS o FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = 'products' ORDER BY index_name, seq_in_index",
            json!([]),
          )
          .await
          .unwrap(),
        );
        let of = |n: &str| idx.iter().filter(|r| r[0] == n).map(|r| format!("{}:{}:{}", r[1], r[2], r[3])).collect::<Vec<_>>();
        assert_eq!(of("idx_products_0"), vec!["status:1:A", "price:1:D"]);
        assert_eq!(of("idx_products_1"), vec!["name:1:A"]);
        assert_eq!(of("idx_products_2"), vec!["slug:0:A"]);
        // MySQL keeps soft-deleted uniques inline; no partial indexes exist there.
        assert_eq!(of("slug"), vec!["slug:0:A"]);
        assert_eq!(of("sku"), vec!["sku:0:A"]);
        assert_eq!(of("ownerId"), vec!["ownerId:0:A"]);
        assert!(!idx.iter().any(|r| r[0].starts_with("uidx_")));
        let create = rows(&d, "SHOW CREATE TABLE `products`", json!([])).await.unwrap();
        let ddl = create[0]["Create Table"].as_str().unwrap_or_default().to_string();
        assert!(ddl.contains("`price` double NOT NULL"), "{ddl}");
        assert!(ddl.contains("`flag` tinyint(1) DEFAULT NULL"), "{ddl}");
        assert!(ddl.contains("`publishedAt` datetime DEFAULT NULL"), "{ddl}");
        assert!(ddl.contains("CONSTRAINT `fk_products_ownerId` FOREIGN KEY (`ownerId`) REFERENCES `tags` (`id`) ON DELETE CASCADE"), "{ddl}");
      }
    }
    d.close().await.unwrap();
  })
  .await;
}

// ------------------------------------------------------------------ values (§4)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_type_round_trips() {
  on_each_server("values", |t| async move {
    // One connection: statements prepared by one call are the ones the next call reuses.
    let (d, h) = open_shop_with(OrmConfig { pool_size: Some(1), ..t.config(SchemaStrategy::Create) }).await;
    let s = t.server;
    let cat = call(&d, "create", h.category, json!([{"title": "Tools"}])).await.unwrap();
    let owner = call(&d, "create", h.tag, json!([{"label": "owner"}])).await.unwrap();
    let red = call(&d, "create", h.tag, json!([{"label": "red"}])).await.unwrap();
    let meta = json!({"k": [1, 2], "s": "é\"'\\", "n": null, "nested": {"z": 1, "a": 2}});
    let p = call(
      &d,
      "create",
      h.product,
      json!([{
        "name": "Hammer", "slug": "hammer", "body": "line 1\nline 2 ✓", "price": 12.5, "flag": false,
        "tags": ["x", "y"], "metadata": meta, "publishedAt": "2024-01-02T03:04:05.678Z",
        "category": cat["id"], "owner": owner["id"], "labels": [red["id"]]
      }]),
    )
    .await
    .unwrap();
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(p["name"], "Hammer");
    assert_eq!(p["body"], "line 1\nline 2 ✓");
    assert_eq!(p["price"], 12.5);
    assert_eq!(p["stock"], 0);
    assert_eq!(p["flag"], false);
    assert_eq!(p["active"], true);
    assert_eq!(p["status"], "draft");
    assert_eq!(p["tags"], json!(["x", "y"]));
    assert_eq!(p["metadata"], meta);
    assert_eq!(p["jdef"], json!({"a": 1}));
    assert_eq!(p["category"], cat["id"]);
    assert_eq!(p["ownerId"], owner["id"]);
    assert_eq!(p["labels"], json!([]));
    assert_eq!(p["deletedAt"], Value::Null);
    // Dates come back as ISO text: PostgreSQL keeps milliseconds, MySQL DATETIME seconds.
    let want_date = match s {
      Server::Postgres => "2024-01-02T03:04:05.678Z",
      Server::Mariadb => "2024-01-02T03:04:05.000Z",
    };
    assert_eq!(p["publishedAt"], want_date, "{}", s.name());
    for k in ["seenAt", "createdAt", "updatedAt"] {
      let v = p[k].as_str().unwrap_or_else(|| panic!("{}: {k} missing", s.name()));
      assert!(v.len() == 24 && v.ends_with('Z'), "{}: {k} = {v}", s.name());
    }
    // Key order: the table's column order, then the M2M keys.
    let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(&keys[..3], &["id", "name", "slug"]);
    assert_eq!(keys.last(), Some(&"labels"));

    // Relations populate.
    let full = call(&d, "findByIdWithRelations", h.product, json!([id, ["category", "owner", "labels"]])).await.unwrap();
    assert_eq!(full["category"]["title"], "Tools");
    assert_eq!(full["owner"]["label"], "owner");
    assert_eq!(full["labels"][0]["label"], "red");

    // Updates: a boolean to true, a date, JSON. Then the same SQL bound first with an
    // integer, then with a float: the second must not run with the first one's parameter
    // types (PostgreSQL would read the float's bytes as an integer).
    let u = call(&d, "update", h.product, json!([id, {"flag": true, "publishedAt": "2025-06-30T23:59:59.999Z", "metadata": [1, "two"], "price": 10}])).await.unwrap();
    assert_eq!(u["flag"], true);
    assert_eq!(u["metadata"], json!([1, "two"]));
    assert_eq!(u["price"], 10);
    assert_eq!(count(&d, h.product, json!({"price": 10})).await, 1);
    assert_eq!(count(&d, h.product, json!({"price": {"$lt": 11}})).await, 1);
    assert_eq!(count(&d, h.product, json!({"price": {"$lt": 9.5}})).await, 0);
    assert_eq!(count(&d, h.product, json!({"price": {"$gt": 9.5}})).await, 1);
    assert_eq!(count(&d, h.product, json!({"flag": true})).await, 1);
    assert_eq!(count(&d, h.product, json!({"publishedAt": {"$gt": "2025-01-01T00:00:00.000Z"}})).await, 1);
    assert_eq!(count(&d, h.product, json!({"name": {"$regex": "^ham", "$regexFlags": "i"}})).await, 1);

    // Aggregates come back as numbers on every backend.
    call(&d, "create", h.product, json!([{"name": "Saw", "slug": "saw", "price": 4, "owner": red["id"], "status": "draft"}])).await.unwrap();
    let agg = call(&d, "aggregate", h.product, json!([[{"$group": {"_by": "status", "n": {"$count": true}, "total": {"$sum": "price"}, "avg": {"$avg": "price"}, "ones": {"$sum": 1}}}]])).await.unwrap();
    assert_eq!(agg, json!([{"status": "draft", "n": 2, "total": 14, "avg": 7, "ones": 2}]), "{}", s.name());
    let raw = rows(&d, "SELECT COUNT(*) AS c, SUM(price) AS s FROM products", json!([])).await.unwrap();
    assert_eq!(raw, json!([{"c": 2, "s": 14}]), "{}", s.name());
    assert_eq!(call(&d, "distinct", h.product, json!(["status"])).await.unwrap(), json!(["draft"]));

    // Raw parameters keep their JSON types; NULLs take the column's type.
    let ph = |n: usize| if s == Server::Postgres { format!("${n}") } else { "?".to_string() };
    let r = exec(&d, "UPDATE products SET body = NULL WHERE slug = 'saw'").await.unwrap();
    assert_eq!(r["changes"], 1);
    let sql = format!("UPDATE products SET stock = {}, sku = {} WHERE slug = {}", ph(1), ph(2), ph(3));
    let r = d.clone().execute(sql.clone(), json!([null, null, "saw"]).to_string(), false, None).await.unwrap();
    assert_eq!(r, r#"{"changes":1}"#);
    let r = d.clone().execute(sql, json!([3.5, "S-1", "saw"]).to_string(), false, None).await.unwrap();
    assert_eq!(r, r#"{"changes":1}"#);
    let same = format!("SELECT {} AS v", if s == Server::Postgres { "$1::text" } else { "CAST(? AS CHAR)" });
    for (arg, want) in [(json!(null), json!(null)), (json!(5), json!("5")), (json!("x"), json!("x")), (json!(true), json!(if s == Server::Postgres { "true" } else { "1" }))] {
      assert_eq!(rows(&d, &same, json!([arg])).await.unwrap(), json!([{"v": want}]), "{}: {arg}", s.name());
    }
    // Matched rows count, even when nothing changes (MySQL's CLIENT_FOUND_ROWS).
    assert_eq!(call(&d, "updateMany", h.product, json!([{"slug": "saw"}, {"stock": 3.5}])).await.unwrap(), 1);

    // Soft delete, discriminator, hard delete with junction rows.
    assert_eq!(call(&d, "delete", h.product, json!([id])).await.unwrap(), true);
    assert_eq!(call(&d, "findById", h.product, json!([id])).await.unwrap(), Value::Null);
    assert_eq!(count(&d, h.product, json!({})).await, 1);
    let n = call(&d, "create", h.node, json!([{"title": "n1"}])).await.unwrap();
    assert_eq!(n["_type"], "node");
    assert_eq!(call(&d, "deleteMany", h.tag, json!([{"label": "nobody"}])).await.unwrap(), 0);
    d.close().await.unwrap();
  })
  .await;
}

// ------------------------------------------------------------------ errors

fn expect_err(r: Result<Value, Error>, code: Code, what: &str) -> Error {
  match r {
    Ok(v) => panic!("{what}: expected {}, got {v}", code.as_str()),
    Err(e) => {
      assert_eq!(e.code, code, "{what}: {e}");
      e
    }
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_map_to_codes_with_db_code() {
  on_each_server("errors", |t| async move {
    let (d, h) = open_shop(&t, SchemaStrategy::Create).await;
    let s = t.server;
    let owner = call(&d, "create", h.tag, json!([{"label": "o"}])).await.unwrap();
    call(&d, "create", h.product, json!([{"name": "A", "slug": "a", "price": 1, "owner": owner["id"]}])).await.unwrap();
    let other = call(&d, "create", h.tag, json!([{"label": "o2"}])).await.unwrap();

    let e = expect_err(call(&d, "create", h.product, json!([{"name": "B", "slug": "a", "price": 1, "owner": other["id"]}])).await, Code::Unique, "duplicate slug");
    assert_eq!(e.db_code.as_deref(), Some(if s == Server::Postgres { "23505" } else { "1062" }));
    assert_eq!(e.field.as_deref(), Some("slug"), "{}: {e:?}", s.name());
    assert_eq!(e.entity.as_deref(), Some("Product"));

    // A required column left out of the INSERT (MySQL: strict sql_mode), then given null.
    let e = expect_err(call(&d, "create", h.product, json!([{"slug": "b", "price": 1, "owner": other["id"]}])).await, Code::NotNull, "missing name");
    assert_eq!(e.db_code.as_deref(), Some(if s == Server::Postgres { "23502" } else { "1364" }));
    assert_eq!(e.field.as_deref(), Some("name"));
    let e = expect_err(call(&d, "create", h.product, json!([{"name": null, "slug": "b", "price": 1, "owner": other["id"]}])).await, Code::NotNull, "null name");
    assert_eq!(e.db_code.as_deref(), Some(if s == Server::Postgres { "23502" } else { "1048" }));
    assert_eq!(e.field.as_deref(), Some("name"));

    let e = expect_err(call(&d, "create", h.product, json!([{"name": "C", "slug": "c", "price": 1, "owner": other["id"], "category": "nope"}])).await, Code::ForeignKey, "unknown category");
    assert_eq!(e.db_code.as_deref(), Some(if s == Server::Postgres { "23503" } else { "1452" }));
    assert_eq!(e.field.as_deref(), Some("category"));

    let e = expect_err(call(&d, "find", h.product, json!([{"nope": 1}])).await, Code::UnknownColumn, "unknown column");
    assert_eq!(e.db_code.as_deref(), Some(if s == Server::Postgres { "42703" } else { "1054" }));
    assert_eq!(e.field.as_deref(), Some("nope"));
    let e = expect_err(rows(&d, "SELECT * FROM no_such_table", json!([])).await, Code::Schema, "unknown table");
    assert_eq!(e.db_code.as_deref(), Some(if s == Server::Postgres { "42P01" } else { "1146" }));

    // The failures above left the pool healthy.
    assert_eq!(count(&d, h.product, json!({})).await, 1);
    d.clone().close().await.unwrap();
    let e = expect_err(call(&d, "count", h.product, json!([{}])).await, Code::Closed, "after close");
    assert!(e.message.contains("disconnected"));
  })
  .await;
}

/// `uri` with `pw` as the password of its user, and `query` appended.
fn with_password_and_query(uri: &str, pw: &str, query: &str) -> String {
  let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
  let (user_info, host) = rest.rsplit_once('@').unwrap_or(("", rest));
  let user = user_info.split(':').next().unwrap_or("");
  let mut u = format!("{scheme}://{user}:{pw}@{host}");
  if !query.is_empty() {
    u.push(if u.contains('?') { '&' } else { '?' });
    u.push_str(query);
  }
  u
}

fn unreachable(server: Server) {
  assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{} not reachable under CI=true", server.name());
  println!("SKIP: {} not reachable", server.name());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_never_show_the_password() {
  for server in SERVERS {
    let scheme = if server == Server::Postgres { "postgres" } else { "mysql" };
    // Nothing listens on port 9.
    let c = OrmConfig { pool_timeout_ms: 3_000, ..config(server, format!("{scheme}://u:Hunter2%40x@127.0.0.1:9/db"), SchemaStrategy::None) };
    let e = open(c).await.err().expect("connecting to a closed port fails");
    assert_eq!(e.code, Code::Connection, "{}: {e}", server.name());
    assert!(!e.message.contains("Hunter2") && e.message.contains("u:****@127.0.0.1:9"), "{}: {}", server.name(), e.message);
    let e = open(config(server, format!("{scheme}://u:Hunter2@127.0.0.1:9/db?sslmode=bogus"), SchemaStrategy::None)).await.err().expect("a bad sslmode fails");
    assert_eq!(e.code, Code::Config, "{}: {e}", server.name());
    assert!(!e.message.contains("Hunter2") && e.message.contains("SGBD_URI"), "{}", e.message);

    let Ok(admin) = open(config(server, server.admin_uri(), SchemaStrategy::None)).await else {
      unreachable(server);
      continue;
    };
    // A wrong password: E_CONNECTION with the server's code, and no password in the text.
    match open(config(server, with_password_and_query(&server.admin_uri(), "wrong-secret", ""), SchemaStrategy::None)).await {
      Ok(d) => {
        // Trust authentication (the local PostgreSQL) ignores passwords.
        let _ = d.close().await;
      }
      Err(e) => {
        assert_eq!(e.code, Code::Connection, "{e}");
        assert_eq!(e.db_code.as_deref(), Some(if server == Server::Postgres { "28P01" } else { "1045" }), "{e:?}");
        assert!(!e.message.contains("wrong-secret"), "{}", e.message);
      }
    }
    match server {
      Server::Postgres => {
        let ssl = rows(&admin, "SHOW ssl", json!([])).await.unwrap();
        if ssl[0]["ssl"] == "on" {
          // TLS through rustls: encryption without verification works; the server's
          // self-signed certificate fails verification.
          let d = open(config(server, with_password_and_query(&server.admin_uri(), "x", "sslmode=require"), SchemaStrategy::None)).await.expect("sslmode=require");
          let v = rows(&d, "SELECT ssl AS s FROM pg_stat_ssl WHERE pid = pg_backend_pid()", json!([])).await.unwrap();
          assert_eq!(v[0]["s"], true, "the connection is encrypted");
          let _ = d.close().await;
          let e = open(config(server, with_password_and_query(&server.admin_uri(), "x", "sslmode=verify-full"), SchemaStrategy::None)).await.err();
          assert_eq!(e.map(|e| e.code), Some(Code::Connection), "a self-signed certificate fails verify-full");
        }
      }
      Server::Mariadb => {
        let have_ssl = rows(&admin, "SELECT @@have_ssl AS s", json!([])).await.unwrap();
        if have_ssl[0]["s"] != "YES" {
          let e = open(config(server, format!("{}?ssl-mode=REQUIRED", server.admin_uri()), SchemaStrategy::None)).await.err().expect("TLS required by a server without TLS");
          assert_eq!(e.code, Code::Connection, "{e}");
        }
      }
    }
    let _ = admin.close().await;
  }
}

// ------------------------------------------------------------------ transactions (§8)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transactions_keep_exactly_the_committed_rows() {
  on_each_server("concurrent", |t| async move {
    let (d, h) = open_tags(t.config(SchemaStrategy::Create)).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
      let d = d.clone();
      tasks.push(tokio::spawn(async move {
        let tx = begin(&d, None, None).await;
        call_in(&d, "create", h, json!([{"label": format!("t{i}")}]), Some(&tx)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5 * (i % 4))).await;
        call_in(&d, "create", h, json!([{"label": format!("t{i}b")}]), Some(&tx)).await.unwrap();
        // Inside the transaction its own rows are visible.
        let mine = call_in(&d, "count", h, json!([{"label": {"$in": [format!("t{i}"), format!("t{i}b")]}}]), Some(&tx)).await.unwrap();
        assert_eq!(mine, 2);
        if i % 3 == 0 {
          d.clone().rollback_tx(tx).await.unwrap();
          false
        } else {
          d.clone().commit_tx(tx).await.unwrap();
          true
        }
      }));
    }
    let mut committed = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
      if task.await.unwrap() {
        committed.push(i);
      }
    }
    assert_eq!(count(&d, h, json!({})).await as usize, committed.len() * 2, "{}", t.server.name());
    for i in 0..20 {
      let n = count(&d, h, json!({"label": format!("t{i}")})).await;
      assert_eq!(n, committed.contains(&i) as u64, "{}: t{i}", t.server.name());
    }
    d.close().await.unwrap();
  })
  .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_savepoints_roll_back_independently() {
  on_each_server("savepoints", |t| async move {
    let (d, h) = open_tags(t.config(SchemaStrategy::Create)).await;
    let root = begin(&d, None, None).await;
    call_in(&d, "create", h, json!([{"label": "a"}]), Some(&root)).await.unwrap();
    let sp1 = begin(&d, Some(&root), None).await;
    call_in(&d, "create", h, json!([{"label": "b"}]), Some(&sp1)).await.unwrap();
    let sp2 = begin(&d, Some(&sp1), None).await;
    call_in(&d, "create", h, json!([{"label": "c"}]), Some(&sp2)).await.unwrap();
    d.clone().commit_tx(sp2).await.unwrap();
    d.clone().rollback_tx(sp1).await.unwrap();
    let sp3 = begin(&d, Some(&root), None).await;
    call_in(&d, "create", h, json!([{"label": "d"}]), Some(&sp3)).await.unwrap();
    // A failing write inside a savepoint: rolling that savepoint back keeps the rest (on
    // PostgreSQL it also clears the aborted state the failure left).
    let sp4 = begin(&d, Some(&sp3), None).await;
    call_in(&d, "create", h, json!([{"id": "fixed", "label": "e"}]), Some(&sp4)).await.unwrap();
    expect_err(call_in(&d, "create", h, json!([{"id": "fixed", "label": "again"}]), Some(&sp4)).await, Code::Unique, "duplicate id in a savepoint");
    d.clone().rollback_tx(sp4).await.unwrap();
    d.clone().commit_tx(sp3).await.unwrap();
    // Outside the transaction nothing is visible yet.
    assert_eq!(count(&d, h, json!({})).await, 0);
    d.clone().commit_tx(root).await.unwrap();
    let labels = call(&d, "distinct", h, json!(["label"])).await.unwrap();
    let mut labels: Vec<String> = labels.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    labels.sort();
    assert_eq!(labels, vec!["a", "d"], "{}", t.server.name());
    d.close().await.unwrap();
  })
  .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_levels_are_applied() {
  on_each_server("isolation", |t| async move {
    // One connection, so every transaction below runs on the same session.
    let (d, h) = open_tags(OrmConfig { pool_size: Some(1), ..t.config(SchemaStrategy::Create) }).await;
    call(&d, "create", h, json!([{"label": "seed"}])).await.unwrap();
    // The level the server reports for the transaction in progress.
    let level_sql = match t.server {
      Server::Postgres => "SELECT current_setting('transaction_isolation') AS l",
      Server::Mariadb => "SELECT trx_isolation_level AS l FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()",
    };
    let level_in = |tx: String| {
      let d = d.clone();
      async move {
        // A first read makes InnoDB start the transaction (START TRANSACTION is lazy).
        call_in(&d, "count", h, json!([{}]), Some(&tx)).await.unwrap();
        // information_schema.innodb_trx is a snapshot refreshed at most every 100 ms.
        if t.server == Server::Mariadb {
          tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let out = d.clone().execute(level_sql.to_string(), "[]".into(), true, Some(tx)).await.unwrap();
        let v = parse_rows(&out);
        v[0]["l"].as_str().unwrap_or_default().to_ascii_uppercase()
      }
    };
    for level in ["READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"] {
      let tx = begin(&d, None, Some(level)).await;
      assert_eq!(level_in(tx.clone()).await, level, "{}", t.server.name());
      d.clone().commit_tx(tx).await.unwrap();
    }
    // The level applied to that one transaction only: the pooled connection is back to the
    // server's default (PostgreSQL READ COMMITTED, InnoDB REPEATABLE READ).
    let tx = begin(&d, None, None).await;
    let default = if t.server == Server::Postgres { "READ COMMITTED" } else { "REPEATABLE READ" };
    assert_eq!(level_in(tx.clone()).await, default, "{}", t.server.name());
    d.clone().commit_tx(tx).await.unwrap();
    d.close().await.unwrap();
    // And the levels behave: a snapshot level does not see rows committed meanwhile.
    let d = t.open(SchemaStrategy::None).await;
    let h = d.compile(&tag().to_string()).unwrap();
    for (level, sees_new_rows) in [("READ COMMITTED", true), ("REPEATABLE READ", false)] {
      let tx = begin(&d, None, Some(level)).await;
      let before = call_in(&d, "count", h, json!([{}]), Some(&tx)).await.unwrap().as_u64().unwrap();
      call(&d, "create", h, json!([{"label": level}])).await.unwrap();
      let after = call_in(&d, "count", h, json!([{}]), Some(&tx)).await.unwrap().as_u64().unwrap();
      assert_eq!(after == before + 1, sees_new_rows, "{}: {level} saw {before} then {after}", t.server.name());
      d.clone().commit_tx(tx).await.unwrap();
    }
    let bad = d.clone().begin_tx(None, Some("CHAOS".into()), false).await.expect_err("unknown isolation");
    assert_eq!(bad.code, Code::InvalidArgument);
    d.close().await.unwrap();
  })
  .await;
}

// ------------------------------------------------------------------ pool

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_times_out_with_e_pool_timeout() {
  on_each_server("pooltimeout", |t| async move {
    let (d, h) = open_tags(OrmConfig { pool_size: Some(1), pool_timeout_ms: 400, ..t.config(SchemaStrategy::Create) }).await;
    let tx = begin(&d, None, None).await;
    let started = Instant::now();
    let e = expect_err(call(&d, "count", h, json!([{}])).await, Code::PoolTimeout, "second call on a pool of one");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(350) && waited < Duration::from_secs(5), "{}: waited {waited:?}", t.server.name());
    assert!(e.message.contains("DB_POOL_TIMEOUT_MS"), "{}", e.message);
    // The transaction's own calls still run.
    call_in(&d, "create", h, json!([{"label": "x"}]), Some(&tx)).await.unwrap();
    d.clone().commit_tx(tx).await.unwrap();
    assert_eq!(count(&d, h, json!({})).await, 1);
    // disconnect() with a transaction left open returns instead of waiting for it forever.
    let abandoned = begin(&d, None, None).await;
    call_in(&d, "create", h, json!([{"label": "abandoned"}]), Some(&abandoned)).await.unwrap();
    let started = Instant::now();
    d.close().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "{}: close took {:?}", t.server.name(), started.elapsed());
  })
  .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_are_replaced_and_interrupted_transactions_roll_back() {
  on_each_server("reconnect", |t| async move {
    let (d, h) = open_tags(OrmConfig { pool_size: Some(3), ..t.config(SchemaStrategy::Create) }).await;
    call(&d, "create", h, json!([{"label": "before"}])).await.unwrap();
    // Idle pooled connections killed by the server: the next call gets a fresh one.
    t.kill_sessions().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(&d, h, json!({})).await, 1, "{}", t.server.name());
    call(&d, "create", h, json!([{"label": "after"}])).await.unwrap();

    // A transaction whose connection dies: its write is never applied.
    let tx = begin(&d, None, None).await;
    call_in(&d, "create", h, json!([{"label": "lost"}]), Some(&tx)).await.unwrap();
    t.kill_sessions().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = expect_err(call_in(&d, "create", h, json!([{"label": "lost2"}]), Some(&tx)).await, Code::Connection, "write on a killed transaction");
    assert!(!e.message.is_empty());
    let _ = d.clone().rollback_tx(tx).await;
    assert_eq!(count(&d, h, json!({"label": {"$in": ["lost", "lost2"]}})).await, 0, "{}", t.server.name());
    assert_eq!(count(&d, h, json!({})).await, 2);
    assert_eq!(d.clone().admin(Admin::TestConnection, None).await.unwrap(), "true");
    d.close().await.unwrap();
  })
  .await;
}

// ------------------------------------------------------------------ strategies (§3)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_drops_referenced_parents_and_their_data() {
  on_each_server("create", |t| async move {
    let (d, h) = open_shop(&t, SchemaStrategy::Create).await;
    let cat = call(&d, "create", h.category, json!([{"title": "old"}])).await.unwrap();
    let owner = call(&d, "create", h.tag, json!([{"label": "old"}])).await.unwrap();
    call(&d, "create", h.product, json!([{"name": "old", "slug": "old", "price": 1, "category": cat["id"], "owner": owner["id"], "labels": [owner["id"]]}]))
      .await
      .unwrap();
    d.close().await.unwrap();
    // A second boot with `create`: parents (categories, tags) are referenced by products and
    // the junction; they must still be dropped and recreated empty (§12.2 #7).
    let (d, h) = open_shop(&t, SchemaStrategy::Create).await;
    for (handle, what) in [(h.category, "categories"), (h.tag, "tags"), (h.product, "products")] {
      assert_eq!(count(&d, handle, json!({})).await, 0, "{}: {what} kept old rows", t.server.name());
    }
    let junction = rows(&d, "SELECT COUNT(*) AS n FROM product_tags", json!([])).await.unwrap();
    assert_eq!(junction[0]["n"], 0);
    // The foreign keys are back after the re-creation.
    let owner = call(&d, "create", h.tag, json!([{"label": "new"}])).await.unwrap();
    let e = expect_err(call(&d, "create", h.product, json!([{"name": "n", "slug": "n", "price": 1, "owner": owner["id"], "category": "ghost"}])).await, Code::ForeignKey, "FK after create");
    assert_eq!(e.field.as_deref(), Some("category"));
    d.close().await.unwrap();
  })
  .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_adds_missing_columns_and_foreign_keys_without_losing_rows() {
  on_each_server("update", |t| async move {
    let v1 = json!({"name": "Post", "collection": "posts", "fields": {"title": {"type": "string"}}});
    let d = t.open(SchemaStrategy::Update).await;
    let post = init(&d, &[v1]).await[0];
    let p = call(&d, "create", post, json!([{"title": "kept"}])).await.unwrap();
    // A statement cached on this pool's connections reads the old table shape.
    assert_eq!(call(&d, "find", post, json!([{}])).await.unwrap().as_array().unwrap().len(), 1);

    let author = json!({"name": "Author", "collection": "authors", "fields": {"name": {"type": "string"}}});
    let v2 = json!({
      "name": "Post", "collection": "posts", "timestamps": true,
      "fields": {"title": {"type": "string"}, "views": {"type": "number"}, "meta": {"type": "json"}},
      "relations": {"author": {"target": "Author", "type": "many-to-one"}}
    });
    let d2 = t.open(SchemaStrategy::Update).await;
    let h = init(&d2, &[author, v2]).await;
    let cols: Vec<String> = columns(&d2, t.server, "posts").await.into_iter().map(|c| c.0).collect();
    assert_eq!(cols, vec!["id", "title", "views", "meta", "author", "createdAt", "updatedAt"], "{}", t.server.name());
    let fks = rows(
      &d2,
      &format!("SELECT constraint_name AS n FROM information_schema.referential_constraints WHERE constraint_schema = {}", t.server.current_schema()),
      json!([]),
    )
    .await
    .unwrap();
    assert_eq!(fks, json!([{"n": "fk_posts_author"}]), "{}", t.server.name());
    let kept = call(&d2, "findById", h[1], json!([p["id"]])).await.unwrap();
    assert_eq!(kept["title"], "kept");
    assert_eq!(kept["views"], Value::Null);
    let a = call(&d2, "create", h[0], json!([{"name": "ann"}])).await.unwrap();
    let u = call(&d2, "update", h[1], json!([p["id"], {"views": 3, "meta": {"x": true}, "author": a["id"]}])).await.unwrap();
    assert_eq!((u["views"].clone(), u["meta"].clone(), u["author"].clone()), (json!(3), json!({"x": true}), a["id"].clone()));
    expect_err(call(&d2, "update", h[1], json!([p["id"], {"author": "ghost"}])).await, Code::ForeignKey, "new FK enforced");

    // The first pool's cached `SELECT *` sees the new columns (re-prepared, not an error).
    let again = call(&d, "find", post, json!([{}])).await.unwrap();
    assert_eq!(again[0]["views"], 3, "{}", t.server.name());
    d.close().await.unwrap();
    d2.close().await.unwrap();
  })
  .await;
}
