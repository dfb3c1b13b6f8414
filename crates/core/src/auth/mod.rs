//! `ensureApiKey` / `clearCachedApiKey` (data-plug-api.md, net-protocol.md §4): where the
//! NET API key comes from, in this order and no other:
//!
//! 1. `MOSTA_NET_API_KEY` (with the `MOSTA_ENV` cascade): no cache, no network;
//! 2. the cached token of this server in `~/.config/<host>/auth.json`, if it is valid for
//!    more than 60 s;
//! 3. `MOSTA_NO_AUTOREGISTER=true`: an `E_AUTH_REQUIRED` error, no device flow;
//! 4. the device flow against `${MOSTA_AUTH_FLOW_URL or MOSTA_NET_URL}/api/v1/auth/device/*`,
//!    whose token is cached (keyed by that URL) and returned.
//!
//! `forceRefresh` skips 1–3 and always runs the flow (used after a 401).

pub mod device;
pub mod render;
pub mod store;

use std::path::{Path, PathBuf};

pub use device::{DeviceCode, DeviceFlow, TokenGrant};
pub use store::{CachedToken, TokenStore};

use crate::env::{AuthConfig, EnvSource};
use crate::error::{Code, Error, Result};
use crate::net::HttpClient;

/// The `onCodeIssued` callback: called once with what the user must see.
pub type OnCode = Box<dyn Fn(DeviceCode) + Send + Sync>;

/// The options of `ensureApiKey`; each one overrides its environment variable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnsureOptions {
  /// Ignore `MOSTA_NET_API_KEY`, `MOSTA_NO_AUTOREGISTER` and the cache; run a fresh flow.
  pub force_refresh: bool,
  /// Else `MOSTA_CLIENT_ID`, else `"mostajs-data-plug"`.
  pub client_id: Option<String>,
  /// Sent to the authorize endpoint only when set.
  pub scope: Option<String>,
  /// The cache folder name under `~/.config/`: else `MOSTA_HOST`, else `"octonet"`.
  pub host: Option<String>,
  /// A cache file path that replaces `~/.config/<host>/auth.json`.
  pub store: Option<PathBuf>,
}

/// Where a key came from; the NET dialect re-authenticates after a 401 only for keys it
/// obtained itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
  Env,
  Cache,
  DeviceFlow,
}

/// A resolved key. `Debug` never shows the key itself.
#[derive(Clone, PartialEq)]
pub struct ApiKey {
  pub key: String,
  pub source: KeySource,
}

impl std::fmt::Debug for ApiKey {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("ApiKey").field("key", &"<redacted>").field("source", &self.source).finish()
  }
}

/// A folder name, not a path: `MOSTA_HOST=../x` must not write outside `~/.config`.
fn check_host(host: &str, from_option: bool) -> Result<()> {
  let bad = host.is_empty() || host == "." || host == ".." || host.contains(['/', '\\']) || host.contains('\0');
  if bad {
    let var = if from_option { "host" } else { "MOSTA_HOST" };
    return Err(Error::config(format!("{var} must be a plain folder name (it names ~/.config/<host>/), got {host:?}")).with_field(var));
  }
  Ok(())
}

/// The cache file: the `store` option, else `<config home>/<host>/auth.json`; `None` when
/// neither `HOME` nor `XDG_CONFIG_HOME` is known (then nothing is cached).
fn token_store(cfg: &AuthConfig, host: Option<&str>, store: Option<&Path>) -> Result<Option<TokenStore>> {
  if let Some(p) = store {
    return Ok(Some(TokenStore::new(p)));
  }
  let host_name = host.unwrap_or(&cfg.host);
  check_host(host_name, host.is_some())?;
  Ok(cfg.config_home.as_deref().map(|home| TokenStore::for_host(home, host_name)))
}

/// The device-flow base URL, or the `E_CONFIG` that names both variables.
fn flow_url(env: &EnvSource, cfg: &AuthConfig) -> Result<String> {
  match &cfg.flow_url {
    Some(r) => r.clone(),
    None => {
      let mut msg = format!(
        "no server to run the device flow against: set {} (the key issuer) or {} (the data server), or set MOSTA_NET_API_KEY",
        env.describe("MOSTA_AUTH_FLOW_URL"),
        env.describe("MOSTA_NET_URL")
      );
      if env.profile().is_none() {
        msg.push_str(" (no MOSTA_ENV profile active)");
      }
      Err(Error::config(msg).with_field("MOSTA_AUTH_FLOW_URL"))
    }
  }
}

/// Writes the cache off the async threads (the lock may wait).
async fn cache_token(store: TokenStore, server: String, token: CachedToken) -> Result<()> {
  tokio::task::spawn_blocking(move || store.put(&server, &token)).await.map_err(|e| Error::internal(format!("token cache writer failed: {e}")))?
}

/// Runs the device flow and returns its token; `on_code` (or the default renderer) shows
/// the user code while it polls.
pub async fn run_device_flow(cfg: &AuthConfig, base: &str, client_id: String, scope: Option<String>, on_code: Option<&OnCode>) -> Result<TokenGrant> {
  let client = HttpClient::shared(base, &cfg.http)?;
  let flow = DeviceFlow::new(client, client_id, scope, cfg.poll_scale);
  let auth = flow.authorize().await?;
  let deadline = tokio::time::Instant::now() + flow.scaled(auth.code.expires_in);
  let _countdown = match on_code {
    Some(cb) => {
      cb(auth.code.clone());
      None
    }
    None => Some(render::show(&auth.code, deadline)),
  };
  flow.poll_until(&auth, deadline).await
}

/// Resolves the API key (see the module docs for the order) and says where it came from.
pub async fn resolve_api_key(env: &EnvSource, opts: EnsureOptions, on_code: Option<OnCode>) -> Result<ApiKey> {
  let cfg = AuthConfig::from_env(env)?;
  if !opts.force_refresh {
    if let Some(key) = &cfg.env_key {
      return Ok(ApiKey { key: key.clone(), source: KeySource::Env });
    }
  }
  let store = token_store(&cfg, opts.host.as_deref(), opts.store.as_deref())?;
  let server = cfg.flow_url.clone().and_then(|r| r.ok());
  if !opts.force_refresh {
    if let (Some(store), Some(server)) = (&store, &server) {
      if let Some(t) = store.get(server).filter(|t| t.is_fresh(store::now_secs())) {
        return Ok(ApiKey { key: t.access_token, source: KeySource::Cache });
      }
    }
    if cfg.no_autoregister {
      let cache = store.as_ref().map(|s| s.path().display().to_string()).unwrap_or_else(|| "the token cache".into());
      return Err(Error::new(
        Code::AuthRequired,
        format!(
          "no API key: {} is not set, {cache} holds no token for {} valid for more than 60 s, and MOSTA_NO_AUTOREGISTER=true forbids the device flow; set MOSTA_NET_API_KEY, or unset MOSTA_NO_AUTOREGISTER to register this machine",
          env.describe("MOSTA_NET_API_KEY"),
          server.as_deref().unwrap_or("this server")
        ),
      )
      .with_field("MOSTA_NET_API_KEY"));
    }
  }
  let base = flow_url(env, &cfg)?;
  let client_id = opts.client_id.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| cfg.client_id.clone());
  let scope = opts.scope.clone().filter(|s| !s.is_empty());
  let grant = run_device_flow(&cfg, &base, client_id, scope, on_code.as_ref()).await?;
  let now = store::now_secs();
  let token = CachedToken {
    access_token: grant.access_token.clone(),
    token_type: grant.token_type.clone(),
    expires_at: grant.expires_in.map(|s| now + s as i64),
    scope: grant.scope.clone(),
    obtained_at: now,
  };
  match store {
    // The user approved: a cache that cannot be written must not lose the key.
    Some(store) => {
      let path = store.path().display().to_string();
      if let Err(e) = cache_token(store, base.clone(), token).await {
        tracing::warn!(target: "mosta::auth", "the API key was not cached in {path}: {}", e.message);
      }
    }
    None => tracing::warn!(target: "mosta::auth", "neither HOME nor XDG_CONFIG_HOME is set: the API key is not cached"),
  }
  Ok(ApiKey { key: grant.access_token, source: KeySource::DeviceFlow })
}

/// `ensureApiKey`: the key only.
pub async fn ensure_api_key(env: &EnvSource, opts: EnsureOptions, on_code: Option<OnCode>) -> Result<String> {
  resolve_api_key(env, opts, on_code).await.map(|k| k.key)
}

/// `clearCachedApiKey`: forgets this server's cached token (`MOSTA_AUTH_FLOW_URL` or
/// `MOSTA_NET_URL`); with neither set, the whole cache file. Nothing cached is a no-op.
pub fn clear_cached_api_key(env: &EnvSource, host: Option<&str>, store: Option<&Path>) -> Result<()> {
  let cfg = AuthConfig::from_env(env)?;
  let Some(store) = token_store(&cfg, host, store)? else {
    return Ok(());
  };
  match &cfg.flow_url {
    Some(Ok(server)) => store.remove(Some(server)),
    Some(Err(e)) => Err(e.clone()),
    None => store.remove(None),
  }
}

#[cfg(test)]
mod tests {
  use super::store::tests::TempDir;
  use super::*;
  use crate::net::test_server::{json, Recorded, TestServer};
  use serde_json::json;
  use std::sync::atomic::{AtomicUsize, Ordering};
  use std::sync::{Arc, Mutex};

  /// A device-flow server that grants `token` on the first poll; counts authorizations.
  async fn issuer(token: &'static str) -> (TestServer, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let srv = TestServer::start(move |r: &Recorded| match r.path() {
      device::AUTHORIZE_PATH => {
        c.fetch_add(1, Ordering::SeqCst);
        json(200, json!({"device_code": "d", "user_code": "U-1", "verification_uri": "http://v", "verification_uri_complete": "http://v?c=U-1", "expires_in": 60, "interval": 1}))
      }
      device::TOKEN_PATH => json(200, json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})),
      _ => json(404, json!({})),
    })
    .await;
    (srv, n)
  }

  fn env(tmp: &TempDir, pairs: &[(&str, &str)]) -> EnvSource {
    let mut all = vec![("HOME".to_string(), tmp.0.display().to_string()), ("MOSTA_AUTH_POLL_SCALE".into(), "0.01".into())];
    all.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    EnvSource::from_pairs(all)
  }

  fn cache_of(tmp: &TempDir, host: &str) -> TokenStore {
    TokenStore::for_host(&tmp.0.join(".config"), host)
  }

  fn seed(store: &TokenStore, server: &str, key: &str, expires_at: Option<i64>) {
    store.put(server, &CachedToken { access_token: key.into(), token_type: "Bearer".into(), expires_at, scope: None, obtained_at: 0 }).unwrap();
  }

  fn capture() -> (Arc<Mutex<Vec<DeviceCode>>>, Option<OnCode>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, Some(Box::new(move |c: DeviceCode| s.lock().unwrap().push(c))))
  }

  #[tokio::test]
  async fn the_env_key_wins_with_the_profile_cascade() {
    let tmp = TempDir::new();
    let e = env(&tmp, &[("MOSTA_ENV", "PROD"), ("PROD_MOSTA_NET_API_KEY", "sk_prod"), ("MOSTA_NET_API_KEY", "sk_plain"), ("MOSTA_NET_URL", "http://127.0.0.1:9")]);
    let k = resolve_api_key(&e, EnsureOptions::default(), None).await.unwrap();
    assert_eq!((k.key.as_str(), k.source), ("sk_prod", KeySource::Env));
    assert!(!format!("{k:?}").contains("sk_prod"));
    // An env key needs no URL at all.
    let e = env(&tmp, &[("MOSTA_NET_API_KEY", "sk_plain")]);
    assert_eq!(ensure_api_key(&e, EnsureOptions::default(), None).await.unwrap(), "sk_plain");
  }

  #[tokio::test]
  async fn a_fresh_cached_token_is_reused_and_a_stale_one_is_not() {
    let tmp = TempDir::new();
    let (srv, hits) = issuer("sk_from_flow").await;
    let store = cache_of(&tmp, "octonet");
    seed(&store, &srv.base, "sk_cached", Some(store::now_secs() + 3600));
    let e = env(&tmp, &[("MOSTA_NET_URL", &srv.base)]);
    let k = resolve_api_key(&e, EnsureOptions::default(), None).await.unwrap();
    assert_eq!((k.key.as_str(), k.source), ("sk_cached", KeySource::Cache));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    seed(&store, &srv.base, "sk_stale", Some(store::now_secs() + 30));
    let (seen, cb) = capture();
    let k = resolve_api_key(&e, EnsureOptions::default(), cb).await.unwrap();
    assert_eq!((k.key.as_str(), k.source), ("sk_from_flow", KeySource::DeviceFlow));
    assert_eq!(seen.lock().unwrap()[0].verification_uri_complete.as_deref(), Some("http://v?c=U-1"));
    let cached = store.get(&srv.base).unwrap();
    assert_eq!(cached.access_token, "sk_from_flow");
    assert!(cached.expires_at.unwrap() > store::now_secs() + 3500);
  }

  #[tokio::test]
  async fn no_autoregister_uses_the_cache_or_fails_clearly() {
    let tmp = TempDir::new();
    let (srv, hits) = issuer("sk_x").await;
    let e = env(&tmp, &[("MOSTA_NET_URL", &srv.base), ("MOSTA_NO_AUTOREGISTER", "true")]);
    let err = ensure_api_key(&e, EnsureOptions::default(), None).await.unwrap_err();
    assert_eq!(err.code, Code::AuthRequired);
    assert!(err.message.contains("MOSTA_NO_AUTOREGISTER=true") && err.message.contains("MOSTA_NET_API_KEY"), "{}", err.message);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    seed(&cache_of(&tmp, "octonet"), &srv.base, "sk_cached", None);
    assert_eq!(ensure_api_key(&e, EnsureOptions::default(), None).await.unwrap(), "sk_cached");
  }

  #[tokio::test]
  async fn force_refresh_ignores_env_key_opt_out_and_cache() {
    let tmp = TempDir::new();
    let (srv, hits) = issuer("sk_new").await;
    let store = cache_of(&tmp, "octonet");
    seed(&store, &srv.base, "sk_cached", None);
    let e = env(&tmp, &[("MOSTA_NET_URL", &srv.base), ("MOSTA_NO_AUTOREGISTER", "true"), ("MOSTA_NET_API_KEY", "sk_env")]);
    let (_, cb) = capture();
    let k = resolve_api_key(&e, EnsureOptions { force_refresh: true, ..Default::default() }, cb).await.unwrap();
    assert_eq!((k.key.as_str(), k.source), ("sk_new", KeySource::DeviceFlow));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(store.get(&srv.base).unwrap().access_token, "sk_new", "the cache is overwritten");
  }

  #[tokio::test]
  async fn urls_client_id_scope_host_and_store_are_honoured() {
    let tmp = TempDir::new();
    let (issuer_srv, hits) = issuer("sk_issued").await;
    let (data_srv, data_hits) = issuer("sk_wrong").await;
    // MOSTA_AUTH_FLOW_URL beats MOSTA_NET_URL; clientId option beats MOSTA_CLIENT_ID.
    let e = env(&tmp, &[("MOSTA_NET_URL", &data_srv.base), ("MOSTA_AUTH_FLOW_URL", &issuer_srv.base), ("MOSTA_CLIENT_ID", "env-cli"), ("MOSTA_HOST", "acme")]);
    let (_, cb) = capture();
    let opts = EnsureOptions { client_id: Some("opt-cli".into()), scope: Some("projects".into()), ..Default::default() };
    assert_eq!(ensure_api_key(&e, opts, cb).await.unwrap(), "sk_issued");
    assert_eq!((hits.load(Ordering::SeqCst), data_hits.load(Ordering::SeqCst)), (1, 0));
    assert_eq!(issuer_srv.requests()[0].body_text(), "client_id=opt-cli&scope=projects");
    assert!(cache_of(&tmp, "acme").get(&issuer_srv.base).is_some(), "MOSTA_HOST names the folder");
    // MOSTA_CLIENT_ID when no option; the default otherwise.
    let (_, cb) = capture();
    let custom = tmp.0.join("custom/auth.json");
    ensure_api_key(&e, EnsureOptions { store: Some(custom.clone()), ..Default::default() }, cb).await.unwrap();
    assert!(issuer_srv.requests().iter().any(|r| r.body_text() == "client_id=env-cli"));
    assert!(TokenStore::new(&custom).get(&issuer_srv.base).is_some(), "the store option replaces the path");
    let e2 = env(&tmp, &[("MOSTA_NET_URL", &data_srv.base)]);
    let (_, cb) = capture();
    ensure_api_key(&e2, EnsureOptions { host: Some("other".into()), ..Default::default() }, cb).await.unwrap();
    assert_eq!(data_srv.requests()[0].body_text(), "client_id=mostajs-data-plug");
    assert!(cache_of(&tmp, "other").get(&data_srv.base).is_some());
  }

  #[tokio::test]
  async fn missing_urls_and_bad_hosts_are_config_errors() {
    let tmp = TempDir::new();
    let err = ensure_api_key(&env(&tmp, &[("MOSTA_ENV", "DEV")]), EnsureOptions::default(), None).await.unwrap_err();
    assert_eq!(err.code, Code::Config);
    assert!(err.message.contains("MOSTA_AUTH_FLOW_URL") && err.message.contains("MOSTA_NET_URL") && err.message.contains("MOSTA_ENV=DEV"), "{}", err.message);
    let err = ensure_api_key(&env(&tmp, &[("MOSTA_NET_URL", "http://h"), ("MOSTA_HOST", "../etc")]), EnsureOptions::default(), None).await.unwrap_err();
    assert_eq!(err.field.as_deref(), Some("MOSTA_HOST"));
  }

  #[test]
  fn clearing_tolerates_a_missing_cache_and_keeps_other_servers() {
    let tmp = TempDir::new();
    let e = env(&tmp, &[("MOSTA_NET_URL", "http://a/")]);
    clear_cached_api_key(&e, None, None).unwrap();
    clear_cached_api_key(&env(&tmp, &[]), Some("nohost"), None).unwrap();
    let store = cache_of(&tmp, "octonet");
    seed(&store, "http://a", "ka", None);
    seed(&store, "http://b", "kb", None);
    clear_cached_api_key(&e, None, None).unwrap();
    assert!(store.get("http://a").is_none());
    assert!(store.get("http://b").is_some());
    clear_cached_api_key(&env(&tmp, &[]), None, None).unwrap();
    assert!(!store.path().exists(), "no server named: the whole file goes");
    let custom = tmp.0.join("c.json");
    seed(&TokenStore::new(&custom), "http://a", "ka", None);
    clear_cached_api_key(&e, None, Some(&custom)).unwrap();
    assert!(!custom.exists());
  }
}
