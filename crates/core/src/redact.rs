//! Secrets out of messages: a URL's password never appears in an error or a log line.

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

pub(crate) fn is_password_param(pair: &str) -> bool {
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
}
