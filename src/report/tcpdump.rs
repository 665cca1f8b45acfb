//! The text `tcpdump -n` prints for a TCP segment (tcpdump 4.99,
//! print-tcp.c and util-print.c), so every kacap line starts with it.

use super::PacketEvent;
use crate::decode::{Segment, flags};
use crate::time::Timestamp;
use chrono::{Local, TimeZone};
use std::io::{self, Write};
use std::net::IpAddr;

/// tcpdump's `-t` family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TsFormat {
    /// Local `HH:MM:SS.ffffff` (the default).
    #[default]
    Time,
    /// `-t`: no timestamp.
    None,
    /// `-tt`: seconds since the epoch.
    Epoch,
    /// `-ttt`: delta from the previous frame, ` HH:MM:SS.ffffff`.
    Delta,
    /// `-tttt`: local date and time.
    DateTime,
    /// `-ttttt`: delta from the first frame.
    SinceFirst,
}

impl TsFormat {
    /// From the number of `-t` flags given.
    pub fn from_count(n: u8) -> TsFormat {
        match n {
            0 => TsFormat::Time,
            1 => TsFormat::None,
            2 => TsFormat::Epoch,
            3 => TsFormat::Delta,
            4 => TsFormat::DateTime,
            _ => TsFormat::SinceFirst,
        }
    }
}

/// Formats tcpdump lines; keeps what the formats need across packets.
#[derive(Debug, Default)]
pub struct Tcpdump {
    pub ts_format: TsFormat,
    /// `--nano`: nine fractional digits.
    pub nano: bool,
    /// `-S`: absolute sequence numbers.
    pub absolute: bool,
    first: Option<Timestamp>,
    prev: Option<Timestamp>,
    /// Cached local date and time of day for one second: `YYYY-MM-DD HH:MM:SS`.
    cached_sec: Option<i64>,
    cached: String,
}

impl Tcpdump {
    pub fn new(ts_format: TsFormat, nano: bool, absolute: bool) -> Tcpdump {
        Tcpdump {
            ts_format,
            nano,
            absolute,
            ..Default::default()
        }
    }

    /// Tells the formatter a frame was read (for `-ttt` / `-ttttt` deltas,
    /// which count every frame, TCP or not).
    pub fn frame_seen(&mut self, ts: Timestamp) {
        self.first.get_or_insert(ts);
    }

    fn local(&mut self, sec: i64) -> &str {
        if self.cached_sec != Some(sec) {
            self.cached_sec = Some(sec);
            self.cached = match Local.timestamp_opt(sec, 0).earliest() {
                Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
                None => "????-??-?? ??:??:??".to_string(),
            };
        }
        &self.cached
    }

    fn frac(&self, out: &mut impl Write, nsec: u32) -> io::Result<()> {
        if self.nano {
            write!(out, ".{nsec:09}")
        } else {
            write!(out, ".{:06}", nsec / 1000)
        }
    }

    fn delta(&self, out: &mut impl Write, nanos: u64) -> io::Result<()> {
        let secs = nanos / 1_000_000_000;
        write!(
            out,
            " {:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        self.frac(out, (nanos % 1_000_000_000) as u32)?;
        out.write_all(b" ")
    }

    /// Writes the timestamp (with its trailing space) as tcpdump would.
    pub fn write_ts(&mut self, out: &mut impl Write, ts: Timestamp) -> io::Result<()> {
        match self.ts_format {
            TsFormat::None => {}
            TsFormat::Time => {
                let hms = &self.local(ts.sec)[11..];
                out.write_all(hms.as_bytes())?;
                self.frac(out, ts.nsec)?;
                out.write_all(b" ")?;
            }
            TsFormat::DateTime => {
                let date = self.local(ts.sec);
                out.write_all(date.as_bytes())?;
                self.frac(out, ts.nsec)?;
                out.write_all(b" ")?;
            }
            TsFormat::Epoch => {
                write!(out, "{}", ts.sec)?;
                self.frac(out, ts.nsec)?;
                out.write_all(b" ")?;
            }
            TsFormat::Delta => {
                let d = self.prev.map_or(0, |p| ts.nanos_since(p));
                self.delta(out, d)?;
            }
            TsFormat::SinceFirst => {
                let d = self.first.map_or(0, |f| ts.nanos_since(f));
                self.delta(out, d)?;
            }
        }
        self.prev = Some(ts);
        Ok(())
    }

    /// Writes the whole tcpdump line for a TCP segment, without newline.
    pub fn write_line(&mut self, out: &mut impl Write, ev: &PacketEvent) -> io::Result<()> {
        self.write_ts(out, ev.ts)?;
        let seg = ev.seg;
        write_link_prefix(out, seg)?;
        let v = if seg.src.is_ipv4() { "IP" } else { "IP6" };
        write!(
            out,
            "{v} {}.{} > {}.{}: Flags [",
            Addr(seg.src),
            seg.sport,
            Addr(seg.dst),
            seg.dport
        )?;
        write_flags(out, seg.flags)?;
        out.write_all(b"]")?;
        let (seq, ack) = if self.absolute {
            (seg.seq.0, seg.ack.0)
        } else {
            (ev.td_seq, ev.td_ack)
        };
        if seg.len > 0 || seg.has(flags::SYN | flags::FIN | flags::RST) {
            write!(out, ", seq {seq}")?;
            if seg.len > 0 {
                write!(out, ":{}", seq.wrapping_add(seg.len))?;
            }
        }
        if seg.has(flags::ACK) {
            write!(out, ", ack {ack}")?;
        }
        write!(out, ", win {}", seg.win)?;
        if seg.has(flags::URG) {
            write!(out, ", urg {}", seg.urp)?;
        }
        let sack_base = if self.absolute { 0 } else { ev.td_other_base };
        if seg.header_len > 20 {
            out.write_all(b", options [")?;
            if !write_options(out, seg, sack_base)? {
                // Cut off by the snaplen: tcpdump stops the line here.
                return out.write_all(b" [|tcp]");
            }
            out.write_all(b"]")?;
        }
        write!(out, ", length {}", seg.len)
    }
}

struct Addr(IpAddr);

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // std prints IPv6 like inet_ntop (RFC 5952), as tcpdump does.
        write!(f, "{}", self.0)
    }
}

/// Linux cooked v2 (`-i any`) lines start with the interface and direction.
fn write_link_prefix(out: &mut impl Write, seg: &Segment) -> io::Result<()> {
    if seg.link.ifindex == 0 {
        return Ok(());
    }
    let mut name = [0u8; libc::IF_NAMESIZE];
    // SAFETY: `name` has IF_NAMESIZE bytes, as if_indextoname requires.
    let found =
        unsafe { !libc::if_indextoname(seg.link.ifindex, name.as_mut_ptr().cast()).is_null() };
    let ifname = if found {
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        String::from_utf8_lossy(&name[..end]).into_owned()
    } else {
        format!("#{}", seg.link.ifindex)
    };
    let dir = match seg.link.pkttype {
        Some(0) => "In",
        Some(1) => "B",
        Some(2) => "M",
        Some(3) => "P",
        Some(4) => "Out",
        _ => "?",
    };
    write!(out, "{ifname:<5} {dir:<3} ")
}

/// tcpdump's flag letters, in its order: F S R P . U E W; `none` when empty.
pub fn write_flags(out: &mut impl Write, f: u8) -> io::Result<()> {
    const LETTERS: [(u8, u8); 8] = [
        (flags::FIN, b'F'),
        (flags::SYN, b'S'),
        (flags::RST, b'R'),
        (flags::PSH, b'P'),
        (flags::ACK, b'.'),
        (flags::URG, b'U'),
        (flags::ECE, b'E'),
        (flags::CWR, b'W'),
    ];
    if f == 0 {
        return out.write_all(b"none");
    }
    for (bit, letter) in LETTERS {
        if f & bit != 0 {
            out.write_all(&[letter])?;
        }
    }
    Ok(())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Writes the TCP options as tcpdump does. Returns false when they were cut
/// off by the snaplen. Unknown option kinds are printed and skipped by their
/// length byte, so one unknown option does not hide the rest.
fn write_options(out: &mut impl Write, seg: &Segment, sack_base: u32) -> io::Result<bool> {
    let opts = seg.options;
    let mut hlen = usize::from(seg.header_len) - 20;
    let mut at = 0usize;
    let mut first = true;
    while hlen > 0 {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        let Some(&kind) = opts.get(at) else {
            return Ok(false);
        };
        at += 1;
        let len = if kind <= 1 {
            1
        } else {
            let Some(&l) = opts.get(at) else {
                return Ok(false);
            };
            at += 1;
            let l = usize::from(l);
            if l < 2 || l > hlen {
                out.write_all(b"bad opt")?;
                return Ok(true);
            }
            hlen -= 1;
            l
        };
        hlen -= 1;
        let datalen = len.saturating_sub(2);
        let Some(data) = opts.get(at..at + datalen) else {
            return Ok(false);
        };
        match kind {
            0 => out.write_all(b"eol")?,
            1 => out.write_all(b"nop")?,
            2 if datalen == 2 => write!(out, "mss {}", u16::from_be_bytes([data[0], data[1]]))?,
            3 if datalen == 1 => write!(out, "wscale {}", data[0])?,
            4 => out.write_all(b"sackOK")?,
            5 => {
                out.write_all(b"sack")?;
                if datalen % 8 != 0 {
                    out.write_all(b" invalid sack")?;
                } else {
                    write!(out, " {} ", datalen / 8)?;
                    for block in data.chunks_exact(8) {
                        let s = be32(&block[..4]).wrapping_sub(sack_base);
                        let e = be32(&block[4..]).wrapping_sub(sack_base);
                        write!(out, "{{{s}:{e}}}")?;
                    }
                }
            }
            8 if datalen == 8 => write!(out, "TS val {} ecr {}", be32(data), be32(&data[4..]))?,
            _ => {
                let name = match kind {
                    2 => "mss",
                    3 => "wscale",
                    8 => "TS",
                    19 => "md5",
                    28 => "uto",
                    29 => "tcp-ao",
                    30 => "mptcp",
                    34 => "tfo",
                    253 | 254 => "exp",
                    _ => "",
                };
                if name.is_empty() {
                    write!(out, "unknown-{kind}")?;
                } else {
                    out.write_all(name.as_bytes())?;
                }
                if datalen > 0 {
                    out.write_all(b" 0x")?;
                    for b in data {
                        write!(out, "{b:02x}")?;
                    }
                }
            }
        }
        at += datalen;
        hlen -= datalen;
        if kind == 0 {
            break;
        }
    }
    Ok(true)
}
