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
  match t.trim_start_matches(['+', '-']) {
    "Infinity" => return Some(if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY }),
    _ => {}
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
  fn system_config_defaults_to_update() {
    let e = env(&[("MOSTA_SYSTEM_DIALECT", "sqlite"), ("MOSTA_SYSTEM_URI", ":memory:")]);
    let c = OrmConfig::system_from_env(&e).unwrap().unwrap();
    assert_eq!(c.schema_strategy, SchemaStrategy::Update);
    assert!(OrmConfig::system_from_env(&env(&[("MOSTA_SYSTEM_DIALECT", "sqlite")])).unwrap().is_none());
  }
}
