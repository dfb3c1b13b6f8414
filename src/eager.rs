//! Starts a dialect future on the calling JavaScript thread and hands it to the tokio runtime
//! only once it has to wait.
//!
//! Spawning a future wakes a runtime worker before anything happens, and the answer wakes the
//! JavaScript thread again: two thread switches per call besides the network. Polled here
//! first (inside the runtime's context), a call writes its request to the socket from this
//! thread; the runtime takes the future over when the socket wakes it, on the worker that
//! drives the reactor, so no worker is woken just to start. A future that finishes at once
//! (a bad argument, a closed dialect) returns its value without a Promise.
//!
//! That helps a lone call (latency). When calls overlap, each goes straight to the runtime
//! instead, so that building requests runs beside the JavaScript thread, not on it
//! (throughput: measured with 32 concurrent calls).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use napi::bindgen_prelude::*;

use crate::errors::to_napi;
use crate::settler;

type Fut<T> = Pin<Box<dyn Future<Output = mosta_core::Result<T>> + Send>>;

/// Calls handed to the runtime and not yet settled, across all dialects.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// The future and its promise, between the first poll and the hand-off.
struct Parked<T: ToNapiValue + 'static> {
  slot: Mutex<Slot<T>>,
  /// The runtime the first poll ran in: the wake-up may come while napi tears its runtime
  /// slot down, when its `spawn` would panic.
  runtime: tokio::runtime::Handle,
}

struct Slot<T: ToNapiValue + 'static> {
  /// Set once the first poll returned and the future waits here for its wake-up.
  parked: Option<(Fut<T>, Settle<T>)>,
  /// A wake-up came before the future was parked (during the first poll itself).
  woken: bool,
}

impl<T: ToNapiValue + Send + 'static> Wake for Parked<T> {
  fn wake(self: Arc<Self>) {
    self.wake_by_ref();
  }
  fn wake_by_ref(self: &Arc<Self>) {
    let taken = {
      let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
      s.woken = true;
      s.parked.take()
    };
    if let Some((fut, settle)) = taken {
      hand_off(&self.runtime, fut, settle);
    }
  }
}

/// The rest of the future runs as a runtime task; its result settles the promise.
fn hand_off<T: ToNapiValue + Send + 'static>(runtime: &tokio::runtime::Handle, fut: Fut<T>, settle: Settle<T>) {
  runtime.spawn(async move {
    let r = AssertUnwindSafe(fut).catch_unwind_result().await;
    settle.with(r);
  });
}

/// A call's promise, counted in `PENDING` while it lives. It settles the promise exactly
/// once (see `settler::Promise`, which also rejects it when dropped unsettled: a runtime
/// shutting down drops its tasks and parked futures).
struct Settle<T>(Option<settler::Promise>, std::marker::PhantomData<fn(T)>);

impl<T: ToNapiValue + Send + 'static> Settle<T> {
  /// A new promise, and its settler (counted from now on).
  fn create(env: &Env) -> Result<(Self, Object<'_>)> {
    let (promise, object) = settler::Promise::create(env)?;
    PENDING.fetch_add(1, Ordering::Relaxed);
    Ok((Settle(Some(promise), std::marker::PhantomData), object))
  }

  fn with(mut self, r: std::result::Result<mosta_core::Result<T>, String>) {
    let Some(promise) = self.0.take() else { return };
    // Uncounted before the promise settles: the next call, made as soon as JavaScript sees
    // the answer, may then start on its own thread again.
    PENDING.fetch_sub(1, Ordering::Relaxed);
    match r {
      Ok(Ok(v)) => promise.resolve(v),
      Ok(Err(e)) => promise.reject(e),
      Err(msg) => promise.reject(mosta_core::Error::internal(msg)),
    }
  }
}

impl<T> Drop for Settle<T> {
  fn drop(&mut self) {
    if self.0.take().is_some() {
      PENDING.fetch_sub(1, Ordering::Relaxed);
    }
  }
}

/// `fut`'s value if it completes without waiting, else a Promise of it.
pub fn run<'e, T: ToNapiValue + Send + 'static>(env: &'e Env, fut: Fut<T>) -> Result<Either<T, Object<'e>>> {
  let runtime = napi::bindgen_prelude::within_runtime_if_available(tokio::runtime::Handle::try_current)
    .map_err(|e| to_napi(mosta_core::Error::internal(format!("no async runtime: {e}"))))?;
  if PENDING.load(Ordering::Relaxed) > 0 {
    let (settle, promise) = Settle::create(env)?;
    hand_off(&runtime, fut, settle);
    return Ok(Either::B(promise));
  }
  let parked = Arc::new(Parked { slot: Mutex::new(Slot { parked: None, woken: false }), runtime: runtime.clone() });
  let waker = Waker::from(parked.clone());
  let mut fut = fut;
  let first = {
    let _entered = runtime.enter();
    std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut Context::from_waker(&waker))))
  };
  match first {
    Ok(Poll::Ready(r)) => r.map(Either::A).map_err(to_napi),
    Ok(Poll::Pending) => {
      let (settle, promise) = Settle::create(env)?;
      let mut s = parked.slot.lock().unwrap_or_else(|p| p.into_inner());
      if s.woken {
        drop(s);
        hand_off(&runtime, fut, settle);
      } else {
        s.parked = Some((fut, settle));
      }
      Ok(Either::B(promise))
    }
    Err(p) => Err(to_napi(mosta_core::Error::internal(panic_message(&p)))),
  }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
  let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
  format!("internal panic: {}", what.unwrap_or_else(|| "unknown".into()))
}

/// `catch_unwind` for a future, without the futures crate.
trait CatchUnwind: Future + Sized {
  fn catch_unwind_result(self) -> CatchUnwindFuture<Self> {
    CatchUnwindFuture(self)
  }
}
impl<F: Future> CatchUnwind for AssertUnwindSafe<F> {}

struct CatchUnwindFuture<F>(F);

impl<F: Future + Unpin> Future for CatchUnwindFuture<AssertUnwindSafe<F>> {
  type Output = std::result::Result<F::Output, String>;
  fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
    let inner = &mut self.0 .0;
    match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
      Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
      Ok(Poll::Pending) => Poll::Pending,
      Err(p) => Poll::Ready(Err(panic_message(&p))),
    }
  }
}
