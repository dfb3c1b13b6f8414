//! The HTTP client of NET mode and of the device flow: one keep-alive reqwest client per
//! base URL and settings, timeouts, retries of idempotent reads, and typed errors. It knows
//! nothing of dialect methods; `dialect::net` turns requests into `HttpCall`s.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Url;
use serde_json::Value;

use super::envelope::http_error;
use super::retry::{jitter, Outcome, RetryPolicy};
use crate::env::{HttpSettings, ProxyEnv};
use crate::error::{Code, Error, Result};

/// Sent on every request, so server logs can tell our traffic apart.
pub const USER_AGENT: &str = concat!("mostajs-data-plug/", env!("CARGO_PKG_VERSION"), " (rust)");

/// Below the server's `Keep-Alive: timeout=72`, so we never reuse a socket the server is
/// about to close (net-protocol.md §1.1, §5).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle sockets kept per host; busy ones are not limited by reqwest.
pub const POOL_MAX_IDLE_PER_HOST: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
  Get,
  Post,
  Put,
  Delete,
}

impl Method {
  pub fn as_str(self) -> &'static str {
    match self {
      Method::Get => "GET",
      Method::Post => "POST",
      Method::Put => "PUT",
      Method::Delete => "DELETE",
    }
  }
  fn reqwest(self) -> reqwest::Method {
    match self {
      Method::Get => reqwest::Method::GET,
      Method::Post => reqwest::Method::POST,
      Method::Put => reqwest::Method::PUT,
      Method::Delete => reqwest::Method::DELETE,
    }
  }
}

/// A request body with its content type. Requests without one send no `Content-Type`:
/// Fastify answers 400 to a JSON content type with an empty body (§1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
  pub content_type: &'static str,
  pub bytes: Vec<u8>,
}

impl Body {
  pub fn json(v: &Value) -> Self {
    Body { content_type: "application/json", bytes: v.to_string().into_bytes() }
  }
  pub fn form(pairs: &[(&str, &str)]) -> Self {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
      s.append_pair(k, v);
    }
    Body { content_type: "application/x-www-form-urlencoded", bytes: s.finish().into_bytes() }
  }
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct HttpCall {
  pub method: Method,
  pub url: Url,
  pub body: Option<Body>,
  /// Sent as `X-API-Key`, as the reference NetClient does. Never logged.
  pub api_key: Option<String>,
  /// Reads that may run twice without harm; only these are retried.
  pub idempotent: bool,
}

impl HttpCall {
  pub fn new(method: Method, url: Url) -> Self {
    HttpCall { method, url, body: None, api_key: None, idempotent: method == Method::Get }
  }
  pub fn body(mut self, body: Body) -> Self {
    self.body = Some(body);
    self
  }
  pub fn api_key(mut self, key: Option<&str>) -> Self {
    self.api_key = key.map(str::to_string);
    self
  }
  pub fn idempotent(mut self, yes: bool) -> Self {
    self.idempotent = yes;
    self
  }
  /// `GET /api/v1/users`: the method and path, for messages (no query: it may hold data).
  pub fn describe(&self) -> String {
    format!("NET {} {}", self.method.as_str(), self.url.path())
  }
}

/// A response of any status.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
  pub status: u16,
  pub body: Vec<u8>,
  pub retry_after: Option<Duration>,
}

impl HttpReply {
  pub fn is_success(&self) -> bool {
    (200..300).contains(&self.status)
  }
}

/// A client for one base URL. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
  base: String,
  /// `base` without a password, for messages.
  shown: String,
  http: reqwest::Client,
  policy: RetryPolicy,
  settings: HttpSettings,
}

fn clients() -> &'static Mutex<HashMap<String, reqwest::Client>> {
  static CLIENTS: OnceLock<Mutex<HashMap<String, reqwest::Client>>> = OnceLock::new();
  CLIENTS.get_or_init(Mutex::default)
}

fn proxy_error(var: &str, e: reqwest::Error) -> Error {
  Error::config(format!("{var} is not a usable proxy URL: {}", e.without_url())).with_field(var)
}

/// Proxies from the environment snapshot (not the process environment, which may differ
/// under jest); none configured → no proxy at all.
fn apply_proxy(mut b: reqwest::ClientBuilder, p: &ProxyEnv) -> Result<reqwest::ClientBuilder> {
  let no = || p.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
  if p.http.is_none() && p.https.is_none() && p.all.is_none() {
    return Ok(b.no_proxy());
  }
  if let Some(u) = &p.http {
    b = b.proxy(reqwest::Proxy::http(u.as_str()).map_err(|e| proxy_error("HTTP_PROXY", e))?.no_proxy(no()));
  }
  if let Some(u) = &p.https {
    b = b.proxy(reqwest::Proxy::https(u.as_str()).map_err(|e| proxy_error("HTTPS_PROXY", e))?.no_proxy(no()));
  }
  if let Some(u) = &p.all {
    b = b.proxy(reqwest::Proxy::all(u.as_str()).map_err(|e| proxy_error("ALL_PROXY", e))?.no_proxy(no()));
  }
  Ok(b)
}

fn build_reqwest(settings: &HttpSettings) -> Result<reqwest::Client> {
  crate::tls::ensure_crypto_provider();
  let mut b = reqwest::Client::builder()
    .user_agent(USER_AGENT)
    .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
    .timeout(Duration::from_millis(settings.timeout_ms))
    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
    .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST);
  if let Some(path) = &settings.ca_file {
    let pem = std::fs::read(path).map_err(|e| Error::config(format!("MOSTA_NET_CA_FILE {path:?} cannot be read: {e}")).with_field("MOSTA_NET_CA_FILE"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
      .map_err(|e| Error::config(format!("MOSTA_NET_CA_FILE {path:?} is not a PEM certificate bundle: {e}")).with_field("MOSTA_NET_CA_FILE"))?;
    b = b.tls_certs_merge(certs);
  }
  b = apply_proxy(b, &settings.proxy)?;
  b.build().map_err(|e| Error::config(format!("cannot build the NET HTTP client: {}", chain(&e))))
}

/// An error and its causes on one line ("connection refused" hides two levels down),
/// without the URL reqwest appends (it repeats the query, which may hold data).
fn chain(e: &reqwest::Error) -> String {
  let text = e.to_string();
  let mut s = match text.find(" for url (") {
    Some(i) => text[..i].to_string(),
    None => text,
  };
  let mut cur = std::error::Error::source(e);
  while let Some(c) = cur {
    let t = c.to_string();
    if !s.contains(&t) {
      s.push_str(": ");
      s.push_str(&t);
    }
    cur = c.source();
  }
  s
}

/// The `X-API-Key` value, marked sensitive so no debug output of the request shows it.
fn api_key_header(key: Option<&str>) -> Result<Option<HeaderValue>> {
  let Some(key) = key else { return Ok(None) };
  // The message must not quote the key.
  let mut v = HeaderValue::from_str(key).map_err(|_| Error::config("the API key contains characters that cannot be sent in an HTTP header (check MOSTA_NET_API_KEY)").with_field("MOSTA_NET_API_KEY"))?;
  v.set_sensitive(true);
  Ok(Some(v))
}

impl HttpClient {
  /// A client with its own connection pool.
  pub fn new(base: &str, settings: &HttpSettings) -> Result<Self> {
    Ok(Self::with(base, settings, build_reqwest(settings)?))
  }

  /// The process-wide client for this base URL and settings, created on first use, so every
  /// dialect talking to one server shares its keep-alive connections.
  pub fn shared(base: &str, settings: &HttpSettings) -> Result<Self> {
    let key = format!("{base}\u{0}{settings:?}");
    let mut map = clients().lock().map_err(|_| Error::internal("NET client cache lock poisoned by an earlier panic"))?;
    let http = match map.get(&key) {
      Some(c) => c.clone(),
      None => {
        let c = build_reqwest(settings)?;
        map.insert(key, c.clone());
        c
      }
    };
    Ok(Self::with(base, settings, http))
  }

  fn with(base: &str, settings: &HttpSettings, http: reqwest::Client) -> Self {
    let policy = RetryPolicy::new(settings.retries, Duration::from_millis(settings.retry_base_ms));
    let base = base.trim_end_matches('/').to_string();
    HttpClient { shown: crate::redact::redact_uri(&base), base, http, policy, settings: settings.clone() }
  }

  pub fn base(&self) -> &str {
    &self.base
  }

  /// The base URL for messages (password masked).
  pub fn shown_base(&self) -> &str {
    &self.shown
  }

  pub fn policy(&self) -> RetryPolicy {
    self.policy
  }

  /// `{base}{path}?{query}`.
  pub fn url(&self, path: &str, query: &super::route::Query) -> Result<Url> {
    super::route::build_url(&self.base, path, query)
  }

  async fn send_once(&self, call: &HttpCall, key: Option<&HeaderValue>) -> std::result::Result<HttpReply, reqwest::Error> {
    let mut rb = self.http.request(call.method.reqwest(), call.url.clone()).header(ACCEPT, "application/json");
    if let Some(v) = key {
      rb = rb.header("x-api-key", v.clone());
    }
    if let Some(body) = &call.body {
      rb = rb.header(CONTENT_TYPE, body.content_type).body(body.bytes.clone());
    }
    let resp = rb.send().await?;
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
    let body = Vec::from(resp.bytes().await?);
    Ok(HttpReply { status, body, retry_after })
  }

  fn transport_error(&self, call: &HttpCall, e: &reqwest::Error) -> Error {
    let what = call.describe();
    let detail = chain(e);
    if e.is_timeout() {
      let (limit, var) = if e.is_connect() {
        (self.settings.connect_timeout_ms, "MOSTA_NET_CONNECT_TIMEOUT_MS")
      } else {
        (self.settings.timeout_ms, "MOSTA_NET_TIMEOUT_MS")
      };
      return Error::new(Code::NetTimeout, format!("{what} timed out after {limit} ms ({var}) talking to {}", self.shown));
    }
    let why = if e.is_connect() { "cannot connect to" } else { "lost the connection to" };
    Error::new(Code::NetHttp, format!("{what} failed: {why} {}: {detail}", self.shown))
  }

  /// Sends `call` and returns the response whatever its status. Idempotent calls are retried
  /// on connect errors and 429/502/503/504 with backoff; the last answer is returned.
  pub async fn send(&self, call: &HttpCall) -> Result<HttpReply> {
    let key = api_key_header(call.api_key.as_deref())?;
    let mut attempt = 0;
    loop {
      let r = self.send_once(call, key.as_ref()).await;
      let outcome = match &r {
        Ok(reply) => Outcome::Status(reply.status),
        Err(e) if e.is_connect() && !e.is_timeout() => Outcome::ConnectFailed,
        Err(_) => Outcome::Other,
      };
      if !self.policy.should_retry(call.idempotent, attempt, outcome) {
        return r.map_err(|e| self.transport_error(call, &e));
      }
      let retry_after = r.as_ref().ok().and_then(|reply| reply.retry_after);
      let wait = self.policy.delay(attempt, jitter(), retry_after);
      tracing::debug!(target: "mosta::net", "{} attempt {} failed ({outcome:?}); retrying in {wait:?}", call.describe(), attempt + 1);
      tokio::time::sleep(wait).await;
      attempt += 1;
    }
  }

  /// Sends `call`; a 2xx gives its body, anything else a typed error (`E_AUTH_REQUIRED`,
  /// `E_FORBIDDEN`, `E_NET_HTTP`) carrying the status and the server's code.
  pub async fn fetch(&self, call: &HttpCall) -> Result<HttpReply> {
    let reply = self.send(call).await?;
    if reply.is_success() {
      Ok(reply)
    } else {
      Err(http_error(&call.describe(), reply.status, &reply.body))
    }
  }
}

#[cfg(test)]
mod tests {
  use super::super::route::Query;
  use super::super::test_server::{dead_base, json, Reply, TestServer};
  use super::*;
  use serde_json::json;
  use std::sync::atomic::{AtomicUsize, Ordering};
  use std::sync::Arc;

  fn settings() -> HttpSettings {
    HttpSettings { connect_timeout_ms: 2_000, timeout_ms: 2_000, retries: 2, retry_base_ms: 5, ca_file: None, proxy: ProxyEnv::default() }
  }

  #[tokio::test]
  async fn headers_follow_the_body_and_the_key() {
    let srv = TestServer::start(|_| json(200, json!({"status": "ok", "data": true}))).await;
    let c = HttpClient::new(&srv.base, &settings()).unwrap();
    let del = HttpCall::new(Method::Delete, c.url("/api/v1/users/1", &Query::new()).unwrap()).api_key(Some("sk_test_secret"));
    assert_eq!(c.fetch(&del).await.unwrap().body, br#"{"status":"ok","data":true}"#);
    let post = HttpCall::new(Method::Post, c.url("/api/v1/users", &Query::new()).unwrap()).body(Body::json(&json!({"a": 1})));
    c.fetch(&post).await.unwrap();
    let bad = HttpCall::new(Method::Get, c.url("/x", &Query::new()).unwrap()).api_key(Some("sk\nsecret"));
    let e = c.fetch(&bad).await.unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (Code::Config, Some("MOSTA_NET_API_KEY")));
    assert!(!e.message.contains("secret"));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!((reqs[0].method.as_str(), reqs[0].header("content-type")), ("DELETE", None));
    assert_eq!(reqs[0].header("x-api-key"), Some("sk_test_secret"));
    assert_eq!(reqs[0].header("user-agent"), Some(USER_AGENT));
    assert_eq!(reqs[0].header("accept"), Some("application/json"));
    assert_eq!(reqs[1].header("content-type"), Some("application/json"));
    assert_eq!(reqs[1].header("x-api-key"), None);
    assert_eq!(reqs[1].json(), json!({"a": 1}));
  }

  fn flaky(failures: usize, status: u16) -> (Arc<AtomicUsize>, impl Fn(&super::super::test_server::Recorded) -> Reply + Send + Sync) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    (hits, move |_: &_| {
      if h.fetch_add(1, Ordering::SeqCst) < failures {
        json(status, json!({"status": "error", "error": {"code": "DB_NOT_CONNECTED", "message": "down"}}))
      } else {
        json(200, json!({"status": "ok", "data": []}))
      }
    })
  }

  #[tokio::test]
  async fn reads_are_retried_on_transient_statuses() {
    for status in [429, 502, 503, 504] {
      let (hits, h) = flaky(2, status);
      let srv = TestServer::start(h).await;
      let c = HttpClient::new(&srv.base, &settings()).unwrap();
      let get = HttpCall::new(Method::Get, c.url("/api/v1/users", &Query::new()).unwrap());
      assert!(c.fetch(&get).await.is_ok(), "{status}");
      assert_eq!(hits.load(Ordering::SeqCst), 3);
    }
    // Budget spent: the last answer is the error, with its status and server code.
    let (hits, h) = flaky(10, 503);
    let srv = TestServer::start(h).await;
    let c = HttpClient::new(&srv.base, &settings()).unwrap();
    let e = c.fetch(&HttpCall::new(Method::Get, c.url("/api/v1/users", &Query::new()).unwrap())).await.unwrap_err();
    assert_eq!((e.code, e.status, e.db_code.as_deref()), (Code::NetHttp, Some(503), Some("DB_NOT_CONNECTED")));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
  }

  #[tokio::test]
  async fn writes_and_server_errors_are_not_retried() {
    let (hits, h) = flaky(1, 503);
    let srv = TestServer::start(h).await;
    let c = HttpClient::new(&srv.base, &settings()).unwrap();
    let post = HttpCall::new(Method::Post, c.url("/api/v1/users", &Query::new()).unwrap()).body(Body::json(&json!({})));
    assert_eq!(c.fetch(&post).await.unwrap_err().status, Some(503));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let (hits, h) = flaky(1, 500);
    let srv = TestServer::start(h).await;
    let c = HttpClient::new(&srv.base, &settings()).unwrap();
    assert_eq!(c.fetch(&HttpCall::new(Method::Get, c.url("/x", &Query::new()).unwrap())).await.unwrap_err().status, Some(500));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
  }

  #[tokio::test]
  async fn refused_connections_and_stalls_are_typed() {
    let base = dead_base().await.replace("http://", "http://u:hunter2@");
    let c = HttpClient::new(&base, &settings()).unwrap();
    let e = c.fetch(&HttpCall::new(Method::Get, c.url("/api/v1/users", &Query::new()).unwrap())).await.unwrap_err();
    assert_eq!(e.code, Code::NetHttp);
    assert!(e.message.contains("cannot connect to") && e.message.contains("GET /api/v1/users"), "{}", e.message);
    assert!(!e.message.contains("for url") && !e.message.contains("hunter2"), "{}", e.message);

    let srv = TestServer::start(|_| Reply::Stall(Duration::from_secs(5), Box::new(json(200, json!({}))))).await;
    let mut s = settings();
    s.timeout_ms = 150;
    let c = HttpClient::new(&srv.base, &s).unwrap();
    let started = std::time::Instant::now();
    let e = c.fetch(&HttpCall::new(Method::Get, c.url("/api/v1/users", &Query::new()).unwrap())).await.unwrap_err();
    assert_eq!(e.code, Code::NetTimeout);
    assert!(e.message.contains("MOSTA_NET_TIMEOUT_MS"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(2), "timeouts are not retried");
    assert_eq!(srv.requests().len(), 1);
  }

  #[tokio::test]
  async fn retry_after_is_honoured_and_a_dropped_write_is_not_replayed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let srv = TestServer::start(move |_| match h.fetch_add(1, Ordering::SeqCst) {
      0 => Reply::WithHeaders(429, vec![("retry-after", "1".into())], r#"{"status":"error","error":{"code":"RATE_LIMITED","message":"slow"}}"#.into()),
      _ => json(200, json!({"status": "ok"})),
    })
    .await;
    let c = HttpClient::new(&srv.base, &settings()).unwrap();
    let started = std::time::Instant::now();
    c.fetch(&HttpCall::new(Method::Get, c.url("/x", &Query::new()).unwrap())).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After");
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    let srv = TestServer::start(|_| Reply::Close).await;
    let c = HttpClient::new(&srv.base, &settings()).unwrap();
    let post = HttpCall::new(Method::Post, c.url("/api/v1/users", &Query::new()).unwrap()).body(Body::json(&json!({})));
    let e = c.fetch(&post).await.unwrap_err();
    assert_eq!(e.code, Code::NetHttp);
    assert_eq!(srv.requests().len(), 1, "a write that may have run is never sent twice");
  }

  #[tokio::test]
  async fn shared_clients_are_reused_and_proxies_validated() {
    let srv = TestServer::start(|_| json(200, json!({"status": "ok"}))).await;
    let a = HttpClient::shared(&srv.base, &settings()).unwrap();
    let b = HttpClient::shared(&srv.base, &settings()).unwrap();
    for c in [&a, &b] {
      c.fetch(&HttpCall::new(Method::Get, c.url("/health", &Query::new()).unwrap())).await.unwrap();
    }
    assert_eq!(clients().lock().unwrap().keys().filter(|k| k.starts_with(&srv.base)).count(), 1);
    let mut s = settings();
    s.proxy.http = Some("::not a url::".into());
    assert_eq!(HttpClient::new(&srv.base, &s).err().and_then(|e| e.field).as_deref(), Some("HTTP_PROXY"));
    let mut s = settings();
    s.ca_file = Some("/nonexistent/ca.pem".into());
    assert_eq!(HttpClient::new(&srv.base, &s).err().map(|e| e.code), Some(Code::Config));
  }
}
