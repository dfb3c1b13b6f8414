//! A dialect call as it arrives from JavaScript: the method name and its arguments as one
//! JSON array (`[filter, options]`, `[id, data]`, …), parsed once into a typed request.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fields::Fields;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
  Find { filter: Value, options: Value },
  FindOne { filter: Value, options: Value },
  FindById { id: Option<String>, options: Value },
  FindWithRelations { filter: Value, relations: Vec<String>, options: Value },
  FindByIdWithRelations { id: Option<String>, relations: Vec<String>, options: Value },
  /// `template`: the caller keeps the data's values, so the created row may be answered as
  /// a template of them (`rows::TemplateRow`); JSON calls answer the row whole.
  Create { data: Fields, template: bool },
  Update { id: Option<String>, data: Value },
  UpdateMany { filter: Value, data: Value },
  Delete { id: Option<String> },
  DeleteMany { filter: Value },
  Count { filter: Value, options: Value },
  Distinct { field: String, filter: Value, options: Value },
  Aggregate { stages: Value, options: Value },
  Upsert { filter: Value, data: Value },
  Increment { id: Option<String>, field: String, amount: Value },
  AddToSet { id: Option<String>, field: String, value: Value },
  Pull { id: Option<String>, field: String, value: Value },
  Search { query: String, fields: Option<Vec<String>>, options: Value },
}

/// An id argument: strings as they are, numbers as their decimal text; `null`/`''` mean
/// "no id" (the call then finds nothing).
fn id_arg(v: Option<&Value>, method: &str) -> Result<Option<String>> {
  match v {
    None | Some(Value::Null) => Ok(None),
    Some(Value::String(s)) if s.is_empty() => Ok(None),
    Some(Value::String(s)) => Ok(Some(s.clone())),
    Some(Value::Number(n)) => Ok(Some(n.to_string())),
    Some(other) => Err(Error::arg(format!("{method}: id must be a string or a number, got {other}")).with_field("id")),
  }
}

fn string_arg(v: Option<&Value>, method: &str, name: &str) -> Result<String> {
  match v {
    Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
    other => Err(Error::arg(format!("{method}: {name} must be a non-empty string, got {}", other.map(|v| v.to_string()).unwrap_or("nothing".into()))).with_field(name)),
  }
}

fn names_arg(v: Option<&Value>, method: &str, name: &str) -> Result<Vec<String>> {
  match v {
    None | Some(Value::Null) => Ok(Vec::new()),
    Some(Value::Array(a)) => a.iter().map(|i| i.as_str().map(str::to_string).ok_or_else(|| Error::arg(format!("{method}: {name} must list names")).with_field(name))).collect(),
    Some(Value::String(s)) => Ok(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()),
    Some(other) => Err(Error::arg(format!("{method}: {name} must be an array of names, got {other}")).with_field(name)),
  }
}

fn data_arg(v: Value, method: &str) -> Result<Value> {
  match v {
    Value::Object(_) => Ok(v),
    other => Err(not_an_object(method, &other)),
  }
}

fn fields_arg(v: Value, method: &str) -> Result<Fields> {
  match v {
    Value::Object(m) => Ok(Fields::from(m)),
    other => Err(not_an_object(method, &other)),
  }
}

fn not_an_object(method: &str, v: &Value) -> Error {
  Error::arg(format!("{method}: data must be an object, got {v}")).with_field("data")
}

impl Request {
  pub fn parse(method: &str, args_json: &str) -> Result<Self> {
    // The hottest write takes a short path; anything it does not parse (data that is not an
    // object, more arguments) goes the general way, which reports it.
    if method == "create" {
      if let Ok((data,)) = serde_json::from_str::<(Fields,)>(args_json) {
        return Ok(Request::Create { data, template: false });
      }
    }
    let args: Value = serde_json::from_str(args_json).map_err(|e| Error::arg(format!("{method}: arguments are not valid JSON: {e}")))?;
    let Value::Array(mut a) = args else {
      return Err(Error::arg(format!("{method}: arguments must be a JSON array")));
    };
    let mut take = |i: usize| -> Value { a.get_mut(i).map(Value::take).unwrap_or(Value::Null) };
    Ok(match method {
      "find" => Request::Find { filter: take(0), options: take(1) },
      "findOne" => Request::FindOne { filter: take(0), options: take(1) },
      "findById" => Request::FindById { id: id_arg(Some(&take(0)), method)?, options: take(1) },
      "findWithRelations" => {
        let filter = take(0);
        Request::FindWithRelations { filter, relations: names_arg(Some(&take(1)), method, "relations")?, options: take(2) }
      }
      "findByIdWithRelations" => {
        let id = id_arg(Some(&take(0)), method)?;
        Request::FindByIdWithRelations { id, relations: names_arg(Some(&take(1)), method, "relations")?, options: take(2) }
      }
      "create" => Request::Create { data: fields_arg(take(0), method)?, template: false },
      "update" => {
        let id = id_arg(Some(&take(0)), method)?;
        Request::Update { id, data: data_arg(take(1), method)? }
      }
      "updateMany" => {
        let filter = take(0);
        Request::UpdateMany { filter, data: data_arg(take(1), method)? }
      }
      "delete" => Request::Delete { id: id_arg(Some(&take(0)), method)? },
      "deleteMany" => Request::DeleteMany { filter: take(0) },
      "count" => Request::Count { filter: take(0), options: take(1) },
      "distinct" => {
        let field = string_arg(Some(&take(0)), method, "field")?;
        Request::Distinct { field, filter: take(1), options: take(2) }
      }
      "aggregate" => Request::Aggregate { stages: take(0), options: take(1) },
      "upsert" => {
        let filter = take(0);
        Request::Upsert { filter, data: data_arg(take(1), method)? }
      }
      "increment" | "addToSet" | "pull" => {
        let id = id_arg(Some(&take(0)), method)?;
        let field = string_arg(Some(&take(1)), method, "field")?;
        let v = take(2);
        match method {
          "increment" => Request::Increment { id, field, amount: v },
          "addToSet" => Request::AddToSet { id, field, value: v },
          _ => Request::Pull { id, field, value: v },
        }
      }
      "search" => {
        let query = match take(0) {
          Value::String(s) => s,
          Value::Number(n) => n.to_string(),
          other => return Err(Error::arg(format!("search: query must be a string, got {other}")).with_field("query")),
        };
        let fields = match take(1) {
          Value::Null => None,
          v => Some(names_arg(Some(&v), method, "fields")?).filter(|f: &Vec<String>| !f.is_empty()),
        };
        Request::Search { query, fields, options: take(2) }
      }
      other => return Err(Error::arg(format!("unknown dialect method \"{other}\""))),
    })
  }

  /// Reads never change data, so they may be retried (NET, a dead pooled connection) and
  /// run outside a write lock.
  pub fn is_read(&self) -> bool {
    matches!(
      self,
      Request::Find { .. }
        | Request::FindOne { .. }
        | Request::FindById { .. }
        | Request::FindWithRelations { .. }
        | Request::FindByIdWithRelations { .. }
        | Request::Count { .. }
        | Request::Distinct { .. }
        | Request::Aggregate { .. }
        | Request::Search { .. }
    )
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn parses_arguments_by_position() {
    assert_eq!(Request::parse("findById", "[5, null]").unwrap(), Request::FindById { id: Some("5".into()), options: Value::Null });
    assert_eq!(Request::parse("findById", "[\"\"]").unwrap(), Request::FindById { id: None, options: Value::Null });
    assert_eq!(
      Request::parse("increment", r#"["a","n",2]"#).unwrap(),
      Request::Increment { id: Some("a".into()), field: "n".into(), amount: json!(2) }
    );
    assert_eq!(Request::parse("create", "[1]").unwrap_err().field.as_deref(), Some("data"));
    assert_eq!(Request::parse("create", "[null]").unwrap_err().message, "create: data must be an object, got null");
    let Request::Create { data, template: false } = Request::parse("create", r#"[{"b": 1, "a": {"x": [2]}}]"#).unwrap() else { panic!() };
    assert_eq!(data.into_value(), json!({"b": 1, "a": {"x": [2]}}));
    // Extra arguments take the general path, which ignores them as before.
    assert!(matches!(Request::parse("create", r#"[{"a": 1}, 2]"#), Ok(Request::Create { .. })));
    assert!(Request::parse("drop", "[]").is_err());
    assert!(Request::parse("find", "{}").is_err());
  }
}
