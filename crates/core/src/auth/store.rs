//! The token cache, `~/.config/<host>/auth.json` (net-protocol.md §4): one JSON object
//! keyed by server URL, `{ "<url>": {access_token, token_type, expires_at, scope?,
//! obtained_at} }`, times in epoch seconds. The folder is 0700 and the file 0600; writes go
//! to a temporary file in the same folder and are renamed over the cache, so a reader sees
//! the old file or the new one, never half of one. A corrupt or unreadable file is an empty
//! cache. Writers take a lock file so two processes do not lose each other's entries.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A token counts as valid only if it outlives now by more than this (seconds).
pub const EXPIRY_MARGIN_SECS: i64 = 60;
/// How long a writer waits for another one's lock before going ahead without it.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// A lock older than this belongs to a crashed process.
const LOCK_STALE: Duration = Duration::from_secs(10);

/// One server's cached token.
#[derive(Clone, PartialEq)]
pub struct CachedToken {
  pub access_token: String,
  pub token_type: String,
  /// Epoch seconds; `None` never expires.
  pub expires_at: Option<i64>,
  pub scope: Option<String>,
  pub obtained_at: i64,
}

impl std::fmt::Debug for CachedToken {
  // The token is a credential: never printed.
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("CachedToken").field("access_token", &"<redacted>").field("token_type", &self.token_type).field("expires_at", &self.expires_at).field("scope", &self.scope).finish()
  }
}

pub fn now_secs() -> i64 {
  SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Epoch seconds from a number or an ISO 8601 string (other tools write either).
fn epoch_of(v: &Value) -> Option<i64> {
  match v {
    Value::Number(n) => n.as_f64().map(|f| f as i64),
    Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim()).ok().map(|d| d.timestamp()),
    _ => None,
  }
}

impl CachedToken {
  /// Valid for more than `EXPIRY_MARGIN_SECS` after `now`; a token without expiry is valid.
  pub fn is_fresh(&self, now: i64) -> bool {
    self.expires_at.is_none_or(|t| now < t - EXPIRY_MARGIN_SECS)
  }

  fn from_value(v: &Value) -> Option<Self> {
    let o = v.as_object()?;
    let access_token = o.get("access_token")?.as_str().filter(|t| !t.is_empty())?.to_string();
    Some(CachedToken {
      access_token,
      token_type: o.get("token_type").and_then(Value::as_str).unwrap_or("Bearer").to_string(),
      expires_at: o.get("expires_at").and_then(epoch_of),
      scope: o.get("scope").and_then(Value::as_str).map(str::to_string),
      obtained_at: o.get("obtained_at").and_then(epoch_of).unwrap_or(0),
    })
  }

  fn to_value(&self) -> Value {
    let mut o = Map::new();
    o.insert("access_token".into(), self.access_token.clone().into());
    o.insert("token_type".into(), self.token_type.clone().into());
    o.insert("expires_at".into(), self.expires_at.map(Value::from).unwrap_or(Value::Null));
    if let Some(s) = &self.scope {
      o.insert("scope".into(), s.clone().into());
    }
    o.insert("obtained_at".into(), self.obtained_at.into());
    Value::Object(o)
  }
}

/// The cache file of one host folder (or the `store` path a caller chose).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStore {
  path: PathBuf,
}

/// A server URL as a cache key: trailing slashes do not make a different server.
pub fn server_key(url: &str) -> String {
  url.trim().trim_end_matches('/').to_string()
}

struct LockGuard(PathBuf);

impl Drop for LockGuard {
  fn drop(&mut self) {
    let _ = fs::remove_file(&self.0);
  }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
  use std::os::unix::fs::DirBuilderExt;
  fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
  fs::create_dir_all(dir)
}

/// A new file only this user can read (0600), failing if the name exists.
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
  let mut o = fs::OpenOptions::new();
  o.write(true).create_new(true);
  #[cfg(unix)]
  {
    use std::os::unix::fs::OpenOptionsExt;
    o.mode(0o600);
  }
  o.open(path)
}

impl TokenStore {
  pub fn new(path: impl Into<PathBuf>) -> Self {
    TokenStore { path: path.into() }
  }

  /// `<config_home>/<host>/auth.json`.
  pub fn for_host(config_home: &Path, host: &str) -> Self {
    TokenStore { path: config_home.join(host).join("auth.json") }
  }

  pub fn path(&self) -> &Path {
    &self.path
  }

  /// Every entry; a missing, unreadable or corrupt file (or one that is not an object) is an
  /// empty cache.
  fn read_map(&self) -> Map<String, Value> {
    let Ok(bytes) = fs::read(&self.path) else {
      return Map::new();
    };
    match serde_json::from_slice::<Value>(&bytes) {
      Ok(Value::Object(m)) => m,
      _ => {
        tracing::warn!(target: "mosta::auth", "ignoring unreadable token cache {}", self.path.display());
        Map::new()
      }
    }
  }

  pub fn get(&self, server: &str) -> Option<CachedToken> {
    self.read_map().get(&server_key(server)).and_then(CachedToken::from_value)
  }

  fn io_err(&self, what: &str, e: std::io::Error) -> Error {
    Error::config(format!("cannot {what} the token cache {}: {e}", self.path.display()))
  }

  fn folder(&self) -> &Path {
    self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
  }

  /// Takes `auth.json.lock` beside the cache (create-new is atomic on every filesystem we
  /// target). A lock older than `LOCK_STALE` is removed; after `LOCK_WAIT` we go ahead
  /// without one rather than fail, since the worst case is one lost entry.
  fn lock(&self) -> Option<LockGuard> {
    let lock = self.path.with_extension("json.lock");
    let started = std::time::Instant::now();
    loop {
      match create_private_file(&lock) {
        Ok(_) => return Some(LockGuard(lock)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
          let age = fs::metadata(&lock).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
          if age.is_some_and(|a| a > LOCK_STALE) {
            let _ = fs::remove_file(&lock);
            continue;
          }
          if started.elapsed() > LOCK_WAIT {
            tracing::warn!(target: "mosta::auth", "token cache lock {} is held; writing without it", lock.display());
            return None;
          }
          std::thread::sleep(Duration::from_millis(20));
        }
        Err(_) => return None,
      }
    }
  }

  /// Replaces the file with `map`, atomically.
  fn write_map(&self, map: &Map<String, Value>) -> Result<()> {
    let dir = self.folder();
    let text = serde_json::to_string_pretty(&Value::Object(map.clone())).map_err(|e| Error::internal(format!("cannot encode the token cache: {e}")))?;
    let tmp = dir.join(format!(".{}.{}.{}.tmp", self.path.file_name().and_then(|n| n.to_str()).unwrap_or("auth.json"), std::process::id(), uuid::Uuid::new_v4().simple()));
    let written = (|| -> std::io::Result<()> {
      let mut f = create_private_file(&tmp)?;
      f.write_all(text.as_bytes())?;
      f.sync_all()?;
      fs::rename(&tmp, &self.path)
    })();
    if let Err(e) = written {
      let _ = fs::remove_file(&tmp);
      return Err(self.io_err("write", e));
    }
    Ok(())
  }

  /// Stores `token` for `server`, keeping the other servers' entries.
  pub fn put(&self, server: &str, token: &CachedToken) -> Result<()> {
    create_private_dir(self.folder()).map_err(|e| self.io_err("create the folder of", e))?;
    let _lock = self.lock();
    let mut map = self.read_map();
    map.insert(server_key(server), token.to_value());
    self.write_map(&map)
  }

  /// Forgets `server`'s token (the file goes when it was the last one), or the whole file
  /// when `server` is `None`. Nothing cached is not an error.
  pub fn remove(&self, server: Option<&str>) -> Result<()> {
    if !self.path.exists() {
      return Ok(());
    }
    let _lock = self.lock();
    let mut map = self.read_map();
    if let Some(s) = server {
      if map.remove(&server_key(s)).is_none() && !map.is_empty() {
        return Ok(());
      }
    }
    if server.is_none() || map.is_empty() {
      return match fs::remove_file(&self.path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(self.io_err("remove", e)),
      };
    }
    self.write_map(&map)
  }
}

#[cfg(test)]
pub(crate) mod tests {
  use super::*;

  /// A fresh folder under the system temp dir, removed on drop.
  pub(crate) struct TempDir(pub PathBuf);
  impl TempDir {
    pub fn new() -> Self {
      let p = std::env::temp_dir().join(format!("mosta-auth-test-{}", uuid::Uuid::new_v4().simple()));
      fs::create_dir_all(&p).unwrap();
      TempDir(p)
    }
  }
  impl Drop for TempDir {
    fn drop(&mut self) {
      let _ = fs::remove_dir_all(&self.0);
    }
  }

  fn token(t: &str, expires_at: Option<i64>) -> CachedToken {
    CachedToken { access_token: t.into(), token_type: "Bearer".into(), expires_at, scope: None, obtained_at: 1 }
  }

  #[test]
  fn freshness_needs_a_minute_of_margin() {
    let now = 1_000_000;
    assert!(token("a", None).is_fresh(now));
    assert!(token("a", Some(now + 61)).is_fresh(now));
    assert!(!token("a", Some(now + 60)).is_fresh(now));
    assert!(!token("a", Some(now - 5)).is_fresh(now));
  }

  #[cfg(unix)]
  #[test]
  fn files_are_private_and_keyed_by_server() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new();
    let store = TokenStore::for_host(&tmp.0.join("cfg"), "octonet");
    store.put("http://a:1/", &token("ka", Some(2_000_000_000))).unwrap();
    store.put("http://b:2", &token("kb", None)).unwrap();
    let dir = tmp.0.join("cfg/octonet");
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(store.path()).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(store.get("http://a:1").unwrap().access_token, "ka");
    assert_eq!(store.get("http://b:2/").unwrap().expires_at, None);
    let on_disk: Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
    assert_eq!(on_disk["http://a:1"]["expires_at"], 2_000_000_000);
    assert_eq!(on_disk["http://a:1"]["token_type"], "Bearer");
    // No temporary or lock file is left behind.
    let names: Vec<String> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["auth.json".to_string()]);
    assert!(format!("{:?}", store.get("http://a:1").unwrap()).contains("redacted"));
  }

  #[test]
  fn corrupt_files_read_as_empty_and_are_replaced() {
    let tmp = TempDir::new();
    let store = TokenStore::new(tmp.0.join("auth.json"));
    for junk in ["", "{not json", "[1,2]", "\"x\"", r#"{"http://a":"oops"}"#, r#"{"http://a":{"access_token":""}}"#] {
      fs::write(store.path(), junk).unwrap();
      assert_eq!(store.get("http://a"), None, "{junk}");
    }
    store.put("http://a", &token("k", None)).unwrap();
    assert_eq!(store.get("http://a").unwrap().access_token, "k");
    // ISO dates written by other tools are understood.
    fs::write(store.path(), r#"{"http://a":{"access_token":"k","expires_at":"2001-09-09T01:46:40Z"}}"#).unwrap();
    assert_eq!(store.get("http://a").unwrap().expires_at, Some(1_000_000_000));
  }

  #[test]
  fn rename_replaces_the_file_whole() {
    let tmp = TempDir::new();
    let store = TokenStore::new(tmp.0.join("auth.json"));
    store.put("http://a", &token("k1", None)).unwrap();
    let before = fs::metadata(store.path()).unwrap();
    store.put("http://a", &token("k2", None)).unwrap();
    #[cfg(unix)]
    {
      use std::os::unix::fs::MetadataExt;
      assert_ne!(before.ino(), fs::metadata(store.path()).unwrap().ino(), "a new file was renamed over the old one");
    }
    let _ = before;
    assert_eq!(store.get("http://a").unwrap().access_token, "k2");
  }

  #[test]
  fn concurrent_writers_keep_every_entry() {
    let tmp = TempDir::new();
    let path = tmp.0.join("auth.json");
    let threads: Vec<_> = (0..8)
      .map(|i| {
        let store = TokenStore::new(path.clone());
        std::thread::spawn(move || store.put(&format!("http://s{i}"), &token(&format!("k{i}"), None)).unwrap())
      })
      .collect();
    for t in threads {
      t.join().unwrap();
    }
    let store = TokenStore::new(path);
    for i in 0..8 {
      assert_eq!(store.get(&format!("http://s{i}")).unwrap().access_token, format!("k{i}"));
    }
  }

  #[test]
  fn a_stale_lock_is_broken() {
    let tmp = TempDir::new();
    let store = TokenStore::new(tmp.0.join("auth.json"));
    let lock = tmp.0.join("auth.json.lock");
    fs::write(&lock, "").unwrap();
    let old = SystemTime::now() - Duration::from_secs(60);
    fs::File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
    let started = std::time::Instant::now();
    store.put("http://a", &token("k", None)).unwrap();
    assert!(started.elapsed() < LOCK_WAIT);
    assert!(!lock.exists());
  }

  #[test]
  fn remove_drops_one_entry_or_the_file() {
    let tmp = TempDir::new();
    let store = TokenStore::new(tmp.0.join("auth.json"));
    store.remove(Some("http://a")).unwrap();
    store.remove(None).unwrap();
    store.put("http://a", &token("ka", None)).unwrap();
    store.put("http://b", &token("kb", None)).unwrap();
    store.remove(Some("http://a/")).unwrap();
    assert_eq!(store.get("http://a"), None);
    assert!(store.get("http://b").is_some());
    store.remove(Some("http://zzz")).unwrap();
    assert!(store.get("http://b").is_some());
    store.remove(Some("http://b")).unwrap();
    assert!(!store.path().exists(), "the last entry takes the file with it");
    store.put("http://a", &token("ka", None)).unwrap();
    store.remove(None).unwrap();
    assert!(!store.path().exists());
  }
}
