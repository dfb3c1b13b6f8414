//! The OAuth 2.0 device authorization grant (RFC 8628) against
//! `{base}/api/v1/auth/device/{authorize,token}` (net-protocol.md §4). Requests are
//! form-encoded as the RFC says; a server that answers 415 to that (Fastify without a form
//! parser) gets JSON instead. Responses are JSON, possibly wrapped in `{data:{…}}`.
//!
//! Every wait is multiplied by `scale` (`MOSTA_AUTH_POLL_SCALE`), the `expires_in` deadline
//! included, so tests run the real state machine in milliseconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Code, Error, Result};
use crate::net::{server_error, Body, HttpCall, HttpClient, HttpReply, Method, Query};

pub const AUTHORIZE_PATH: &str = "/api/v1/auth/device/authorize";
pub const TOKEN_PATH: &str = "/api/v1/auth/device/token";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the interval when the server names none.
pub const DEFAULT_INTERVAL_SECS: u64 = 5;
/// RFC 8628 §3.5: what `slow_down` adds, for every later poll.
pub const SLOW_DOWN_STEP_SECS: u64 = 5;
/// When the server omits `expires_in` (it is required; we still need a deadline).
pub const DEFAULT_EXPIRES_IN_SECS: u64 = 600;

/// What the user needs to approve this device; handed to `onCodeIssued` or the default
/// renderer. The `device_code` itself is a secret and is not part of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceCode {
  pub user_code: String,
  pub verification_uri: String,
  pub verification_uri_complete: Option<String>,
  /// Seconds the code stays valid, as the server said (not scaled).
  pub expires_in: u64,
  /// Seconds between polls, as the server said (default 5).
  pub interval: u64,
}

/// The authorize step's answer.
#[derive(Clone, PartialEq)]
pub struct Authorization {
  pub code: DeviceCode,
  device_code: String,
}

impl std::fmt::Debug for Authorization {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Authorization").field("code", &self.code).finish_non_exhaustive()
  }
}

/// A granted token.
#[derive(Clone, PartialEq)]
pub struct TokenGrant {
  pub access_token: String,
  pub token_type: String,
  pub expires_in: Option<u64>,
  pub scope: Option<String>,
}

impl std::fmt::Debug for TokenGrant {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("TokenGrant").field("token_type", &self.token_type).field("expires_in", &self.expires_in).finish_non_exhaustive()
  }
}

/// What one token poll means for the loop (RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq)]
pub enum PollStep {
  Granted(TokenGrant),
  /// `authorization_pending`: ask again after the interval.
  Pending,
  /// `slow_down`: the interval grows by 5 s for good.
  SlowDown,
  /// A 5xx, 429 or network failure: try again until the deadline.
  Transient(String),
  /// `access_denied`, `expired_token`, or any other error: stop.
  Fail(Error),
}

fn flow_err(message: String) -> Error {
  Error::new(Code::DeviceFlow, message)
}

/// The object of a JSON body, unwrapping `{data:{…}}`; `None` when the body is empty or
/// not a JSON object.
fn json_object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
  match serde_json::from_slice::<Value>(body).ok()? {
    Value::Object(mut o) => match o.remove("data") {
      Some(Value::Object(inner)) if !o.contains_key("device_code") && !o.contains_key("access_token") => Some(inner),
      Some(other) => {
        o.insert("data".into(), other);
        Some(o)
      }
      None => Some(o),
    },
    _ => None,
  }
}

fn str_field(o: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
  keys.iter().find_map(|k| o.get(*k).and_then(Value::as_str)).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Seconds from a number or a numeric string.
fn secs_field(o: &serde_json::Map<String, Value>, key: &str) -> Option<u64> {
  match o.get(key)? {
    Value::Number(n) => n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64),
    Value::String(s) => s.trim().parse().ok(),
    _ => None,
  }
}

fn unsupported(base: &str, path: &str, status: u16, why: &str) -> Error {
  flow_err(format!(
    "the server at {base} does not support the device flow (POST {path} answered {status} {why}); set MOSTA_NET_API_KEY, or point MOSTA_AUTH_FLOW_URL at the key issuer"
  ))
  .with_status(status)
}

/// Reads the authorize answer.
pub fn parse_authorization(base: &str, reply: &HttpReply) -> Result<Authorization> {
  let status = reply.status;
  if matches!(status, 404 | 405 | 415 | 501) {
    return Err(unsupported(base, AUTHORIZE_PATH, status, "with no such endpoint").with_db_code(server_error(status, &reply.body).code.unwrap_or_default()));
  }
  if !reply.is_success() {
    let s = server_error(status, &reply.body);
    let mut e = flow_err(format!("device authorization at {base} was refused (HTTP {status} {})", s.describe())).with_status(status);
    e.db_code = s.code;
    return Err(e);
  }
  let o = json_object(&reply.body).ok_or_else(|| unsupported(base, AUTHORIZE_PATH, status, "with an empty or non-JSON body"))?;
  let (Some(device_code), Some(user_code), Some(verification_uri)) =
    (str_field(&o, &["device_code"]), str_field(&o, &["user_code"]), str_field(&o, &["verification_uri", "verification_url"]))
  else {
    return Err(unsupported(base, AUTHORIZE_PATH, status, "without device_code, user_code and verification_uri"));
  };
  Ok(Authorization {
    device_code,
    code: DeviceCode {
      user_code,
      verification_uri,
      verification_uri_complete: str_field(&o, &["verification_uri_complete", "verification_url_complete"]),
      expires_in: secs_field(&o, "expires_in").filter(|s| *s > 0).unwrap_or(DEFAULT_EXPIRES_IN_SECS),
      interval: secs_field(&o, "interval").filter(|s| *s > 0).unwrap_or(DEFAULT_INTERVAL_SECS),
    },
  })
}

/// Classifies one token answer: the pure state machine of RFC 8628 §3.5.
pub fn classify_token_reply(base: &str, reply: &HttpReply) -> PollStep {
  let status = reply.status;
  let o = json_object(&reply.body);
  let granted = o.as_ref().and_then(|o| str_field(o, &["access_token"]).map(|t| (o, t)));
  if let (true, Some((o, access_token))) = (reply.is_success(), granted) {
    return PollStep::Granted(TokenGrant {
      access_token,
      token_type: str_field(o, &["token_type"]).unwrap_or_else(|| "Bearer".into()),
      expires_in: secs_field(o, "expires_in"),
      scope: str_field(o, &["scope"]),
    });
  }
  if status >= 500 || status == 429 {
    return PollStep::Transient(format!("HTTP {status}"));
  }
  // The OAuth error code; `{error:{code}}` (the mosta envelope) is read too.
  let s = server_error(status, &reply.body);
  match s.code.as_deref() {
    Some("authorization_pending") => PollStep::Pending,
    Some("slow_down") => PollStep::SlowDown,
    Some("access_denied") => PollStep::Fail(flow_err("the device authorization was denied by the user".into()).with_db_code("access_denied").with_status(status)),
    Some("expired_token") => PollStep::Fail(flow_err("the device code expired before it was approved; run the flow again".into()).with_db_code("expired_token").with_status(status)),
    _ if matches!(status, 404 | 405 | 415) => PollStep::Fail(unsupported(base, TOKEN_PATH, status, "with no such endpoint")),
    Some(code) => PollStep::Fail(flow_err(format!("the token request failed: {}", s.describe())).with_db_code(code).with_status(status)),
    None if reply.is_success() => PollStep::Fail(unsupported(base, TOKEN_PATH, status, "without access_token")),
    None => PollStep::Fail(flow_err(format!("the token request failed with HTTP {status}: {}", s.message)).with_status(status)),
  }
}

/// One run of the flow against one server.
pub struct DeviceFlow {
  client: HttpClient,
  client_id: String,
  scope: Option<String>,
  scale: f64,
  /// Set when the server refused a form body (415) and took JSON.
  json: AtomicBool,
}

impl DeviceFlow {
  pub fn new(client: HttpClient, client_id: String, scope: Option<String>, scale: f64) -> Self {
    DeviceFlow { client, client_id, scope, scale, json: AtomicBool::new(false) }
  }

  /// A wait of `secs` on the (possibly scaled) clock.
  pub fn scaled(&self, secs: u64) -> Duration {
    Duration::from_secs(secs).mul_f64(self.scale)
  }

  fn body(&self, pairs: &[(&str, &str)]) -> Body {
    if self.json.load(Ordering::Relaxed) {
      let o: serde_json::Map<String, Value> = pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
      Body::json(&Value::Object(o))
    } else {
      Body::form(pairs)
    }
  }

  async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Result<HttpReply> {
    let url = self.client.url(path, &Query::new())?;
    let reply = self.client.send(&HttpCall::new(Method::Post, url.clone()).body(self.body(pairs))).await?;
    if reply.status == 415 && !self.json.swap(true, Ordering::Relaxed) {
      return self.client.send(&HttpCall::new(Method::Post, url).body(self.body(pairs))).await;
    }
    Ok(reply)
  }

  pub async fn authorize(&self) -> Result<Authorization> {
    let mut pairs = vec![("client_id", self.client_id.as_str())];
    if let Some(s) = &self.scope {
      pairs.push(("scope", s.as_str()));
    }
    // A network failure keeps its E_NET_HTTP / E_NET_TIMEOUT code: it is not the flow's fault.
    let reply = self.post(AUTHORIZE_PATH, &pairs).await?;
    parse_authorization(self.client.shown_base(), &reply)
  }

  /// Polls until the token is granted, the user refuses, or the code expires.
  pub async fn poll(&self, auth: &Authorization) -> Result<TokenGrant> {
    let deadline = tokio::time::Instant::now() + self.scaled(auth.code.expires_in);
    self.poll_until(auth, deadline).await
  }

  pub async fn poll_until(&self, auth: &Authorization, deadline: tokio::time::Instant) -> Result<TokenGrant> {
    let mut interval = auth.code.interval;
    let pairs = [("grant_type", GRANT_TYPE), ("device_code", auth.device_code.as_str()), ("client_id", self.client_id.as_str())];
    loop {
      let wait = self.scaled(interval);
      if tokio::time::Instant::now() + wait > deadline {
        return Err(
          flow_err(format!("the device code expired after {} s without approval (no answer from {} in time)", auth.code.expires_in, self.client.shown_base())).with_db_code("expired_token"),
        );
      }
      tokio::time::sleep(wait).await;
      let step = match self.post(TOKEN_PATH, &pairs).await {
        Ok(reply) => classify_token_reply(self.client.shown_base(), &reply),
        Err(e) => PollStep::Transient(e.message),
      };
      match step {
        PollStep::Granted(t) => return Ok(t),
        PollStep::Pending => {}
        PollStep::SlowDown => interval += SLOW_DOWN_STEP_SECS,
        PollStep::Transient(why) => tracing::debug!(target: "mosta::auth", "device token poll failed ({why}); retrying"),
        PollStep::Fail(e) => return Err(e),
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::env::{HttpSettings, ProxyEnv};
  use crate::net::test_server::{json, Recorded, Reply, TestServer};
  use serde_json::json;
  use std::sync::{Arc, Mutex};

  fn reply(status: u16, body: &str) -> HttpReply {
    HttpReply { status, body: body.as_bytes().to_vec(), retry_after: None }
  }

  #[test]
  fn authorize_answers_are_read_or_refused() {
    let a = parse_authorization("http://s", &reply(200, r#"{"data":{"device_code":"d","user_code":"U-1","verification_uri":"http://s/device","expires_in":"300"}}"#)).unwrap();
    assert_eq!(a.code, DeviceCode { user_code: "U-1".into(), verification_uri: "http://s/device".into(), verification_uri_complete: None, expires_in: 300, interval: 5 });
    assert!(!format!("{a:?}").contains("\"d\""), "the device code is not printed");
    for (status, body) in [(200, ""), (200, "not json"), (200, r#"{"user_code":"x"}"#), (404, ""), (415, r#"{"statusCode":415,"code":"FST_ERR_CTP_INVALID_MEDIA_TYPE","error":"Unsupported Media Type","message":"x"}"#)] {
      let e = parse_authorization("http://s", &reply(status, body)).unwrap_err();
      assert_eq!((e.code, e.status), (Code::DeviceFlow, Some(status)), "{status} {body}");
      assert!(e.message.contains("does not support the device flow"), "{}", e.message);
    }
    let e = parse_authorization("http://s", &reply(400, r#"{"error":"invalid_client"}"#)).unwrap_err();
    assert_eq!(e.db_code.as_deref(), Some("invalid_client"));
  }

  #[test]
  fn token_answers_drive_the_state_machine() {
    let c = |s, b| classify_token_reply("http://s", &reply(s, b));
    assert_eq!(c(400, r#"{"error":"authorization_pending"}"#), PollStep::Pending);
    assert_eq!(c(400, r#"{"error":"slow_down"}"#), PollStep::SlowDown);
    assert_eq!(c(400, r#"{"status":"error","error":{"code":"authorization_pending","message":"wait"}}"#), PollStep::Pending);
    assert_eq!(c(200, r#"{"error":"authorization_pending"}"#), PollStep::Pending);
    assert!(matches!(c(503, ""), PollStep::Transient(_)));
    assert!(matches!(c(429, ""), PollStep::Transient(_)));
    for (code, body) in [("access_denied", r#"{"error":"access_denied"}"#), ("expired_token", r#"{"error":"expired_token"}"#), ("invalid_grant", r#"{"error":"invalid_grant"}"#)] {
      match c(400, body) {
        PollStep::Fail(e) => assert_eq!((e.code, e.db_code.as_deref()), (Code::DeviceFlow, Some(code))),
        other => panic!("{code}: {other:?}"),
      }
    }
    match c(200, r#"{"data":{"access_token":"sk_1","token_type":"bearer","expires_in":3600}}"#) {
      PollStep::Granted(t) => assert_eq!((t.access_token.as_str(), t.expires_in), ("sk_1", Some(3600))),
      other => panic!("{other:?}"),
    }
    assert!(matches!(c(200, ""), PollStep::Fail(e) if e.message.contains("does not support")));
  }

  /// A device-flow server whose token endpoint answers from a script, then grants.
  struct Script {
    srv: TestServer,
    polls: Arc<Mutex<Vec<std::time::Instant>>>,
  }

  async fn scripted(authorize: serde_json::Value, answers: Vec<(u16, serde_json::Value)>) -> Script {
    let polls = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let p = polls.clone();
    let srv = TestServer::start(move |r: &Recorded| match r.path() {
      AUTHORIZE_PATH => json(200, authorize.clone()),
      TOKEN_PATH => {
        p.lock().unwrap().push(std::time::Instant::now());
        match answers.lock().unwrap().next() {
          Some((s, b)) => json(s, b),
          None => json(200, json!({"access_token": "sk_live_granted", "token_type": "Bearer", "expires_in": 3600})),
        }
      }
      _ => json(404, json!({})),
    })
    .await;
    Script { srv, polls }
  }

  fn settings() -> HttpSettings {
    HttpSettings { connect_timeout_ms: 1_000, timeout_ms: 1_000, retries: 0, retry_base_ms: 1, ca_file: None, proxy: ProxyEnv::default() }
  }

  fn flow(base: &str, scale: f64) -> DeviceFlow {
    DeviceFlow::new(HttpClient::new(base, &settings()).unwrap(), "cli".into(), Some("read".into()), scale)
  }

  fn code(interval: u64, expires_in: u64) -> serde_json::Value {
    json!({"device_code": "dev-1", "user_code": "ABCD-EFGH", "verification_uri": "http://x/device", "expires_in": expires_in, "interval": interval})
  }

  #[tokio::test]
  async fn pending_then_slow_down_then_granted() {
    let s = scripted(code(1, 600), vec![(400, json!({"error": "authorization_pending"})), (400, json!({"error": "slow_down"})), (503, json!({})), (400, json!({"error": "authorization_pending"}))]).await;
    // 1 s interval at scale 0.05 = 50 ms; after slow_down, 6 s = 300 ms.
    let f = flow(&s.srv.base, 0.05);
    let started = std::time::Instant::now();
    let auth = f.authorize().await.unwrap();
    let grant = f.poll(&auth).await.unwrap();
    assert_eq!(grant.access_token, "sk_live_granted");
    let polls = s.polls.lock().unwrap().clone();
    assert_eq!(polls.len(), 5);
    let gaps: Vec<Duration> = polls.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(polls[0] - started >= Duration::from_millis(50), "the first poll waits one interval");
    assert!(gaps[0] >= Duration::from_millis(50) && gaps[0] < Duration::from_millis(250), "{gaps:?}");
    assert!(gaps[1..].iter().all(|g| *g >= Duration::from_millis(300)), "slow_down holds for every later poll: {gaps:?}");
    let reqs = s.srv.requests();
    assert_eq!(reqs[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(reqs[0].body_text(), "client_id=cli&scope=read");
    assert_eq!(reqs[1].body_text(), "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=dev-1&client_id=cli");
    assert_eq!(reqs[1].header("x-api-key"), None);
  }

  #[tokio::test]
  async fn denial_and_expiry_stop_the_flow() {
    for (answer, code_name) in [("access_denied", "access_denied"), ("expired_token", "expired_token")] {
      let s = scripted(code(1, 600), vec![(400, json!({"error": "authorization_pending"})), (400, json!({"error": answer}))]).await;
      let f = flow(&s.srv.base, 0.01);
      let e = f.poll(&f.authorize().await.unwrap()).await.unwrap_err();
      assert_eq!((e.code, e.db_code.as_deref()), (Code::DeviceFlow, Some(code_name)));
      assert_eq!(s.polls.lock().unwrap().len(), 2);
    }
  }

  #[tokio::test]
  async fn the_deadline_ends_a_flow_nobody_approves() {
    let pending: Vec<_> = (0..100).map(|_| (400, json!({"error": "authorization_pending"}))).collect();
    let s = scripted(code(1, 5), pending).await;
    let f = flow(&s.srv.base, 0.02);
    let started = std::time::Instant::now();
    let e = f.poll(&f.authorize().await.unwrap()).await.unwrap_err();
    assert_eq!((e.code, e.db_code.as_deref()), (Code::DeviceFlow, Some("expired_token")));
    assert!(started.elapsed() < Duration::from_secs(1));
    let n = s.polls.lock().unwrap().len();
    assert!((2..=5).contains(&n), "one poll per interval until expires_in, got {n}");
  }

  #[tokio::test]
  async fn a_server_without_form_parser_gets_json() {
    let srv = TestServer::start(|r: &Recorded| {
      if r.header("content-type") != Some("application/json") {
        return json(415, json!({"statusCode": 415, "code": "FST_ERR_CTP_INVALID_MEDIA_TYPE", "error": "Unsupported Media Type", "message": "no"}));
      }
      match r.path() {
        AUTHORIZE_PATH => json(200, code(1, 60)),
        _ => json(200, json!({"access_token": "k", "token_type": "Bearer"})),
      }
    })
    .await;
    let f = flow(&srv.base, 0.01);
    let grant = f.poll(&f.authorize().await.unwrap()).await.unwrap();
    assert_eq!((grant.access_token.as_str(), grant.expires_in), ("k", None));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3, "one refused form request, then JSON only");
    assert_eq!(reqs[2].json(), json!({"grant_type": GRANT_TYPE, "device_code": "dev-1", "client_id": "cli"}));
  }

  #[tokio::test]
  async fn an_empty_2xx_means_not_supported() {
    let srv = TestServer::start(|_| Reply::Json(200, String::new())).await;
    let e = flow(&srv.base, 1.0).authorize().await.unwrap_err();
    assert_eq!(e.code, Code::DeviceFlow);
    assert!(e.message.contains("does not support the device flow"));
  }
}
