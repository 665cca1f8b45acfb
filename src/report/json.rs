//! `--json`: JSON Lines on stdout (the contract is in README.md).

use crate::analyses::registry::{Findings, Notes};
use crate::core::emit::{Emit, EndsText, SecText};
use crate::core::text::{Str, escape};
use crate::pipeline::event::{PacketEvent, Revision, Revisions, ShardFormat, Sharded, Sink, Stats};
use crate::pipeline::summary::FlowSummary;
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
    /// What the text of the next record may copy.
    kept: Kept,
}

/// What a JSON printer keeps from record to record, as text: recent
/// segments' endpoints, the last second.
#[derive(Clone, Debug, Default)]
struct Kept {
    ends: EndsText,
    sec: SecText,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, opts: JsonOptions) -> Self {
        JsonSink {
            out,
            opts,
            line: Vec::with_capacity(512),
            kept: Kept::default(),
        }
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

    /// What it has written so far (`--parquet` takes each record from it).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
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

/// A joined socket in a flow record (`--sockets`).
fn socket_json(s: &crate::host::sockets::Socket) -> String {
    format!(
        "{{\"local\":\"{}\",{}}}",
        s.diag.local,
        socket_config_members(s)
    )
}

/// A packet record up to its connection's number: `{"type":"packet",…,"flow":`.
fn packet_head(l: &mut Vec<u8>, ev: &PacketEvent, opts: JsonOptions, kept: &mut Kept) {
    l.s("{\"type\":\"packet\",\"n\":").n(ev.n).s(",\"ts\":");
    kept.sec.put(l, ev.ts.sec);
    l.frac(ev.ts.nsec, opts.nano);
    l.s(",\"flow\":");
}

/// A packet record after its connection's number, to the newline.
fn packet_tail(l: &mut Vec<u8>, ev: &PacketEvent, opts: JsonOptions, kept: &mut Kept) {
    let seg = ev.seg;
    l.s(",\"from\":\"").s(ev.from.name()).s("\",\"src\":\"");
    let key = (seg.src, seg.sport, seg.dst, seg.dport);
    kept.ends.put(l, (ev.flow_id, ev.from.idx()), key, |l| {
        endpoint(l, seg.src, seg.sport);
        l.s("\",\"dst\":\"");
        endpoint(l, seg.dst, seg.dport);
    });
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
    Notes::json(ev, l);
    if ev.injected.is_some() {
        l.s(",\"injected\":true");
    }
    if ev.reassembled > 0 {
        l.s(",\"reassembled\":").n(ev.reassembled);
    }
    if opts.community_id {
        l.s(",\"community_id\":\"");
        crate::report::community_id::tcp_into(
            l,
            std::net::SocketAddr::new(seg.src, seg.sport),
            std::net::SocketAddr::new(seg.dst, seg.dport),
            0,
        );
        l.s("\"");
    }
    l.s("}\n");
}

/// `--json` packet records formatted on the analyzer threads.
#[derive(Clone, Debug)]
pub struct JsonFormat(JsonOptions, Kept);

const REVISE_HEAD: &str = "{\"type\":\"revise\",\"flow\":";

/// A revise record after its connection's number.
fn revise_tail(l: &mut Vec<u8>, item: &Revision) {
    l.s(",\"n\":")
        .n(item.n)
        .s(",\"kind\":\"")
        .s(item.kind.as_str())
        .s("\"");
    item.notes.json_revise(l);
    l.s("}\n");
}

impl ShardFormat for JsonFormat {
    fn format_revision(&mut self, out: &mut Vec<u8>, r: &Revisions, item: usize) -> Option<usize> {
        out.s(REVISE_HEAD);
        let mid = out.len();
        revise_tail(out, &r.items[item]);
        Some(mid)
    }

    fn format(&mut self, out: &mut Vec<u8>, ev: &PacketEvent) -> io::Result<usize> {
        packet_head(out, ev, self.0, &mut self.1);
        let mid = out.len();
        packet_tail(out, ev, self.0, &mut self.1);
        Ok(mid)
    }
}

impl<W: Write> Sharded for JsonSink<W> {
    type Format = JsonFormat;

    /// Packet records, unless `--summary` (or streaming: records flushed
    /// one by one are written where they are made).
    fn shard_format(&self) -> Option<JsonFormat> {
        (self.opts.packets && !self.opts.flush_each).then(|| JsonFormat(self.opts, Kept::default()))
    }

    /// A packet record formatted by an analyzer: its head, the
    /// connection's number, its tail.
    fn formatted(
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
}

impl<W: Write> Sink for JsonSink<W> {
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        if !self.opts.packets {
            return Ok(());
        }
        let l = &mut self.line;
        l.clear();
        packet_head(l, ev, self.opts, &mut self.kept);
        l.n(ev.flow_id);
        packet_tail(l, ev, self.opts, &mut self.kept);
        self.out.write_all(&self.line)?;
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
            l.s(REVISE_HEAD).n(r.flow_id);
            revise_tail(l, item);
            self.out.write_all(&self.line)?;
        }
        self.end_record()
    }

    fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        let l = &mut self.line;
        l.clear();
        l.s("{\"type\":\"flow\",\"flow\":")
            .n(f.id)
            .s(",\"client\":\"");
        endpoint(l, f.client.ip(), f.client.port());
        l.s("\",\"server\":\"");
        endpoint(l, f.server.ip(), f.server.port());
        l.s("\",\"community_id\":\"");
        crate::report::community_id::tcp_into(l, f.client, f.server, 0);
        l.s("\",\"first_ts\":");
        l.n(f.first_ts.sec).frac(f.first_ts.nsec, self.opts.nano);
        l.s(",\"last_ts\":");
        l.n(f.last_ts.sec).frac(f.last_ts.nsec, self.opts.nano);
        l.s(",\"packets\":")
            .n(f.packets)
            .s(",\"handshake\":\"")
            .s(f.handshake.as_str())
            .s("\"");
        Findings::json(f, true, l);
        l.s(",\"close\":\"")
            .s(f.close.as_str())
            .s("\",\"closed_by\":");
        l.opt_str(f.close.by().map(|side| side.name()));
        l.s(",\"verdict\":\"").s(f.verdict.as_str()).s("\"");
        Findings::json(f, false, l);
        self.out.write_all(l)?;
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
        if let Some(k) = f.kernel.as_deref() {
            let end = |e: &Option<crate::host::kernel::ends::End>| match e {
                Some(e) => format!(
                    "{{\"cause\":\"{}\",\"reason\":{},\"errno\":{}}}",
                    e.cause.as_str(),
                    Str(e.reason),
                    e.errno
                        .map_or_else(|| "null".to_string(), |n| n.to_string())
                ),
                None => "null".to_string(),
            };
            let agrees = k
                .telling()
                .and_then(|e| crate::report::kernel::agrees(f.verdict, e.cause));
            write!(
                self.out,
                ",\"kernel\":{{\"client\":{},\"server\":{},\"agrees\":{}}}",
                end(&k.client),
                end(&k.server),
                agrees.map_or("null", |a| if a { "true" } else { "false" })
            )?;
        }
        self.out.write_all(b"}\n")?;
        self.end_record()
    }

    fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        write!(
            self.out,
            "{{\"type\":\"summary\",\"frames\":{},\"tcp_segments\":{},\"skipped\":{},\"flows\":{},\"complete\":{},\"time_outliers\":{}",
            stats.frames,
            stats.tcp_segments,
            stats.skipped,
            stats.flows,
            !stats.interrupted,
            stats.time_outliers
        )?;
        if let Some(d) = stats.capture_dropped {
            // Packets the capture itself dropped, as far as it says.
            write!(self.out, ",\"capture_dropped\":{d}")?;
        }
        if stats.fragments > 0 {
            // IP fragments of TCP datagrams (`core::frag`).
            let f = &stats.frag;
            write!(
                self.out,
                ",\"fragments\":{{\"frames\":{},\"reassembled\":{},\"tiny\":{},\"dropped\":{{",
                stats.fragments, f.reassembled, f.tiny
            )?;
            for (i, why) in crate::core::frag::Dropped::ALL.iter().enumerate() {
                let sep = if i > 0 { "," } else { "" };
                write!(self.out, "{sep}\"{}\":{}", why.as_str(), f.dropped[i])?;
            }
            self.out.write_all(b"}}")?;
        }
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }

    /// On stderr, so that the JSON Lines stay as they are.
    fn snapshot(&mut self, open: &[FlowSummary], stats: &Stats) -> io::Result<()> {
        self.out.flush()?;
        let mut err = io::stderr().lock();
        writeln!(
            err,
            "kacap: so far {}, {}, {} ({} open)",
            crate::core::text::plural(stats.frames, "frame"),
            crate::core::text::plural(stats.tcp_segments, "TCP segment"),
            crate::core::text::plural(stats.flows, "flow"),
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
