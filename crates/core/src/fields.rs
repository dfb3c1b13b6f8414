//! The data a `create` writes: its keys in the order given, each with its JSON value.
//!
//! `create` is the hottest write, and its data is a handful of keys read in order (the
//! INSERT plan follows the key order) and looked up by name a few times. A list of pairs
//! serves both: scanning ten keys beats hashing them, and parsing into it skips the hash
//! map `serde_json::Map` builds (with `preserve_order`, an IndexMap keyed by SipHash), which
//! took about half of the time spent parsing a `create` call.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(String, Value)>);

impl Fields {
  pub fn get(&self, key: &str) -> Option<&Value> {
    self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
  }

  pub fn contains_key(&self, key: &str) -> bool {
    self.get(key).is_some()
  }

  /// Sets `key`: in its place when present (as a JSON object keeps the first position of a
  /// repeated key), else last.
  pub fn insert(&mut self, key: String, value: Value) {
    match self.0.iter_mut().find(|(k, _)| *k == key) {
      Some((_, v)) => *v = value,
      None => self.0.push((key, value)),
    }
  }

  pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> + Clone {
    self.0.iter().map(|(k, v)| (k, v))
  }

  pub fn keys(&self) -> impl Iterator<Item = &String> {
    self.0.iter().map(|(k, _)| k)
  }

  /// The key and value at position `i`.
  pub fn at(&self, i: usize) -> (&str, &Value) {
    let (k, v) = &self.0[i];
    (k, v)
  }

  pub fn len(&self) -> usize {
    self.0.len()
  }

  pub fn is_empty(&self) -> bool {
    self.0.is_empty()
  }

  /// Pairs whose keys are distinct (the own keys of a JavaScript object): no check for a
  /// repeated key, which `collect` makes on every insert.
  pub fn from_distinct(entries: Vec<(String, Value)>) -> Self {
    debug_assert!(!has_repeated_key(&entries));
    Fields(entries)
  }

  pub fn into_value(self) -> Value {
    Value::Object(self.0.into_iter().collect())
  }
}

impl From<Map<String, Value>> for Fields {
  fn from(m: Map<String, Value>) -> Self {
    Fields(m.into_iter().collect())
  }
}

impl FromIterator<(String, Value)> for Fields {
  fn from_iter<I: IntoIterator<Item = (String, Value)>>(it: I) -> Self {
    let mut f = Fields::default();
    for (k, v) in it {
      f.insert(k, v);
    }
    f
  }
}

/// Whether two entries share a key. Keys are told apart by length and first bytes before
/// any full comparison: this runs on every `create`.
fn has_repeated_key(entries: &[(String, Value)]) -> bool {
  let print = |k: &str| {
    let mut head = [0u8; 8];
    let n = k.len().min(7);
    head[..n].copy_from_slice(&k.as_bytes()[..n]);
    head[7] = k.len() as u8;
    u64::from_le_bytes(head)
  };
  (1..entries.len()).any(|i| {
    let p = print(&entries[i].0);
    entries[..i].iter().any(|(k, _)| print(k) == p && *k == entries[i].0)
  })
}

/// A JSON object only (anything else fails to parse; callers report it with its value).
impl<'de> Deserialize<'de> for Fields {
  fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
    struct ObjectVisitor;
    impl<'de> Visitor<'de> for ObjectVisitor {
      type Value = Fields;
      fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
      }
      fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Fields, A::Error> {
        let mut entries = Vec::with_capacity(m.size_hint().unwrap_or(12));
        while let Some(entry) = m.next_entry::<String, Value>()? {
          entries.push(entry);
        }
        // JSON.stringify never repeats a key; raw JSON may, and then means the last value.
        if has_repeated_key(&entries) {
          return Ok(entries.into_iter().collect());
        }
        Ok(Fields(entries))
      }
    }
    d.deserialize_map(ObjectVisitor)
  }
}

impl Serialize for Fields {
  fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(self.0.len()))?;
    for (k, v) in &self.0 {
      m.serialize_entry(k, v)?;
    }
    m.end()
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn keeps_key_order_and_the_first_place_of_a_repeated_key() {
    let f: Fields = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
    assert_eq!(f.keys().collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!(f.get("b"), Some(&json!(3)), "the last value wins, as in a JSON object");
    assert_eq!(f.at(1), ("a", &json!(2)));
    assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"b":3,"a":2}"#);
    assert_eq!(f.clone().into_value(), json!({"b": 3, "a": 2}));
  }

  #[test]
  fn repeated_keys_are_found_whatever_they_share() {
    let f: Fields = serde_json::from_str(r#"{"categoryA": 1, "categoryB": 2, "categoryA": 3}"#).unwrap();
    assert_eq!(f.into_value(), json!({"categoryA": 3, "categoryB": 2}));
    let g: Fields = serde_json::from_str(r#"{"categoryA": 1, "categoryB": 2}"#).unwrap();
    assert_eq!(g.len(), 2, "same length and head, other keys");
  }

  #[test]
  fn parses_objects_only() {
    assert!(serde_json::from_str::<Fields>("[1]").is_err());
    assert!(serde_json::from_str::<Fields>("null").is_err());
    assert!(serde_json::from_str::<Fields>("{}").unwrap().is_empty());
  }

  #[test]
  fn insert_replaces_in_place_or_appends() {
    let mut f = Fields::from(json!({"x": 1, "y": 2}).as_object().unwrap().clone());
    f.insert("x".into(), json!(9));
    f.insert("z".into(), json!(3));
    assert_eq!(f.into_value(), json!({"x": 9, "y": 2, "z": 3}));
  }
}
