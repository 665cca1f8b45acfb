//! `--json`: JSON Lines on stdout (the contract is in README.md).

use super::emit::Emit;
use crate::analyses::keepalive::Note;
use crate::core::time::Timestamp;
use crate::pipeline::event::{PacketEvent, Revisions, Sink, Stats};
use crate::pipeline::summary::FlowSummary;
use std::fmt::Write as _;
use std::io::{self, Write};

/// What the JSON output includes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonOptions {
    /// Packet records too (false with `--summary`).
    pub packets: bool,
    /// Nanosecond timestamps (`--nano`).
    pub nano: bool,
    /// Flush after every record (live captures).
    pub flush_each: bool,
    /// `-v`: the Community ID on every packet record.
    pub community_id: bool,
}

pub struct JsonSink<W: Write> {
    out: W,
    opts: JsonOptions,
    /// The record being built (reused: no allocation per packet).
    line: Vec<u8>,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, opts: JsonOptions) -> Self {
        JsonSink {
            out,
            opts,
            line: Vec::with_capacity(512),
        }
    }

    fn ts(&mut self, ts: Timestamp) -> io::Result<()> {
        self.line.clear();
        self.line.n(ts.sec).frac(ts.nsec, self.opts.nano);
        self.out.write_all(&self.line)
    }

    fn end_record(&mut self) -> io::Result<()> {
        if self.opts.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
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

/// `ip:port`, IPv6 in brackets, as SocketAddr prints it.
fn endpoint(l: &mut Vec<u8>, ip: std::net::IpAddr, port: u16) {
    if ip.is_ipv6() {
        l.s("[").ip(ip).s("]");
    } else {
        l.ip(ip);
    }
    l.s(":").n(port);
}

/// A JSON number for seconds, or null.
struct Num(Option<f64>);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) if v.is_finite() => write!(f, "{}", (v * 1e6).round() / 1e6),
            _ => f.write_str("null"),
        }
    }
}

/// A JSON string (endpoints and names need no escaping but quotes).
struct Str<'a>(Option<&'a str>);

impl std::fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => write!(f, "\"{s}\""),
            None => f.write_str("null"),
        }
    }
}

/// A joined socket in a flow record (`--sockets`).
fn socket_json(s: &crate::host::sockets::Socket) -> String {
    format!(
        "{{\"local\":\"{}\",{}}}",
        s.diag.local,
        socket_config_members(s)
    )
}

/// A packet record up to its connection's number: `{"type":"packet",…,"flow":`.
pub fn packet_head(l: &mut Vec<u8>, ev: &PacketEvent, opts: JsonOptions) {
    l.s("{\"type\":\"packet\",\"n\":")
        .n(ev.n)
        .s(",\"ts\":")
        .n(ev.ts.sec)
        .frac(ev.ts.nsec, opts.nano);
    l.s(",\"flow\":");
}

/// A packet record after its connection's number, to the newline.
pub fn packet_tail(l: &mut Vec<u8>, ev: &PacketEvent, opts: JsonOptions) {
    let seg = ev.seg;
    l.s(",\"from\":\"").s(ev.from.name()).s("\",\"src\":\"");
    endpoint(l, seg.src, seg.sport);
    l.s("\",\"dst\":\"");
    endpoint(l, seg.dst, seg.dport);
    l.s("\",\"flags\":\"");
    super::tcpdump::write_flags(l, seg.flags);
    l.s("\",\"seq\":").n(ev.rel_seq).s(",\"ack\":");
    match ev.rel_ack {
        Some(a) => l.n(a),
        None => l.s("null"),
    };
    l.s(",\"win\":")
        .n(seg.win)
        .s(",\"len\":")
        .n(seg.len)
        .s(",\"kind\":\"")
        .s(ev.kind.as_str())
        .s("\"");
    match ev.notes.keepalive {
        Note::Probe { number, idle, .. } => {
            l.s(",\"probe\":").n(number).s(",\"idle\":");
            let _ = write!(l, "{}", Num(idle));
        }
        Note::ProbeAnswered { reply_to, .. } | Note::PeerReset { reply_to, .. } => {
            l.s(",\"reply_to\":").n(reply_to);
        }
        Note::GaveUp { .. } | Note::None => {}
    }
    if ev.injected.is_some() {
        l.s(",\"injected\":true");
    }
    if let Some(label) = ev.notes.app.label {
        l.s(",\"app\":\"").s(label.as_str()).s("\"");
    }
    if opts.community_id {
        let id = crate::report::community_id::tcp(
            std::net::SocketAddr::new(seg.src, seg.sport),
            std::net::SocketAddr::new(seg.dst, seg.dport),
            0,
        );
        l.s(",\"community_id\":\"").s(&id).s("\"");
    }
    l.s("}\n");
}

impl<W: Write> Sink for JsonSink<W> {
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        if !self.opts.packets {
            return Ok(());
        }
        let l = &mut self.line;
        l.clear();
        packet_head(l, ev, self.opts);
        l.n(ev.flow_id);
        packet_tail(l, ev, self.opts);
        self.out.write_all(&self.line)?;
        self.end_record()
    }

    /// A packet record formatted elsewhere (`shard`): its head, the
    /// connection's number, its tail.
    fn packet_parts(
        &mut self,
        _ts: crate::core::time::Timestamp,
        head: &[u8],
        flow: u32,
        tail: &[u8],
    ) -> io::Result<()> {
        self.out.write_all(head)?;
        self.line.clear();
        self.line.n(flow);
        self.out.write_all(&self.line)?;
        self.out.write_all(tail)?;
        self.end_record()
    }

    /// `{"type":"revise","n":…,"kind":…}` per revised packet, with the
    /// fields that change (a probe's number and idle).
    fn revise(&mut self, r: &Revisions) -> io::Result<()> {
        if !self.opts.packets {
            return Ok(());
        }
        for item in r.items {
            let l = &mut self.line;
            l.clear();
            l.s("{\"type\":\"revise\",\"n\":")
                .n(item.n)
                .s(",\"kind\":\"")
                .s(item.kind.as_str())
                .s("\"");
            if let Note::Probe { number, idle, .. } = item.notes.keepalive {
                l.s(",\"probe\":").n(number).s(",\"idle\":");
                let _ = write!(l, "{}", Num(idle));
            }
            l.s("}\n");
            self.out.write_all(&self.line)?;
        }
        self.end_record()
    }

    fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        let k = &f.findings.keepalive;
        write!(
            self.out,
            "{{\"type\":\"flow\",\"flow\":{},\"client\":\"{}\",\"server\":\"{}\",\"community_id\":\"{}\",\"first_ts\":",
            f.id,
            f.client,
            f.server,
            crate::report::community_id::tcp(f.client, f.server, 0)
        )?;
        self.ts(f.first_ts)?;
        self.out.write_all(b",\"last_ts\":")?;
        self.ts(f.last_ts)?;
        write!(
            self.out,
            ",\"packets\":{},\"handshake\":\"{}\",\"prober\":{},\"probes\":{},\"probes_answered\":{},\"probes_unanswered\":{},\"probes_rst\":{},\"keepalive\":{{\"idle\":{},\"interval\":{},\"count\":{}}},\"close\":\"{}\",\"closed_by\":{},\"verdict\":\"{}\"",
            f.packets,
            f.handshake.as_str(),
            Str(k.prober.map(|p| p.as_str())),
            k.probes,
            k.answered,
            k.unanswered,
            k.rst,
            Num(k.idle),
            Num(k.interval),
            k.count
                .map_or_else(|| "null".to_string(), |c| c.to_string()),
            f.close.as_str(),
            Str(f.close.by().map(|s| s.name())),
            f.verdict.as_str()
        )?;
        let idle = &f.findings.idle;
        let (killed_after, cause) = match idle.killed {
            Some((k, c)) => (Some(k), Some(c.as_str())),
            None => (None, None),
        };
        write!(
            self.out,
            ",\"idle_timeout\":{{\"survived\":{},\"killed_after\":{},\"cause\":{}}}",
            Num(idle.survived),
            Num(killed_after),
            Str(cause)
        )?;
        if let Some(r) = f.findings.retransmit {
            write!(
                self.out,
                ",\"retransmit\":{{\"count\":{},\"gave_up_after\":{}}}",
                r.count,
                Num(r.gave_up_after)
            )?;
        }
        if let Some(h) = f.findings.http {
            write!(
                self.out,
                ",\"http\":{{\"requests\":{},\"responses\":{},\"keep_alive\":{},\"version\":{},\"server_idle_close\":{},\"client_idle_close\":{},\"advertised_timeout\":{},\"stale_request\":{}}}",
                h.requests,
                h.responses,
                h.keep_alive,
                Str(h.version),
                Num(h.server_idle_close),
                Num(h.client_idle_close),
                Num(h.advertised_timeout),
                h.stale_request
            )?;
        }
        if let Some(a) = f.findings.app {
            write!(
                self.out,
                ",\"app_keepalive\":{{\"protocol\":\"{}\",\"pings\":{},\"pongs\":{},\"interval\":{},\"unanswered\":{},\"pinger\":{},\"rtt\":{}",
                a.protocol.as_str(),
                a.pings,
                a.pongs,
                Num(a.interval),
                a.unanswered,
                Str(if a.both {
                    Some("both")
                } else {
                    a.pinger.map(|s| s.name())
                }),
                Num(a.rtt),
            )?;
            if let Some((req, ans)) = a.exchange {
                write!(self.out, ",\"exchange\":[{req},{ans}]")?;
            }
            if a.protocol == crate::analyses::app::Protocol::WebSocket {
                write!(
                    self.out,
                    ",\"close_code\":{},\"abrupt\":{}",
                    a.close_code
                        .map_or_else(|| "null".to_string(), |c| c.to_string()),
                    a.abrupt
                )?;
            }
            self.out.write_all(b"}")?;
            if let Some(g) = a.goaway {
                write!(
                    self.out,
                    ",\"goaway\":{{\"error\":\"{}\",\"debug\":\"{}\",\"last_stream\":{},\"from\":\"{}\"}}",
                    crate::analyses::app::h2::error_name(g.error),
                    escape(&g.debug.to_string()),
                    g.last_stream,
                    g.from.name()
                )?;
            }
        }
        if let Some(j) = f.sockets.as_deref() {
            // The client end's socket when it is on this host, else the
            // server end's; over loopback both, the server's as the peer.
            let second = j.client.as_ref().and(j.server.as_ref());
            if let Some(first) = j.client.as_ref().or(j.server.as_ref()) {
                write!(self.out, ",\"socket\":{}", socket_json(first))?;
            }
            if let Some(s) = second {
                write!(self.out, ",\"peer_socket\":{}", socket_json(s))?;
            }
        }
        self.out.write_all(b"}\n")?;
        self.end_record()
    }

    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        writeln!(
            self.out,
            "{{\"type\":\"summary\",\"frames\":{},\"tcp_segments\":{},\"skipped\":{},\"flows\":{},\"complete\":{},\"time_outliers\":{}}}",
            stats.frames,
            stats.tcp_segments,
            stats.skipped,
            stats.flows,
            !stats.interrupted,
            stats.time_outliers
        )?;
        self.out.flush()
    }

    /// On stderr, so that the JSON Lines stay as they are.
    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        self.out.flush()?;
        let mut err = io::stderr().lock();
        writeln!(
            err,
            "kacap: so far {}, {}, {} ({} open)",
            super::plural(stats.frames, "frame"),
            super::plural(stats.tcp_segments, "TCP segment"),
            super::plural(stats.flows, "flow"),
            open.len()
        )
    }
}

/// A socket's owner and keepalive configuration as JSON members (`"pid":…`
/// to `"exact":…`): the `kacap sockets` record and a flow's `socket`
/// (`--sockets`) share them.
pub fn socket_config_members(s: &crate::host::sockets::Socket) -> String {
    format!(
        "\"pid\":{},\"comm\":{},\"keepalive\":{},\"idle\":{},\"interval\":{},\"count\":{},\"user_timeout\":{},\"source\":{{\"idle\":\"{}\",\"interval\":\"{}\",\"count\":\"{}\"}},\"exact\":{}",
        s.owner
            .as_ref()
            .map_or("null".into(), |o| o.pid.to_string()),
        s.owner
            .as_ref()
            .map_or("null".into(), |o| format!("\"{}\"", escape(&o.comm))),
        s.keepalive.map_or("null".into(), |k| k.to_string()),
        s.idle.value,
        s.interval.value,
        s.count.value,
        match s.user_timeout {
            Some(v) if v.is_finite() => format!("{}", (v * 1e3).round() / 1e3),
            _ => "null".into(),
        },
        s.idle.source.as_str(),
        s.interval.source.as_str(),
        s.count.source.as_str(),
        s.exact,
    )
}

#[cfg(test)]
mod tests {
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
