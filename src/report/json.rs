//! `--json`: JSON Lines on stdout (the contract is in README.md).

use super::emit::Emit;
use super::{FlowSummary, PacketEvent, Sink};
use crate::analyzer::Stats;
use crate::flows::Flow;
use crate::keepalive::Note;
use crate::time::Timestamp;
use std::io::{self, Write};

pub struct JsonSink<W: Write> {
    out: W,
    /// Packet records too (false with `--summary`).
    packets: bool,
    nano: bool,
    flush_each: bool,
    /// The record being built (reused: no allocation per packet).
    line: Vec<u8>,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, packets: bool, nano: bool, flush_each: bool) -> Self {
        JsonSink {
            out,
            packets,
            nano,
            flush_each,
            line: Vec::with_capacity(512),
        }
    }

    fn ts(&mut self, ts: Timestamp) -> io::Result<()> {
        if self.nano {
            write!(self.out, "{}.{:09}", ts.sec, ts.nsec)
        } else {
            write!(self.out, "{}.{:06}", ts.sec, ts.nsec / 1000)
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
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

impl<W: Write> Sink for JsonSink<W> {
    fn packet(&mut self, ev: &PacketEvent, _flow: &Flow) -> io::Result<()> {
        if !self.packets {
            return Ok(());
        }
        let seg = ev.seg;
        let l = &mut self.line;
        l.clear();
        l.s("{\"type\":\"packet\",\"n\":")
            .n(ev.n)
            .s(",\"ts\":")
            .n(ev.ts.sec);
        if self.nano {
            l.s(".").zn(u64::from(ev.ts.nsec), 9);
        } else {
            l.s(".").zn(u64::from(ev.ts.nsec / 1000), 6);
        }
        l.s(",\"flow\":")
            .n(ev.flow_id)
            .s(",\"from\":\"")
            .s(ev.from.name())
            .s("\",\"src\":\"");
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
        match ev.note {
            Note::Probe { number, idle, .. } => {
                l.s(",\"probe\":").n(number).s(",\"idle\":");
                let _ = write!(l, "{}", Num(Some(idle)));
            }
            Note::ProbeAnswered { reply_to, .. } | Note::PeerReset { reply_to, .. } => {
                l.s(",\"reply_to\":").n(reply_to);
            }
            Note::GaveUp { .. } | Note::None => {}
        }
        if ev.injected {
            l.s(",\"injected\":true");
        }
        l.s("}\n");
        self.out.write_all(&self.line)?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    fn flow(&mut self, flow: &Flow) -> io::Result<()> {
        let f = FlowSummary::of(flow);
        write!(
            self.out,
            "{{\"type\":\"flow\",\"flow\":{},\"client\":\"{}\",\"server\":\"{}\",\"first_ts\":",
            f.id, f.client, f.server
        )?;
        self.ts(f.first_ts)?;
        self.out.write_all(b",\"last_ts\":")?;
        self.ts(f.last_ts)?;
        write!(
            self.out,
            ",\"packets\":{},\"handshake\":\"{}\",\"prober\":{},\"probes\":{},\"probes_answered\":{},\"probes_unanswered\":{},\"probes_rst\":{},\"keepalive\":{{\"idle\":{},\"interval\":{},\"count\":{}}},\"close\":\"{}\",\"closed_by\":{},\"verdict\":\"{}\"",
            f.packets,
            f.handshake,
            Str(f.prober),
            f.probes,
            f.answered,
            f.unanswered,
            f.rst,
            Num(f.idle),
            Num(f.interval),
            f.count
                .map_or_else(|| "null".to_string(), |c| c.to_string()),
            f.close,
            Str(f.closed_by),
            f.verdict.as_str()
        )?;
        let (killed_after, cause) = match f.killed {
            Some((k, c)) => (Some(k), Some(c.as_str())),
            None => (None, None),
        };
        write!(
            self.out,
            ",\"idle_timeout\":{{\"survived\":{},\"killed_after\":{},\"cause\":{}}}",
            Num(f.survived),
            Num(killed_after),
            Str(cause)
        )?;
        if let Some(h) = f.http {
            write!(
                self.out,
                ",\"http\":{{\"requests\":{},\"responses\":{},\"keep_alive\":{},\"version\":{}}}",
                h.requests,
                h.responses,
                h.keep_alive,
                Str(h.version)
            )?;
        }
        self.out.write_all(b"}\n")?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        writeln!(
            self.out,
            "{{\"type\":\"summary\",\"frames\":{},\"tcp_segments\":{},\"skipped\":{},\"flows\":{}}}",
            stats.frames, stats.tcp_segments, stats.skipped, stats.flows
        )?;
        self.out.flush()
    }
}
