//! The default terminal renderer of the device flow, used when the caller gives no
//! `onCodeIssued`: the verification URL and user code on stderr (stdout may be a program's
//! data), then a countdown of the time left, redrawn in place each second on a terminal and
//! printed as a plain line each minute otherwise (CI logs stay short).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::device::DeviceCode;

/// `9:05` for 545 s.
pub fn format_left(left: Duration) -> String {
  let s = left.as_secs();
  format!("{}:{:02}", s / 60, s % 60)
}

/// The lines shown once, when the code is issued.
pub fn instructions(code: &DeviceCode) -> String {
  let url = code.verification_uri_complete.as_deref().unwrap_or(&code.verification_uri);
  format!(
    "\nThis application needs an API key. To authorize it, open:\n\n    {url}\n\nand check that it shows the code:  {}\n\n",
    code.user_code
  )
}

/// The countdown task; dropping it stops the countdown and tidies the line.
pub struct Countdown {
  task: Option<tokio::task::JoinHandle<()>>,
  tty: bool,
}

impl Drop for Countdown {
  fn drop(&mut self) {
    if let Some(t) = self.task.take() {
      t.abort();
    }
    if self.tty {
      let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
  }
}

/// Prints the instructions and starts the countdown to `deadline`.
pub fn show(code: &DeviceCode, deadline: tokio::time::Instant) -> Countdown {
  let tty = std::io::stderr().is_terminal();
  let mut err = std::io::stderr();
  let _ = err.write_all(instructions(code).as_bytes());
  let task = tokio::spawn(async move {
    let step = if tty { Duration::from_secs(1) } else { Duration::from_secs(60) };
    loop {
      let left = deadline.saturating_duration_since(tokio::time::Instant::now());
      let mut err = std::io::stderr();
      if tty {
        let _ = write!(err, "\r\x1b[2KWaiting for approval… {} left", format_left(left));
      } else {
        let _ = writeln!(err, "Waiting for approval… {} left", format_left(left));
      }
      let _ = err.flush();
      if left.is_zero() {
        return;
      }
      tokio::time::sleep(step.min(left)).await;
    }
  });
  Countdown { task: Some(task), tty }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn shows_the_complete_url_when_there_is_one() {
    let mut c = DeviceCode { user_code: "ABCD-EFGH".into(), verification_uri: "http://s/device".into(), verification_uri_complete: None, expires_in: 600, interval: 5 };
    let text = instructions(&c);
    assert!(text.contains("http://s/device") && text.contains("ABCD-EFGH"));
    c.verification_uri_complete = Some("http://s/device?code=ABCD-EFGH".into());
    assert!(instructions(&c).contains("http://s/device?code=ABCD-EFGH"));
    assert_eq!(format_left(Duration::from_secs(545)), "9:05");
    assert_eq!(format_left(Duration::ZERO), "0:00");
  }
}
