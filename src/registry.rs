//! Native dialect state that JavaScript names by number. The hot calls are module functions
//! taking that number (`sqliteCall`, `sqliteCreate`, `asyncCreate`): a method of a class
//! would cost napi's receiver checks on every call (see `sqlite.rs`).

use std::sync::{Arc, RwLock};

pub struct Registry<T>(RwLock<Vec<Option<Arc<T>>>>);

impl<T> Registry<T> {
  pub const fn new() -> Self {
    Registry(RwLock::new(Vec::new()))
  }

  /// Numbers `v`. Freed numbers are reused: a number stays taken while JavaScript holds the
  /// object that removes it when dropped.
  pub fn add(&self, v: Arc<T>) -> u32 {
    let mut all = self.0.write().unwrap_or_else(|p| p.into_inner());
    match all.iter().position(Option::is_none) {
      Some(i) => {
        all[i] = Some(v);
        i as u32
      }
      None => {
        all.push(Some(v));
        all.len() as u32 - 1
      }
    }
  }

  pub fn get(&self, number: u32) -> Option<Arc<T>> {
    self.0.read().ok()?.get(number as usize).cloned().flatten()
  }

  pub fn remove(&self, number: u32) {
    if let Some(slot) = self.0.write().unwrap_or_else(|p| p.into_inner()).get_mut(number as usize) {
      *slot = None;
    }
  }
}
