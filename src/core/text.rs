//! Text as kacap writes it: seconds as people say them, counts with their
//! nouns, short copies of payload text, and JSON's escaping and numbers —
//! shared by every analysis's words and every report.

use std::fmt::Write as _;

/// Seconds, readably: `2.00s`, `1.02s`, `35ms`, `52µs`.
pub struct Secs(pub f64);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        let whole = |unit: f64| {
            let n = (s / unit).round();
            (n >= 1.0 && (s - n * unit).abs() < 1.0).then_some(n)
        };
        if s >= 3600.0
            && let Some(h) = whole(3600.0)
        {
            write!(f, "{h:.0} h")
        } else if s >= 600.0
            && let Some(m) = whole(60.0)
        {
            write!(f, "{m:.0} min")
        } else if s >= 100.0 {
            write!(f, "{s:.0}s")
        } else if s >= 1.0 || s == 0.0 {
            write!(f, "{s:.2}s")
        } else if s >= 0.001 {
            write!(f, "{:.0}ms", s * 1e3)
        } else {
            write!(f, "{:.0}µs", s * 1e6)
        }
    }
}

/// Seconds in prose: `12.34 s`, `350 s` (from 100 s on, whole).
pub fn seconds(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} s")
    } else {
        format!("{v:.2} s")
    }
}

/// `1 flow`, `2 flows`: a count and a regular English noun.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `a`, `a and b`, `a, b and c`.
pub fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A short copy of some text, cut with `…` when longer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Text<const N: usize> {
    bytes: [u8; N],
    len: u8,
    cut: bool,
}

impl<const N: usize> Text<N> {
    pub fn of(b: &[u8]) -> Self {
        let mut bytes = [0u8; N];
        let n = b.len().min(N);
        bytes[..n].copy_from_slice(&b[..n]);
        Text {
            bytes,
            len: n as u8,
            cut: b.len() > N,
        }
    }
}

impl<const N: usize> std::fmt::Display for Text<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for &b in &self.bytes[..usize::from(self.len)] {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// `s` as a JSON string body: quotes, backslashes and control characters
/// escaped (`\n`, `\u001b`, …).
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// A JSON number for seconds, or null.
pub struct Num(pub Option<f64>);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) if v.is_finite() => write!(f, "{}", (v * 1e6).round() / 1e6),
            _ => f.write_str("null"),
        }
    }
}

/// A JSON string (endpoints and names need no escaping but quotes).
pub struct Str<'a>(pub Option<&'a str>);

impl std::fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => write!(f, "\"{s}\""),
            None => f.write_str("null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Secs;

    #[test]
    fn seconds_read_as_people_say_them() {
        let shown = |s: f64| Secs(s).to_string();
        assert_eq!(shown(7200.0), "2 h");
        assert_eq!(shown(7200.4), "2 h");
        assert_eq!(shown(7230.0), "7230s");
        assert_eq!(shown(900.0), "15 min");
        assert_eq!(shown(350.0), "350s");
        assert_eq!(shown(75.0), "75.00s");
        assert_eq!(shown(1.02), "1.02s");
        assert_eq!(shown(0.028), "28ms");
        assert_eq!(shown(0.000_028), "28µs");
        assert_eq!(shown(0.0), "0.00s");
    }

    #[test]
    fn escape_quotes_backslashes_and_control_characters() {
        assert_eq!(super::escape("caps/a.pcap"), "caps/a.pcap");
        assert_eq!(
            super::escape("a\"b\\c\nd\te\u{1b}[31mf\u{7f}"),
            "a\\\"b\\\\c\\nd\\te\\u001b[31mf\\u007f"
        );
        let v: serde_json::Value =
            serde_json::from_str(&format!("\"{}\"", super::escape("x\u{1}\u{1f}y"))).unwrap();
        assert_eq!(v, "x\u{1}\u{1f}y");
    }
}
