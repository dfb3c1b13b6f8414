//! The one error type of the engine. Every failure that reaches JavaScript carries a stable
//! `code` (documented in the README), a message naming the entity, field or variable, and,
//! when a server produced it, the server's own code (`db_code`) or HTTP `status`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
  /// Missing or invalid environment variable or connection option.
  Config,
  /// A malformed filter, sort, select or option.
  InvalidFilter,
  /// A bad argument to an API call (wrong type, unknown entity, bad schema).
  InvalidArgument,
  /// Schema definition problems, or a `validate` strategy that finds a missing table.
  Schema,
  Unique,
  NotNull,
  ForeignKey,
  /// Other constraint failures (CHECK, ...).
  Constraint,
  /// A column or table named in a statement does not exist.
  UnknownColumn,
  /// Cannot reach or lost the database server.
  Connection,
  PoolTimeout,
  /// Transaction misuse (out-of-order commit, unknown handle).
  Transaction,
  /// Any other database error; `db_code` carries the server's code.
  Database,
  NetHttp,
  NetTimeout,
  /// The remote server refused the API key (401), or no key can be obtained.
  AuthRequired,
  Forbidden,
  /// The device flow failed (denied, expired, unsupported endpoint).
  DeviceFlow,
  /// The dialect was closed by `disconnect()`.
  Closed,
  /// The operation does not exist on this dialect (e.g. transactions in NET mode).
  Unsupported,
  /// A bug on our side (a caught panic).
  Internal,
}

impl Code {
  pub fn as_str(self) -> &'static str {
    match self {
      Code::Config => "E_CONFIG",
      Code::InvalidFilter => "E_INVALID_FILTER",
      Code::InvalidArgument => "E_INVALID_ARGUMENT",
      Code::Schema => "E_SCHEMA",
      Code::Unique => "E_UNIQUE",
      Code::NotNull => "E_NOT_NULL",
      Code::ForeignKey => "E_FOREIGN_KEY",
      Code::Constraint => "E_CONSTRAINT",
      Code::UnknownColumn => "E_UNKNOWN_COLUMN",
      Code::Connection => "E_CONNECTION",
      Code::PoolTimeout => "E_POOL_TIMEOUT",
      Code::Transaction => "E_TRANSACTION",
      Code::Database => "E_DATABASE",
      Code::NetHttp => "E_NET_HTTP",
      Code::NetTimeout => "E_NET_TIMEOUT",
      Code::AuthRequired => "E_AUTH_REQUIRED",
      Code::Forbidden => "E_FORBIDDEN",
      Code::DeviceFlow => "E_DEVICE_FLOW",
      Code::Closed => "E_CLOSED",
      Code::Unsupported => "E_UNSUPPORTED",
      Code::Internal => "E_INTERNAL",
    }
  }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Error {
  pub code: Code,
  pub message: String,
  /// The database's or remote server's own error code (SQLSTATE, MySQL errno, SQLite
  /// extended code name, NET `error.code`).
  pub db_code: Option<String>,
  /// HTTP status for NET errors.
  pub status: Option<u16>,
  /// The entity (schema name) the failing call was about.
  pub entity: Option<String>,
  /// The field or column named by a constraint error or a bad filter.
  pub field: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
  pub fn new(code: Code, message: impl Into<String>) -> Self {
    Error { code, message: message.into(), db_code: None, status: None, entity: None, field: None }
  }
  pub fn config(message: impl Into<String>) -> Self {
    Self::new(Code::Config, message)
  }
  pub fn filter(message: impl Into<String>) -> Self {
    Self::new(Code::InvalidFilter, message)
  }
  pub fn arg(message: impl Into<String>) -> Self {
    Self::new(Code::InvalidArgument, message)
  }
  pub fn internal(message: impl Into<String>) -> Self {
    Self::new(Code::Internal, message)
  }
  pub fn with_db_code(mut self, c: impl Into<String>) -> Self {
    self.db_code = Some(c.into());
    self
  }
  pub fn with_status(mut self, s: u16) -> Self {
    self.status = Some(s);
    self
  }
  pub fn with_field(mut self, f: impl Into<String>) -> Self {
    self.field = Some(f.into());
    self
  }
  /// Names the entity in the error unless a deeper layer already did.
  pub fn in_entity(mut self, entity: &str) -> Self {
    if self.entity.is_none() {
      self.entity = Some(entity.to_string());
    }
    self
  }

  /// The JSON form the binding hands to JavaScript (one place decides the shape).
  pub fn to_json(&self) -> String {
    let mut o = serde_json::Map::new();
    o.insert("code".into(), self.code.as_str().into());
    o.insert("message".into(), self.message.clone().into());
    if let Some(c) = &self.db_code {
      o.insert("dbCode".into(), c.clone().into());
    }
    if let Some(s) = self.status {
      o.insert("status".into(), s.into());
    }
    if let Some(e) = &self.entity {
      o.insert("entity".into(), e.clone().into());
    }
    if let Some(f) = &self.field {
      o.insert("field".into(), f.clone().into());
    }
    serde_json::Value::Object(o).to_string()
  }
}

impl fmt::Display for Error {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{}: {}", self.code.as_str(), self.message)
  }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
  fn from(e: serde_json::Error) -> Self {
    Error::arg(format!("invalid JSON argument: {e}"))
  }
}
