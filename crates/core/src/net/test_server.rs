//! A tiny HTTP/1.1 server on 127.0.0.1 for the tests of the client, the NET dialect and
//! the device flow: real sockets, keep-alive, scripted replies, every request recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Recorded {
  pub method: String,
  /// Path and query as sent.
  pub target: String,
  pub headers: Vec<(String, String)>,
  pub body: Vec<u8>,
}

impl Recorded {
  pub fn header(&self, name: &str) -> Option<&str> {
    self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
  }
  pub fn path(&self) -> &str {
    self.target.split('?').next().unwrap_or("")
  }
  pub fn query(&self) -> Vec<(String, String)> {
    let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
  }
  pub fn query_value(&self, key: &str) -> Option<String> {
    self.query().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
  }
  pub fn body_text(&self) -> String {
    String::from_utf8_lossy(&self.body).into_owned()
  }
  pub fn json(&self) -> serde_json::Value {
    serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
  }
}

pub enum Reply {
  /// A status with a JSON (or any) body sent as `application/json`.
  Json(u16, String),
  /// Extra headers too.
  WithHeaders(u16, Vec<(&'static str, String)>, String),
  /// Waits, then sends the inner reply (timeouts).
  Stall(Duration, Box<Reply>),
  /// Closes the connection without answering.
  Close,
}

pub fn json(status: u16, body: serde_json::Value) -> Reply {
  Reply::Json(status, body.to_string())
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

pub struct TestServer {
  pub base: String,
  requests: Arc<Mutex<Vec<Recorded>>>,
  task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
  fn drop(&mut self) {
    self.task.abort();
  }
}

impl TestServer {
  pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let handler: Arc<Handler> = Arc::new(handler);
    let recs = requests.clone();
    let task = tokio::spawn(async move {
      while let Ok((sock, _)) = listener.accept().await {
        tokio::spawn(serve(sock, handler.clone(), recs.clone()));
      }
    });
    TestServer { base, requests, task }
  }

  pub fn requests(&self) -> Vec<Recorded> {
    self.requests.lock().map(|r| r.clone()).unwrap_or_default()
  }
}

/// A base URL where nothing listens (connection refused).
pub async fn dead_base() -> String {
  let l = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
  let addr = l.local_addr().expect("local addr");
  drop(l);
  format!("http://{addr}")
}

async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
  let head_end = loop {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
      break i;
    }
    let mut chunk = [0u8; 4096];
    let n = sock.read(&mut chunk).await.ok()?;
    if n == 0 {
      return None;
    }
    buf.extend_from_slice(&chunk[..n]);
  };
  let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
  let mut lines = head.split("\r\n");
  let mut first = lines.next()?.split(' ');
  let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
  let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
  let len: usize = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
  let start = head_end + 4;
  while buf.len() < start + len {
    let mut chunk = [0u8; 4096];
    let n = sock.read(&mut chunk).await.ok()?;
    if n == 0 {
      return None;
    }
    buf.extend_from_slice(&chunk[..n]);
  }
  let body = buf[start..start + len].to_vec();
  buf.drain(..start + len);
  Some(Recorded { method, target, headers, body })
}

fn reason(status: u16) -> &'static str {
  reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Status")
}

async fn serve(mut sock: TcpStream, handler: Arc<Handler>, recs: Arc<Mutex<Vec<Recorded>>>) {
  let mut buf = Vec::new();
  while let Some(req) = read_request(&mut sock, &mut buf).await {
    if let Ok(mut r) = recs.lock() {
      r.push(req.clone());
    }
    let mut reply = handler(&req);
    while let Reply::Stall(d, inner) = reply {
      tokio::time::sleep(d).await;
      reply = *inner;
    }
    let (status, extra, body) = match reply {
      Reply::Json(s, b) => (s, Vec::new(), b),
      Reply::WithHeaders(s, h, b) => (s, h, b),
      Reply::Close | Reply::Stall(..) => return,
    };
    let mut out = format!("HTTP/1.1 {status} {}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: keep-alive\r\nkeep-alive: timeout=72\r\n", reason(status), body.len());
    for (k, v) in extra {
      out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    if sock.write_all(out.as_bytes()).await.is_err() {
      return;
    }
  }
}
