//! Dates as JavaScript writes them: `toISOString()` text (`YYYY-MM-DDTHH:MM:SS.sssZ`, years
//! outside 0..=9999 as `±YYYYYY`) and calendar dates (`YYYY-MM-DD`). Timestamps are written
//! on every create and every date cell read back, so the common years are written digit by
//! digit rather than through a format string (which showed up in profiles).

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// The current UTC time as `toISOString()` text. Calls within the same millisecond share
/// the text, formatted once (writes in a loop stamp many rows per millisecond).
pub fn iso_now() -> String {
  thread_local! {
    static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
  }
  let now = chrono::Utc::now();
  let ms = now.timestamp_millis();
  LAST.with_borrow_mut(|(at, text)| {
    if *at != ms {
      write_iso_utc(text, &now.naive_utc());
      *at = ms;
    }
    text.clone()
  })
}

/// A UTC time as `toISOString()` text.
pub fn iso_utc(t: &chrono::DateTime<chrono::Utc>) -> String {
  let mut buf = String::with_capacity(24);
  write_iso_utc(&mut buf, &t.naive_utc());
  buf
}

/// Epoch milliseconds as `toISOString()` text (out of chrono's range: the epoch).
pub fn iso_ms(ms: i64) -> String {
  iso_utc(&chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

/// Milliseconds since the epoch of a UTC date-time (sub-millisecond digits dropped, as
/// `toISOString()` shows them).
pub fn epoch_ms(t: &NaiveDateTime) -> i64 {
  t.and_utc().timestamp_micros().div_euclid(1000)
}

/// Replaces `buf` with the UTC date-time `t` as `toISOString()` writes it.
pub fn write_iso_utc(buf: &mut String, t: &NaiveDateTime) {
  buf.clear();
  push_ymd(buf, t);
  let mut b = *b"T00:00:00.000Z";
  put_digits(&mut b[1..3], t.hour());
  put_digits(&mut b[4..6], t.minute());
  put_digits(&mut b[7..9], t.second());
  put_digits(&mut b[10..13], t.nanosecond() % 1_000_000_000 / 1_000_000);
  buf.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// Appends a time of day as the servers print it: `[-]HH:MM:SS`, then `.` and the
/// microseconds without their trailing zeros when there are any.
pub fn push_time(buf: &mut String, negative: bool, hours: u64, minutes: u64, seconds: u64, micros: u64) {
  use std::fmt::Write;
  let sign = if negative { "-" } else { "" };
  let _ = write!(buf, "{sign}{hours:02}:{minutes:02}:{seconds:02}");
  if micros != 0 {
    // The byte buffers here hold ASCII digits and separators only: `from_utf8` cannot fail.
    let mut f = *b".000000";
    put_digits(&mut f[1..], micros as u32);
    buf.push_str(std::str::from_utf8(&f).unwrap_or_default().trim_end_matches('0'));
  }
}

/// Replaces `buf` with the calendar date `d` as `YYYY-MM-DD`.
pub fn write_date(buf: &mut String, d: &NaiveDate) {
  buf.clear();
  push_ymd(buf, d);
}

fn push_ymd(buf: &mut String, d: &impl Datelike) {
  let y = d.year();
  let mut b = *b"+000000-00-00";
  let start = if (0..=9999).contains(&y) {
    put_digits(&mut b[3..7], y.unsigned_abs());
    3
  } else {
    b[0] = if y < 0 { b'-' } else { b'+' };
    put_digits(&mut b[1..7], y.unsigned_abs());
    0
  };
  put_digits(&mut b[8..10], d.month());
  put_digits(&mut b[11..13], d.day());
  buf.push_str(std::str::from_utf8(&b[start..]).unwrap_or_default());
}

/// Writes `n` in decimal into `out`, zero-padded on the left (higher digits dropped).
fn put_digits(out: &mut [u8], mut n: u32) {
  for c in out.iter_mut().rev() {
    *c = b'0' + (n % 10) as u8;
    n /= 10;
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn iso(t: &NaiveDateTime) -> String {
    let mut b = String::new();
    write_iso_utc(&mut b, t);
    b
  }

  #[test]
  fn matches_to_iso_string() {
    let t = NaiveDate::from_ymd_opt(2024, 1, 2).and_then(|d| d.and_hms_micro_opt(3, 4, 5, 678_901)).unwrap();
    assert_eq!(iso(&t), "2024-01-02T03:04:05.678Z");
    let t = NaiveDate::from_ymd_opt(12345, 1, 2).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap();
    assert_eq!(iso(&t), "+012345-01-02T00:00:00.000Z");
    let t = NaiveDate::from_ymd_opt(-1, 12, 31).and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999)).unwrap();
    assert_eq!(iso(&t), "-000001-12-31T23:59:59.999Z");
    let mut b = String::from("stale");
    write_date(&mut b, &NaiveDate::from_ymd_opt(999, 12, 31).unwrap());
    assert_eq!(b, "0999-12-31");
    assert_eq!(iso_now().len(), 24);
  }

  #[test]
  fn now_moves_with_the_clock() {
    let before = chrono::Utc::now();
    let a = iso_now();
    std::thread::sleep(std::time::Duration::from_millis(3));
    let b = iso_now();
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    assert!(parse(&a) >= before - chrono::Duration::milliseconds(1), "{a}");
    assert!(parse(&b) > parse(&a), "a later millisecond gets new text: {a} then {b}");
  }

  #[test]
  fn agrees_with_chrono_in_common_years() {
    use chrono::TimeZone;
    for ms in [0i64, 1, 999, 86_399_999, 951_782_400_123, 1_700_000_000_456, 253_402_300_799_999, -62_135_596_800_000] {
      let t = chrono::Utc.timestamp_millis_opt(ms).unwrap();
      assert_eq!(iso(&t.naive_utc()), t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(), "{ms}");
    }
  }

  #[test]
  fn times_of_day_as_the_servers_print_them() {
    let time = |neg, h, m, sec, us| {
      let mut b = String::new();
      push_time(&mut b, neg, h, m, sec, us);
      b
    };
    assert_eq!(time(false, 1, 2, 3, 0), "01:02:03");
    assert_eq!(time(false, 23, 59, 59, 500_000), "23:59:59.5");
    assert_eq!(time(false, 0, 0, 0, 120), "00:00:00.00012");
    assert_eq!(time(true, 838, 59, 59, 999_999), "-838:59:59.999999");
  }
}
