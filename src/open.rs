//! Opening dialects. The environment comes from JavaScript as a JSON snapshot of
//! `process.env` (see `mosta_core::env`); the core resolves it.

use mosta_core::dialect::{open_orm, Opened};
use mosta_core::env::{DataMode, EnvSource, OrmConfig};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{napi, to_napi};
use crate::remote::NativeAsync;
use crate::sqlite::NativeSqlite;

/// `'orm'` or `'net'` from `MOSTA_DATA` (through the profile cascade).
#[napi(catch_unwind)]
pub fn data_mode(env_json: String) -> Result<String> {
  let env = napi(EnvSource::from_json(&env_json))?;
  napi(DataMode::from_env(&env)).map(|m| m.as_str().to_string())
}

/// Opens a dialect. `kind`: `business` (from `MOSTA_DATA`, `DB_*`, `SGBD_URI`, `MOSTA_NET_*`),
/// `system` (from `MOSTA_SYSTEM_*`; `null` when not configured), or `options` (the JSON
/// options of `openIsolatedDialect`).
#[napi(ts_return_type = "Promise<NativeSqlite | NativeAsync | null>")]
pub async fn open_dialect(source: String, kind: String) -> Result<Option<Either<NativeSqlite, NativeAsync>>> {
  let opened = match kind.as_str() {
    "business" => {
      let env = EnvSource::from_json(&source).map_err(to_napi)?;
      match DataMode::from_env(&env).map_err(to_napi)? {
        DataMode::Net => Some(Opened::Async(mosta_core::dialect::net::open(env).await.map_err(to_napi)?)),
        DataMode::Orm => Some(open_orm(OrmConfig::from_env(&env).map_err(to_napi)?).await.map_err(to_napi)?),
      }
    }
    "system" => {
      let env = EnvSource::from_json(&source).map_err(to_napi)?;
      match OrmConfig::system_from_env(&env).map_err(to_napi)? {
        Some(config) => Some(open_orm(config).await.map_err(to_napi)?),
        None => None,
      }
    }
    "options" => Some(open_orm(OrmConfig::from_options(&source).map_err(to_napi)?).await.map_err(to_napi)?),
    other => return Err(to_napi(mosta_core::Error::arg(format!("openDialect: unknown kind {other:?}")))),
  };
  Ok(opened.map(|o| match o {
    Opened::Sqlite(s) => Either::A(NativeSqlite::new(*s)),
    Opened::Async(a) => Either::B(NativeAsync::new(a)),
  }))
}
