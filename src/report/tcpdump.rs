//! The text `tcpdump -n` prints for a TCP segment (tcpdump 4.99,
//! print-tcp.c and util-print.c), so every kacap line starts with it.

use crate::core::decode::{self, FragView, LinkType, Segment, flags};
use crate::core::emit::Emit;
use crate::core::time::Timestamp;
use crate::pipeline::event::PacketEvent;
use chrono::{Local, TimeZone};

mod app;
mod bytes;
mod dump;
mod frag;
mod link;
mod mptcp;
mod options;
mod verbose;
use rustc_hash::FxHashMap;

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

/// tcpdump's `-x` family: the packet's bytes after its line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dump {
    #[default]
    None,
    /// `-x` (`-xx`: with the link-level header).
    Hex { link: bool },
    /// `-X` (`-XX`): hex and ASCII.
    HexAscii { link: bool },
    /// `-A` (`-AA`): ASCII.
    Ascii { link: bool },
}

impl Dump {
    /// From the number of `-x`, `-X` and `-A` flags, as tcpdump ranks
    /// them: `-X` wins over `-x`, which wins over `-A`.
    pub fn from_counts(x: u8, big_x: u8, a: u8) -> Dump {
        if big_x > 0 {
            Dump::HexAscii { link: big_x > 1 }
        } else if x > 0 {
            Dump::Hex { link: x > 1 }
        } else if a > 0 {
            Dump::Ascii { link: a > 1 }
        } else {
            Dump::None
        }
    }
}

/// How tcpdump was asked to print: the flags that shape a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub ts_format: TsFormat,
    /// `--nano`: nine fractional digits.
    pub nano: bool,
    /// `-S`: absolute sequence numbers.
    pub absolute: bool,
    /// `-q`: `tcp LENGTH` instead of flags, numbers and options.
    pub quiet: bool,
    /// `-v`, `-vv`: the IP header's fields and the TCP checksum (`-vv`:
    /// the sequence number of every segment).
    pub verbose: u8,
    /// `-e`: the link-level header.
    pub link_header: bool,
    /// `-x`, `-X`, `-A` and their doubles.
    pub dump: Dump,
}

/// Formats tcpdump lines; keeps what the formats need across packets.
#[derive(Clone, Debug, Default)]
pub struct Tcpdump {
    pub style: Style,
    first: Option<Timestamp>,
    prev: Option<Timestamp>,
    /// Cached local date and time of day for one second: `YYYY-MM-DD HH:MM:SS`.
    cached_sec: Option<i64>,
    cached: String,
    /// Cached interface name for the last SLL2 interface index.
    ifname: Option<(u32, String)>,
    /// The last line ended in ` [|tcp]` (or ` [|http]`…) because a printer
    /// read past the captured bytes: tcpdump's dump then starts at the
    /// link-level header.
    truncated: bool,
    /// The last line ended before `length N` (`[bad opt]`, `bad-len`, a
    /// cut option): no `-v` text lines follow.
    ended: bool,
    /// Relative-sequence bases per open flow, indexed by side (print-tcp.c's
    /// tcp_seq_hash): printing state, kept by the printer.
    bases: FxHashMap<u32, [u32; 2]>,
    /// The line being written is an IP fragment's (see [`Self::write_fragment_rest`]).
    frag: Option<FragView>,
    /// Recent segments' `a.p > b.q` (`core::emit::EndsText`).
    ends: crate::core::emit::EndsText,
}

impl Tcpdump {
    pub fn new(style: Style) -> Tcpdump {
        Tcpdump {
            style,
            ..Default::default()
        }
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

    fn frac(&self, out: &mut Vec<u8>, nsec: u32) {
        out.frac(nsec, self.style.nano);
    }

    /// The flow was reported: its relative-sequence bases are not needed any more.
    pub fn forget(&mut self, flow_id: u32) {
        self.bases.remove(&flow_id);
    }

    /// The sequence and ACK numbers tcpdump prints (print-tcp.c), and its
    /// base for the other side's numbers (SACK blocks): relative only for
    /// segments with ACK set; the first such segment of a connection, and
    /// any SYN-ACK, sets the bases (sender: its seq; other side: ack − 1)
    /// and prints absolute numbers.
    fn relative(&mut self, ev: &PacketEvent) -> (u32, u32, u32) {
        let seg = ev.seg;
        let (seq, ack) = (seg.seq.0, seg.ack.0);
        if ev.flow_id == 0 {
            // A first fragment of a connection not known yet: tcpdump's
            // first sight of it, absolute (the reassembled segment sets
            // the bases: the same numbers).
            return (seq, ack, 0);
        }
        let (me, other) = (ev.from.idx(), ev.from.other().idx());
        if !seg.has(flags::ACK) {
            let base = self.bases.get(&ev.flow_id).map_or(0, |b| b[other]);
            return (seq, ack, base);
        }
        match self.bases.get(&ev.flow_id) {
            Some(b) if !seg.has(flags::SYN) => (
                seq.wrapping_sub(b[me]),
                ack.wrapping_sub(b[other]),
                b[other],
            ),
            _ => {
                let mut b = [0u32; 2];
                b[me] = seq;
                b[other] = ack.wrapping_sub(1);
                self.bases.insert(ev.flow_id, b);
                (seq, ack, b[other])
            }
        }
    }

    fn delta(&self, out: &mut Vec<u8>, nanos: u64) {
        let secs = nanos / 1_000_000_000;
        out.s(" ")
            .zn(secs / 3600, 2)
            .s(":")
            .zn(secs / 60 % 60, 2)
            .s(":")
            .zn(secs % 60, 2);
        self.frac(out, (nanos % 1_000_000_000) as u32);
        out.s(" ");
    }

    /// Writes the timestamp (with its trailing space) as tcpdump would.
    pub fn write_ts(&mut self, out: &mut Vec<u8>, ts: Timestamp) {
        match self.style.ts_format {
            TsFormat::None => {}
            TsFormat::Time => {
                out.extend_from_slice(&self.local(ts.sec).as_bytes()[11..]);
                self.frac(out, ts.nsec);
                out.s(" ");
            }
            TsFormat::DateTime => {
                out.extend_from_slice(self.local(ts.sec).as_bytes());
                self.frac(out, ts.nsec);
                out.s(" ");
            }
            TsFormat::Epoch => {
                out.n(ts.sec);
                self.frac(out, ts.nsec);
                out.s(" ");
            }
            TsFormat::Delta => {
                let d = self.prev.map_or(0, |p| ts.nanos_since(p));
                self.delta(out, d);
            }
            TsFormat::SinceFirst => {
                let d = self.first.map_or(0, |f| ts.nanos_since(f));
                self.delta(out, d);
            }
        }
        self.prev = Some(ts);
    }

    /// A segment of a connection never printed: only the stamps' state
    /// (`-ttt`'s previous time, `-ttttt`'s first) moves.
    pub fn pass_time(&mut self, ts: Timestamp) {
        self.first.get_or_insert(ts);
        self.prev = Some(ts);
    }

    /// A segment not printed: the state later lines depend on (`-ttt`'s
    /// previous time, the relative-sequence bases) moves as if it were.
    pub fn skip(&mut self, ev: &PacketEvent) {
        self.first.get_or_insert(ev.ts);
        self.prev = Some(ev.ts);
        if ev.seg.has(flags::ACK)
            && (ev.seg.has(flags::SYN) || !self.bases.contains_key(&ev.flow_id))
        {
            self.relative(ev);
        }
    }

    /// Appends the whole tcpdump line for a TCP segment, without newline.
    pub fn write_line(&mut self, out: &mut Vec<u8>, ev: &PacketEvent) {
        if !invalid(ev) {
            self.write_stamp(out, ev.ts);
        }
        self.write_rest(out, ev);
    }

    /// Whether a line formatted by [`Self::write_rest`] takes a stamp
    /// before it (tcpdump prints none before an invalid record header).
    pub fn stamped(rest: &[u8]) -> bool {
        !rest.starts_with(INVALID_HEADER)
    }

    /// The line's stamp (and the space after it), as `-t`…`-ttttt` ask:
    /// the state of stamps (`-ttt`'s previous line, `-ttttt`'s first) is
    /// the capture's, not a connection's (`--threads`: the merge writes it).
    pub fn write_stamp(&mut self, out: &mut Vec<u8>, ts: Timestamp) {
        self.first.get_or_insert(ts);
        self.write_ts(out, ts);
    }

    /// The line after its stamp: what depends only on the segment and its
    /// connection (`--threads`: a shard writes it).
    pub fn write_rest(&mut self, out: &mut Vec<u8>, ev: &PacketEvent) {
        if ev.reassembled > 0 {
            // The line is the last fragment's; the segment's numbers set
            // the bases its first fragment set in tcpdump.
            if ev.seg.has(flags::ACK) && !self.bases.contains_key(&ev.flow_id) {
                self.relative(ev);
            }
            if let Some((seg, view, _)) = decode::fragment(ev.seg.link.kind, ev.frame) {
                let own = PacketEvent {
                    seg: &seg,
                    reassembled: 0,
                    ..*ev
                };
                self.write_fragment_rest(out, &own, view);
                return;
            }
        }
        self.truncated = false;
        self.ended = false;
        if !self.write_head(out, ev) {
            self.ended = true;
            return;
        }
        let seg = ev.seg;
        let ip = match (self.style.verbose, seg.src.is_ipv4()) {
            (0, false) => &[][..],
            _ => decode::network(seg.link.kind, ev.frame).map_or(&[][..], |(ip, _)| ip),
        };
        if !ip_length_notes(out, ip, ev) {
            self.ended = true;
            return;
        }
        if self.style.verbose > 0 {
            verbose::write_ip(out, ip, seg);
        }
        self.write_ends(out, seg, (ev.flow_id, ev.from.idx()));
        if self.style.quiet {
            out.s(": tcp ").n(seg.len);
            return;
        }
        out.s(": Flags [");
        write_flags(out, seg.flags);
        out.s("]");
        if self.style.verbose > 0 && self.frag.is_none() {
            verbose::write_tcp_checksum(out, ip, seg);
        }
        let (seq, ack, other_base) = self.relative(ev);
        let (seq, ack) = if self.style.absolute {
            (seg.seq.0, seg.ack.0)
        } else {
            (seq, ack)
        };
        if self.style.verbose > 1 || seg.len > 0 || seg.has(flags::SYN | flags::FIN | flags::RST) {
            out.s(", seq ").n(seq);
            if seg.len > 0 {
                out.s(":").n(seq.wrapping_add(seg.len));
            }
        }
        if seg.has(flags::ACK) {
            out.s(", ack ").n(ack);
        }
        out.s(", win ").n(seg.win);
        if seg.has(flags::URG) {
            out.s(", urg ").n(seg.urp);
        }
        let sack_base = if self.style.absolute { 0 } else { other_base };
        if seg.header_len > 20 {
            out.s(", options [");
            match options::write(out, seg, sack_base) {
                options::Ended::Whole => {}
                // tcpdump stops the line there; read past the captured
                // bytes, it dumps from the link-level header.
                ended => {
                    self.ended = true;
                    self.truncated = ended == options::Ended::Read;
                    return;
                }
            }
        }
        out.s(", length ").n(seg.len);
        if app::write(out, seg, self.style.verbose > 0) {
            self.truncated = true;
        }
    }

    /// The line's start: `[Invalid header: …]` alone (then false), or the
    /// interface and direction (`-i any`), the link-level header (`-e`) or
    /// `IP ` / `IP6 `.
    fn write_head(&mut self, out: &mut Vec<u8>, ev: &PacketEvent) -> bool {
        if invalid_header(out, ev) {
            return false;
        }
        let seg = ev.seg;
        if seg.link.kind == LinkType::LinuxSll2 {
            self.write_link_prefix(out, seg);
        }
        if self.style.link_header {
            link::write_header(out, ev, self.style.quiet);
        } else {
            out.s(if seg.src.is_ipv4() { "IP " } else { "IP6 " });
        }
        true
    }

    /// Linux cooked v2 (`-i any`) lines start with the interface and direction.
    fn write_link_prefix(&mut self, out: &mut Vec<u8>, seg: &Segment) {
        let index = seg.link.ifindex;
        if self.ifname.as_ref().is_none_or(|(i, _)| *i != index) {
            let mut name = [0u8; libc::IF_NAMESIZE];
            // SAFETY: `name` has IF_NAMESIZE bytes, as if_indextoname requires.
            let found = unsafe { !libc::if_indextoname(index, name.as_mut_ptr().cast()).is_null() };
            let shown = if found {
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                String::from_utf8_lossy(&name[..end]).into_owned()
            } else {
                format!("#{index}")
            };
            self.ifname = Some((index, shown));
        }
        let name = self.ifname.as_ref().map_or("", |(_, n)| n.as_str());
        let dir = seg.link.pkttype.map_or("?", link::pkttype_name);
        out.s(name);
        for _ in name.len()..5 {
            out.push(b' ');
        }
        out.s(" ").s(dir);
        for _ in dir.len()..3 {
            out.push(b' ');
        }
        out.s(" ");
    }

    /// After the line and its annotation: `-v`'s text lines of a text
    /// protocol, then the packet's bytes, as `-x`, `-X` or `-A` ask (each
    /// line starts with a newline; the caller ends the last).
    pub fn write_dump(&self, out: &mut Vec<u8>, ev: &PacketEvent) {
        if invalid(ev) {
            return;
        }
        let cut = self.style.verbose > 0
            && !self.truncated
            && !self.ended
            && !self.style.quiet
            && app::text_lines(out, ev.seg);
        let link_len = match decode::network(ev.seg.link.kind, ev.frame) {
            Ok((ip, _)) if !self.truncated && !cut => ev.frame.len() - ip.len(),
            _ => 0,
        };
        let bytes = |with_link: bool| {
            if with_link {
                ev.frame
            } else {
                &ev.frame[link_len..]
            }
        };
        match self.style.dump {
            Dump::None => {}
            Dump::Hex { link } => dump::hex(out, bytes(link), false),
            Dump::HexAscii { link } => dump::hex(out, bytes(link), true),
            Dump::Ascii { link } => dump::ascii(out, bytes(link)),
        }
    }
}

const INVALID_HEADER: &[u8] = b"[Invalid header: ";

/// A record whose header contradicts itself (libpcap passes it on):
/// tcpdump prints only `[Invalid header: …]`, with no stamp, and nothing
/// of the packet (print.c, `pretty_print_packet`).
fn invalid(ev: &PacketEvent) -> bool {
    ev.wire_len == 0 || (ev.wire_len as usize) < ev.frame.len()
}

/// Writes tcpdump's line for an [`invalid`] record and says whether it did.
fn invalid_header(out: &mut Vec<u8>, ev: &PacketEvent) -> bool {
    if !invalid(ev) {
        return false;
    }
    out.extend_from_slice(INVALID_HEADER);
    if ev.wire_len == 0 {
        out.s("len==0]");
    } else {
        out.s("len(")
            .n(ev.wire_len)
            .s(") < caplen(")
            .n(ev.frame.len())
            .s(")]");
    }
    true
}

/// tcpdump's flag letters, in its order: F S R P . U E W; `none` when empty.
pub fn write_flags(out: &mut Vec<u8>, f: u8) {
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
        out.s("none");
        return;
    }
    for (bit, letter) in LETTERS {
        if f & bit != 0 {
            out.push(letter);
        }
    }
}

/// print-ip.c's notes on an IPv4 header's total length, before anything
/// else of the IP layer: `truncated-ip - N bytes missing! ` when it claims
/// more than the frame carried on the wire, and `bad-len N` (which ends the
/// line: tcpdump prints nothing more) when it is shorter than the header —
/// the total length 0 of a TSO frame captured on its sender, which kacap
/// itself reads with the captured length. False when the line ends.
fn ip_length_notes(out: &mut Vec<u8>, ip: &[u8], ev: &PacketEvent) -> bool {
    let Some(h) = ip.get(..20).filter(|h| h[0] >> 4 == 4) else {
        return true;
    };
    let total = u32::from(u16::from_be_bytes([h[2], h[3]]));
    let link_len = (ev.frame.len() - ip.len()) as u32;
    let on_wire = ev.wire_len.saturating_sub(link_len);
    if on_wire < total {
        out.s("truncated-ip - ")
            .n(total - on_wire)
            .s(" bytes missing! ");
    }
    if total < u32::from(h[0] & 0x0f) * 4 {
        out.s("bad-len ").n(total);
        return false;
    }
    true
}
