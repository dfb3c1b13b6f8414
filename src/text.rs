//! Strings that cross the boundary on every call: the JSON arguments in, the JSON answer
//! out, and short names (method, transaction id).
//!
//! napi's `String` conversions cost two passes each way and an allocation: in, one pass to
//! measure the UTF-8 length and one to copy; out, a UTF-8 decode by V8. Here a JSON argument
//! is copied in one pass into a buffer sized from its UTF-16 length (known without a scan),
//! a short name is copied into an inline buffer (no allocation), and an answer that is ASCII
//! (most are) is handed to V8 as Latin-1, which V8 copies without decoding.

use std::ptr;

use napi::bindgen_prelude::*;
use napi::sys;

/// A UTF-16 unit takes at most 3 bytes of UTF-8 (a surrogate pair, 2 units, takes 4).
const UTF8_PER_UNIT: usize = 3;

/// Above this many units, the buffer is measured exactly rather than sized for the worst
/// case (a large argument would otherwise reserve three times its size).
const ONE_PASS_MAX_UNITS: usize = 64 * 1024;

/// A text argument (JSON arguments, an id), read from a JavaScript string in one copy.
pub struct TextIn(pub String);

impl FromNapiValue for TextIn {
  unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
    // SAFETY: forwarded as received.
    unsafe { read_string(env, v, "expected a string") }.map(TextIn)
  }
}

/// Whether text read from JavaScript may hold a U+FFFD that V8 wrote for a lone surrogate.
/// Such text must go the JSON way, which reports the lone surrogate instead of using a
/// replacement character; text holding U+FFFD itself goes that way too.
pub fn may_hold_replaced_surrogate(s: &str) -> bool {
  !s.is_ascii() && s.contains('\u{FFFD}')
}

/// Reads a JavaScript string in one copy (see the module comment); `expected` is the error
/// message when `v` is not a string.
///
/// # Safety
/// `env` and `v` come from a napi callback running on the JavaScript thread.
pub unsafe fn read_string(env: sys::napi_env, v: sys::napi_value, expected: &str) -> Result<String> {
  let mut units = 0;
  // SAFETY: a null buffer asks only for the length, in UTF-16 units (no copy, no scan).
  check_status!(unsafe { sys::napi_get_value_string_utf16(env, v, ptr::null_mut(), 0, &mut units) }, "{}", expected)?;
  if units > ONE_PASS_MAX_UNITS {
    // SAFETY: forwarded as received.
    return unsafe { String::from_napi_value(env, v) };
  }
  let cap = units * UTF8_PER_UNIT + 1; // napi writes a terminating NUL
  let mut buf: Vec<u8> = Vec::with_capacity(cap);
  let mut written = 0;
  // SAFETY: `buf` has `cap` bytes of capacity; napi writes at most `cap` of them (whole
  // characters only, invalid UTF-16 replaced) and reports how many, NUL excluded.
  check_status!(unsafe { sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), cap, &mut written) }, "{}", expected)?;
  // SAFETY: the first `written` bytes are initialised, and V8 writes valid UTF-8.
  unsafe {
    buf.set_len(written);
    Ok(String::from_utf8_unchecked(buf))
  }
}

/// A JSON answer, given to JavaScript as a string.
pub struct JsonOut(pub String);

impl ToNapiValue for JsonOut {
  unsafe fn to_napi_value(env: sys::napi_env, s: Self) -> Result<sys::napi_value> {
    if !s.0.is_ascii() {
      // SAFETY: forwarded as received.
      return unsafe { String::to_napi_value(env, s.0) };
    }
    let mut out = ptr::null_mut();
    // SAFETY: ASCII is Latin-1 with the same bytes; the length is given, so no NUL is needed.
    check_status!(unsafe { sys::napi_create_string_latin1(env, s.0.as_ptr().cast(), s.0.len() as isize, &mut out) }, "cannot create the answer string")?;
    Ok(out)
  }
}

impl TypeName for JsonOut {
  fn type_name() -> &'static str {
    "String"
  }
  fn value_type() -> ValueType {
    ValueType::String
  }
}

/// A short string (a method name, a transaction id) read into an inline buffer.
pub struct ShortStr {
  buf: [u8; SHORT_MAX],
  len: usize,
}

/// Longer than any method name or transaction id this package makes.
const SHORT_MAX: usize = 64;

impl ShortStr {
  pub fn as_str(&self) -> &str {
    // SAFETY: filled by V8 with whole UTF-8 characters (see `from_napi_value`).
    unsafe { std::str::from_utf8_unchecked(&self.buf[..self.len]) }
  }
}

impl FromNapiValue for ShortStr {
  unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
    let mut s = ShortStr { buf: [0; SHORT_MAX], len: 0 };
    // SAFETY: napi writes at most `SHORT_MAX` bytes (NUL included), whole characters only.
    check_status!(unsafe { sys::napi_get_value_string_utf8(env, v, s.buf.as_mut_ptr().cast(), SHORT_MAX, &mut s.len) }, "expected a string")?;
    // A longer string comes back cut: refuse it rather than use a prefix.
    if s.len >= SHORT_MAX - UTF8_PER_UNIT {
      return Err(Error::new(Status::InvalidArg, format!("expected a name of at most {} bytes", SHORT_MAX - UTF8_PER_UNIT - 1)));
    }
    Ok(s)
  }
}
