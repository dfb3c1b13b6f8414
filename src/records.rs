//! `create` data as call arguments instead of JSON text, on SQLite.
//!
//! For a small `create`, `JSON.stringify` of the data and the parse of that text here cost
//! more than the rest of the binding's work. When the data is a plain object of primitive
//! values, `lib/records.js` numbers its key list once per session (`recordShape`) and
//! passes the values themselves: `sqliteCreate(session, handle, shape, tx, ...values)`.
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

use mosta_core::dialect::Request;
use mosta_core::fields::Fields;
use napi::bindgen_prelude::*;
use napi::sys;
use serde_json::{Number, Value};

use crate::errors::to_napi;
use crate::sqlite::{record_keys, session_state, submit, Op};
use crate::text::{may_hold_replaced_surrogate, read_string, ShortStr};

/// session, handle, shape, tx.
const FIXED_ARGS: usize = 4;
/// Most values a call carries (`lib/records.js` sends larger data as JSON).
pub const MAX_VALUES: usize = 64;

/// Adds `sqliteCreate` to the module's exports. A `#[napi]` function takes a fixed number
/// of arguments; this one takes the values after the fixed four.
pub fn export(env: &Env, exports: &mut Object) -> Result<()> {
  let f = env.create_function::<(), Unknown>("sqliteCreate", sqlite_create)?;
  exports.set_named_property("sqliteCreate", f)
}

unsafe extern "C" fn sqlite_create(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // SAFETY: called by Node-API on the JavaScript thread with this call's `info`.
  let r = std::panic::catch_unwind(|| unsafe { create(env, info) });
  let e = match r {
    Ok(Ok(v)) => return v,
    Ok(Err(e)) => e,
    Err(_) => to_napi(mosta_core::Error::internal("sqliteCreate panicked")),
  };
  // SAFETY: throwing on the JavaScript thread; the returned null is ignored by Node-API.
  unsafe { JsError::from(e).throw_into(env) };
  ptr::null_mut()
}

/// The call's answer (see `sqlite::Answer`), or `undefined` when a value must go as JSON.
unsafe fn create(env: sys::napi_env, info: sys::napi_callback_info) -> Result<sys::napi_value> {
  let mut argv = [ptr::null_mut(); FIXED_ARGS + MAX_VALUES];
  let mut argc = argv.len();
  // SAFETY: `argv` holds `argc` slots; Node-API fills at most that many and sets `argc` to
  // the number of arguments given.
  check_status!(unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) })?;
  if argc < FIXED_ARGS || argc > argv.len() {
    return Err(Error::new(Status::InvalidArg, format!("sqliteCreate takes {FIXED_ARGS} to {} arguments", argv.len())));
  }
  let mut values = Vec::with_capacity(argc - FIXED_ARGS);
  for &v in &argv[FIXED_ARGS..argc] {
    // SAFETY: `v` is an argument of this call.
    match unsafe { primitive(env, v) }? {
      Some(v) => values.push(v),
      None => return undefined(env),
    }
  }
  // SAFETY: arguments of this call.
  let (session, handle, shape) = unsafe { (u32::from_napi_value(env, argv[0])?, u32::from_napi_value(env, argv[1])?, u32::from_napi_value(env, argv[2])?) };
  // SAFETY: as above.
  let tx = unsafe { Option::<ShortStr>::from_napi_value(env, argv[3])? };
  let state = session_state(session)?;
  let keys = record_keys(&state, shape)?;
  if keys.len() != values.len() {
    return Err(to_napi(mosta_core::Error::internal(format!("record shape {shape} has {} keys, the call gave {} values", keys.len(), values.len()))));
  }
  // A shape's keys are distinct (checked by `record_shape`).
  let data = Fields::from_distinct(keys.iter().cloned().zip(values).collect());
  let env = Env::from_raw(env);
  let answer = submit(&state, &env, Op::Request { handle, req: Request::Create { data, template: true } }, tx.as_ref().map(ShortStr::as_str))?;
  // SAFETY: converting on the JavaScript thread.
  unsafe { ToNapiValue::to_napi_value(env.raw(), answer) }
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
