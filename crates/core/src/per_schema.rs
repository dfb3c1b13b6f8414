//! Things built from a schema and one variant of a call (a column list, a key order) and
//! kept, so that the next call of the same kind reuses them: row decoding plans, INSERT plans.

use std::sync::{Arc, Mutex};

use crate::schema::Schema;

/// Entries kept per cache (the variants can vary without bound); the oldest goes first.
const SIZE: usize = 64;

/// Entries hold their schema, so a schema's address cannot be reused by another while
/// its entries are kept.
pub struct PerSchema<T>(Mutex<Vec<(Arc<Schema>, Arc<T>)>>);

impl<T> Default for PerSchema<T> {
  fn default() -> Self {
    PerSchema(Mutex::default())
  }
}

impl<T> PerSchema<T> {
  /// The kept entry of `schema` that `fits`, else the one `build` makes, kept when `keep`
  /// says it may serve other calls.
  pub fn get_or_build(&self, schema: &Arc<Schema>, fits: impl Fn(&T) -> bool, build: impl FnOnce() -> T, keep: impl FnOnce(&T) -> bool) -> Arc<T> {
    let Ok(mut list) = self.0.lock() else { return Arc::new(build()) };
    if let Some((_, v)) = list.iter().rev().find(|(s, v)| Arc::ptr_eq(s, schema) && fits(v)) {
      return v.clone();
    }
    let v = Arc::new(build());
    if keep(&v) {
      if list.len() >= SIZE {
        list.remove(0);
      }
      list.push((schema.clone(), v.clone()));
    }
    v
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn entries_are_kept_per_schema_and_variant_up_to_the_size() {
    let schema = || Arc::new(Schema::from_value(&json!({"name": "A", "collection": "as", "fields": {}}), "").unwrap());
    let (a, b) = (schema(), schema());
    let cache = PerSchema::<usize>::default();
    let one = cache.get_or_build(&a, |v| *v == 1, || 1, |_| true);
    assert!(Arc::ptr_eq(&one, &cache.get_or_build(&a, |v| *v == 1, || 1, |_| true)), "kept");
    assert!(!Arc::ptr_eq(&one, &cache.get_or_build(&b, |v| *v == 1, || 1, |_| true)), "another schema");
    let lone = cache.get_or_build(&a, |v| *v == 2, || 2, |_| false);
    assert!(!Arc::ptr_eq(&lone, &cache.get_or_build(&a, |v| *v == 2, || 2, |_| true)), "not kept when told so");
    for i in 10..10 + 2 * SIZE {
      cache.get_or_build(&a, |v| *v == i, || i, |_| true);
    }
    assert_eq!(cache.0.lock().unwrap().len(), SIZE);
    assert!(!Arc::ptr_eq(&one, &cache.get_or_build(&a, |v| *v == 1, || 1, |_| true)), "the oldest went first");
  }
}
