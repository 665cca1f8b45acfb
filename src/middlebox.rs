//! Middlebox idle timeouts: a NAT, firewall or load balancer that forgets a
//! connection idle longer than its timeout. The next segment is then
//! dropped silently (the sender retransmits in vain) or answered by a RST
//! the middlebox injects.
//!
//! Per flow: every silence of at least [`MIN_GAP`] (no segment either way)
//! followed by a segment that carries data or a keepalive probe is watched.
//! When the other side acknowledges it, the gap was *survived*. When data
//! after the gap is retransmitted and never answered, or the answer is an
//! injected RST, the gap *killed* the connection. (Unanswered keepalive
//! probes alone stay a dead peer: nothing tells a vanished peer from a
//! silent middlebox there.)
//!
//! A RST is *injected* when its IP TTL (hop limit) differs from the TTL of
//! the segments its supposed sender sent before: a middlebox is usually a
//! different number of hops away than the peer. (Missing TCP timestamps do
//! not tell: a Linux peer that lost the connection answers with a bare RST
//! too.)

use crate::analysis::{Analysis, Ctx};
use crate::decode::flags;
use crate::flows::Flow;
use crate::seq::SeqNumber;
use crate::tcp::{Kind, Side};
use crate::time::Timestamp;

/// Shortest silence worth watching, in seconds.
pub const MIN_GAP: f64 = 1.0;

/// How a middlebox killed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    SilentDrop,
    InjectedRst,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::SilentDrop => "silent-drop",
            Cause::InjectedRst => "injected-rst",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    gap: f64,
    from: Side,
    /// The sequence number an answer must acknowledge.
    end: SeqNumber,
    data: bool,
    retransmitted: bool,
}

/// Idle gaps of one connection and what followed them.
#[derive(Clone, Copy, Debug, Default)]
struct Watch {
    pending: Option<Pending>,
    /// Longest silence the connection survived.
    survived: Option<f64>,
    /// The silence that killed it, and how.
    killed: Option<(f64, Cause)>,
    /// Keepalive probes since the last data segment.
    probes_since_data: u32,
    /// Longest pause between data segments that keepalive probes bridged.
    bridged: Option<f64>,
}

/// What the flow summary says about idle gaps.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IdleSummary {
    /// Longest silence the connection survived.
    pub survived: Option<f64>,
    /// The silence that killed it, and how.
    pub killed: Option<(f64, Cause)>,
    /// Longest pause between data segments that keepalive probes bridged.
    pub bridged: Option<f64>,
}

/// The middlebox analysis: the watch starts with the first long silence
/// (or an injected RST), so most connections pay one pointer and a time.
#[derive(Debug, Default)]
pub struct IdleWatch {
    /// When the last data segment was seen.
    last_data: Option<Timestamp>,
    watch: Option<Box<Watch>>,
}

fn longest(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl Analysis for IdleWatch {
    /// Nothing per segment: an injected RST is already `Ctx::injected`.
    type Note = ();
    type Summary = IdleSummary;

    fn segment(&mut self, cx: &Ctx) {
        let (seg, kind, from, ts) = (cx.seg, cx.kind, cx.from, cx.ts);
        let rst = seg.has(flags::RST);
        let gap = cx.silence.filter(|g| *g >= MIN_GAP);
        let last_data = self.last_data;
        if seg.len > 0 && matches!(kind, Kind::Data) {
            self.last_data = Some(ts);
        }
        if self.watch.is_none() && (gap.is_some() || cx.injected) {
            self.watch = Some(Box::default());
        }
        let Some(w) = self.watch.as_deref_mut() else {
            return;
        };
        if let Some(mut p) = w.pending {
            if from != p.from {
                if rst {
                    if cx.injected {
                        w.killed = Some((p.gap, Cause::InjectedRst));
                    }
                    w.pending = None;
                } else if seg.has(flags::ACK) && seg.ack >= p.end {
                    w.survived = longest(w.survived, p.gap);
                    w.pending = None;
                }
            } else if rst {
                // The sender gave up on it.
                if p.data && p.retransmitted {
                    w.killed = Some((p.gap, Cause::SilentDrop));
                }
                w.pending = None;
            } else if seg.len > 0 && seg.seq < p.end {
                p.retransmitted = true;
                w.pending = Some(p);
            }
        }
        let carries =
            kind == Kind::Keepalive || (seg.len > 0 && !rst && kind != Kind::ZeroWindowProbe);
        if let Some(g) = gap
            && carries
            && w.pending.is_none()
            && w.killed.is_none()
        {
            let probe = kind == Kind::Keepalive;
            w.pending = Some(Pending {
                gap: g,
                from,
                end: if probe {
                    seg.seq + 1
                } else {
                    seg.seq + seg.len
                },
                data: !probe,
                retransmitted: false,
            });
        }
        if kind == Kind::Keepalive {
            w.probes_since_data += 1;
        } else if seg.len > 0 && matches!(kind, Kind::Data) {
            if w.probes_since_data > 0
                && let Some(ld) = last_data
            {
                w.bridged = longest(w.bridged, ts.since(ld));
            }
            w.probes_since_data = 0;
        }
    }

    /// End of the flow: data after a gap, retransmitted and never answered,
    /// was dropped by the middlebox.
    fn finish(&mut self, _flow: &Flow) -> IdleSummary {
        let Some(w) = self.watch.as_deref_mut() else {
            return IdleSummary::default();
        };
        if let Some(p) = w.pending.take()
            && p.data
            && p.retransmitted
            && w.killed.is_none()
        {
            w.killed = Some((p.gap, Cause::SilentDrop));
        }
        IdleSummary {
            survived: w.survived,
            killed: w.killed,
            bridged: w.bridged,
        }
    }
}
