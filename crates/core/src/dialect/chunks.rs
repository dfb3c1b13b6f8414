//! Large row answers handed to JavaScript in pieces while the query still runs.
//!
//! A pooled `find` of thousands of rows used to arrive as one string that JavaScript parsed
//! only after the last row had come in. The binding can instead scope a call with a chunk
//! sender: the answer's rows are then sent on, in order, every `CHUNK_BYTES` of JSON, and
//! JavaScript parses each piece while the server is still sending the next ones. The
//! call's own answer holds the remaining rows, prefixed with `C<n>\n` (n pieces were sent
//! before it); JSON text never starts with `C`.

use std::future::Future;
use std::sync::Arc;

/// Receives one piece: a JSON array of rows, with its own `D[…]` date line when it has one.
pub type ChunkFn = Arc<dyn Fn(String) + Send + Sync>;

/// Size of JSON text after which the rows so far are sent on.
pub const CHUNK_BYTES: usize = 64 * 1024;

tokio::task_local! {
  static SENDER: ChunkFn;
}

/// Runs `fut` with `send` receiving the pieces of its row answer.
pub fn scope<F: Future>(send: ChunkFn, fut: F) -> impl Future<Output = F::Output> {
  SENDER.scope(send, fut)
}

/// The sender of the call being run, if it asked for pieces.
pub(crate) fn current() -> Option<ChunkFn> {
  SENDER.try_with(Arc::clone).ok()
}
