//! When and how long to wait before trying an idempotent read again (net-protocol.md §5):
//! connect errors, 429, 502, 503 and 504 are worth another try; everything else is an
//! answer. Writes are never retried, since the first attempt may have reached the database.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
  /// Extra attempts after the first one.
  pub retries: u32,
  /// The first backoff step; each later one doubles.
  pub base: Duration,
  /// No single wait is longer than this.
  pub cap: Duration,
}

/// What one attempt ended with, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
  Status(u16),
  /// The connection could not be made (refused, DNS, TLS handshake).
  ConnectFailed,
  /// The request was sent (or timed out) and may have run: never retried.
  Other,
}

pub const DEFAULT_CAP: Duration = Duration::from_secs(5);

impl RetryPolicy {
  pub fn new(retries: u32, base: Duration) -> Self {
    RetryPolicy { retries, base, cap: DEFAULT_CAP }
  }

  /// Whether `attempt` (0 = the first try) may be followed by another.
  pub fn should_retry(&self, idempotent: bool, attempt: u32, outcome: Outcome) -> bool {
    idempotent && attempt < self.retries && retryable(outcome)
  }

  /// The wait after failed attempt `attempt`: "equal jitter" exponential backoff, half of
  /// the step fixed and half random (`jitter` in 0..1), so clients that failed together
  /// spread out without any of them retrying at once. A server's `Retry-After` wins when it
  /// is longer, still within the cap.
  pub fn delay(&self, attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
    let step = self.base.saturating_mul(1u32 << attempt.min(20)).min(self.cap);
    let half = step / 2;
    let backoff = half + half.mul_f64(jitter.clamp(0.0, 1.0));
    match retry_after {
      Some(ra) => backoff.max(ra.min(self.cap)),
      None => backoff,
    }
  }
}

pub fn retryable(outcome: Outcome) -> bool {
  matches!(outcome, Outcome::ConnectFailed | Outcome::Status(429 | 502 | 503 | 504))
}

/// A random number in 0..1 without a RNG dependency: every `RandomState` gets fresh keys.
pub fn jitter() -> f64 {
  let mut h = RandomState::new().build_hasher();
  h.write_u64(0);
  (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn only_idempotent_calls_retry_and_only_on_transient_failures() {
    let p = RetryPolicy::new(2, Duration::from_millis(100));
    for s in [429, 502, 503, 504] {
      assert!(p.should_retry(true, 0, Outcome::Status(s)), "{s}");
      assert!(!p.should_retry(false, 0, Outcome::Status(s)), "writes never retry on {s}");
    }
    for s in [200, 400, 401, 403, 404, 500] {
      assert!(!p.should_retry(true, 0, Outcome::Status(s)), "{s}");
    }
    assert!(p.should_retry(true, 1, Outcome::ConnectFailed));
    assert!(!p.should_retry(true, 2, Outcome::ConnectFailed), "budget spent");
    assert!(!p.should_retry(true, 0, Outcome::Other));
    assert!(!RetryPolicy::new(0, Duration::from_millis(1)).should_retry(true, 0, Outcome::Status(503)));
  }

  #[test]
  fn backoff_doubles_with_bounded_jitter_and_a_cap() {
    let p = RetryPolicy::new(10, Duration::from_millis(200));
    assert_eq!(p.delay(0, 0.0, None), Duration::from_millis(100));
    assert_eq!(p.delay(0, 1.0, None), Duration::from_millis(200));
    assert_eq!(p.delay(2, 0.5, None), Duration::from_millis(600));
    assert_eq!(p.delay(30, 1.0, None), DEFAULT_CAP);
    assert_eq!(p.delay(0, 0.0, Some(Duration::from_secs(2))), Duration::from_secs(2));
    assert_eq!(p.delay(0, 0.0, Some(Duration::from_secs(60))), DEFAULT_CAP);
    for _ in 0..100 {
      let j = jitter();
      assert!((0.0..1.0).contains(&j));
    }
    assert_ne!(jitter(), jitter());
  }
}
