//! `--log-format zeek` / `zeek-json`: one record per connection, as a Zeek
//! log (`kacap.log`) — TSV with Zeek's `#separator` / `#fields` / `#types`
//! header, or Zeek's JSON lines — so `zeek-cut` and Zeek-log tooling read
//! it and it joins `conn.log` by `community_id` (or by the 5-tuple and
//! time). Fields are documented in `docs/json.md#zeek-logs`.

use crate::analyses::describe::Field as V;
use crate::analyses::registry::Findings;
use crate::core::text::escape;
use crate::pipeline::event::{PacketEvent, Sink, Stats};
use crate::pipeline::summary::FlowSummary;
use std::io::{self, Write};

/// The core's columns before the analyses' among them, and after.
const HEAD: [(&str, &str); 11] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("community_id", "string"),
    ("duration", "interval"),
    ("packets", "count"),
    ("handshake", "string"),
    ("verdict", "string"),
];
const CLOSE: [(&str, &str); 2] = [("close", "string"), ("closed_by", "string")];

/// The log's columns: name and Zeek type.
pub fn fields() -> Vec<(&'static str, &'static str)> {
    let mut f = HEAD.to_vec();
    f.extend(Findings::zeek_fields(true));
    f.extend(CLOSE);
    f.extend(Findings::zeek_fields(false));
    f
}

pub struct ZeekSink<W: Write> {
    out: W,
    json: bool,
    header: bool,
    flush_each: bool,
}

impl<W: Write> ZeekSink<W> {
    pub fn new(out: W, json: bool, flush_each: bool) -> Self {
        ZeekSink {
            out,
            json,
            header: false,
            flush_each,
        }
    }

    fn open_stamp() -> String {
        chrono::Utc::now().format("%Y-%m-%d-%H-%M-%S").to_string()
    }

    fn write_header(&mut self) -> io::Result<()> {
        if self.header || self.json {
            return Ok(());
        }
        self.header = true;
        let fields = fields();
        let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
        let types: Vec<&str> = fields.iter().map(|f| f.1).collect();
        write!(
            self.out,
            "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tkacap\n#open\t{}\n#fields\t{}\n#types\t{}\n",
            Self::open_stamp(),
            names.join("\t"),
            types.join("\t")
        )
    }
}

fn values(f: &FlowSummary) -> Vec<V> {
    let mut v = vec![
        V::Secs(f.first_ts.sec as f64 + f64::from(f.first_ts.nsec) * 1e-9),
        V::Str(uid(f)),
        V::Str(f.client.ip().to_string()),
        V::Count(u64::from(f.client.port())),
        V::Str(f.server.ip().to_string()),
        V::Count(u64::from(f.server.port())),
        V::Str(crate::report::community_id::tcp(f.client, f.server, 0)),
        V::Secs(f.last_ts.since(f.first_ts).max(0.0)),
        V::Count(f.packets),
        V::Str(f.handshake.as_str().into()),
        V::Str(f.verdict.as_str().into()),
    ];
    Findings::zeek(f, true, &mut v);
    v.push(V::Str(f.close.as_str().into()));
    v.push(f.close.by().map_or(V::Unset, |s| V::Str(s.name().into())));
    Findings::zeek(f, false, &mut v);
    v
}

/// A Zeek-like connection uid: `K` and 17 base62 characters from the
/// Community ID and the start time (unique per connection in one log,
/// stable across runs on the same capture).
fn uid(f: &FlowSummary) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(crate::report::community_id::tcp(f.client, f.server, 0).as_bytes());
    h.update(&f.first_ts.sec.to_be_bytes());
    h.update(&f.first_ts.nsec.to_be_bytes());
    const ABC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = u128::from_be_bytes(h.digest().bytes()[..16].try_into().unwrap_or([0; 16]));
    let mut s = String::from("K");
    for _ in 0..17 {
        s.push(ABC[(n % 62) as usize] as char);
        n /= 62;
    }
    s
}

/// Zeek's TSV escaping: tab, newline, backslash and non-printable bytes
/// as `\xNN`.
fn tsv(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b == b'\\' || !(0x20..0x7f).contains(&b) {
            o.push_str(&format!("\\x{b:02x}"));
        } else {
            o.push(b as char);
        }
    }
    if o.is_empty() { "(empty)".into() } else { o }
}

impl<W: Write> Sink for ZeekSink<W> {
    fn packet(&mut self, _ev: &PacketEvent) -> io::Result<()> {
        Ok(())
    }

    fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        self.write_header()?;
        let vals = values(f);
        if self.json {
            let mut line = String::from("{");
            let mut first = true;
            for ((name, _), v) in fields().iter().zip(&vals) {
                let text = match v {
                    V::Unset => continue,
                    V::Str(s) => format!("\"{}\"", escape(s)),
                    V::Count(n) => n.to_string(),
                    V::Secs(x) => format!("{x:.6}"),
                };
                if !first {
                    line.push(',');
                }
                first = false;
                line.push_str(&format!("\"{name}\":{text}"));
            }
            line.push('}');
            writeln!(self.out, "{line}")?;
        } else {
            let cells: Vec<String> = vals
                .iter()
                .map(|v| match v {
                    V::Unset => "-".into(),
                    V::Str(s) => tsv(s),
                    V::Count(n) => n.to_string(),
                    V::Secs(x) => format!("{x:.6}"),
                })
                .collect();
            writeln!(self.out, "{}", cells.join("\t"))?;
        }
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self, _stats: &Stats) -> io::Result<()> {
        self.write_header()?;
        if !self.json {
            writeln!(self.out, "#close\t{}", Self::open_stamp())?;
        }
        self.out.flush()
    }
}
