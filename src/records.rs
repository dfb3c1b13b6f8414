//! `create` data as call arguments instead of JSON text (SQLite, PostgreSQL, MySQL).
//!
//! For a small `create`, `JSON.stringify` of the data and the parse of that text here cost
//! more than the rest of the binding's work. When the data is a plain object of primitive
//! values, `lib/records.js` numbers its key list once per dialect (`recordShape`) and
//! passes the values themselves: `sqliteCreate(session, handle, shape, tx, ...values)`, or
//! `asyncCreate(dialect, …)` for the pooled dialects.
//!
//! Only values whose meaning JSON would carry unchanged are read here: strings without lone
//! surrogates, finite numbers (integers only below 2^53, where JSON's digits and the number
//! agree), booleans and null. For anything else the call answers `undefined` before doing
//! anything, and the data goes the JSON way, which applies JSON's rules (`toJSON`, dropped
//! `undefined`, `null` for NaN, errors for lone surrogates or BigInt).
//!
//! JavaScript keeps the values it sent, so the created row may come back as a template of
//! them (`Request::Create::template`, `rows::TemplateRow`): only the values the database
//! made (id, timestamps, and any the schema changed) cross back.

use std::ptr;
use std::sync::Arc;

use mosta_core::dialect::rows::{Slot, Template};
use mosta_core::dialect::Request;
use mosta_core::fields::Fields;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use serde_json::{Number, Value};

use crate::errors::to_napi;
use crate::text::{may_hold_replaced_surrogate, read_string, ShortStr};

/// dialect number, handle, shape, tx.
const FIXED_ARGS: usize = 4;
/// Most values a call carries (`lib/records.js` sends larger data as JSON).
pub const MAX_VALUES: usize = 64;
/// Key lists a dialect numbers; data with other keys travels as JSON.
const RECORD_SHAPES_MAX: usize = 256;

/// The key lists of one dialect's `create` data sent as values, by number.
#[derive(Default)]
pub struct RecordShapes(Vec<Arc<[String]>>);

impl RecordShapes {
  /// Numbers a key list; `None` once as many are kept as allowed.
  pub fn register(&mut self, keys: Vec<String>) -> Result<Option<u32>> {
    if self.0.len() >= RECORD_SHAPES_MAX {
      return Ok(None);
    }
    let distinct: std::collections::HashSet<&String> = keys.iter().collect();
    if distinct.len() != keys.len() {
      return Err(Error::new(Status::InvalidArg, "a record shape lists a key twice"));
    }
    self.0.push(keys.into());
    Ok(Some(self.0.len() as u32 - 1))
  }

  pub fn keys(&self, shape: u32) -> Result<Arc<[String]>> {
    let keys = self.0.get(shape as usize).cloned();
    keys.ok_or_else(|| to_napi(mosta_core::Error::internal(format!("unknown record shape {shape}"))))
  }
}

/// The keys of a templated `create` answer (`E[template, made…]`) and, for each, where its
/// value comes from: the index of the caller's value, -1 for the answer's next made value,
/// -3 for the same made value as epoch milliseconds of a date, -2 for `[]`.
#[napi(object)]
pub struct RowTemplate {
  pub keys: Vec<String>,
  pub slots: Vec<i32>,
}

impl From<Template> for RowTemplate {
  fn from(t: Template) -> Self {
    let slot = |s: &Slot| match s {
      Slot::Given(i) => *i as i32,
      Slot::Made => -1,
      Slot::Empty => -2,
      Slot::MadeDate => -3,
    };
    RowTemplate { keys: t.keys.to_vec(), slots: t.slots.iter().map(slot).collect() }
  }
}

/// Adds `sqliteCreate` and `asyncCreate` to the module's exports. A `#[napi]` function
/// takes a fixed number of arguments; these take the values after the fixed four.
pub fn export(env: &Env, exports: &mut Object) -> Result<()> {
  let f = env.create_function::<(), Unknown>("sqliteCreate", sqlite_create)?;
  exports.set_named_property("sqliteCreate", f)?;
  let f = env.create_function::<(), Unknown>("asyncCreate", async_create)?;
  exports.set_named_property("asyncCreate", f)
}

/// One `create` as the arguments gave it.
pub struct Create {
  /// The session or dialect number.
  pub target: u32,
  pub handle: u32,
  pub shape: u32,
  pub tx: Option<ShortStr>,
  pub values: Vec<Value>,
}

impl Create {
  /// The request, with the values under the keys of `keys` (the shape's).
  pub fn request(self, keys: &[String]) -> Result<Request> {
    if keys.len() != self.values.len() {
      let (shape, n) = (self.shape, self.values.len());
      return Err(to_napi(mosta_core::Error::internal(format!("record shape {shape} has {} keys, the call gave {n} values", keys.len()))));
    }
    // A shape's keys are distinct (checked by `RecordShapes::register`).
    let data = Fields::from_distinct(keys.iter().cloned().zip(self.values).collect());
    Ok(Request::Create { data, template: true })
  }
}

unsafe extern "C" fn sqlite_create(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // SAFETY: called by Node-API on the JavaScript thread with this call's `info`.
  unsafe { guarded(env, info, "sqliteCreate", crate::sqlite::create) }
}

unsafe extern "C" fn async_create(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // SAFETY: as above.
  unsafe { guarded(env, info, "asyncCreate", crate::remote::create) }
}

/// Reads the call's arguments and runs `run` on them: its answer, `undefined` when a value
/// must go as JSON, or a thrown error.
unsafe fn guarded(env: sys::napi_env, info: sys::napi_callback_info, name: &str, run: fn(&Env, Create) -> Result<sys::napi_value>) -> sys::napi_value {
  // SAFETY: forwarded as received, on the JavaScript thread.
  let r = std::panic::catch_unwind(|| unsafe {
    match read_create(env, info, name)? {
      Some(c) => run(&Env::from_raw(env), c),
      None => undefined(env),
    }
  });
  let e = match r {
    Ok(Ok(v)) => return v,
    Ok(Err(e)) => e,
    Err(_) => to_napi(mosta_core::Error::internal(format!("{name} panicked"))),
  };
  // SAFETY: throwing on the JavaScript thread; the returned null is ignored by Node-API.
  unsafe { JsError::from(e).throw_into(env) };
  ptr::null_mut()
}

/// The call's arguments; `None` when a value must go as JSON.
unsafe fn read_create(env: sys::napi_env, info: sys::napi_callback_info, name: &str) -> Result<Option<Create>> {
  let mut argv = [ptr::null_mut(); FIXED_ARGS + MAX_VALUES];
  let mut argc = argv.len();
  // SAFETY: `argv` holds `argc` slots; Node-API fills at most that many and sets `argc` to
  // the number of arguments given.
  check_status!(unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) })?;
  if argc < FIXED_ARGS || argc > argv.len() {
    return Err(Error::new(Status::InvalidArg, format!("{name} takes {FIXED_ARGS} to {} arguments", argv.len())));
  }
  let mut values = Vec::with_capacity(argc - FIXED_ARGS);
  for &v in &argv[FIXED_ARGS..argc] {
    // SAFETY: `v` is an argument of this call.
    match unsafe { primitive(env, v) }? {
      Some(v) => values.push(v),
      None => return Ok(None),
    }
  }
  // SAFETY: arguments of this call.
  let (target, handle, shape) = unsafe { (u32::from_napi_value(env, argv[0])?, u32::from_napi_value(env, argv[1])?, u32::from_napi_value(env, argv[2])?) };
  // SAFETY: as above.
  let tx = unsafe { Option::<ShortStr>::from_napi_value(env, argv[3])? };
  Ok(Some(Create { target, handle, shape, tx, values }))
}

fn undefined(env: sys::napi_env) -> Result<sys::napi_value> {
  let mut v = ptr::null_mut();
  // SAFETY: plain Node-API call on the JavaScript thread.
  check_status!(unsafe { sys::napi_get_undefined(env, &mut v) })?;
  Ok(v)
}

/// `v` as the JSON value `JSON.stringify` then a JSON parse would give, when it is a
/// primitive that survives that trip unchanged; `None` otherwise.
unsafe fn primitive(env: sys::napi_env, v: sys::napi_value) -> Result<Option<Value>> {
  let mut t = 0;
  // SAFETY: plain Node-API calls on the JavaScript thread, on a value of this call.
  unsafe {
    check_status!(sys::napi_typeof(env, v, &mut t))?;
    Ok(match t {
      sys::ValueType::napi_string => {
        let s = read_string(env, v, "expected a string")?;
        if may_hold_replaced_surrogate(&s) {
          return Ok(None);
        }
        Some(Value::String(s))
      }
      sys::ValueType::napi_number => {
        let mut d = 0.0;
        check_status!(sys::napi_get_value_double(env, v, &mut d))?;
        number(d)
      }
      sys::ValueType::napi_boolean => {
        let mut b = false;
        check_status!(sys::napi_get_value_bool(env, v, &mut b))?;
        Some(Value::Bool(b))
      }
      sys::ValueType::napi_null => Some(Value::Null),
      _ => None,
    })
  }
}

/// Integers below this magnitude are exact in a double and print as their digits.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// A number as its JSON text would parse: an integer when integral, else a float; `None`
/// for what JSON would change (NaN and infinities become `null`, `-0` becomes `0`) or print
/// as digits of another number (integers from 2^53). (`-0` could be read as `0`, but the
/// created row may be answered with the caller's own values: see `rows::TemplateRow`.)
fn number(d: f64) -> Option<Value> {
  if !d.is_finite() || (d == 0.0 && d.is_sign_negative()) {
    return None;
  }
  if d.fract() == 0.0 {
    return (d.abs() < EXACT_INTEGER).then(|| Value::from(d as i64));
  }
  Number::from_f64(d).map(Value::Number)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn numbers_read_as_their_json_text_parses() {
    assert_eq!(number(34.0), Some(serde_json::json!(34)));
    assert_eq!(number(0.0), Some(serde_json::json!(0)));
    assert_eq!(number(-0.0), None);
    assert_eq!(number(-7.0), Some(serde_json::json!(-7)));
    assert_eq!(number(804.82), Some(serde_json::json!(804.82)));
    assert_eq!(number(9_007_199_254_740_991.0), Some(serde_json::json!(9_007_199_254_740_991i64)));
    assert_eq!(number(EXACT_INTEGER), None);
    assert_eq!(number(1e21), None);
    assert_eq!(number(f64::NAN), None);
    assert_eq!(number(f64::NEG_INFINITY), None);
  }
}
