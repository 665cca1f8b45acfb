//! The flow summary: one typed record per connection, computed once when the
//! connection is reported, with its one verdict. Every report (text table,
//! `--explain`, JSON) reads this; none decides a verdict of its own.

use crate::analyses::keepalive::Outcome;
use crate::analyses::registry::Findings;
use crate::analyses::retransmit::GaveUp;
use crate::core::flows::{Flow, Handshake};
use crate::core::tcp::{CloseKind, Side};
use crate::core::time::Timestamp;
use std::net::SocketAddr;

/// The verdict on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Alive,
    DeadPeer,
    PeerReset,
    NoKeepalive,
    /// A middlebox forgot the connection after an idle gap (see `middlebox`).
    IdleTimeout,
    /// Data went unanswered, retransmitted until the sender gave up (see
    /// `retransmit`).
    RetransmitTimeout,
    /// The peer answered the probes on the wire, but the prober behaved as
    /// if it heard nothing: the answers were lost between the capture point
    /// and the prober's socket.
    AcksDropped,
    /// One probe, unanswered, and the capture ended less than a second
    /// after it: too soon to tell a dead peer from an answer on its way.
    Undecided,
    /// No TCP keepalive; the application keeps the connection alive with
    /// its own pings (HTTP/2 PING, WebSocket ping, Redis PING, MySQL
    /// COM_PING, or an encrypted rhythm) — see `app`.
    AppKeepalive,
    /// The application's latest keepalive pings went unanswered (two or
    /// more in a row, or one and then the connection ended): its peer's
    /// application stopped answering — see `app`.
    AppPingTimeout,
    /// The server refused the client's HTTP/2 pings: GOAWAY
    /// ENHANCE_YOUR_CALM (gRPC's `too_many_pings`).
    TooManyPings,
    /// The HTTP keep-alive race: a request sent on a connection the server
    /// had closed, answered by RST (a stale pooled connection).
    StaleConnection,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Alive => "alive",
            Verdict::DeadPeer => "dead-peer",
            Verdict::PeerReset => "peer-reset",
            Verdict::NoKeepalive => "no-keepalive",
            Verdict::IdleTimeout => "idle-timeout",
            Verdict::RetransmitTimeout => "retransmit-timeout",
            Verdict::AcksDropped => "acks-dropped",
            Verdict::Undecided => "undecided",
            Verdict::AppKeepalive => "app-keepalive",
            Verdict::AppPingTimeout => "app-ping-timeout",
            Verdict::TooManyPings => "too-many-pings",
            Verdict::StaleConnection => "stale-connection",
        }
    }
}

/// The one place a verdict is decided, from what the analyses found:
/// - a middlebox killed the connection after an idle gap → `idle-timeout`;
/// - data went unanswered and was retransmitted until the sender gave up
///   (its RST, or silence), or at least twice before the capture ended →
///   `retransmit-timeout`;
/// - a request sent after the server's FIN was answered by RST →
///   `stale-connection` (the HTTP keep-alive pool race);
/// - the server answered HTTP/2 pings with GOAWAY ENHANCE_YOUR_CALM →
///   `too-many-pings`;
/// - no keepalive probe → when the application pinged (HTTP/2, WebSocket,
///   Redis, MySQL, an encrypted rhythm): `app-ping-timeout` if its latest
///   pings went unanswered (two in a row, or one and the connection
///   ended other than by a normal application close), else
///   `app-keepalive`; without pings `no-keepalive`;
/// - the prober's latest probes were answered on the wire but it behaved as
///   if it heard nothing (TS ecr stuck, or its RST one interval after an
///   answered probe) → `acks-dropped`;
/// - otherwise the latest keepalive episode of either side: answered →
///   `alive`, answered by RST → `peer-reset`, unanswered (with or without
///   the prober's RST) → `dead-peer` — except one lone probe the capture
///   ended less than a second after → `undecided`.
pub fn verdict(f: &Findings, closed: bool) -> Verdict {
    if f.idle.killed.is_some() {
        return Verdict::IdleTimeout;
    }
    if let Some(r) = f.retransmit
        && (r.how != GaveUp::CaptureEnded || r.count >= 2)
    {
        return Verdict::RetransmitTimeout;
    }
    if f.http.is_some_and(|h| h.stale_request) {
        return Verdict::StaleConnection;
    }
    if f.app
        .and_then(|a| a.goaway)
        .is_some_and(|g| g.too_many_pings())
    {
        return Verdict::TooManyPings;
    }
    if f.keepalive.probes == 0 {
        if let Some(a) = f.app.filter(|a| a.pings > 0) {
            if a.trailing_unanswered >= 2
                || (a.trailing_unanswered == 1 && closed && !a.graceful_end())
            {
                return Verdict::AppPingTimeout;
            }
            return Verdict::AppKeepalive;
        }
        return Verdict::NoKeepalive;
    }
    if f.keepalive.acks_dropped.is_some() {
        return Verdict::AcksDropped;
    }
    match f.keepalive.outcome {
        Some(Outcome::PeerReset) => Verdict::PeerReset,
        Some(Outcome::Unanswered) if f.keepalive.pending.is_some_and(|p| p.too_soon()) => {
            Verdict::Undecided
        }
        Some(Outcome::GaveUp) | Some(Outcome::Unanswered) => Verdict::DeadPeer,
        Some(Outcome::Answered) | Some(Outcome::Interrupted) | None => Verdict::Alive,
    }
}

/// How the connection ended, as far as the capture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// Still open at the end of the capture (or when it was forgotten).
    Open,
    /// The first FIN came from this side.
    Fin(Side),
    /// The first RST came from this side.
    Rst(Side),
}

impl Close {
    /// `open`, `fin` or `rst` (JSON `close`).
    pub fn as_str(self) -> &'static str {
        match self {
            Close::Open => "open",
            Close::Fin(_) => "fin",
            Close::Rst(_) => "rst",
        }
    }

    /// The side that began the close.
    pub fn by(self) -> Option<Side> {
        match self {
            Close::Open => None,
            Close::Fin(s) | Close::Rst(s) => Some(s),
        }
    }
}

/// A reported connection.
#[derive(Clone, Debug)]
pub struct FlowSummary {
    pub id: u32,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub packets: u64,
    pub handshake: Handshake,
    pub close: Close,
    /// What each analysis found (`findings.keepalive`, `.idle`, `.http`, …).
    pub findings: Findings,
    pub verdict: Verdict,
    /// `--sockets`: its ends that are sockets of this host.
    pub sockets: Option<Box<crate::host::sockets::Joined>>,
}

impl FlowSummary {
    /// Both ends are on one host (see `Flow::same_host`).
    pub fn same_host(&self) -> bool {
        crate::core::tcp::same_host(self.client.ip(), self.server.ip())
    }

    /// Summarizes `flow` with its analyses' findings.
    pub fn new(flow: &Flow, findings: Findings) -> FlowSummary {
        FlowSummary {
            id: flow.id,
            client: flow.client,
            server: flow.server,
            first_ts: flow.first_ts,
            last_ts: flow.last_ts,
            packets: flow.packets,
            handshake: flow.handshake(),
            close: match flow.close {
                Some((CloseKind::Fin, side)) => Close::Fin(side),
                Some((CloseKind::Rst, side)) => Close::Rst(side),
                None => Close::Open,
            },
            verdict: verdict(&findings, flow.close.is_some()),
            findings,
            sockets: None,
        }
    }
}
