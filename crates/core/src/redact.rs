//! Secrets out of messages: a URL's password never appears in an error or a log line.
//! `redact_uri` masks a URL for display; a `Redactor` also scrubs the password (raw and
//! percent-decoded) out of any text a driver builds from it.

/// A URL with the password of its user part masked: `scheme://user:****@host/…`, and a
/// `password=` query parameter masked. Everything between the user name and the last `@`
/// is masked, so a password holding `@`, `/` or `?` (even unencoded) never shows.
pub fn redact_uri(uri: &str) -> String {
  let masked = mask_user_info(uri);
  match masked.split_once('?') {
    Some((base, query)) if query.split('&').any(is_password_param) => {
      let q: Vec<&str> = query.split('&').map(|p| if is_password_param(p) { "password=****" } else { p }).collect();
      format!("{base}?{}", q.join("&"))
    }
    _ => masked,
  }
}

fn is_password_param(pair: &str) -> bool {
  pair.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case("password"))
}

fn mask_user_info(uri: &str) -> String {
  let Some(scheme_end) = uri.find("://") else { return uri.to_string() };
  let rest = &uri[scheme_end + 3..];
  let Some(at) = rest.rfind('@') else { return uri.to_string() };
  let user_info = &rest[..at];
  let user = user_info.split(':').next().unwrap_or("");
  if user.len() == user_info.len() {
    return uri.to_string(); // no password
  }
  format!("{}{user}:****{}", &uri[..scheme_end + 3], &rest[at..])
}

/// The passwords of a URL (user info and `password=`), raw and percent-decoded, to scrub
/// from driver messages.
fn url_passwords(uri: &str) -> Vec<String> {
  let mut raw: Vec<&str> = Vec::new();
  if let Some((_, rest)) = uri.split_once("://") {
    if let Some((user_info, _)) = rest.rsplit_once('@') {
      if let Some((_, pass)) = user_info.split_once(':') {
        raw.push(pass);
      }
    }
  }
  if let Some((_, query)) = uri.split_once('?') {
    raw.extend(query.split('&').filter(|p| is_password_param(p)).filter_map(|p| p.split_once('=').map(|(_, v)| v)));
  }
  let mut out: Vec<String> = Vec::new();
  for p in raw.into_iter().filter(|p| !p.is_empty()) {
    for form in [p.to_string(), percent_decode(p)] {
      if !out.contains(&form) {
        out.push(form);
      }
    }
  }
  out
}

/// `%xx` decoding (invalid sequences are kept as they are).
pub fn percent_decode(s: &str) -> String {
  let b = s.as_bytes();
  let mut out = Vec::with_capacity(b.len());
  let mut i = 0;
  while i < b.len() {
    if b[i] == b'%' && i + 2 < b.len() {
      if let (Some(h), Some(l)) = ((b[i + 1] as char).to_digit(16), (b[i + 2] as char).to_digit(16)) {
        out.push((h * 16 + l) as u8);
        i += 3;
        continue;
      }
    }
    out.push(b[i]);
    i += 1;
  }
  String::from_utf8_lossy(&out).into_owned()
}

/// Scrubs a connection URL's password out of any message built from a driver error.
#[derive(Clone)]
pub struct Redactor {
  uri: String,
  redacted: String,
  secrets: Vec<String>,
}

impl Redactor {
  pub fn new(uri: &str) -> Self {
    Redactor { uri: uri.to_string(), redacted: redact_uri(uri), secrets: url_passwords(uri) }
  }
  /// The URL with its password masked.
  pub fn redacted_uri(&self) -> &str {
    &self.redacted
  }
  pub fn scrub(&self, msg: &str) -> String {
    let mut m = msg.replace(&self.uri, &self.redacted);
    for s in &self.secrets {
      m = m.replace(s.as_str(), "****");
    }
    m
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn masks_every_password_form() {
    assert_eq!(redact_uri("postgres://u:p%40ss@h:5432/db?sslmode=require"), "postgres://u:****@h:5432/db?sslmode=require");
    assert_eq!(redact_uri("mysql://u:a@b/c@h/db"), "mysql://u:****@h/db");
    assert_eq!(redact_uri("mysql://root@h/db"), "mysql://root@h/db");
    assert_eq!(redact_uri("postgres://h/db?user=u&password=p%26w&sslmode=require"), "postgres://h/db?user=u&password=****&sslmode=require");
    assert_eq!(redact_uri("https://alice:S3cret@h/v1"), "https://alice:****@h/v1");
  }

  #[test]
  fn scrubs_raw_and_decoded_passwords() {
    assert_eq!(Redactor::new("postgres://h/db?password=p%26w").scrub("x p&w y"), "x **** y");
    let r = Redactor::new("postgres://u:s3cr%21t@h/db");
    assert_eq!(r.scrub("bad s3cr!t and s3cr%21t"), "bad **** and ****");
    assert_eq!(percent_decode("a%2Fb%zz"), "a/b%zz");
  }
}
