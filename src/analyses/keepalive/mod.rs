//! Keepalive: episodes, inferred settings and the verdict, per flow.
//!
//! An *episode* is a run of probes from one side after a silence: it starts
//! with a probe while that side has no episode open, goes on while probes
//! stay unanswered, and ends when
//! - the peer answers (any segment acknowledging the probe): `Answered`;
//! - the peer answers with RST (it no longer knows the connection): `PeerReset`;
//! - the prober sends its own RST (its kernel gave up): `GaveUp`;
//! - the prober sends data again (not a FIN: an answer may cross it): `Interrupted`;
//! - the capture ends with the last probe unanswered: `Unanswered`.
//!
//! Inference, per probing side:
//! - `idle`: time from the last segment the prober accepted from its peer
//!   to the first probe of an episode, median over episodes (TCP_KEEPIDLE,
//!   tcp_keepalive_time). Linux measures it so (`keepalive_time_elapsed`):
//!   the peer's own probes, answered and discarded, do not end it, so when
//!   both ends probe each one's idle is its own. While the peer answers,
//!   probes come one idle apart.
//! - `interval`: median gap between consecutive unanswered probes of an
//!   episode (TCP_KEEPINTVL). When only one probe went unanswered, Linux's
//!   RST one interval after the last probe gives it.
//! - `count`: unanswered probes in an episode the prober ended with its own
//!   RST (TCP_KEEPCNT).

mod diagram;
mod explain;
mod say;
mod settings;
#[cfg(test)]
mod tests;
mod tracker;

pub use tracker::{ProbeStats, Run, Samples, Tracker};

use crate::analyses::{Analysis, Ctx};
use crate::core::flows::Flow;
use crate::core::tcp::{Kind, Side};
use crate::core::time::Timestamp;

/// How a keepalive episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    PeerReset,
    GaveUp,
    Interrupted,
    Unanswered,
}

/// What the keepalive machinery says about one packet, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Note {
    #[default]
    None,
    /// A keepalive probe: its number in the episode, the silence before it,
    /// and (from #2 on) the gap since the previous probe, which went unanswered.
    /// `next_due`: when the prober's next probe (or its RST) is due, as
    /// far as the settings are inferred yet.
    /// `idle` is `None` when the silence began before the capture.
    /// `unheard`: the previous probe was answered on the wire, but this
    /// probe's TS ecr shows the prober never got the answer.
    /// `ordinal`: the probe's number on the connection (this side's 1st,
    /// 2nd, … probe), as the text timeline numbers them.
    /// `missed`: the previous probe's answer is not in the capture, but
    /// this probe's TS ecr shows it arrived (see [`Tracker::probe`]).
    Probe {
        number: u32,
        ordinal: u32,
        idle: Option<f64>,
        since_prev: Option<f64>,
        next_due: Option<Timestamp>,
        unheard: bool,
        missed: bool,
    },
    /// The peer answered probe `number` (frame `reply_to`) after `rtt`
    /// seconds; `next_due`: when the next probe is due.
    ProbeAnswered {
        reply_to: u64,
        number: u32,
        ordinal: u32,
        rtt: f64,
        next_due: Option<Timestamp>,
    },
    /// The peer answered probe `number` (frame `reply_to`) with RST.
    PeerReset {
        reply_to: u64,
        number: u32,
        ordinal: u32,
    },
    /// The prober reset the connection after `count` unanswered probes,
    /// `after` seconds after the last one. `unheard`: the probes were
    /// answered on the wire, but the prober never heard the answers.
    GaveUp {
        count: u32,
        /// The first probe seen may not have been the first sent (nothing
        /// from the peer came before it in the capture): `count` is a
        /// lower bound.
        at_least: bool,
        /// The last probe's number on the connection.
        ordinal: u32,
        after: f64,
        unheard: bool,
    },
}

/// Which side sent keepalive probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prober {
    Client,
    Server,
    Both,
}

impl Prober {
    pub fn as_str(self) -> &'static str {
        match self {
            Prober::Client => "client",
            Prober::Server => "server",
            Prober::Both => "both",
        }
    }

    /// Whether `side` probed.
    pub fn includes(self, side: Side) -> bool {
        matches!(
            (self, side),
            (Prober::Both, _) | (Prober::Client, Side::Client) | (Prober::Server, Side::Server)
        )
    }

    /// The side whose settings are reported (the client when both probed).
    pub fn side(self) -> Side {
        match self {
            Prober::Server => Side::Server,
            Prober::Client | Prober::Both => Side::Client,
        }
    }
}

/// What the flow summary says about keepalive.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KeepaliveSummary {
    pub prober: Option<Prober>,
    /// Probes of both sides: sent, answered, unanswered, answered by RST.
    pub probes: u32,
    pub answered: u32,
    pub unanswered: u32,
    pub rst: u32,
    /// Answers the capture missed (counted in `answered`): the prober's
    /// next probe came one idle later and its TS ecr showed it heard them.
    pub missed: u32,
    /// Inferred settings of the prober (the client when both probed).
    pub idle: Option<f64>,
    pub interval: Option<f64>,
    pub count: Option<u32>,
    /// `count` is a lower bound: the episode's first probe seen may not
    /// have been its first (the silence began before the capture).
    pub count_at_least: bool,
    /// How the latest episode of either side ended.
    pub outcome: Option<Outcome>,
    /// The prober's latest run of probes was answered on the wire but not
    /// heard (see [`Run::deaf`]).
    pub acks_dropped: Option<Run>,
    /// For a connection still open: when its next probe is due.
    pub next_probe: Option<Timestamp>,
    /// The capture ended with probes unanswered: how many in a row, and
    /// how long the capture went on after the last of them.
    pub pending: Option<Pending>,
}

impl KeepaliveSummary {
    /// TCP_KEEPCNT when it is known exactly (not a lower bound): what may
    /// be compared with a stack's defaults.
    pub fn exact_count(&self) -> Option<u32> {
        self.count.filter(|_| !self.count_at_least)
    }
}

/// Probes still unanswered when the capture (or the flow) ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pending {
    pub probes: u32,
    /// Seconds from the last probe to the end of the capture.
    pub waited: f64,
}

impl Pending {
    /// Less than this after a lone probe, a missing answer means little: a
    /// dead peer, an answer on its way and a capture stopped (or rotated)
    /// right after the probe look the same.
    pub const TOO_SOON: f64 = 1.0;

    /// One unanswered probe, and the capture ended within [`Self::TOO_SOON`].
    pub fn too_soon(&self) -> bool {
        self.probes < 2 && self.waited < Self::TOO_SOON
    }
}

/// The keepalive analysis: a [`Tracker`] from a connection's first probe on
/// (most connections never probe, and pay one pointer).
#[derive(Clone, Debug, Default)]
pub struct Keepalive(Option<Box<Tracker>>);

impl Analysis for Keepalive {
    type Note = Note;
    type Summary = KeepaliveSummary;

    #[inline(always)]
    fn segment(&mut self, cx: &Ctx) -> Note {
        let s = cx.from.idx();
        if let Some(k) = &mut self.0 {
            k.heard_from(s, cx.seg.timestamps().map(|(val, _)| val));
        }
        let mut note = match (cx.kind, &mut self.0) {
            (Kind::Keepalive, k) => k.get_or_insert_with(Box::default).probe(
                s,
                cx.n,
                cx.ts,
                cx.heard,
                cx.seg.timestamps(),
            ),
            (_, None) => return Note::None,
            // A middlebox's RST is not the peer answering, nor the prober giving up.
            (Kind::Rst, Some(_)) if cx.injected => Note::None,
            (Kind::Rst, Some(k)) => k.rst(s, cx.ts),
            (_, Some(k)) => {
                let note = if cx.answers_probe {
                    k.answered(s, cx.ts, cx.seg.timestamps().map(|(val, _)| val))
                } else {
                    Note::None
                };
                // New data ends the prober's wait; its FIN does not (the
                // answer may cross it, and a FIN is no sign of life).
                if cx.seg.len > 0 && cx.kind != Kind::ZeroWindowProbe {
                    k.resumed(s, cx.ts);
                }
                note
            }
        };
        if let (Note::Probe { next_due, .. } | Note::ProbeAnswered { next_due, .. }, Some(k)) =
            (&mut note, &self.0)
        {
            *next_due = k.next_probe_due(cx.ts);
        }
        note
    }

    /// A probe first taken for an ACK: the tracker counts it now, as it
    /// would have then (nothing else of the flow came after it).
    fn revise(&mut self, cx: &Ctx) -> Note {
        self.segment(cx)
    }

    fn finish(&mut self, flow: &Flow, now: Timestamp) -> KeepaliveSummary {
        let Some(k) = self.0.as_deref_mut() else {
            return KeepaliveSummary::default();
        };
        let pending = k.pending(now);
        k.finish(flow.last_ts);
        let [c, s] = &k.sides;
        let prober = match (c.probes > 0, s.probes > 0) {
            (true, true) => Some(Prober::Both),
            (true, false) => Some(Prober::Client),
            (false, true) => Some(Prober::Server),
            (false, false) => None,
        };
        let p = &k.sides[prober.map_or(Side::Client, Prober::side).idx()];
        let deaf = Some(p.run).filter(Run::deaf);
        // With acks dropped, the settings come from the prober's behaviour,
        // not from the answers.
        let (idle, interval, count) = match deaf {
            Some(run) => (
                run.first_idle,
                run.gap(),
                run.gave_up.map(|_| run.deaf_count()),
            ),
            None => (p.idle(), p.interval(), p.count()),
        };
        let count_at_least = count.is_some() && p.count_at_least;
        KeepaliveSummary {
            prober,
            probes: c.probes + s.probes,
            answered: c.answered + s.answered,
            unanswered: c.unanswered + s.unanswered,
            rst: c.rst + s.rst,
            missed: c.missed + s.missed,
            idle,
            interval,
            count,
            count_at_least,
            outcome: k.last_outcome(),
            acks_dropped: deaf,
            next_probe: if flow.finished || deaf.is_some() {
                None
            } else {
                k.next_probe_due(flow.last_ts)
            },
            pending,
        }
    }
}

/// This host's keepalive defaults (Linux: /proc/sys/net/ipv4/tcp_keepalive_*).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SystemDefaults {
    pub time: f64,
    pub intvl: f64,
    pub probes: u32,
}

/// Linux's own defaults: tcp_keepalive_time 7200 s, tcp_keepalive_intvl
/// 75 s, tcp_keepalive_probes 9.
pub const LINUX_DEFAULTS: SystemDefaults = SystemDefaults {
    time: 7200.0,
    intvl: 75.0,
    probes: 9,
};

/// Windows' defaults (KeepAliveTime 2 h, KeepAliveInterval 1 s, 10
/// probes since Vista); its probes carry one garbage byte.
pub const WINDOWS_DEFAULTS: SystemDefaults = SystemDefaults {
    time: 7200.0,
    intvl: 1.0,
    probes: 10,
};

impl SystemDefaults {
    /// Which inferred settings differ from these defaults (10% timer
    /// slack; unknown values are not compared): `idle`, `interval`, `count`.
    pub fn differing(
        &self,
        idle: Option<f64>,
        interval: Option<f64>,
        count: Option<u32>,
    ) -> [bool; 3] {
        let off = |v: Option<f64>, d: f64| v.is_some_and(|v| (v - d).abs() > d * 0.1 + 0.05);
        [
            off(idle, self.time),
            off(interval, self.intvl),
            count.is_some_and(|c| c != self.probes),
        ]
    }
}
