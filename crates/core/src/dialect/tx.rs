//! Transaction bookkeeping for one connection: a LIFO stack of frames, the outermost a
//! real transaction, the inner ones savepoints (orm-compat.md §8). Handles carry a string
//! id shaped like the reference's (`tx-<time36>-<random>`).

use crate::error::{Code, Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
  pub id: String,
  pub depth: usize,
  /// `None` for the outermost frame (BEGIN/COMMIT), else its savepoint name.
  pub savepoint: Option<String>,
  pub started_at: i64,
}

impl Frame {
  /// The `TxHandle` handed to JavaScript.
  pub fn handle_json(&self) -> String {
    let mut o = serde_json::Map::new();
    o.insert("id".into(), self.id.clone().into());
    o.insert("startedAt".into(), self.started_at.into());
    o.insert("depth".into(), self.depth.into());
    if let Some(sp) = &self.savepoint {
      o.insert("savepointName".into(), sp.clone().into());
    }
    serde_json::Value::Object(o).to_string()
  }
}

fn base36(mut n: u128) -> String {
  const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
  if n == 0 {
    return "0".into();
  }
  let mut out = Vec::new();
  while n > 0 {
    out.push(DIGITS[(n % 36) as usize]);
    n /= 36;
  }
  out.reverse();
  String::from_utf8(out).unwrap_or_default()
}

fn random36(len: usize) -> String {
  let r = uuid::Uuid::new_v4().as_u128();
  let s = base36(r);
  s[s.len().saturating_sub(len)..].to_string()
}

#[derive(Debug, Default)]
pub struct TxStack {
  frames: Vec<Frame>,
}

impl TxStack {
  pub fn is_empty(&self) -> bool {
    self.frames.is_empty()
  }

  pub fn depth(&self) -> usize {
    self.frames.len()
  }

  pub fn contains(&self, id: &str) -> bool {
    self.frames.iter().any(|f| f.id == id)
  }

  pub fn root(&self) -> Option<&Frame> {
    self.frames.first()
  }

  /// The frame a new `beginTx` would push (not yet pushed: push after BEGIN succeeds).
  pub fn next_frame(&self) -> Frame {
    let depth = self.frames.len() + 1;
    let now = chrono::Utc::now().timestamp_millis();
    Frame {
      id: format!("tx-{}-{}", base36(now as u128), random36(6)),
      depth,
      savepoint: (depth > 1).then(|| format!("mosta_sp_{depth}_{}", random36(4))),
      started_at: now,
    }
  }

  pub fn push(&mut self, f: Frame) {
    self.frames.push(f);
  }

  /// Commits must be LIFO; returns the top frame to commit.
  pub fn top_for_commit(&self, id: &str) -> Result<&Frame> {
    match self.frames.last() {
      Some(top) if top.id == id => Ok(top),
      top => Err(Error::new(
        Code::Transaction,
        format!(
          "commitTx : out-of-order commit (expected {}, got {id}). Nested transactions must be committed/rolled-back in LIFO order.",
          top.map(|t| t.id.as_str()).unwrap_or("(none)")
        ),
      )),
    }
  }

  pub fn pop(&mut self) -> Option<Frame> {
    self.frames.pop()
  }

  /// Ids of `id`'s frame and of every frame opened inside it.
  pub fn ids_from(&self, id: &str) -> Vec<String> {
    match self.frames.iter().position(|f| f.id == id) {
      Some(pos) => self.frames[pos..].iter().map(|f| f.id.clone()).collect(),
      None => Vec::new(),
    }
  }

  /// Rolling back a frame also ends every frame opened inside it. Returns the frame to roll
  /// back to, after removing the ones above it; `None` if the id is unknown.
  pub fn unwind_to(&mut self, id: &str) -> Option<Frame> {
    let pos = self.frames.iter().position(|f| f.id == id)?;
    self.frames.truncate(pos + 1);
    self.frames.pop()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn nested_frames_get_savepoints_and_commit_is_lifo() {
    let mut s = TxStack::default();
    let a = s.next_frame();
    assert!(a.savepoint.is_none() && a.id.starts_with("tx-"));
    s.push(a.clone());
    let b = s.next_frame();
    assert!(b.savepoint.as_deref().unwrap().starts_with("mosta_sp_2_"));
    s.push(b.clone());
    let err = s.top_for_commit(&a.id).unwrap_err();
    assert!(err.message.contains("out-of-order commit"));
    assert_eq!(s.top_for_commit(&b.id).unwrap().id, b.id);
    assert_eq!(s.unwind_to(&a.id).unwrap().id, a.id);
    assert!(s.is_empty());
  }
}
