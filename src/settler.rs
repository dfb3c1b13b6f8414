//! Settles the promises of waiting calls through one threadsafe function per JavaScript
//! thread.
//!
//! napi's own deferreds create a threadsafe function for every promise (with its libuv
//! handle, async resource and teardown hook) and close it after: measured on PostgreSQL
//! `create` in a transaction, 5 to 8 % of the JavaScript thread's time per call. Here
//! a thread's first waiting call creates one threadsafe function; each answer is queued on
//! it as a boxed `Settlement`, and its callback, on the JavaScript thread, settles the
//! promise. The function keeps the event loop alive only while a promise of its thread is
//! pending, as a per-call one did.
//!
//! Teardown: an environment cleanup hook (it runs before Node frees the function, hooks run
//! newest first) closes the slot under its write lock; an answer sent after that, from a
//! runtime thread, is dropped instead of reaching freed memory. Answers still queued when
//! Node frees the function reach the callback without an environment and are dropped.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::*;
use napi::sys;

use crate::errors::to_napi;

/// Makes the answer's JavaScript value, on the JavaScript thread.
type MakeValue = Box<dyn FnOnce(sys::napi_env) -> Result<sys::napi_value> + Send>;

/// One promise and its outcome, queued from any thread.
struct Settlement {
  deferred: sys::napi_deferred,
  outcome: std::result::Result<MakeValue, napi::Error>,
}

struct Tsfn(sys::napi_threadsafe_function);
// SAFETY: a threadsafe function is made to be called from any thread; it is only called
// under the read lock of `Settler::tsfn`, which teardown takes for writing before Node frees it.
unsafe impl Send for Tsfn {}
unsafe impl Sync for Tsfn {}

/// One JavaScript thread's threadsafe function and count of pending promises.
struct Settler {
  /// `None` once the environment tears down.
  tsfn: RwLock<Option<Tsfn>>,
  /// Promises handed out on this thread and not yet settled (touched on the JavaScript
  /// thread only; atomic because a `Settler` is shared with runtime threads).
  pending: AtomicUsize,
}

thread_local! {
  /// This JavaScript thread's settler, made by its first waiting call.
  static THREAD_SETTLER: RefCell<Option<Arc<Settler>>> = const { RefCell::new(None) };
}

/// A promise to settle later, from any thread, exactly once. Dropped unsettled (a runtime
/// shutting down drops its tasks), it rejects the promise rather than leave it pending.
pub struct Promise {
  /// The settler of the JavaScript thread the promise was made on.
  settler: Arc<Settler>,
  deferred: sys::napi_deferred,
  settled: bool,
}

// SAFETY: the deferred is only used on the JavaScript thread, by the callback the
// settlement is queued to.
unsafe impl Send for Promise {}

impl Promise {
  /// A new pending promise of the calling JavaScript thread, and its JavaScript object.
  pub fn create(env: &Env) -> Result<(Promise, Object<'_>)> {
    let settler = Settler::of_thread(env)?;
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: plain Node-API call on the JavaScript thread.
    check_status!(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
    settler.hold(env.raw());
    // SAFETY: `promise` was just made by Node-API on this thread.
    let object = unsafe { Object::from_napi_value(env.raw(), promise) }?;
    Ok((Promise { settler, deferred, settled: false }, object))
  }

  pub fn resolve<T: ToNapiValue + Send + 'static>(mut self, value: T) {
    // SAFETY: run by the callback on the JavaScript thread, with its environment.
    self.send(Ok(Box::new(move |env| unsafe { T::to_napi_value(env, value) })));
  }

  pub fn reject(mut self, e: mosta_core::Error) {
    self.send(Err(to_napi(e)));
  }

  fn send(&mut self, outcome: std::result::Result<MakeValue, napi::Error>) {
    self.settled = true;
    let s = Box::new(Settlement { deferred: self.deferred, outcome });
    let slot = self.settler.tsfn.read().unwrap_or_else(|p| p.into_inner());
    let Some(tsfn) = slot.as_ref() else { return };
    let data = Box::into_raw(s);
    // SAFETY: the function is alive (the read lock keeps teardown out); on success the
    // callback owns `data`.
    let status = unsafe { sys::napi_call_threadsafe_function(tsfn.0, data.cast(), sys::ThreadsafeFunctionCallMode::nonblocking) };
    if status != sys::Status::napi_ok {
      // Closing: the environment is going away with its promises.
      // SAFETY: not queued, so still ours.
      drop(unsafe { Box::from_raw(data) });
    }
  }
}

impl Drop for Promise {
  fn drop(&mut self) {
    if !self.settled {
      self.send(Err(to_napi(mosta_core::Error::internal("the call was cancelled: the runtime shut down"))));
    }
  }
}

impl Settler {
  fn of_thread(env: &Env) -> Result<Arc<Settler>> {
    THREAD_SETTLER.with(|cell| {
      if let Some(s) = cell.borrow().as_ref() {
        return Ok(s.clone());
      }
      let s = Settler::create(env)?;
      *cell.borrow_mut() = Some(s.clone());
      Ok(s)
    })
  }

  fn create(env: &Env) -> Result<Arc<Settler>> {
    let shared = Arc::new(Settler { tsfn: RwLock::new(None), pending: AtomicUsize::new(0) });
    let raw_env = env.raw();
    let mut name = ptr::null_mut();
    let label = "mosta:settle";
    // SAFETY: plain Node-API calls on the JavaScript thread.
    check_status!(unsafe { sys::napi_create_string_utf8(raw_env, label.as_ptr().cast(), label.len() as isize, &mut name) })?;
    // The function's finalizer owns one count of `shared`; the cleanup hook borrows it (it
    // runs first).
    let context = Arc::into_raw(shared.clone()) as *mut c_void;
    let mut tsfn = ptr::null_mut();
    // SAFETY: on the JavaScript thread; `context` stays valid until `finalize` releases it.
    let status = unsafe {
      sys::napi_create_threadsafe_function(raw_env, ptr::null_mut(), ptr::null_mut(), name, 0, 1, context, Some(finalize), context, Some(call_js), &mut tsfn)
    };
    if status != sys::Status::napi_ok {
      // SAFETY: not handed to Node-API.
      drop(unsafe { Arc::from_raw(context as *const Settler) });
      return Err(Error::new(Status::from(status), "could not create the promise settler".to_string()));
    }
    // Idle until a promise is pending (see `hold`). The cleanup hook, added after the
    // function, runs before Node's own teardown of it.
    // SAFETY: on the JavaScript thread, with the function just made.
    check_status!(unsafe { sys::napi_unref_threadsafe_function(raw_env, tsfn) })?;
    // SAFETY: as above; `context` outlives the hook (see `teardown`).
    check_status!(unsafe { sys::napi_add_env_cleanup_hook(raw_env, Some(teardown), context) })?;
    *shared.tsfn.write().unwrap_or_else(|p| p.into_inner()) = Some(Tsfn(tsfn));
    Ok(shared)
  }

  /// Counts a pending promise; the first keeps the event loop alive.
  fn hold(&self, env: sys::napi_env) {
    if self.pending.fetch_add(1, Ordering::Relaxed) == 0 {
      self.set_ref(env, true);
    }
  }

  /// Counts a settled promise; the last lets the event loop end.
  fn release(&self, env: sys::napi_env) {
    if self.pending.fetch_sub(1, Ordering::Relaxed) == 1 {
      self.set_ref(env, false);
    }
  }

  fn set_ref(&self, env: sys::napi_env, on: bool) {
    let slot = self.tsfn.read().unwrap_or_else(|p| p.into_inner());
    if let Some(tsfn) = slot.as_ref() {
      // SAFETY: on the JavaScript thread, with a live function.
      unsafe {
        if on {
          sys::napi_ref_threadsafe_function(env, tsfn.0);
        } else {
          sys::napi_unref_threadsafe_function(env, tsfn.0);
        }
      }
    }
  }
}

/// Settles one promise, on the JavaScript thread.
unsafe extern "C" fn call_js(env: sys::napi_env, _js: sys::napi_value, context: *mut c_void, data: *mut c_void) {
  // SAFETY: `data` is a `Settlement` queued by `Promise::send`, handed over once.
  let s = unsafe { Box::from_raw(data as *mut Settlement) };
  if env.is_null() {
    return; // the function is being freed with its environment
  }
  // SAFETY: `context` is the `Settler` the finalizer keeps alive until after the last call.
  let shared = unsafe { &*(context as *const Settler) };
  let value = s.outcome.and_then(|make| make(env));
  // SAFETY: the deferred was made on this thread and is settled exactly once.
  unsafe {
    match value {
      Ok(v) => sys::napi_resolve_deferred(env, s.deferred, v),
      Err(e) => sys::napi_reject_deferred(env, s.deferred, JsError::from(e).into_unknown(Env::from_raw(env)).raw()),
    };
  }
  shared.release(env);
}

/// The environment tears down: answers sent from now on are dropped.
unsafe extern "C" fn teardown(context: *mut c_void) {
  // SAFETY: the finalizer's count keeps `Settler` alive until after this hook.
  let shared = unsafe { &*(context as *const Settler) };
  shared.tsfn.write().unwrap_or_else(|p| p.into_inner()).take();
}

/// Node frees the function: drops its count of `Settler`.
unsafe extern "C" fn finalize(_env: sys::napi_env, _data: *mut c_void, context: *mut c_void) {
  // SAFETY: the count taken in `Settler::create`, released once.
  let shared = unsafe { Arc::from_raw(context as *const Settler) };
  shared.tsfn.write().unwrap_or_else(|p| p.into_inner()).take();
}
