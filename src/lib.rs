//! The napi binding of `@mostajs/data-plug`: argument conversion, error mapping and handing
//! work to `mosta-core`. No SQL, HTTP or environment logic lives here.

// napi registers the exports at load time; a test build of this crate sees them unused.
#![cfg_attr(test, allow(dead_code))]

mod auth;
mod eager;
mod errors;
mod text;
mod open;
mod records;
mod registry;
mod remote;
mod settler;
mod sqlite;

/// Log lines (`DB_SHOW_SQL` statements, DDL warnings) go to stderr; `MOSTA_LOG` overrides
/// the filter (tracing `EnvFilter` syntax).
#[napi_derive::module_init]
fn init() {
  let filter = std::env::var("MOSTA_LOG").unwrap_or_else(|_| "mosta=warn,mosta::sql=info".to_string());
  let _ = tracing_subscriber::fmt()
    .with_writer(std::io::stderr)
    .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
    .with_target(false)
    .without_time()
    .try_init();
}

/// Exports napi cannot declare with `#[napi]` (see `records.rs`).
#[napi_derive::napi(module_exports)]
pub fn exports(mut exports: napi::bindgen_prelude::Object, env: napi::Env) -> napi::Result<()> {
  records::export(&env, &mut exports)
}

/// mimalloc instead of the system allocator: building requests and row JSON makes many
/// small, short-lived allocations, which glibc malloc serves measurably slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
