//! Environment resolution: the `MOSTA_ENV` profile cascade of `@mostajs/config` and the typed
//! configuration read from it. The binding hands us a snapshot of `process.env` (jest gives
//! each test file its own copy of `process.env`, invisible to libc's environ), so nothing
//! here reads the process environment except `EnvSource::process`.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// A snapshot of environment variables with the profile cascade on top.
#[derive(Debug, Clone, Default)]
pub struct EnvSource {
  vars: HashMap<String, String>,
}

impl EnvSource {
  pub fn from_map(vars: HashMap<String, String>) -> Self {
    EnvSource { vars }
  }

  pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
    EnvSource { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
  }

  /// Parses the JSON object the binding sends (`JSON.stringify(process.env)`).
  pub fn from_json(json: &str) -> Result<Self> {
    let vars: HashMap<String, String> =
      serde_json::from_str(json).map_err(|e| Error::config(format!("environment snapshot is not a JSON object of strings: {e}")))?;
    Ok(EnvSource { vars })
  }

  pub fn process() -> Self {
    EnvSource { vars: std::env::vars().collect() }
  }

  /// `MOSTA_ENV`, trimmed; `None` when unset or blank. Case is kept.
  pub fn profile(&self) -> Option<&str> {
    self.vars.get("MOSTA_ENV").map(|p| p.trim()).filter(|p| !p.is_empty())
  }

  fn raw(&self, key: &str) -> Option<&str> {
    self.vars.get(key).map(String::as_str).filter(|v| !v.is_empty())
  }

  /// `${profile}_${key}` first, then `key`; the empty string counts as unset; values are not
  /// trimmed.
  pub fn get(&self, key: &str) -> Option<&str> {
    if let Some(p) = self.profile() {
      if let Some(v) = self.raw(&format!("{p}_{key}")) {
        return Some(v);
      }
    }
    self.raw(key)
  }

  /// Only `true` (trimmed, any case) is true; unset gives `fallback`.
  pub fn get_bool(&self, key: &str, fallback: bool) -> bool {
    match self.get(key) {
      Some(v) => v.trim().eq_ignore_ascii_case("true"),
      None => fallback,
    }
  }

  /// JavaScript `Number(value)` when finite, else `None`; unset gives `None` too.
  pub fn get_number(&self, key: &str) -> Option<f64> {
    self.get(key).and_then(js_number).filter(|n| n.is_finite())
  }

  /// The name a variable was looked up under, for error messages:
  /// `TEST_DB_DIALECT or DB_DIALECT` under a profile, else `DB_DIALECT`.
  pub fn describe(&self, key: &str) -> String {
    match self.profile() {
      Some(p) => format!("{p}_{key} or {key} (active profile: MOSTA_ENV={p})"),
      None => key.to_string(),
    }
  }

  /// A variable that must be set; `hint` ends the message.
  pub fn require(&self, key: &str, hint: &str) -> Result<&str> {
    self.get(key).ok_or_else(|| {
      let mut msg = format!("{key} is not defined in environment");
      if let Some(p) = self.profile() {
        msg.push_str(&format!("\nActive profile: MOSTA_ENV={p} \u{2014} expected {p}_{key} or {key}"));
      }
      if !hint.is_empty() {
        msg.push('\n');
        msg.push_str(hint);
      }
      Error::config(msg).with_field(key)
    })
  }

  /// A positive integer variable; anything else set is an `E_CONFIG` naming the variable.
  pub fn positive_int(&self, key: &str) -> Result<Option<u64>> {
    match self.get(key) {
      None => Ok(None),
      Some(raw) => match js_number(raw) {
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as u64)),
        _ => Err(Error::config(format!("{} must be a positive integer, got {raw:?}", self.describe(key))).with_field(key)),
      },
    }
  }
}

/// `Number(s)` as JavaScript computes it for strings: surrounding whitespace ignored, an
/// all-blank string is 0, `0x`/`0o`/`0b` prefixes (unsigned only), decimal with exponent,
/// `Infinity`; anything else is NaN (`None`).
pub fn js_number(s: &str) -> Option<f64> {
  let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
  if t.is_empty() {
    return Some(0.0);
  }
  let radix = |p: &str, r: u32| -> Option<f64> {
    let digits = &t[p.len()..];
    if digits.is_empty() {
      return None;
    }
    let mut v = 0f64;
    for c in digits.chars() {
      v = v * r as f64 + c.to_digit(r)? as f64;
    }
    Some(v)
  };
  let lower = t.to_ascii_lowercase();
  if lower.starts_with("0x") {
    return radix("0x", 16);
  }
  if lower.starts_with("0o") {
    return radix("0o", 8);
  }
  if lower.starts_with("0b") {
    return radix("0b", 2);
  }
  if t.trim_start_matches(['+', '-']) == "Infinity" {
    return Some(if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
  }
  // Rust accepts "inf"/"nan"/"infinity" in any case; JavaScript does not.
  if !t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E')) {
    return None;
  }
  t.parse::<f64>().ok()
}

/// Which dialect `getDialect()` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
  Orm,
  Net,
}

impl DataMode {
  pub fn from_env(env: &EnvSource) -> Result<Self> {
    match env.get("MOSTA_DATA").map(|v| v.trim().to_ascii_lowercase()) {
      None => Ok(DataMode::Orm),
      Some(v) if v == "orm" => Ok(DataMode::Orm),
      Some(v) if v == "net" => Ok(DataMode::Net),
      Some(v) => Err(Error::config(format!("{} must be \"orm\" or \"net\", got {v:?}", env.describe("MOSTA_DATA"))).with_field("MOSTA_DATA")),
    }
  }
  pub fn as_str(self) -> &'static str {
    match self {
      DataMode::Orm => "orm",
      DataMode::Net => "net",
    }
  }
}

/// SQL backends this package implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
  Sqlite,
  Postgres,
  Mysql,
  Mariadb,
  Cockroachdb,
}

pub const SUPPORTED_DIALECTS: &[&str] = &["sqlite", "postgres", "mysql", "mariadb", "cockroachdb"];

impl Backend {
  pub fn parse(name: &str) -> Result<Self> {
    Ok(match name.trim() {
      "sqlite" => Backend::Sqlite,
      "postgres" | "postgresql" => Backend::Postgres,
      "mysql" => Backend::Mysql,
      "mariadb" => Backend::Mariadb,
      "cockroachdb" => Backend::Cockroachdb,
      other => {
        return Err(Error::config(format!("Unknown dialect \"{other}\". Supported: {}", SUPPORTED_DIALECTS.join(", "))).with_field("DB_DIALECT"))
      }
    })
  }
  pub fn as_str(self) -> &'static str {
    match self {
      Backend::Sqlite => "sqlite",
      Backend::Postgres => "postgres",
      Backend::Mysql => "mysql",
      Backend::Mariadb => "mariadb",
      Backend::Cockroachdb => "cockroachdb",
    }
  }
}

/// hbm2ddl-style strategy applied by `initSchema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaStrategy {
  None,
  Validate,
  Update,
  Create,
  CreateDrop,
}

impl SchemaStrategy {
  pub fn parse(s: &str, var: &str) -> Result<Self> {
    Ok(match s.trim() {
      "none" => SchemaStrategy::None,
      "validate" => SchemaStrategy::Validate,
      "update" => SchemaStrategy::Update,
      "create" => SchemaStrategy::Create,
      "create-drop" => SchemaStrategy::CreateDrop,
      other => {
        return Err(Error::config(format!(
          "{var} must be one of none, validate, update, create, create-drop; got {other:?}"
        ))
        .with_field(var))
      }
    })
  }
}

/// Everything an SQL dialect needs to connect.
#[derive(Debug, Clone, PartialEq)]
pub struct OrmConfig {
  pub backend: Backend,
  pub uri: String,
  pub schema_strategy: SchemaStrategy,
  pub table_prefix: String,
  pub pool_size: Option<u32>,
  /// How long a call waits for a pooled connection before `E_POOL_TIMEOUT`.
  pub pool_timeout_ms: u64,
  pub show_sql: bool,
}

pub const DEFAULT_POOL_SIZE: u32 = 10;
pub const DEFAULT_POOL_TIMEOUT_MS: u64 = 30_000;

impl OrmConfig {
  /// The business configuration (`DB_*`, `SGBD_URI`).
  pub fn from_env(env: &EnvSource) -> Result<Self> {
    let dialect = env.require("DB_DIALECT", &format!("Supported: {}", SUPPORTED_DIALECTS.join(", ")))?;
    let backend = Backend::parse(dialect)?;
    let uri = env.require("SGBD_URI", &format!("DB_DIALECT={dialect} requires a connection string in SGBD_URI"))?;
    let schema_strategy = match env.get("DB_SCHEMA_STRATEGY") {
      Some(s) => SchemaStrategy::parse(s, &env.describe("DB_SCHEMA_STRATEGY"))?,
      None => SchemaStrategy::None,
    };
    Ok(OrmConfig {
      backend,
      uri: uri.to_string(),
      schema_strategy,
      table_prefix: env.get("DB_TABLE_PREFIX").unwrap_or("").to_string(),
      pool_size: env.positive_int("DB_POOL_SIZE")?.map(|n| n as u32),
      pool_timeout_ms: env.positive_int("DB_POOL_TIMEOUT_MS")?.unwrap_or(DEFAULT_POOL_TIMEOUT_MS),
      show_sql: env.get_bool("DB_SHOW_SQL", false),
    })
  }

  /// The options object of `openIsolatedDialect({ dialect, uri, schemaStrategy, … })`.
  pub fn from_options(json: &str) -> Result<Self> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(json).map_err(|e| Error::config(format!("openIsolatedDialect: options must be an object: {e}")))?;
    let o = v.as_object().ok_or_else(|| Error::config("openIsolatedDialect: options must be an object"))?;
    let text = |k: &str| -> Result<Option<String>> {
      match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::config(format!("openIsolatedDialect: {k} must be a string, got {other}")).with_field(k)),
      }
    };
    let dialect = text("dialect")?.ok_or_else(|| Error::config(format!("openIsolatedDialect: dialect is required. Supported: {}", SUPPORTED_DIALECTS.join(", "))).with_field("dialect"))?;
    let uri = text("uri")?.ok_or_else(|| Error::config("openIsolatedDialect: uri is required").with_field("uri"))?;
    let pool_size = match o.get("poolSize") {
      None | Some(Value::Null) => None,
      Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1 && n <= u32::MAX as u64) => n.as_u64().map(|n| n as u32),
      Some(other) => return Err(Error::config(format!("openIsolatedDialect: poolSize must be a positive integer, got {other}")).with_field("poolSize")),
    };
    let pool_timeout_ms = match o.get("poolTimeoutMs") {
      None | Some(Value::Null) => DEFAULT_POOL_TIMEOUT_MS,
      Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => n.as_u64().unwrap_or(DEFAULT_POOL_TIMEOUT_MS),
      Some(other) => return Err(Error::config(format!("openIsolatedDialect: poolTimeoutMs must be a positive integer, got {other}")).with_field("poolTimeoutMs")),
    };
    Ok(OrmConfig {
      backend: Backend::parse(&dialect).map_err(|e| e.with_field("dialect"))?,
      uri,
      schema_strategy: match text("schemaStrategy")? {
        Some(s) => SchemaStrategy::parse(&s, "schemaStrategy")?,
        None => SchemaStrategy::None,
      },
      table_prefix: text("tablePrefix")?.unwrap_or_default(),
      pool_size,
      pool_timeout_ms,
      show_sql: o.get("showSql").and_then(Value::as_bool).unwrap_or(false),
    })
  }

  /// The isolated system connection, when both `MOSTA_SYSTEM_DIALECT` and
  /// `MOSTA_SYSTEM_URI` are set; pool and logging settings follow the business ones.
  pub fn system_from_env(env: &EnvSource) -> Result<Option<Self>> {
    let (Some(d), Some(u)) = (env.get("MOSTA_SYSTEM_DIALECT"), env.get("MOSTA_SYSTEM_URI")) else {
      return Ok(None);
    };
    let backend = Backend::parse(d).map_err(|e| Error { field: Some("MOSTA_SYSTEM_DIALECT".into()), ..e })?;
    let schema_strategy = match env.get("MOSTA_SYSTEM_SCHEMA_STRATEGY") {
      Some(s) => SchemaStrategy::parse(s, &env.describe("MOSTA_SYSTEM_SCHEMA_STRATEGY"))?,
      None => SchemaStrategy::Update,
    };
    Ok(Some(OrmConfig {
      backend,
      uri: u.to_string(),
      schema_strategy,
      table_prefix: String::new(),
      pool_size: env.positive_int("DB_POOL_SIZE")?.map(|n| n as u32),
      pool_timeout_ms: env.positive_int("DB_POOL_TIMEOUT_MS")?.unwrap_or(DEFAULT_POOL_TIMEOUT_MS),
      show_sql: env.get_bool("DB_SHOW_SQL", false),
    }))
  }
}

// ------------------------------------------------------------------ NET mode and device flow

/// Defaults of the NET transport knobs (documented in the README).
pub const DEFAULT_NET_CONNECT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_NET_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_NET_RETRIES: u32 = 2;
pub const DEFAULT_NET_RETRY_BASE_MS: u64 = 200;
/// The OAuth client id sent by the device flow when neither the `clientId` option nor
/// `MOSTA_CLIENT_ID` names one (the reference's default was never published).
pub const DEFAULT_CLIENT_ID: &str = "mostajs-data-plug";
/// The token cache folder name under `~/.config/` when neither `host` nor `MOSTA_HOST` is set.
pub const DEFAULT_AUTH_HOST: &str = "octonet";

/// How the HTTP client of NET mode and of the device flow behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
  /// `MOSTA_NET_CONNECT_TIMEOUT_MS`, default 10 000.
  pub connect_timeout_ms: u64,
  /// `MOSTA_NET_TIMEOUT_MS`: one whole request, body included; default 30 000.
  pub timeout_ms: u64,
  /// `MOSTA_NET_RETRIES`: extra attempts for idempotent reads; default 2, `0` disables.
  pub retries: u32,
  /// `MOSTA_NET_RETRY_BASE_MS`: first backoff step (doubles per attempt); default 200.
  pub retry_base_ms: u64,
  /// `MOSTA_NET_CA_FILE`: a PEM bundle trusted in addition to the system roots.
  pub ca_file: Option<String>,
  /// `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` (either case) from the snapshot.
  pub proxy: ProxyEnv,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProxyEnv {
  pub http: Option<String>,
  pub https: Option<String>,
  pub all: Option<String>,
  pub no_proxy: Option<String>,
}

impl ProxyEnv {
  /// Curl's convention: upper or lower case, lower case first.
  fn from_env(env: &EnvSource) -> Self {
    let pick = |k: &str| env.get(&k.to_ascii_lowercase()).or_else(|| env.get(k)).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    ProxyEnv { http: pick("HTTP_PROXY"), https: pick("HTTPS_PROXY"), all: pick("ALL_PROXY"), no_proxy: pick("NO_PROXY") }
  }
}

/// A count that may be zero (`positive_int` refuses 0, which means "no retry" here).
fn count_var(env: &EnvSource, key: &str) -> Result<Option<u64>> {
  match env.get(key) {
    None => Ok(None),
    Some(raw) => match js_number(raw) {
      Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 100.0 => Ok(Some(n as u64)),
      _ => Err(Error::config(format!("{} must be an integer from 0 to 100, got {raw:?}", env.describe(key))).with_field(key)),
    },
  }
}

impl HttpSettings {
  pub fn from_env(env: &EnvSource) -> Result<Self> {
    Ok(HttpSettings {
      connect_timeout_ms: env.positive_int("MOSTA_NET_CONNECT_TIMEOUT_MS")?.unwrap_or(DEFAULT_NET_CONNECT_TIMEOUT_MS),
      timeout_ms: env.positive_int("MOSTA_NET_TIMEOUT_MS")?.unwrap_or(DEFAULT_NET_TIMEOUT_MS),
      retries: count_var(env, "MOSTA_NET_RETRIES")?.map(|n| n as u32).unwrap_or(DEFAULT_NET_RETRIES),
      retry_base_ms: env.positive_int("MOSTA_NET_RETRY_BASE_MS")?.unwrap_or(DEFAULT_NET_RETRY_BASE_MS),
      ca_file: env.get("MOSTA_NET_CA_FILE").map(str::to_string),
      proxy: ProxyEnv::from_env(env),
    })
  }
}

/// A base URL from a variable: http(s) only, trailing slashes removed (the reference strips
/// one; stripping all avoids `//api` paths).
pub fn base_url(env: &EnvSource, key: &str, raw: &str) -> Result<String> {
  let t = raw.trim().trim_end_matches('/');
  let lower = t.to_ascii_lowercase();
  let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
  if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) || t.contains(['?', '#']) || t.chars().any(char::is_whitespace) {
    let shown = crate::redact::redact_uri(raw);
    return Err(Error::config(format!("{} must be an http:// or https:// base URL without query or fragment, got {shown:?}", env.describe(key))).with_field(key));
  }
  Ok(t.to_string())
}

/// Everything the NET dialect needs besides the API key.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
  /// `MOSTA_NET_URL`, trailing `/` removed.
  pub url: String,
  pub http: HttpSettings,
}

impl NetConfig {
  pub fn from_env(env: &EnvSource) -> Result<Self> {
    let raw = env.require("MOSTA_NET_URL", "MOSTA_DATA=net requires the base URL of a @mostajs/net server in MOSTA_NET_URL (e.g. http://localhost:4488)")?;
    let url = base_url(env, "MOSTA_NET_URL", raw)?;
    // The client speaks REST only; the other transports exist server-side.
    if let Some(t) = env.get("MOSTA_NET_TRANSPORT") {
      if !t.trim().eq_ignore_ascii_case("rest") {
        return Err(Error::config(format!("{} must be \"rest\" (the only transport this client speaks), got {t:?}", env.describe("MOSTA_NET_TRANSPORT"))).with_field("MOSTA_NET_TRANSPORT"));
      }
    }
    Ok(NetConfig { url, http: HttpSettings::from_env(env)? })
  }
}

/// What `ensureApiKey` reads from the environment; its options override these.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
  /// `MOSTA_NET_API_KEY`.
  pub env_key: Option<String>,
  /// `MOSTA_AUTH_FLOW_URL`, else `MOSTA_NET_URL` (trailing `/` removed). A malformed URL is
  /// kept as its error, raised only when the device flow needs the URL, so an env key or a
  /// cached token still resolves.
  pub flow_url: Option<Result<String>>,
  /// `MOSTA_NO_AUTOREGISTER=true`.
  pub no_autoregister: bool,
  /// `MOSTA_CLIENT_ID`, else `DEFAULT_CLIENT_ID`.
  pub client_id: String,
  /// `MOSTA_HOST`, else `DEFAULT_AUTH_HOST`.
  pub host: String,
  /// `MOSTA_AUTH_POLL_SCALE`: multiplies every device-flow wait (interval, `slow_down` step,
  /// `expires_in` deadline). Default 1; tests set e.g. 0.01 so a 5 s interval takes 50 ms.
  pub poll_scale: f64,
  /// `XDG_CONFIG_HOME`, else `$HOME/.config` (`USERPROFILE` when `HOME` is unset).
  pub config_home: Option<std::path::PathBuf>,
  pub http: HttpSettings,
}

impl AuthConfig {
  pub fn from_env(env: &EnvSource) -> Result<Self> {
    let flow_url = match (env.get("MOSTA_AUTH_FLOW_URL"), env.get("MOSTA_NET_URL")) {
      (Some(u), _) => Some(base_url(env, "MOSTA_AUTH_FLOW_URL", u)),
      (None, Some(u)) => Some(base_url(env, "MOSTA_NET_URL", u)),
      (None, None) => None,
    };
    let poll_scale = match env.get("MOSTA_AUTH_POLL_SCALE") {
      None => 1.0,
      Some(raw) => match js_number(raw) {
        Some(n) if n.is_finite() && n > 0.0 && n <= 1000.0 => n,
        _ => return Err(Error::config(format!("{} must be a number above 0 (1 = real time), got {raw:?}", env.describe("MOSTA_AUTH_POLL_SCALE"))).with_field("MOSTA_AUTH_POLL_SCALE")),
      },
    };
    let config_home = env
      .get("XDG_CONFIG_HOME")
      .map(std::path::PathBuf::from)
      .filter(|p| p.is_absolute())
      .or_else(|| env.get("HOME").or_else(|| env.get("USERPROFILE")).map(|h| std::path::Path::new(h).join(".config")));
    Ok(AuthConfig {
      env_key: env.get("MOSTA_NET_API_KEY").map(str::to_string),
      flow_url,
      no_autoregister: env.get_bool("MOSTA_NO_AUTOREGISTER", false),
      client_id: env.get("MOSTA_CLIENT_ID").unwrap_or(DEFAULT_CLIENT_ID).to_string(),
      host: env.get("MOSTA_HOST").unwrap_or(DEFAULT_AUTH_HOST).to_string(),
      poll_scale,
      config_home,
      http: HttpSettings::from_env(env)?,
    })
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn env(pairs: &[(&str, &str)]) -> EnvSource {
    EnvSource::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
  }

  #[test]
  fn profile_key_beats_plain_key_and_empty_is_unset() {
    let e = env(&[("MOSTA_ENV", " TEST "), ("TEST_DB_DIALECT", "sqlite"), ("DB_DIALECT", "postgres")]);
    assert_eq!(e.get("DB_DIALECT"), Some("sqlite"));
    let e = env(&[("MOSTA_ENV", "TEST"), ("TEST_DB_DIALECT", ""), ("DB_DIALECT", "postgres")]);
    assert_eq!(e.get("DB_DIALECT"), Some("postgres"));
    let e = env(&[("MOSTA_ENV", "   "), ("_DB_DIALECT", "x"), ("DB_DIALECT", "mysql")]);
    assert_eq!(e.profile(), None);
    assert_eq!(e.get("DB_DIALECT"), Some("mysql"));
    assert_eq!(env(&[("K", " v ")]).get("K"), Some(" v "));
  }

  #[test]
  fn only_true_is_true() {
    for (v, want) in [("true", true), (" TRUE ", true), ("1", false), ("yes", false), ("on", false)] {
      assert_eq!(env(&[("B", v)]).get_bool("B", false), want, "{v}");
    }
    assert!(env(&[]).get_bool("B", true));
  }

  #[test]
  fn numbers_follow_js_number() {
    let n = |v: &str| env(&[("N", v)]).get_number("N");
    assert_eq!(n(" 5 "), Some(5.0));
    assert_eq!(n("0x10"), Some(16.0));
    assert_eq!(n("1e3"), Some(1000.0));
    assert_eq!(n("5px"), None);
    assert_eq!(n("Infinity"), None);
    assert_eq!(n("inf"), None);
    assert_eq!(n("nan"), None);
    assert_eq!(n("-2.5"), Some(-2.5));
    assert_eq!(n("   "), Some(0.0));
  }

  #[test]
  fn missing_dialect_names_variable_and_profile() {
    let err = OrmConfig::from_env(&env(&[("MOSTA_ENV", "TEST")])).unwrap_err();
    assert_eq!(err.code.as_str(), "E_CONFIG");
    assert!(err.message.contains("DB_DIALECT is not defined"), "{}", err.message);
    assert!(err.message.contains("MOSTA_ENV=TEST"), "{}", err.message);
    assert!(err.message.contains("TEST_DB_DIALECT or DB_DIALECT"));
  }

  #[test]
  fn unknown_dialect_and_bad_pool_size_are_config_errors() {
    let err = OrmConfig::from_env(&env(&[("DB_DIALECT", "oracle"), ("SGBD_URI", "x")])).unwrap_err();
    assert!(err.message.contains("Unknown dialect \"oracle\""));
    let err = OrmConfig::from_env(&env(&[("DB_DIALECT", "sqlite"), ("SGBD_URI", "x"), ("DB_POOL_SIZE", "5px")])).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("DB_POOL_SIZE"));
    let err = OrmConfig::from_env(&env(&[("DB_DIALECT", "sqlite")])).unwrap_err();
    assert!(err.message.contains("SGBD_URI is not defined"));
    assert!(err.message.contains("DB_DIALECT=sqlite requires"));
  }

  #[test]
  fn isolated_options_are_validated() {
    let c = OrmConfig::from_options(r#"{"dialect":"sqlite","uri":":memory:","schemaStrategy":"create","poolSize":2}"#).unwrap();
    assert_eq!((c.backend, c.schema_strategy, c.pool_size), (Backend::Sqlite, SchemaStrategy::Create, Some(2)));
    assert_eq!(OrmConfig::from_options(r#"{"uri":"x"}"#).unwrap_err().field.as_deref(), Some("dialect"));
    assert_eq!(OrmConfig::from_options(r#"{"dialect":"sqlite","uri":"x","poolSize":0}"#).unwrap_err().field.as_deref(), Some("poolSize"));
    assert_eq!(OrmConfig::from_options(r#"{"dialect":"sqlite","uri":"x","schemaStrategy":"updte"}"#).unwrap_err().code.as_str(), "E_CONFIG");
  }

  #[test]
  fn system_config_defaults_to_update() {
    let e = env(&[("MOSTA_SYSTEM_DIALECT", "sqlite"), ("MOSTA_SYSTEM_URI", ":memory:")]);
    let c = OrmConfig::system_from_env(&e).unwrap().unwrap();
    assert_eq!(c.schema_strategy, SchemaStrategy::Update);
    assert!(OrmConfig::system_from_env(&env(&[("MOSTA_SYSTEM_DIALECT", "sqlite")])).unwrap().is_none());
  }

  #[test]
  fn net_config_requires_url_and_rest() {
    let err = NetConfig::from_env(&env(&[("MOSTA_ENV", "PROD")])).unwrap_err();
    assert_eq!(err.code.as_str(), "E_CONFIG");
    assert!(err.message.contains("MOSTA_NET_URL is not defined") && err.message.contains("MOSTA_ENV=PROD"), "{}", err.message);
    let err = NetConfig::from_env(&env(&[("MOSTA_NET_URL", "http://h:1"), ("MOSTA_NET_TRANSPORT", "grpc")])).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("MOSTA_NET_TRANSPORT"));
    let err = NetConfig::from_env(&env(&[("MOSTA_NET_URL", "ftp://h")])).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("MOSTA_NET_URL"));
    let c = NetConfig::from_env(&env(&[("MOSTA_NET_URL", "http://h:1/base//"), ("MOSTA_NET_TRANSPORT", "REST")])).unwrap();
    assert_eq!(c.url, "http://h:1/base");
    assert_eq!((c.http.connect_timeout_ms, c.http.timeout_ms, c.http.retries), (10_000, 30_000, 2));
  }

  #[test]
  fn net_knobs_are_validated_with_their_names() {
    let base = [("MOSTA_NET_URL", "http://h")];
    for (k, v) in [("MOSTA_NET_TIMEOUT_MS", "0"), ("MOSTA_NET_CONNECT_TIMEOUT_MS", "soon"), ("MOSTA_NET_RETRIES", "-1"), ("MOSTA_NET_RETRIES", "1.5")] {
      let mut pairs = base.to_vec();
      pairs.push((k, v));
      let err = NetConfig::from_env(&env(&pairs)).unwrap_err();
      assert_eq!((err.code.as_str(), err.field.as_deref()), ("E_CONFIG", Some(k)), "{k}={v}");
      assert!(err.message.contains(k));
    }
    let c = NetConfig::from_env(&env(&[("MOSTA_NET_URL", "http://h"), ("MOSTA_ENV", "T"), ("T_MOSTA_NET_RETRIES", "0"), ("no_proxy", "localhost")])).unwrap();
    assert_eq!(c.http.retries, 0);
    assert_eq!(c.http.proxy.no_proxy.as_deref(), Some("localhost"));
  }

  #[test]
  fn auth_config_prefers_flow_url_and_reads_overrides() {
    let a = AuthConfig::from_env(&env(&[("MOSTA_NET_URL", "http://data/"), ("MOSTA_AUTH_FLOW_URL", "http://issuer")])).unwrap();
    assert_eq!(a.flow_url, Some(Ok("http://issuer".into())));
    let a = AuthConfig::from_env(&env(&[("MOSTA_NET_URL", "http://data/"), ("HOME", "/home/u")])).unwrap();
    assert_eq!(a.flow_url, Some(Ok("http://data".into())));
    assert_eq!((a.client_id.as_str(), a.host.as_str(), a.poll_scale), (DEFAULT_CLIENT_ID, DEFAULT_AUTH_HOST, 1.0));
    assert_eq!(a.config_home, Some(std::path::PathBuf::from("/home/u/.config")));
    let a = AuthConfig::from_env(&env(&[("MOSTA_NET_URL", "nope")])).unwrap();
    assert_eq!(a.flow_url.unwrap().unwrap_err().field.as_deref(), Some("MOSTA_NET_URL"));
    let a = AuthConfig::from_env(&env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/home/u"), ("MOSTA_CLIENT_ID", "cli"), ("MOSTA_HOST", "acme")])).unwrap();
    assert_eq!((a.flow_url, a.config_home, a.client_id.as_str(), a.host.as_str()), (None, Some("/x".into()), "cli", "acme"));
    assert!(AuthConfig::from_env(&env(&[("MOSTA_AUTH_POLL_SCALE", "0")])).is_err());
  }
}
