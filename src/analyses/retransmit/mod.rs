//! Death by retransmission: data that was never acknowledged, retransmitted
//! with exponential backoff until the sender gave up.
//!
//! Keepalive cannot find a dead peer while data is in flight (Linux does
//! not probe then); retransmission does: the sender retransmits with backoff
//! from the RTO (200 ms at least) and gives up after TCP_USER_TIMEOUT, or
//! `net.ipv4.tcp_retries2` retransmissions (15 by default: about 924 s with
//! a 200 ms RTO). Linux gives up *without* a RST (`tcp_write_err`): on the
//! wire the retransmissions stop and the connection falls silent; the
//! application sees ETIMEDOUT.
//!
//! Per side: data not yet acknowledged is *pending* from its first
//! transmission; each retransmission of it counts; the other side's ACK of
//! all of it ends the episode (answered). The flow summary reports the last
//! episode still unanswered when the flow is reported: the sender gave up —
//! with its RST, or by falling silent for longer than its next
//! retransmission would take (2.2 × the last backoff gap: the RTO doubles) — or the capture
//! ended mid-backoff.

mod say;

use crate::analyses::{Analysis, Ctx};
use crate::core::decode::flags;
use crate::core::flows::Flow;
use crate::core::seq::SeqNumber;
use crate::core::tcp::{Kind, Side};
use crate::core::time::Timestamp;

/// Silence after the last retransmission, in backoff gaps, after which the
/// sender is taken to have given up.
const GAVE_UP_GAPS: f64 = 2.2;

/// Data of one side waiting for its acknowledgment.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// First transmission seen.
    first: Timestamp,
    /// Sequence number the peer must acknowledge.
    end: SeqNumber,
    retransmissions: u32,
    last: Timestamp,
    /// Gaps between the first two transmissions, and the last two.
    first_gap: f64,
    last_gap: f64,
    /// The sender reset the connection while this was pending.
    reset_at: Option<Timestamp>,
}

/// How a retransmission episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaveUp {
    /// The sender reset the connection.
    Rst,
    /// The retransmissions stopped and the sender fell silent (Linux).
    Silent,
    /// The capture ended while the sender was still retransmitting.
    CaptureEnded,
}

/// What the flow summary says about unanswered retransmissions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetransmitSummary {
    /// The side whose data went unanswered.
    pub sender: Side,
    /// Retransmissions of that data.
    pub count: u32,
    /// Seconds from the first transmission of the unanswered data to the
    /// sender's last segment (its RST, or its last retransmission); `None`
    /// when the capture ended mid-backoff.
    pub gave_up_after: Option<f64>,
    pub how: GaveUp,
    /// The gaps between transmissions grew (exponential backoff).
    pub backoff: bool,
}

/// The retransmission analysis. Until a side retransmits data, it keeps
/// only when each side last sent new data (nanoseconds of capture time):
/// most connections never retransmit, and pay 16 bytes and a store per data
/// segment. The first retransmission starts the watch, counted from that
/// side's latest new data (the transmission it repeats, or a later one).
#[derive(Clone, Debug, Default)]
pub struct Retransmit {
    last_data: [i64; 2],
    watch: Option<Box<[Option<Pending>; 2]>>,
}

fn nanos(ts: Timestamp) -> i64 {
    ts.sec
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(ts.nsec))
}

fn from_nanos(ns: i64) -> Timestamp {
    Timestamp::new(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

impl Analysis for Retransmit {
    type Note = ();
    type Summary = Option<RetransmitSummary>;

    #[inline(always)]
    fn segment(&mut self, cx: &Ctx) {
        if cx.late {
            return;
        }
        let seg = cx.seg;
        let (me, peer) = (cx.from.idx(), cx.from.other().idx());
        let data = seg.len > 0 && matches!(cx.kind, Kind::Data | Kind::Retransmission);
        if self.watch.is_none() {
            if !data {
                return;
            }
            if cx.kind == Kind::Data {
                self.last_data[me] = nanos(cx.ts);
                return;
            }
        }
        let last_data = self.last_data[me];
        let sides = self.watch.get_or_insert_with(|| {
            // The first retransmission: the watch starts at the data it repeats.
            let mut sides: Box<[Option<Pending>; 2]> = Box::default();
            if last_data != 0 {
                let first = from_nanos(last_data);
                sides[me] = Some(Pending {
                    first,
                    end: seg.seq + seg.len,
                    retransmissions: 0,
                    last: first,
                    first_gap: 0.0,
                    last_gap: 0.0,
                    reset_at: None,
                });
            }
            sides
        });
        if seg.has(flags::ACK)
            && !seg.has(flags::RST)
            && let Some(p) = sides[peer]
            && seg.ack >= p.end
        {
            sides[peer] = None;
        }
        if seg.has(flags::RST) {
            if let Some(p) = &mut sides[me] {
                p.reset_at.get_or_insert(cx.ts);
            }
            return;
        }
        if !data {
            return;
        }
        let end = seg.seq + seg.len;
        match &mut sides[me] {
            Some(p) if cx.kind == Kind::Retransmission && seg.seq < p.end => {
                p.retransmissions += 1;
                p.last_gap = cx.ts.since(p.last);
                if p.retransmissions == 1 {
                    p.first_gap = p.last_gap;
                }
                p.last = cx.ts;
            }
            Some(p) => {
                p.end = p.end.max(end);
            }
            slot @ None => {
                // A retransmission of data sent before the capture counts.
                let again = u32::from(cx.kind == Kind::Retransmission);
                *slot = Some(Pending {
                    first: cx.ts,
                    end,
                    retransmissions: again,
                    last: cx.ts,
                    first_gap: 0.0,
                    last_gap: 0.0,
                    reset_at: None,
                });
            }
        }
    }

    fn finish(&mut self, _flow: &Flow, now: Timestamp) -> Option<RetransmitSummary> {
        let sides = self.watch.as_deref()?;
        let (side, p) = [Side::Client, Side::Server]
            .into_iter()
            .filter_map(|s| sides[s.idx()].map(|p| (s, p)))
            .filter(|(_, p)| p.retransmissions > 0)
            .max_by(|a, b| a.1.retransmissions.cmp(&b.1.retransmissions))?;
        let silent = now.since(p.last) > (p.last_gap * GAVE_UP_GAPS).max(1.0);
        let (how, until) = match p.reset_at {
            Some(rst) => (GaveUp::Rst, Some(rst)),
            None if silent => (GaveUp::Silent, Some(p.last)),
            None => (GaveUp::CaptureEnded, None),
        };
        Some(RetransmitSummary {
            sender: side,
            count: p.retransmissions,
            // Stamps that go back (a wrong clock, a file's garbage) give
            // no duration rather than a negative one.
            gave_up_after: until.map(|t| t.since(p.first)).filter(|d| *d >= 0.0),
            how,
            backoff: p.retransmissions >= 2 && p.last_gap > p.first_gap * 1.5,
        })
    }
}
