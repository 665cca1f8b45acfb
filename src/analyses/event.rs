//! What the analyses' words are about: one segment as the reports see it
//! ([`Event`]), one reported connection ([`Summary`]), one segment kept for
//! a diagram ([`Step`]), and the few facts about a connection that more
//! than one analysis's words need ([`Shared`]).
//!
//! Each is generic over what the registry gathers of every analysis (the
//! notes of a segment, the findings of a connection, the marks of a step):
//! an analysis's words reach their own part through `NoteOf`, `FindingsOf`
//! and `MarkOf` (see `describe`), never another analysis's. The pipeline
//! names them with the registry's types (`PacketEvent`, `FlowSummary`).

use super::verdict::Verdict;
use crate::core::decode::Segment;
use crate::core::flows::Handshake;
use crate::core::tcp::{Kind, Side};
use crate::core::time::Timestamp;
use crate::host::sockets::Joined;
use std::net::SocketAddr;

/// Everything the reports need to know about one TCP segment; `N`, what
/// each analysis says about it.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a, N> {
    /// Frame number in the input (1-based, every frame counted).
    pub n: u64,
    pub ts: Timestamp,
    pub seg: &'a Segment<'a>,
    /// The captured frame (tcpdump -e, -xx) and its length on the wire.
    pub frame: &'a [u8],
    pub wire_len: u32,
    pub flow_id: u32,
    pub from: Side,
    pub kind: Kind,
    /// Sequence number relative to the sender's ISN (JSON).
    pub rel_seq: u32,
    /// ACK number relative to the other side's ISN, when ACK is set (JSON).
    pub rel_ack: Option<u32>,
    /// The connection had already ended (RST, or FIN both ways) before this.
    pub late: bool,
    /// This FIN or RST begins the end of the connection.
    pub first_close: bool,
    /// A RST a middlebox injected: the TTL its supposed sender's own
    /// segments arrive with (this RST's differs).
    pub injected: Option<u8>,
    /// What each analysis says about it (`notes.keepalive`, `notes.http`, …).
    pub notes: N,
    /// `--sockets`: on a connection's first packet, its ends that are
    /// sockets of this host (see `host::sockets::join`).
    pub socket: Option<&'a Joined>,
    /// The segment was reassembled from this many IP fragments (0: it came
    /// whole); `frame` is then its last fragment's (`core::frag`).
    pub reassembled: u16,
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

/// Facts about a connection that more than one analysis's words need, each
/// found by one analysis (`Describe::share`) and gathered once when the
/// connection is reported: what would otherwise make one analysis read
/// another's findings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shared {
    /// TCP keepalive probes seen (keepalive).
    pub probes: u32,
    /// The inferred TCP_KEEPIDLE (keepalive).
    pub keepalive_idle: Option<f64>,
    /// HTTP/1.x was seen on it (http).
    pub http: bool,
    /// Application keepalive pings seen (app).
    pub app_pings: u32,
    /// What an HTTP/1.x request upgraded the connection to (app: WebSocket,
    /// HTTP/2), in words.
    pub upgraded: Option<&'static str>,
}

/// A reported connection; `F`, what each analysis found.
#[derive(Clone, Debug)]
pub struct Summary<F> {
    pub id: u32,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub packets: u64,
    pub handshake: Handshake,
    pub close: Close,
    /// What each analysis found (`findings.keepalive`, `.middlebox`, …).
    pub findings: F,
    pub verdict: Verdict,
    /// What more than one analysis's words need.
    pub shared: Shared,
    /// `--sockets`: its ends that are sockets of this host.
    pub sockets: Option<Box<Joined>>,
    /// `--kernel`: how the kernel says its sockets on this host ended.
    pub kernel: Option<Box<crate::host::kernel::ends::KernelEnds>>,
}

impl<F> Summary<F> {
    /// Both ends are on one host (see `Flow::same_host`).
    pub fn same_host(&self) -> bool {
        crate::core::tcp::same_host(self.client.ip(), self.server.ip())
    }

    /// How the connection ended, e.g. `FIN by client`, `RST by server`,
    /// `open`.
    pub fn ending(&self) -> String {
        match self.close.by() {
            Some(side) => format!("{} by {}", self.close.as_str().to_uppercase(), side.name()),
            None => "open".to_string(),
        }
    }
}

/// One segment as `--explain`, `--diagram` and `--html` keep it; `M`,
/// what each analysis keeps of its note (`Describe::Mark`).
#[derive(Clone, Copy, Debug)]
pub struct Step<M> {
    pub n: u64,
    pub ts: Timestamp,
    pub from: Side,
    pub kind: Kind,
    pub marks: M,
    pub flags: u8,
    pub len: u32,
    pub late: bool,
    pub injected: bool,
    /// Its slot among the kept lines of its connection (`--html`).
    pub slot: u16,
    /// A later segment changed what it is (a revision).
    pub revised: bool,
}

/// Who keeps TIME_WAIT after `side` closed first with FIN — nobody when a
/// RST followed (it aborts both sockets).
pub fn time_wait<M>(side: Side, steps: &[Step<M>]) -> String {
    let reset = steps
        .iter()
        .skip_while(|s| s.kind != Kind::Fin)
        .find(|s| s.kind == Kind::Rst && !s.injected);
    match reset {
        Some(r) => format!(
            "The {} closed first with FIN, then the {} reset the connection: neither side keeps TIME_WAIT.",
            side.name(),
            r.from.name()
        ),
        None => format!(
            "The {} closed first with FIN; it holds TIME_WAIT for 2×MSL (60 s on Linux).",
            side.name()
        ),
    }
}
