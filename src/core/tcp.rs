//! TCP domain types every stage shares: which side sent a segment, what
//! kind of segment it is, how a connection closed, and each side's sequence
//! state. Nothing here imports another kacap module except `seq`.

use crate::core::seq::SeqNumber;
use std::net::IpAddr;

/// Which end of the connection sent a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Client = 0,
    Server = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub fn idx(self) -> usize {
        self as usize
    }
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// What one segment is (see `classify` for the rules that decide it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Syn,
    SynAck,
    HandshakeAck,
    Data,
    Ack,
    Keepalive,
    KeepaliveAck,
    ZeroWindowProbe,
    ZeroWindowProbeAck,
    ZeroWindow,
    WindowUpdate,
    Retransmission,
    Fin,
    Rst,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Syn => "syn",
            Kind::SynAck => "syn-ack",
            Kind::HandshakeAck => "handshake-ack",
            Kind::Data => "data",
            Kind::Ack => "ack",
            Kind::Keepalive => "keepalive",
            Kind::KeepaliveAck => "keepalive-ack",
            Kind::ZeroWindowProbe => "zero-window-probe",
            Kind::ZeroWindowProbeAck => "zero-window-probe-ack",
            Kind::ZeroWindow => "zero-window",
            Kind::WindowUpdate => "window-update",
            Kind::Retransmission => "retransmission",
            Kind::Fin => "fin",
            Kind::Rst => "rst",
        }
    }

    pub const ALL: [Kind; 14] = [
        Kind::Syn,
        Kind::SynAck,
        Kind::HandshakeAck,
        Kind::Data,
        Kind::Ack,
        Kind::Keepalive,
        Kind::KeepaliveAck,
        Kind::ZeroWindowProbe,
        Kind::ZeroWindowProbeAck,
        Kind::ZeroWindow,
        Kind::WindowUpdate,
        Kind::Retransmission,
        Kind::Fin,
        Kind::Rst,
    ];
}

/// How the end of a connection began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    Fin,
    Rst,
}

/// A keepalive or zero-window probe waiting for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outstanding {
    pub seq: SeqNumber,
    pub zero_window: bool,
}

impl Outstanding {
    /// Whether an ACK number from the other side answers this probe. A
    /// keepalive sits one below the next sequence number, so its answer
    /// acknowledges past it; a zero-window probe at the next sequence number
    /// is usually refused, so its answer acknowledges up to it.
    pub fn answered_by(&self, ack: SeqNumber) -> bool {
        if self.zero_window {
            ack >= self.seq
        } else {
            ack > self.seq
        }
    }
}

/// What one side has sent so far, as far as the capture shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirState {
    /// Base for relative sequence numbers in JSON: the ISN, or one below the
    /// first sequence number learned when the SYN was not captured.
    pub base: Option<SeqNumber>,
    /// Next sequence number expected from this side (its snd_nxt): the
    /// highest seq + length seen from it, or the highest ACK number the
    /// other side sent, whichever is later.
    pub next: Option<SeqNumber>,
    /// Highest ACK number this side sent (how far it has the peer's data).
    pub acked: Option<SeqNumber>,
    /// Last window this side advertised (raw, unscaled).
    pub win: Option<u16>,
    /// Sequence number of this side's FIN, once seen.
    pub fin: Option<SeqNumber>,
    /// This side's probe that the other side has not answered yet.
    pub probe: Option<Outstanding>,
    /// IP TTL (hop limit) of this side's segments (0: none seen yet; RSTs
    /// do not set it: a middlebox may forge them).
    pub ttl: u8,
}

/// Two addresses of one host: the same address, or both loopback
/// (127.0.0.0/8, ::1). No middlebox can sit between them.
pub fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a == b || (a.is_loopback() && b.is_loopback())
}
