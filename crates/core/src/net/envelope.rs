//! Response bodies of the REST protocol (net-protocol.md §1.2): the success envelope
//! `{status:"ok", data?, metadata?}`, and the two error shapes, the server's own
//! `{status:"error", error:{code, message}}` and Fastify's `{statusCode, code?, error:"…",
//! message}`. `data` stays raw JSON text so large arrays pass through unparsed.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{Code, Error, Result};

#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
  #[serde(default)]
  pub count: Option<Value>,
  #[serde(default)]
  pub total: Option<Value>,
}

/// A parsed 2xx body. An empty body is an envelope with neither `data` nor `metadata`.
#[derive(Debug, Default, Deserialize)]
pub struct Envelope<'a> {
  #[serde(default)]
  pub status: Option<String>,
  /// `None` when absent or `null`.
  #[serde(borrow, default)]
  pub data: Option<&'a RawValue>,
  #[serde(default)]
  pub metadata: Option<Metadata>,
  #[serde(default)]
  pub error: Option<Value>,
}

impl<'a> Envelope<'a> {
  /// The raw `data` text, or `fallback` when it is missing or `null`.
  pub fn data_or(&self, fallback: &str) -> String {
    self.data.map(|d| d.get().to_string()).unwrap_or_else(|| fallback.to_string())
  }

  /// A count the server reported: `metadata.count`, then `metadata.total`, then a numeric
  /// `data`; 0 when none is there.
  pub fn count(&self) -> f64 {
    let meta = self.metadata.as_ref();
    let from_data = self.data.and_then(|d| serde_json::from_str::<Value>(d.get()).ok());
    [meta.and_then(|m| m.count.clone()), meta.and_then(|m| m.total.clone()), from_data].into_iter().flatten().find_map(|v| number_of(&v)).unwrap_or(0.0)
  }
}

/// A JSON number, or a string holding one (PostgreSQL bigint and numeric come back as text).
pub fn number_of(v: &Value) -> Option<f64> {
  match v {
    Value::Number(n) => n.as_f64(),
    Value::String(s) => numeric_text(s),
    _ => None,
  }
}

/// Decimal text as PostgreSQL prints numbers: optional `-`, digits, optional fraction.
pub fn numeric_text(s: &str) -> Option<f64> {
  let body = s.strip_prefix('-').unwrap_or(s);
  let (int, frac) = body.split_once('.').unwrap_or((body, ""));
  let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
  if int.is_empty() || !digits(int) || !digits(frac) || (body.contains('.') && frac.is_empty()) {
    return None;
  }
  s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// JSON text of a number: integers without a fraction, as JavaScript prints them.
pub fn number_text(n: f64) -> String {
  if n.fract() == 0.0 && n.abs() < 9.007e15 {
    format!("{}", n as i64)
  } else {
    serde_json::Number::from_f64(n).map(|n| n.to_string()).unwrap_or_else(|| "null".into())
  }
}

/// Parses a 2xx body. A body that is not JSON is an `E_NET_HTTP` (a proxy's HTML page, a
/// server that is not `@mostajs/net`); `{status:"error"}` inside a 2xx is an error too.
pub fn parse_success<'a>(body: &'a [u8], what: &str, status: u16) -> Result<Envelope<'a>> {
  if body.iter().all(u8::is_ascii_whitespace) {
    return Ok(Envelope::default());
  }
  let text = std::str::from_utf8(body).map_err(|_| bad_body(what, status, "is not UTF-8"))?;
  let env: Envelope<'a> = serde_json::from_str(text).map_err(|_| bad_body(what, status, &format!("is not a JSON envelope: {}", excerpt(text))))?;
  if env.status.as_deref() == Some("error") {
    let e = server_error(status, body);
    return Err(with_server(Error::new(Code::NetHttp, format!("{what} failed: {}", e.describe())).with_status(status), &e));
  }
  Ok(env)
}

fn bad_body(what: &str, status: u16, why: &str) -> Error {
  Error::new(Code::NetHttp, format!("{what}: the {status} response body {why}")).with_status(status)
}

/// At most 120 characters of a body, for messages.
pub fn excerpt(text: &str) -> String {
  let t = text.trim();
  match t.char_indices().nth(120) {
    Some((i, _)) => format!("{}…", &t[..i]),
    None => t.to_string(),
  }
}

/// What a failed response said: the server's code (when it gave one) and its message.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
  pub code: Option<String>,
  pub message: String,
}

impl ServerError {
  pub fn describe(&self) -> String {
    match &self.code {
      Some(c) if !self.message.is_empty() => format!("{c}: {}", self.message),
      Some(c) => c.clone(),
      None => self.message.clone(),
    }
  }
}

fn str_of(v: Option<&Value>) -> Option<String> {
  v.and_then(Value::as_str).map(str::to_string).filter(|s| !s.is_empty())
}

/// Reads every error shape the protocol produces, plus RFC 6749's `{error,
/// error_description}`; an unparseable body falls back to the status' reason phrase.
pub fn server_error(status: u16, body: &[u8]) -> ServerError {
  let text = String::from_utf8_lossy(body);
  let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("HTTP error").to_string();
  let v: Value = match serde_json::from_str(&text) {
    Ok(v) => v,
    Err(_) => {
      let message = if text.trim().is_empty() { reason } else { excerpt(&text) };
      return ServerError { code: None, message };
    }
  };
  // Some servers wrap everything in `data`.
  let o = match v.get("error").or_else(|| v.get("message")) {
    Some(_) => &v,
    None => v.get("data").filter(|d| d.is_object()).unwrap_or(&v),
  };
  match o.get("error") {
    // `{status:"error", error:{code, message}}`
    Some(Value::Object(e)) => ServerError { code: str_of(e.get("code")), message: str_of(e.get("message")).unwrap_or(reason) },
    // Fastify: `error` is the reason phrase; the code, if any, is beside it.
    Some(Value::String(_)) if o.get("statusCode").is_some() => {
      ServerError { code: str_of(o.get("code")), message: str_of(o.get("message")).or_else(|| str_of(o.get("error"))).unwrap_or(reason) }
    }
    // RFC 6749 / 8628: `error` is the code.
    Some(Value::String(code)) => ServerError {
      code: Some(code.clone()).filter(|c| !c.is_empty()),
      message: str_of(o.get("error_description")).or_else(|| str_of(o.get("message"))).unwrap_or_default(),
    },
    _ => ServerError { code: str_of(o.get("code")), message: str_of(o.get("message")).unwrap_or(reason) },
  }
}

fn with_server(mut e: Error, s: &ServerError) -> Error {
  e.db_code = s.code.clone();
  e
}

/// The typed error of a non-2xx data response: 401 → `E_AUTH_REQUIRED`, 403 →
/// `E_FORBIDDEN`, anything else `E_NET_HTTP`; `status` and the server's code kept.
pub fn http_error(what: &str, status: u16, body: &[u8]) -> Error {
  let s = server_error(status, body);
  let (code, message) = match status {
    401 => (Code::AuthRequired, format!("{what}: the server requires a valid API key (401 {})", s.describe())),
    403 => (Code::Forbidden, format!("{what}: the API key is not allowed to do this; check its scopes (projects, operations, transports) (403 {})", s.describe())),
    _ => (Code::NetHttp, format!("{what} failed with HTTP {status}: {}", s.describe())),
  };
  with_server(Error::new(code, message).with_status(status), &s)
}

/// Whether a 404 means "no such record" (→ `null`/`false`) rather than a wrong collection
/// (`UNKNOWN_ENTITY`) or a route the server does not have (Fastify's "Route … not found").
pub fn is_missing_record(e: &Error) -> bool {
  if e.status != Some(404) || e.code != Code::NetHttp {
    return false;
  }
  match e.db_code.as_deref() {
    Some("UNKNOWN_ENTITY") => false,
    Some(_) => true,
    None => !e.message.contains("Route "),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn success_envelopes_keep_data_raw() {
    let body = br#"{"status":"ok","data":[{"id":"1","n":1.50}],"metadata":{"count":1}}"#;
    let e = parse_success(body, "GET /x", 200).unwrap();
    assert_eq!(e.data_or("[]"), r#"[{"id":"1","n":1.50}]"#);
    assert_eq!(e.count(), 1.0);
    let e = parse_success(br#"{"status":"ok","data":null}"#, "GET /x", 200).unwrap();
    assert_eq!(e.data_or("null"), "null");
    assert_eq!(parse_success(b"", "GET /x", 200).unwrap().data_or("[]"), "[]");
    assert_eq!(parse_success(b" \n", "GET /x", 204).unwrap().count(), 0.0);
    let e = parse_success(br#"{"status":"ok","metadata":{"count":"7"}}"#, "PUT /x/bulk", 200).unwrap();
    assert!(e.data.is_none());
    assert_eq!(e.count(), 7.0);
    assert_eq!(parse_success(br#"{"data":3,"metadata":{"total":3}}"#, "GET", 200).unwrap().count(), 3.0);
  }

  #[test]
  fn non_json_and_in_band_errors_are_errors() {
    let e = parse_success(b"<html>proxy</html>", "GET /x", 200).unwrap_err();
    assert_eq!((e.code, e.status), (Code::NetHttp, Some(200)));
    assert!(e.message.contains("<html>"));
    let e = parse_success(br#"{"status":"error","error":{"code":"BOOM","message":"no"}}"#, "GET /x", 200).unwrap_err();
    assert_eq!(e.db_code.as_deref(), Some("BOOM"));
  }

  #[test]
  fn both_error_shapes_and_oauth_errors_are_read() {
    let s = server_error(500, br#"{"status":"error","error":{"code":"SqliteError","message":"NOT NULL constraint failed: users.email"}}"#);
    assert_eq!(s, ServerError { code: Some("SqliteError".into()), message: "NOT NULL constraint failed: users.email".into() });
    let s = server_error(400, br#"{"statusCode":400,"code":"FST_ERR_CTP_EMPTY_JSON_BODY","error":"Bad Request","message":"Body cannot be empty"}"#);
    assert_eq!(s, ServerError { code: Some("FST_ERR_CTP_EMPTY_JSON_BODY".into()), message: "Body cannot be empty".into() });
    let s = server_error(404, br#"{"message":"Route GET:/x not found","error":"Not Found","statusCode":404}"#);
    assert_eq!(s, ServerError { code: None, message: "Route GET:/x not found".into() });
    let s = server_error(400, br#"{"error":"slow_down","error_description":"easy"}"#);
    assert_eq!(s, ServerError { code: Some("slow_down".into()), message: "easy".into() });
    let s = server_error(400, br#"{"data":{"error":"access_denied"}}"#);
    assert_eq!(s.code.as_deref(), Some("access_denied"));
    assert_eq!(server_error(502, b"").message, "Bad Gateway");
    assert_eq!(server_error(502, b"upstream down").message, "upstream down");
  }

  #[test]
  fn statuses_map_to_codes() {
    let e = http_error("GET /api/v1/users", 401, br#"{"error":{"code":"UNAUTHORIZED","message":"API key required"}}"#);
    assert_eq!((e.code, e.status, e.db_code.as_deref()), (Code::AuthRequired, Some(401), Some("UNAUTHORIZED")));
    let e = http_error("GET /api/v1/users", 403, br#"{"error":{"code":"FORBIDDEN","message":"scope"}}"#);
    assert_eq!(e.code, Code::Forbidden);
    assert!(e.message.contains("scope"));
    let e = http_error("GET /api/v1/users", 503, br#"{"status":"error","error":{"code":"DB_NOT_CONNECTED","message":"x"},"data":null}"#);
    assert_eq!((e.code, e.status, e.db_code.as_deref()), (Code::NetHttp, Some(503), Some("DB_NOT_CONNECTED")));
  }

  #[test]
  fn only_record_404s_are_missing_records() {
    assert!(is_missing_record(&http_error("GET", 404, br#"{"status":"error","error":{"code":"ENTITY_NOT_FOUND","message":"x"}}"#)));
    assert!(is_missing_record(&http_error("GET", 404, b"")));
    assert!(!is_missing_record(&http_error("GET", 404, br#"{"status":"error","error":{"code":"UNKNOWN_ENTITY","message":"x"}}"#)));
    assert!(!is_missing_record(&http_error("GET", 404, br#"{"message":"Route GET:/x not found","error":"Not Found","statusCode":404}"#)));
    assert!(!is_missing_record(&http_error("GET", 500, b"")));
  }

  #[test]
  fn numeric_text_is_strict() {
    assert_eq!(numeric_text("3"), Some(3.0));
    assert_eq!(numeric_text("-2.50"), Some(-2.5));
    for s in ["", "-", "1.", ".5", "1e3", "0x1", " 1", "NaN", "12a"] {
      assert_eq!(numeric_text(s), None, "{s}");
    }
    assert_eq!(number_text(3.0), "3");
    assert_eq!(number_text(2.5), "2.5");
  }
}
