//! Large row answers handed to JavaScript in pieces while the query still runs.
//!
//! A pooled `find` of thousands of rows used to arrive as one string that JavaScript parsed
//! only after the last row had come in. The binding can instead scope a call with a chunk
//! sender: the answer's rows are then sent on, in order, every `CHUNK_BYTES` of JSON, and
//! JavaScript parses each piece while the server is still sending the next ones. The
//! call's own answer holds the remaining rows, prefixed with `C<first>,<n>\n`: its rows
//! follow those of pieces `first .. first + n` of the call (JSON text never starts with
//! `C`). A read run again on a fresh connection after its first one died mid-answer starts
//! a new run of pieces; the ones sent before are then ignored.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Receives one piece: a JSON array of rows, with its own `D[…]` date line when it has one.
pub type ChunkFn = Arc<dyn Fn(String) + Send + Sync>;

/// Size of JSON text after which the rows so far are sent on. Smaller pieces wake the
/// JavaScript thread more often (taking the CPU from a database server on the same machine);
/// larger ones leave more to parse after the last row. On 10k-row MySQL reads, 128 KB beat
/// both 64 KB and 256 KB (bench/RESULTS.md).
pub const CHUNK_BYTES: usize = 128 * 1024;

/// Where one call's pieces go, and how many went (numbering them).
pub(crate) struct Sender {
  send: ChunkFn,
  sent: AtomicUsize,
}

impl Sender {
  /// How many pieces this call has sent so far: the number of the next one.
  pub(crate) fn next_number(&self) -> usize {
    self.sent.load(Ordering::Relaxed)
  }

  pub(crate) fn send(&self, piece: String) {
    self.sent.fetch_add(1, Ordering::Relaxed);
    (self.send)(piece);
  }
}

tokio::task_local! {
  static SENDER: Arc<Sender>;
}

/// Runs `fut` with `send` receiving the pieces of its row answer.
pub fn scope<F: Future>(send: ChunkFn, fut: F) -> impl Future<Output = F::Output> {
  SENDER.scope(Arc::new(Sender { send, sent: AtomicUsize::new(0) }), fut)
}

/// The sender of the call being run, if it asked for pieces.
pub(crate) fn current() -> Option<Arc<Sender>> {
  SENDER.try_with(Arc::clone).ok()
}
