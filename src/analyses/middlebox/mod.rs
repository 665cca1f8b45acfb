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

mod advice;
mod say;
pub mod suspects;

use crate::analyses::{Analysis, Ctx};
use crate::core::decode::flags;
use crate::core::flows::Flow;
use crate::core::seq::SeqNumber;
use crate::core::tcp::{Kind, Side};
use crate::core::time::Timestamp;

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
#[derive(Clone, Debug, Default)]
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

    #[inline(always)]
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
    /// was dropped — by a middlebox only when the evidence says so: never
    /// between two ends on one host, and a silent drop only when the same
    /// connection survived a shorter silence before (otherwise a dead host,
    /// or a local firewall, would look the same: that is a
    /// retransmit-timeout, see `retransmit`).
    fn finish(&mut self, flow: &Flow, _now: Timestamp) -> IdleSummary {
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
        let evidence = match w.killed {
            _ if flow.same_host() => false,
            Some((gap, Cause::SilentDrop)) => w.survived.is_some_and(|s| s < gap),
            Some((_, Cause::InjectedRst)) => true,
            None => false,
        };
        IdleSummary {
            survived: w.survived,
            killed: w.killed.filter(|_| evidence),
            bridged: w.bridged,
        }
    }
}

/// The watch on its own, one `Ctx` at a time with explicit time.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::decode::{LinkInfo, LinkType, Segment};
    use crate::core::flows::Flow;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const DATA: &[u8] = b"hello";

    /// Five bytes of data from the client at seq 1000.
    const SEGMENT: Segment<'static> = Segment {
        src: CLIENT,
        dst: SERVER,
        sport: 40000,
        dport: 5432,
        seq: SeqNumber(1000),
        ack: SeqNumber(5000),
        flags: flags::PSH | flags::ACK,
        win: 512,
        urp: 0,
        header_len: 20,
        len: 5,
        options: &[],
        options_truncated: false,
        payload: DATA,
        ttl: 64,
        ip_id: 0,
        checksum: 0,
        link: LinkInfo {
            kind: LinkType::Raw,
            ifindex: 0,
            pkttype: None,
            vlan: 0,
        },
    };

    /// The server's ACK of that data.
    const ACKED: Segment<'static> = Segment {
        src: SERVER,
        dst: CLIENT,
        sport: 5432,
        dport: 40000,
        seq: SeqNumber(5000),
        ack: SeqNumber(1005),
        flags: flags::ACK,
        len: 0,
        payload: &[],
        ..SEGMENT
    };

    /// Five bytes before `SEGMENT`, and their ACK.
    const EARLIER: Segment<'static> = Segment {
        seq: SeqNumber(995),
        ..SEGMENT
    };
    const EARLIER_ACKED: Segment<'static> = Segment {
        ack: SeqNumber(1000),
        ..ACKED
    };

    /// Feeds `(seconds, segment, kind, injected)` in order; returns the summary.
    fn watch(steps: &[(f64, Segment, Kind, bool)]) -> IdleSummary {
        watch_between(CLIENT, SERVER, steps)
    }

    fn watch_between(
        client: IpAddr,
        server: IpAddr,
        steps: &[(f64, Segment, Kind, bool)],
    ) -> IdleSummary {
        let flow = Flow::new(
            1,
            SocketAddr::new(client, 40000),
            SocketAddr::new(server, 5432),
            Timestamp::new(0, 0),
        );
        let mut w = IdleWatch::default();
        let mut last: Option<f64> = None;
        for (i, (t, seg, kind, injected)) in steps.iter().enumerate() {
            let from = flow.side_of(seg);
            let cx = Ctx {
                n: i as u64 + 1,
                ts: Timestamp::new(0, 0).plus(*t),
                seg,
                from,
                kind: *kind,
                silence: last.map(|l| t - l),
                heard: None,
                injected: *injected,
                answers_probe: false,
                late: false,
            };
            w.segment(&cx);
            last = Some(*t);
        }
        w.finish(&flow, Timestamp::new(0, 0))
    }

    #[test]
    fn an_acknowledged_gap_was_survived() {
        let s = watch(&[
            (0.0, ACKED, Kind::Ack, false),
            (3.0, SEGMENT, Kind::Data, false),
            (3.001, ACKED, Kind::Ack, false),
        ]);
        assert_eq!(s.survived, Some(3.0));
        assert_eq!(s.killed, None);
    }

    #[test]
    fn gaps_under_a_second_are_not_watched() {
        let s = watch(&[
            (0.0, ACKED, Kind::Ack, false),
            (0.5, SEGMENT, Kind::Data, false),
            (0.501, ACKED, Kind::Ack, false),
        ]);
        assert_eq!(s, IdleSummary::default());
    }

    #[test]
    fn data_after_a_gap_retransmitted_then_given_up_is_a_silent_drop() {
        let rst = Segment {
            flags: flags::RST | flags::ACK,
            seq: SeqNumber(1005),
            len: 0,
            payload: &[],
            ..SEGMENT
        };
        let s = watch(&[
            (0.0, ACKED, Kind::Ack, false),
            (3.0, EARLIER, Kind::Data, false),
            (3.001, EARLIER_ACKED, Kind::Ack, false),
            (10.001, SEGMENT, Kind::Data, false),
            (10.2, SEGMENT, Kind::Retransmission, false),
            (10.6, SEGMENT, Kind::Retransmission, false),
            (12.0, rst, Kind::Rst, false),
        ]);
        assert_eq!(s.survived, Some(3.0));
        assert_eq!(s.killed, Some((7.0, Cause::SilentDrop)));
    }

    #[test]
    fn one_silent_drop_without_a_shorter_gap_survived_is_no_middlebox_evidence() {
        // A dead host or a local firewall would look the same: that is a
        // retransmit-timeout, not an idle-timeout.
        let s = watch(&[
            (0.0, ACKED, Kind::Ack, false),
            (7.0, SEGMENT, Kind::Data, false),
            (7.2, SEGMENT, Kind::Retransmission, false),
            (7.6, SEGMENT, Kind::Retransmission, false),
        ]);
        assert_eq!(s.killed, None);
    }

    #[test]
    fn data_retransmitted_until_the_capture_ends_is_a_silent_drop() {
        let s = watch(&[
            (0.0, ACKED, Kind::Ack, false),
            (3.0, EARLIER, Kind::Data, false),
            (3.001, EARLIER_ACKED, Kind::Ack, false),
            (10.001, SEGMENT, Kind::Data, false),
            (10.2, SEGMENT, Kind::Retransmission, false),
        ]);
        assert_eq!(s.killed, Some((7.0, Cause::SilentDrop)));
    }

    #[test]
    fn an_injected_rst_after_a_gap_kills() {
        let rst = Segment {
            flags: flags::RST,
            ttl: 63,
            ..ACKED
        };
        let s = watch(&[
            (0.0, ACKED, Kind::Ack, false),
            (6.0, SEGMENT, Kind::Data, false),
            (6.001, rst, Kind::Rst, true),
        ]);
        assert_eq!(s.killed, Some((6.0, Cause::InjectedRst)));
    }

    #[test]
    fn no_middlebox_between_two_ends_on_one_host() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let here = |seg: Segment<'static>| Segment {
            src: lo,
            dst: lo,
            ..seg
        };
        let rst = Segment {
            flags: flags::RST,
            ttl: 63,
            ..ACKED
        };
        let s = watch_between(
            lo,
            lo,
            &[
                (0.0, here(ACKED), Kind::Ack, false),
                (6.0, here(SEGMENT), Kind::Data, false),
                (6.001, here(rst), Kind::Rst, true),
            ],
        );
        assert_eq!(s.killed, None);
    }

    #[test]
    fn the_peers_own_rst_does_not_blame_a_middlebox() {
        let rst = Segment {
            flags: flags::RST,
            ..ACKED
        };
        let s = watch(&[
            (0.0, ACKED, Kind::Ack, false),
            (6.0, SEGMENT, Kind::Data, false),
            (6.001, rst, Kind::Rst, false),
        ]);
        assert_eq!(s.killed, None);
    }

    #[test]
    fn unanswered_keepalive_probes_alone_are_no_middlebox_evidence() {
        let probe = Segment {
            flags: flags::ACK,
            seq: SeqNumber(1004),
            len: 0,
            payload: &[],
            ..SEGMENT
        };
        let s = watch(&[
            (0.0, ACKED, Kind::Ack, false),
            (2.0, probe, Kind::Keepalive, false),
            (3.0, probe, Kind::Keepalive, false),
        ]);
        assert_eq!(s.killed, None);
        assert_eq!(s.survived, None);
    }

    #[test]
    fn probes_that_bridge_a_data_pause_are_recorded() {
        let probe = Segment {
            flags: flags::ACK,
            seq: SeqNumber(1004),
            len: 0,
            payload: &[],
            ..SEGMENT
        };
        let answer = Segment {
            ack: SeqNumber(1005),
            ..ACKED
        };
        let later = Segment {
            seq: SeqNumber(1005),
            ..SEGMENT
        };
        let s = watch(&[
            (0.0, SEGMENT, Kind::Data, false),
            (0.001, ACKED, Kind::Ack, false),
            (2.0, probe, Kind::Keepalive, false),
            (2.001, answer, Kind::KeepaliveAck, false),
            (4.0, probe, Kind::Keepalive, false),
            (4.001, answer, Kind::KeepaliveAck, false),
            (5.0, later, Kind::Data, false),
        ]);
        assert_eq!(s.bridged, Some(5.0));
        assert!(s.survived.is_some_and(|g| g >= 1.99));
    }
}
