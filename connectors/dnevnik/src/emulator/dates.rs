//! Dates on the wire: the request spellings the emulator accepts and the response formats it
//! writes (API.md, "Transport" and the endpoint table).
//!
//! The response formats are `Display` types serialized with `collect_str`, so big lists are
//! written straight into the response buffer without a `String` per date.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde::{Serialize, Serializer};

/// Parses a request date in any spelling clients send: `2025-09-01`, `2025-09-01T08:00`,
/// `2025-09-01T08:00:00`, `2025-09-01 08:00:00` (a `+` for the space too, as a form-encoded
/// path may carry it), with a fraction of 1–9 digits (`.123456`, .NET's `.1234567`), an
/// optional zone (`Z`, `+03:00`, `+0300`, `+03`) and unpadded fields (`2025-9-1T8:0:0`).
///
/// The zone is accepted and ignored: ranges are inclusive by day, so only the written date
/// matters to the filters (the time is kept for the tests).
pub fn parse_request_date(input: &str) -> Option<NaiveDateTime> {
    let s = input.trim();
    let (date_part, time_part) = match s.find(['T', 't', ' ', '+']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut fields = date_part.split('-');
    let year = number(fields.next()?, 4, 4)?;
    let month = number(fields.next()?, 1, 2)?;
    let day = number(fields.next()?, 1, 2)?;
    if fields.next().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let time = match time_part {
        None => NaiveTime::MIN,
        Some(t) => parse_time(t)?,
    };
    Some(date.and_time(time))
}

fn parse_time(t: &str) -> Option<NaiveTime> {
    let t = strip_zone(t)?;
    let (hms, fraction) = match t.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (t, None),
    };
    let mut fields = hms.split(':');
    let hour = number(fields.next()?, 1, 2)?;
    let minute = number(fields.next()?, 1, 2)?;
    let second = match fields.next() {
        Some(s) => number(s, 1, 2)?,
        None => {
            if fraction.is_some() {
                return None;
            }
            0
        }
    };
    if fields.next().is_some() {
        return None;
    }
    let nanos = match fraction {
        None => 0,
        Some(f) => {
            let digits = u32::try_from(f.len()).ok()?;
            if !(1..=9).contains(&digits) {
                return None;
            }
            number(f, 1, 9)? * 10u32.pow(9 - digits)
        }
    };
    NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
}

/// Strips a trailing zone designator (`Z`, `+hh:mm`, `-hh:mm`, `+hhmm`, `+hh`).
fn strip_zone(t: &str) -> Option<&str> {
    if let Some(rest) = t.strip_suffix(['Z', 'z']) {
        return Some(rest);
    }
    match t.rfind(['+', '-']) {
        None => Some(t),
        Some(i) => {
            let zone = &t[i + 1..];
            let ok = match zone.split_once(':') {
                Some((h, m)) => number(h, 2, 2).is_some() && number(m, 2, 2).is_some(),
                None => (zone.len() == 2 || zone.len() == 4) && number(zone, 2, 4).is_some(),
            };
            ok.then_some(&t[..i])
        }
    }
}

/// A decimal field of `min..=max` ASCII digits.
fn number(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A date or datetime written into a stack buffer: no `fmt` machinery on the hot path (every
/// mark and lesson carries one).
struct Buf {
    bytes: [u8; 32],
    len: usize,
}

impl Buf {
    fn new() -> Self {
        Buf { bytes: [0; 32], len: 0 }
    }

    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn push_str(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.push(b);
        }
    }

    /// `n` zero-padded to `width` digits (`n` must fit).
    fn digits(&mut self, mut n: u32, width: usize) {
        for k in (0..width).rev() {
            self.bytes[self.len + k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += width;
    }

    fn date(&mut self, d: NaiveDate) {
        // Years outside 0..=9999 do not occur in a school journal; clamp rather than panic.
        self.digits(d.year().clamp(0, 9999) as u32, 4);
        self.push(b'-');
        self.digits(d.month(), 2);
        self.push(b'-');
        self.digits(d.day(), 2);
    }

    fn hms(&mut self, t: NaiveDateTime) {
        self.push(b'T');
        self.digits(t.hour(), 2);
        self.push(b':');
        self.digits(t.minute(), 2);
        self.push(b':');
        self.digits(t.second(), 2);
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("ASCII digits and separators")
    }
}

/// Nanoseconds of the second, without a leap-second overflow.
fn nanos(t: NaiveDateTime) -> u32 {
    t.nanosecond() % 1_000_000_000
}

/// A wire date format: fills a [`Buf`]; `Display` and `Serialize` (as a string) follow.
trait WireDate {
    fn fill(&self, b: &mut Buf);
}

macro_rules! wire_date {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut b = Buf::new();
                self.fill(&mut b);
                f.write_str(b.as_str())
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut b = Buf::new();
                self.fill(&mut b);
                s.serialize_str(b.as_str())
            }
        }
    )*};
}

/// `yyyy-MM-ddT00:00:00`: lesson `date`, work `targetDate`, period `start`, holiday `dateStart`.
#[derive(Debug, Clone, Copy)]
pub struct Midnight(pub NaiveDate);

impl WireDate for Midnight {
    fn fill(&self, b: &mut Buf) {
        b.date(self.0);
        b.push_str("T00:00:00");
    }
}

/// `yyyy-MM-ddT23:59:59`: period `finish`, holiday `dateFinish`.
#[derive(Debug, Clone, Copy)]
pub struct EndOfDay(pub NaiveDate);

impl WireDate for EndOfDay {
    fn fill(&self, b: &mut Buf) {
        b.date(self.0);
        b.push_str("T23:59:59");
    }
}

/// `yyyy-MM-ddTHH:mm:ss.fffffff` (7 fraction digits, .NET ticks): mark `date`.
#[derive(Debug, Clone, Copy)]
pub struct Ticks(pub NaiveDateTime);

impl WireDate for Ticks {
    fn fill(&self, b: &mut Buf) {
        b.date(self.0.date());
        b.hms(self.0);
        b.push(b'.');
        b.digits(nanos(self.0) / 100, 7);
    }
}

/// `yyyy-MM-ddTHH:mm:ss.ffffff` (6 fraction digits): log entry `createdDate`.
#[derive(Debug, Clone, Copy)]
pub struct Micros(pub NaiveDateTime);

impl WireDate for Micros {
    fn fill(&self, b: &mut Buf) {
        b.date(self.0.date());
        b.hms(self.0);
        b.push(b'.');
        b.digits(nanos(self.0) / 1_000, 6);
    }
}

/// `yyyy-MM-ddTHH:mm:ss.fffZ`, the value already in UTC: homework `sentDate`.
#[derive(Debug, Clone, Copy)]
pub struct UtcMillis(pub NaiveDateTime);

impl WireDate for UtcMillis {
    fn fill(&self, b: &mut Buf) {
        b.date(self.0.date());
        b.hms(self.0);
        b.push(b'.');
        b.digits(nanos(self.0) / 1_000_000, 3);
        b.push(b'Z');
    }
}

/// `yyyy-MM-dd`: the control surface's `today`.
#[derive(Debug, Clone, Copy)]
pub struct Day(pub NaiveDate);

impl WireDate for Day {
    fn fill(&self, b: &mut Buf) {
        b.date(self.0);
    }
}

wire_date!(Midnight, EndOfDay, Ticks, Micros, UtcMillis, Day);

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32, nano: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_nano_opt(h, mi, s, nano).unwrap()
    }

    #[test]
    fn every_request_spelling_parses() {
        let cases = [
            ("2025-09-01", dt(2025, 9, 1, 0, 0, 0, 0)),
            ("2025-09-01T08:00", dt(2025, 9, 1, 8, 0, 0, 0)),
            ("2025-09-01T08:00:00", dt(2025, 9, 1, 8, 0, 0, 0)),
            ("2025-09-01 08:00:00", dt(2025, 9, 1, 8, 0, 0, 0)),
            ("2025-09-01+08:00:00", dt(2025, 9, 1, 8, 0, 0, 0)),
            ("2025-09-01T08:00:00.123456", dt(2025, 9, 1, 8, 0, 0, 123_456_000)),
            ("2025-09-01T08:00:00.1234567Z", dt(2025, 9, 1, 8, 0, 0, 123_456_700)),
            ("2025-09-01T08:00:00.1234567", dt(2025, 9, 1, 8, 0, 0, 123_456_700)),
            ("2025-09-01T08:00:00Z", dt(2025, 9, 1, 8, 0, 0, 0)),
            ("2025-09-01T08:00:00+03:00", dt(2025, 9, 1, 8, 0, 0, 0)),
            ("2025-09-01T08:00:00-0500", dt(2025, 9, 1, 8, 0, 0, 0)),
            ("2025-9-1T8:0:0", dt(2025, 9, 1, 8, 0, 0, 0)),
            ("2025-9-1", dt(2025, 9, 1, 0, 0, 0, 0)),
            (" 2025-12-31T23:59:59.9 ", dt(2025, 12, 31, 23, 59, 59, 900_000_000)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_request_date(input), Some(want), "{input}");
        }
    }

    #[test]
    fn bad_dates_are_refused() {
        for input in [
            "",
            "2025",
            "2025-09",
            "25-09-01",
            "2025-13-01",
            "2025-02-30",
            "2025-09-01T",
            "2025-09-01T08",
            "2025-09-01T25:00",
            "2025-09-01T08:00:00.",
            "2025-09-01T08:00:00.1234567890",
            "2025-09-01T08:00.5",
            "2025-09-01T08:00:00+3",
            "01.09.2025",
            "2025-09-01-01",
            "yesterday",
        ] {
            assert_eq!(parse_request_date(input), None, "{input:?}");
        }
    }

    #[test]
    fn response_formats() {
        let t = dt(2025, 9, 1, 8, 5, 7, 123_456_789);
        let d = t.date();
        assert_eq!(Midnight(d).to_string(), "2025-09-01T00:00:00");
        assert_eq!(EndOfDay(d).to_string(), "2025-09-01T23:59:59");
        assert_eq!(Ticks(t).to_string(), "2025-09-01T08:05:07.1234567");
        assert_eq!(Micros(t).to_string(), "2025-09-01T08:05:07.123456");
        assert_eq!(UtcMillis(t).to_string(), "2025-09-01T08:05:07.123Z");
        assert_eq!(Day(d).to_string(), "2025-09-01");
        assert_eq!(serde_json::to_string(&Ticks(t)).unwrap(), "\"2025-09-01T08:05:07.1234567\"");
    }
}
