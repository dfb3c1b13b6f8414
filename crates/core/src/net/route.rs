//! URLs of the REST protocol (net-protocol.md §1.3): `{base}/api/v1/{col}[/{id}[/{op}]]`
//! with path segments percent-encoded (the reference does not encode them, §5 fix) and the
//! query parameters the server parses (`filter`, `sort`, `limit`, `skip`, `select`,
//! `exclude`, `relations`).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;
use serde_json::Value;

use crate::error::{Error, Result};

/// The prefix of every data route.
pub const API_PREFIX: &str = "/api/v1";

/// Everything but RFC 3986 unreserved characters: the strictest choice, so `/`, `?`, `#`,
/// `%`, `;` and `+` inside an id can never change the route the server matches.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// One path segment, percent-encoded. `.` and `..` are refused: URL parsers treat them (even
/// percent-encoded) as "this" and "parent" folder, so no encoding can carry them.
pub fn encode_segment(segment: &str, what: &str) -> Result<String> {
  if segment.is_empty() || segment == "." || segment == ".." {
    return Err(Error::arg(format!("{what} {segment:?} cannot be sent as a URL path segment")).with_field(what));
  }
  Ok(utf8_percent_encode(segment, SEGMENT).to_string())
}

/// `{base}{path}` with the query pairs appended (form-encoded, as URLSearchParams does).
pub fn build_url(base: &str, path: &str, query: &Query) -> Result<Url> {
  let mut url = Url::parse(&format!("{base}{path}")).map_err(|e| Error::config(format!("cannot build a URL from base {base:?}: {e}")))?;
  if !query.pairs.is_empty() {
    let mut q = url.query_pairs_mut();
    for (k, v) in &query.pairs {
      q.append_pair(k, v);
    }
  }
  Ok(url)
}

/// `/api/v1/{segments…}` with each segment encoded. `segments[0]` is the collection; the
/// next one, when present, an id.
pub fn api_path(segments: &[(&str, &str)]) -> Result<String> {
  let mut path = String::from(API_PREFIX);
  for (seg, what) in segments {
    path.push('/');
    path.push_str(&encode_segment(seg, what)?);
  }
  Ok(path)
}

/// The query string of a call, in the order the pairs were added.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Query {
  pub pairs: Vec<(&'static str, String)>,
}

fn is_empty_filter(filter: &Value) -> bool {
  match filter {
    Value::Null => true,
    Value::Object(o) => o.is_empty(),
    _ => false,
  }
}

/// A comma-separated name list from an array of strings or a string.
/// A name list as the query string carries it: comma-joined; `None` when empty.
fn name_list(v: &Value, name: &str) -> Result<Option<String>> {
  Ok(crate::sql::query::name_list(Some(v), name, "")?.map(|n| n.join(",")).filter(|s| !s.is_empty()))
}

/// `limit`/`skip` as the query string carries them; 0 means "none" (as in the SQL dialects).
fn count(v: &Value, name: &str) -> Result<Option<String>> {
  Ok(crate::sql::query::count_opt(Some(v), name, "")?.map(|n| n.to_string()))
}

impl Query {
  pub fn new() -> Self {
    Query::default()
  }

  pub fn push(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
    self.pairs.push((key, value.into()));
    self
  }

  /// `filter` as JSON. `always` mirrors the reference: `findOne` sends `{}`, the others omit
  /// an empty filter.
  pub fn filter(&mut self, filter: &Value, always: bool) -> Result<&mut Self> {
    if !matches!(filter, Value::Null | Value::Object(_)) {
      return Err(Error::filter(format!("filter must be an object, got {filter}")).with_field("filter"));
    }
    if always || !is_empty_filter(filter) {
      let text = if filter.is_null() { "{}".to_string() } else { filter.to_string() };
      self.push("filter", text);
    }
    Ok(self)
  }

  /// The relation names to populate (`relations=a,b`).
  pub fn relations(&mut self, names: &[String]) -> &mut Self {
    if !names.is_empty() {
      self.push("relations", names.join(","));
    }
    self
  }

  /// The QueryOptions keys the server reads; the rest (e.g. `includeDeleted`) have no
  /// query parameter in the protocol and are left out. `relations` (alias `include`) is
  /// taken from the options unless `skip_relations` (the caller sent its own list).
  pub fn options(&mut self, options: &Value, skip_relations: bool) -> Result<&mut Self> {
    let o = match options {
      Value::Null => return Ok(self),
      Value::Object(o) => o,
      other => return Err(Error::filter(format!("options must be an object, got {other}")).with_field("options")),
    };
    match o.get("sort") {
      None | Some(Value::Null) => {}
      Some(Value::Object(s)) if s.is_empty() => {}
      Some(s @ Value::Object(_)) => {
        self.push("sort", s.to_string());
      }
      Some(other) => return Err(Error::filter(format!("sort must be an object like {{\"field\": 1}}, got {other}")).with_field("sort")),
    }
    for key in ["limit", "skip"] {
      if let Some(n) = count(o.get(key).unwrap_or(&Value::Null), key)? {
        self.push(key, n);
      }
    }
    for key in ["select", "exclude"] {
      if let Some(list) = name_list(o.get(key).unwrap_or(&Value::Null), key)? {
        self.push(key, list);
      }
    }
    if !skip_relations {
      let rel = o.get("relations").filter(|v| !v.is_null()).or_else(|| o.get("include"));
      if let Some(list) = name_list(rel.unwrap_or(&Value::Null), "relations")? {
        self.push("relations", list);
      }
    }
    Ok(self)
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn segments_are_strictly_encoded() {
    assert_eq!(encode_segment("a b/c?d#e%f;g+h", "id").unwrap(), "a%20b%2Fc%3Fd%23e%25f%3Bg%2Bh");
    assert_eq!(encode_segment("Ünï-._~", "id").unwrap(), "%C3%9Cn%C3%AF-._~");
    for bad in ["", ".", ".."] {
      assert_eq!(encode_segment(bad, "id").unwrap_err().field.as_deref(), Some("id"));
    }
    assert_eq!(api_path(&[("users", "collection"), ("x/y", "id"), ("increment", "op")]).unwrap(), "/api/v1/users/x%2Fy/increment");
  }

  #[test]
  fn urls_keep_the_base_path_and_encode_the_query() {
    let mut q = Query::new();
    q.filter(&json!({"name": "a b&c", "n": {"$gt": 1}}), false).unwrap();
    let u = build_url("http://h:4488/proxy", "/api/v1/users", &q).unwrap();
    assert_eq!(u.as_str(), "http://h:4488/proxy/api/v1/users?filter=%7B%22name%22%3A%22a+b%26c%22%2C%22n%22%3A%7B%22%24gt%22%3A1%7D%7D");
    let back: Vec<(String, String)> = u.query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
    assert_eq!(back, vec![("filter".to_string(), r#"{"name":"a b&c","n":{"$gt":1}}"#.to_string())]);
    assert_eq!(build_url("http://h", "/health", &Query::new()).unwrap().as_str(), "http://h/health");
  }

  #[test]
  fn empty_filters_are_omitted_except_when_always() {
    let mut q = Query::new();
    q.filter(&json!({}), false).unwrap().filter(&Value::Null, false).unwrap();
    assert!(q.pairs.is_empty());
    q.filter(&Value::Null, true).unwrap();
    assert_eq!(q.pairs, vec![("filter", "{}".to_string())]);
    assert_eq!(Query::new().filter(&json!([1]), false).unwrap_err().code.as_str(), "E_INVALID_FILTER");
  }

  #[test]
  fn options_map_to_the_parameters_the_server_parses() {
    let mut q = Query::new();
    q.options(&json!({"sort": {"age": -1}, "limit": 10, "skip": "5", "select": ["a", "b"], "exclude": "c", "include": ["author"], "includeDeleted": true}), false).unwrap();
    assert_eq!(
      q.pairs,
      vec![
        ("sort", r#"{"age":-1}"#.to_string()),
        ("limit", "10".into()),
        ("skip", "5".into()),
        ("select", "a,b".into()),
        ("exclude", "c".into()),
        ("relations", "author".into())
      ]
    );
    let mut q = Query::new();
    q.options(&json!({"limit": 0, "sort": {}, "select": [], "relations": ["x"]}), true).unwrap();
    assert!(q.pairs.is_empty(), "{:?}", q.pairs);
    for bad in [json!({"limit": -1}), json!({"skip": 1.5}), json!({"sort": "age"}), json!({"select": [1]}), json!(3)] {
      assert_eq!(Query::new().options(&bad, false).unwrap_err().code.as_str(), "E_INVALID_FILTER", "{bad}");
    }
  }
}
