//! Report: sinks of the event stream (text timeline, summary table, JSON).

pub mod annotate;
pub mod emit;
pub mod idle;
pub mod json;
pub mod table;
pub mod tcpdump;
pub mod teach;
pub mod text;

use crate::analyzer::Stats;
use crate::classify::Kind;
use crate::decode::Segment;
use crate::flows::{CloseKind, Flow, Side};
use crate::keepalive::{Note, Verdict};
use crate::time::Timestamp;
use std::io;

/// Everything the reports need to know about one TCP segment.
#[derive(Clone, Copy, Debug)]
pub struct PacketEvent<'a> {
    /// Frame number in the input (1-based, every frame counted).
    pub n: u64,
    pub ts: Timestamp,
    pub seg: &'a Segment<'a>,
    pub flow_id: u32,
    pub from: Side,
    pub kind: Kind,
    pub note: Note,
    /// Sequence and ACK numbers as tcpdump prints them.
    pub td_seq: u32,
    pub td_ack: u32,
    /// tcpdump's base for the other side's sequence numbers (for SACK blocks).
    pub td_other_base: u32,
    /// Sequence number relative to the sender's ISN (JSON).
    pub rel_seq: u32,
    /// ACK number relative to the other side's ISN, when ACK is set (JSON).
    pub rel_ack: Option<u32>,
    /// The connection had already ended (RST, or FIN both ways) before this.
    pub late: bool,
    /// This FIN or RST begins the end of the connection.
    pub first_close: bool,
    /// An HTTP message this segment starts.
    pub http: Option<crate::http::HttpNote>,
    /// A RST a middlebox injected (its TTL differs from its sender's).
    pub injected: bool,
}

/// A consumer of the event stream.
pub trait Sink {
    fn packet(&mut self, event: &PacketEvent, flow: &Flow) -> io::Result<()>;
    fn flow(&mut self, flow: &Flow) -> io::Result<()>;
    fn finish(&mut self, stats: &Stats) -> io::Result<()>;
}

/// A finished flow, as the flow record and the table present it.
#[derive(Clone, Debug)]
pub struct FlowSummary {
    pub id: u32,
    pub client: std::net::SocketAddr,
    pub server: std::net::SocketAddr,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub packets: u64,
    pub handshake: &'static str,
    pub prober: Option<&'static str>,
    pub probes: u32,
    pub answered: u32,
    pub unanswered: u32,
    pub rst: u32,
    pub idle: Option<f64>,
    pub interval: Option<f64>,
    pub count: Option<u32>,
    pub close: &'static str,
    pub closed_by: Option<&'static str>,
    pub verdict: Verdict,
    /// For a connection still open: when its next probe is due.
    pub next_probe: Option<Timestamp>,
    /// HTTP/1.x on this connection, when there was any.
    pub http: Option<HttpSummary>,
    /// Longest silence survived, the one that killed the connection and
    /// how, and the longest data pause keepalive bridged.
    pub survived: Option<f64>,
    pub killed: Option<(f64, crate::middlebox::Cause)>,
    pub bridged: Option<f64>,
}

/// What the flow record says about HTTP.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HttpSummary {
    pub requests: u32,
    pub responses: u32,
    pub keep_alive: bool,
    pub version: Option<&'static str>,
    /// Longest pause between a response and the next request.
    pub max_gap: Option<f64>,
}

impl FlowSummary {
    pub fn of(flow: &Flow) -> FlowSummary {
        let none = crate::keepalive::Tracker::default();
        let ka = flow.keepalive.as_deref().unwrap_or(&none);
        let [c, s] = &ka.sides;
        let prober = match (c.probes > 0, s.probes > 0) {
            (true, true) => Some("both"),
            (true, false) => Some("client"),
            (false, true) => Some("server"),
            (false, false) => None,
        };
        // Inferred settings of the side that probed (the client when both did).
        let p = if c.probes > 0 || s.probes == 0 { c } else { s };
        let (close, closed_by) = match flow.close {
            Some((CloseKind::Fin, side)) => ("fin", Some(side.name())),
            Some((CloseKind::Rst, side)) => ("rst", Some(side.name())),
            None => ("open", None),
        };
        FlowSummary {
            id: flow.id,
            client: flow.client,
            server: flow.server,
            first_ts: flow.first_ts,
            last_ts: flow.last_ts,
            packets: flow.packets,
            handshake: flow.handshake(),
            prober,
            probes: c.probes + s.probes,
            answered: c.answered + s.answered,
            unanswered: c.unanswered + s.unanswered,
            rst: c.rst + s.rst,
            idle: p.idle(),
            interval: p.interval(),
            count: p.count(),
            close,
            closed_by,
            verdict: if flow.idle.as_ref().is_some_and(|w| w.killed.is_some()) {
                Verdict::IdleTimeout
            } else {
                Verdict::of(ka)
            },
            survived: flow.idle.as_ref().and_then(|w| w.survived),
            killed: flow.idle.as_ref().and_then(|w| w.killed),
            bridged: flow.idle.as_ref().and_then(|w| w.bridged),
            http: flow.http.as_ref().map(|h| HttpSummary {
                requests: h.requests,
                responses: h.responses,
                keep_alive: h.keep_alive(),
                version: h.version,
                max_gap: h.max_gap,
            }),
            next_probe: if flow.finished {
                None
            } else {
                ka.next_probe_due(flow.last_ts)
            },
        }
    }
}
