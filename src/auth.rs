//! `ensureApiKey` / `clearCachedApiKey`: option conversion and the `onCodeIssued` callback;
//! the resolution order, the device flow and the token cache live in `mosta_core::auth`.

use std::path::PathBuf;

use mosta_core::auth::{self, DeviceCode, EnsureOptions};
use mosta_core::env::EnvSource;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;

use crate::errors::{napi, to_napi};

/// What `onCodeIssued` receives.
#[napi(object)]
pub struct DeviceCodeInfo {
  pub user_code: String,
  pub verification_uri: String,
  pub verification_uri_complete: Option<String>,
  /// Seconds until the code expires.
  pub expires_in: f64,
  /// Seconds between polls.
  pub interval: f64,
}

impl From<DeviceCode> for DeviceCodeInfo {
  fn from(c: DeviceCode) -> Self {
    DeviceCodeInfo {
      user_code: c.user_code,
      verification_uri: c.verification_uri,
      verification_uri_complete: c.verification_uri_complete,
      expires_in: c.expires_in as f64,
      interval: c.interval as f64,
    }
  }
}

type OnCodeFn = ThreadsafeFunction<DeviceCodeInfo, (), DeviceCodeInfo, Status, false>;

fn options(json: &str) -> mosta_core::Result<EnsureOptions> {
  let v: Value = if json.is_empty() { Value::Null } else { serde_json::from_str(json)? };
  let text = |k: &str| -> mosta_core::Result<Option<String>> {
    match v.get(k) {
      None | Some(Value::Null) => Ok(None),
      Some(Value::String(s)) => Ok(Some(s.clone())),
      Some(other) => Err(mosta_core::Error::arg(format!("ensureApiKey: {k} must be a string, got {other}")).with_field(k)),
    }
  };
  Ok(EnsureOptions {
    force_refresh: v.get("forceRefresh").and_then(Value::as_bool).unwrap_or(false),
    client_id: text("clientId")?,
    scope: text("scope")?,
    host: text("host")?,
    store: text("store")?.map(PathBuf::from),
  })
}

#[napi(ts_return_type = "Promise<string>")]
pub fn ensure_api_key<'e>(
  env: &'e Env,
  env_json: String,
  options_json: String,
  #[napi(ts_arg_type = "((info: DeviceCodeInfo) => void) | undefined | null")] on_code_issued: Option<OnCodeFn>,
) -> Result<PromiseRaw<'e, String>> {
  let source = napi(EnvSource::from_json(&env_json))?;
  let opts = napi(options(&options_json))?;
  let on_code: Option<auth::OnCode> = on_code_issued.map(|f| {
    Box::new(move |c: DeviceCode| {
      f.call(c.into(), ThreadsafeFunctionCallMode::NonBlocking);
    }) as auth::OnCode
  });
  env.spawn_future(async move { auth::ensure_api_key(&source, opts, on_code).await.map_err(to_napi) })
}

#[napi(catch_unwind)]
pub fn clear_cached_api_key(env_json: String, options_json: String) -> Result<()> {
  let source = napi(EnvSource::from_json(&env_json))?;
  let opts = napi(options(&options_json))?;
  napi(auth::clear_cached_api_key(&source, opts.host.as_deref(), opts.store.as_deref()))
}
