//! TCP domain types every stage shares: which side sent a segment, what
//! kind of segment it is, how a connection closed, and each side's sequence
//! state. Nothing here imports another kacap module except `seq`, `time`
//! and `decode`.

use crate::core::seq::SeqNumber;
use crate::core::time::When;
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
    Duplicate,
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
            Kind::Duplicate => "duplicate",
        }
    }

    pub const ALL: [Kind; 15] = [
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
        Kind::Duplicate,
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
    /// When this side last accepted a segment from its peer: anything but
    /// the peer's probes (keepalive or zero-window), which a kernel answers
    /// and discards before they touch its timers. Linux measures keepalive
    /// idle from here (`keepalive_time_elapsed`: `lrcvtime`, `rcv_tstamp`).
    pub heard: When,
    /// When this side sent its last keepalive probe.
    pub probed: When,
    /// This side's last segment (not a copy), unless the peer sent one
    /// since: what a copy of it matches.
    pub last: Sent,
}

/// One segment as sent, for telling a copy of it: a copy the capture saw
/// twice (a mirror port, two interfaces, two taps merged) has the same
/// seq, ack, flags, window, length, TCP checksum, IPv4 ID and TS val; the
/// same segment sent again by its kernel gets a new IPv4 ID or TS val, and
/// comes no sooner than an RTO (Linux: 200 ms). Without either (IPv6 or an
/// IP ID of 0, and no TCP timestamps: a host's RSTs, say) nothing tells a
/// copy from a segment sent twice: no segment is a copy then. (The checksum
/// alone does not tell: a sender offloading it to its NIC shows the same
/// partial sum on different segments.) Kept as a 64-bit digest of those
/// fields (8 bytes, where the fields take 24). When it was sent is the
/// flow's `last_ts`: a side's last segment is the flow's last while nothing
/// came from the peer since (which clears it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Digest of the fields above; 0 when nothing would tell a copy.
    pub print: u64,
}

impl Sent {
    /// `seg` as sent.
    #[inline]
    pub fn of(seg: &crate::core::decode::Segment) -> Sent {
        // A nonzero IPv4 ID tells by itself (a resend gets a new one): the
        // options are read only without it (IPv6, stacks that send ID 0).
        let tsval = if seg.ip_id != 0 {
            0
        } else {
            match seg.timestamps() {
                Some((val, _)) => val,
                None => return Sent { print: 0 },
            }
        };
        // Two multiplicative mixes: cheap on the hot path, and no two
        // segments a few microseconds apart collide by chance.
        let a = u64::from(seg.seq.0) | u64::from(seg.ack.0) << 32;
        let b = u64::from(seg.len)
            ^ u64::from(seg.win) << 32
            ^ u64::from(seg.flags) << 48
            ^ u64::from(seg.checksum) << 20;
        let c = u64::from(seg.ip_id) | u64::from(tsval) << 16;
        let h = (a ^ b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (c ^ b).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        Sent { print: h | 1 }
    }

    /// Whether `seg`, `gap` seconds after this segment, is a copy of it.
    pub fn copied_by(&self, seg: &crate::core::decode::Segment, gap: f64) -> bool {
        self.print != 0
            && (0.0..=DUPLICATE_WITHIN).contains(&gap)
            && Sent::of(seg).print == self.print
    }
}

/// A copy comes at most this long after the segment it copies: mirror
/// ports and `-i any` copy within microseconds; a kernel's retransmission
/// or probe comes 200 ms or more later, and differs anyway (see [`Sent`]).
pub const DUPLICATE_WITHIN: f64 = 0.05;

/// Linux's smallest TCP_KEEPIDLE and TCP_KEEPINTVL (1 s), less the jitter of
/// its timer (a jiffy) and of capture stamps: no kernel keepalive comes
/// sooner after the last segment its sender accepted, or after its
/// previous probe.
pub const MIN_KEEPALIVE_TIMER: f64 = 0.99;

/// Two addresses of one host: the same address, or both loopback
/// (127.0.0.0/8, ::1). No middlebox can sit between them.
pub fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a == b || (a.is_loopback() && b.is_loopback())
}
