//! Keepalive: episodes, inferred settings and the verdict, per flow.
//!
//! An *episode* is a run of probes from one side after a silence: it starts
//! with a probe while that side has no episode open, goes on while probes
//! stay unanswered, and ends when
//! - the peer answers (any segment acknowledging the probe): `Answered`;
//! - the peer answers with RST (it no longer knows the connection): `PeerReset`;
//! - the prober sends its own RST (its kernel gave up): `GaveUp`;
//! - the prober sends data again: `Interrupted`;
//! - the capture ends with the last probe unanswered: `Unanswered`.
//!
//! Inference, per probing side:
//! - `idle`: time from the last segment of the connection (either direction)
//!   to the first probe of an episode, median over episodes (TCP_KEEPIDLE,
//!   tcp_keepalive_time). While the peer answers, probes come one idle apart.
//! - `interval`: median gap between consecutive unanswered probes of an
//!   episode (TCP_KEEPINTVL). When only one probe went unanswered, Linux's
//!   RST one interval after the last probe gives it.
//! - `count`: unanswered probes in an episode the prober ended with its own
//!   RST (TCP_KEEPCNT).

mod explain;
mod say;
mod settings;

use crate::analyses::{Analysis, Ctx};
use crate::core::flows::Flow;
use crate::core::tcp::{Kind, Side};
use crate::core::time::Timestamp;

/// Most samples kept per statistic: medians over the first ones (kept
/// inline, so a flow's keepalive state needs no allocation beyond its box).
const MAX_SAMPLES: usize = 16;

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
    Probe {
        number: u32,
        ordinal: u32,
        idle: Option<f64>,
        since_prev: Option<f64>,
        next_due: Option<Timestamp>,
        unheard: bool,
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
        /// The last probe's number on the connection.
        ordinal: u32,
        after: f64,
        unheard: bool,
    },
}

/// Bounded list of samples with a median.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Samples {
    v: [f64; MAX_SAMPLES],
    n: usize,
}

impl Samples {
    fn push(&mut self, v: f64) {
        if self.n < MAX_SAMPLES {
            self.v[self.n] = v;
            self.n += 1;
        }
    }

    pub fn median(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let mut v = self.v;
        let v = &mut v[..self.n];
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Episode {
    probes: u32,
    last_probe_ts: Timestamp,
    last_probe_n: u64,
    /// The last probe has not been answered yet.
    waiting: bool,
}

/// The latest run of probes of one side with nothing else from it in
/// between (its data or FIN, or the peer's RST, end a run): what tells a
/// prober that does not hear the answers its peer sends.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Run {
    pub probes: u32,
    /// Probes the peer answered on the wire.
    pub answered: u32,
    /// Probes whose TS ecr did not move to the answer the previous probe got.
    pub unheard: u32,
    /// Gaps between consecutive probes of the run: their sum and number
    /// (a run's gaps are one TCP_KEEPINTVL each; a mean is enough).
    gap_sum: f64,
    gaps: u32,
    /// Silence before the run's first probe (`None`: since before the capture).
    pub first_idle: Option<f64>,
    /// The prober's RST about one gap after its last, answered, probe:
    /// seconds after that probe.
    pub gave_up: Option<f64>,
    last_ts: Option<Timestamp>,
    last_number: u32,
    last_ecr: Option<u32>,
    last_answered: bool,
    answer_tsval: Option<u32>,
}

impl Run {
    /// The prober behaved as if it heard none of the answers on the wire.
    pub fn deaf(&self) -> bool {
        self.answered > 0 && (self.unheard > 0 || self.gave_up.is_some())
    }

    /// The mean gap between consecutive probes of the run.
    pub fn gap(&self) -> Option<f64> {
        (self.gaps > 0).then(|| self.gap_sum / f64::from(self.gaps))
    }
}

/// Keepalive state and statistics of one probing side.
#[derive(Clone, Debug, Default)]
pub struct ProbeStats {
    pub probes: u32,
    pub answered: u32,
    pub unanswered: u32,
    pub rst: u32,
    pub idles: Samples,
    pub intervals: Samples,
    /// Gaps from the last unanswered probe to the prober's RST.
    pub rst_gaps: Samples,
    /// Unanswered probes of the latest episode that ended in our RST.
    pub count: Option<u32>,
    episode: Option<Episode>,
    /// Outcome and end time of the latest finished episode.
    pub last: Option<(Outcome, Timestamp)>,
    pub run: Run,
}

impl ProbeStats {
    fn end_episode(&mut self, outcome: Outcome, ts: Timestamp) {
        self.episode = None;
        self.last = Some((outcome, ts));
    }

    /// TCP_KEEPIDLE as inferred.
    pub fn idle(&self) -> Option<f64> {
        self.idles.median()
    }

    /// TCP_KEEPINTVL as inferred.
    pub fn interval(&self) -> Option<f64> {
        self.intervals.median().or_else(|| self.rst_gaps.median())
    }

    /// When this side's next probe is due, given the connection's last
    /// segment: one interval after an unanswered probe (when the interval is
    /// known) — or after an answered one the prober did not hear —, else one
    /// idle time after the last segment.
    pub fn next_probe_due(&self, last_ts: Timestamp) -> Option<Timestamp> {
        let deaf = self.run.unheard > 0 && self.run.last_answered;
        match (self.episode, self.run.last_ts) {
            (Some(ep), _) if ep.waiting => self.interval().map(|i| ep.last_probe_ts.plus(i)),
            (_, Some(last)) if deaf => self.interval().map(|i| last.plus(i)),
            _ => self.idle().map(|i| last_ts.plus(i)),
        }
    }

    /// TCP_KEEPCNT as inferred (the latest episode that ended in our RST).
    pub fn count(&self) -> Option<u32> {
        self.count
    }
}

/// Per-flow keepalive tracker: one [`Prober`] per side.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    pub sides: [ProbeStats; 2],
}

impl Tracker {
    /// A keepalive probe from side `s`. `idle` is the silence before it;
    /// `tsopt` its TCP timestamps (val, ecr).
    pub fn probe(
        &mut self,
        s: usize,
        n: u64,
        ts: Timestamp,
        idle: Option<f64>,
        tsopt: Option<(u32, u32)>,
    ) -> Note {
        let p = &mut self.sides[s];
        p.probes += 1;
        let ordinal = p.probes;
        let run = &mut p.run;
        let ecr = tsopt.map(|(_, e)| e);
        let unheard = run.last_answered
            && ecr.is_some()
            && ecr == run.last_ecr
            && run.answer_tsval.is_some_and(|v| Some(v) != ecr);
        let gap = run.last_ts.map(|prev| ts.since(prev));
        match gap {
            Some(g) => {
                run.gap_sum += g;
                run.gaps += 1;
            }
            None => run.first_idle = idle,
        }
        run.probes += 1;
        run.unheard += u32::from(unheard);
        run.last_ts = Some(ts);
        run.last_ecr = ecr;
        run.last_answered = false;
        run.answer_tsval = None;
        if let (true, Some(gap)) = (unheard, gap) {
            // Answered on the wire, not heard: the same episode goes on.
            let number = run.last_number + 1;
            run.last_number = number;
            p.intervals.push(gap);
            p.episode = Some(Episode {
                probes: number,
                last_probe_ts: ts,
                last_probe_n: n,
                waiting: true,
            });
            return Note::Probe {
                number,
                ordinal,
                idle,
                since_prev: Some(gap),
                next_due: None,
                unheard: true,
            };
        }
        let note = match &mut p.episode {
            Some(ep) if ep.waiting => {
                // The previous probe went unanswered: same episode.
                let gap = ts.since(ep.last_probe_ts);
                ep.probes += 1;
                ep.last_probe_ts = ts;
                ep.last_probe_n = n;
                let number = ep.probes;
                p.unanswered += 1;
                p.intervals.push(gap);
                Note::Probe {
                    number,
                    ordinal,
                    idle,
                    since_prev: Some(gap),
                    next_due: None,
                    unheard: false,
                }
            }
            _ => {
                if let Some(i) = idle {
                    p.idles.push(i);
                }
                p.episode = Some(Episode {
                    probes: 1,
                    last_probe_ts: ts,
                    last_probe_n: n,
                    waiting: true,
                });
                Note::Probe {
                    number: 1,
                    ordinal,
                    idle,
                    since_prev: None,
                    next_due: None,
                    unheard: false,
                }
            }
        };
        if let Note::Probe { number, .. } = note {
            p.run.last_number = number;
        }
        note
    }

    /// A non-RST segment from side `s` that acknowledges the other side's
    /// outstanding probe; `tsval` its TCP timestamp.
    pub fn answered(&mut self, s: usize, ts: Timestamp, tsval: Option<u32>) -> Note {
        let p = &mut self.sides[1 - s];
        match p.episode {
            Some(ep) if ep.waiting => {
                p.answered += 1;
                p.run.answered += 1;
                p.run.last_answered = true;
                p.run.answer_tsval = tsval;
                p.end_episode(Outcome::Answered, ts);
                Note::ProbeAnswered {
                    reply_to: ep.last_probe_n,
                    number: ep.probes,
                    ordinal: p.probes,
                    rtt: ts.since(ep.last_probe_ts),
                    next_due: None,
                }
            }
            _ => Note::None,
        }
    }

    /// A RST from side `s`: either the answer to the other side's probe, or
    /// side `s` giving up on its own unanswered probes.
    pub fn rst(&mut self, s: usize, ts: Timestamp) -> Note {
        let other = &mut self.sides[1 - s];
        other.run = Run::default();
        if let Some(ep) = other.episode
            && ep.waiting
        {
            other.rst += 1;
            other.end_episode(Outcome::PeerReset, ts);
            return Note::PeerReset {
                reply_to: ep.last_probe_n,
                number: ep.probes,
                ordinal: other.probes,
            };
        }
        let me = &mut self.sides[s];
        if let Some(ep) = me.episode
            && ep.waiting
        {
            let after = ts.since(ep.last_probe_ts);
            me.unanswered += 1;
            me.count = Some(ep.probes);
            me.rst_gaps.push(after);
            me.end_episode(Outcome::GaveUp, ts);
            return Note::GaveUp {
                count: ep.probes,
                ordinal: me.probes,
                after,
                unheard: false,
            };
        }
        // Its last probe was answered on the wire; a RST about one probe gap
        // later is the kernel giving up on answers it never got.
        let run = &mut me.run;
        if run.last_answered
            && run.probes >= 2
            && let (Some(last), Some(gap)) = (run.last_ts, run.gap())
        {
            let after = ts.since(last);
            if (after - gap).abs() <= gap * 0.25 + 0.05 {
                run.gave_up = Some(after);
                me.count = Some(run.probes);
                me.rst_gaps.push(after);
                me.last = Some((Outcome::GaveUp, ts));
                return Note::GaveUp {
                    count: run.probes,
                    ordinal: me.probes,
                    after,
                    unheard: true,
                };
            }
        }
        Note::None
    }

    /// Side `s` sent something that is neither a probe nor a RST and carries
    /// sequence space (data, FIN): an open episode of its own is over.
    pub fn resumed(&mut self, s: usize, ts: Timestamp) {
        let p = &mut self.sides[s];
        p.run = Run::default();
        if let Some(ep) = p.episode
            && ep.waiting
        {
            p.unanswered += 1;
            p.end_episode(Outcome::Interrupted, ts);
        }
    }

    /// End of the flow: probes still waiting count as unanswered.
    pub fn finish(&mut self, ts: Timestamp) {
        for p in &mut self.sides {
            if let Some(ep) = p.episode
                && ep.waiting
            {
                p.unanswered += 1;
                p.end_episode(Outcome::Unanswered, ts);
            }
        }
    }

    /// The earliest next probe due from either side, for an open connection.
    pub fn next_probe_due(&self, last_ts: Timestamp) -> Option<Timestamp> {
        self.sides
            .iter()
            .filter(|p| p.probes > 0)
            .filter_map(|p| p.next_probe_due(last_ts))
            .min()
    }

    pub fn probes(&self) -> u32 {
        self.sides[0].probes + self.sides[1].probes
    }

    /// The outcome of the latest episode of either side.
    pub fn last_outcome(&self) -> Option<Outcome> {
        self.sides
            .iter()
            .filter_map(|p| p.last)
            .max_by_key(|(_, ts)| *ts)
            .map(|(o, _)| o)
    }
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
    /// Inferred settings of the prober (the client when both probed).
    pub idle: Option<f64>,
    pub interval: Option<f64>,
    pub count: Option<u32>,
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
        let mut note = match (cx.kind, &mut self.0) {
            (Kind::Keepalive, k) => k.get_or_insert_with(Box::default).probe(
                s,
                cx.n,
                cx.ts,
                cx.silence,
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
                if cx.seg.seq_len() > 0 && cx.kind != Kind::ZeroWindowProbe {
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
        let pending = k
            .sides
            .iter()
            .filter_map(|p| p.episode.filter(|e| e.waiting))
            .max_by_key(|e| e.last_probe_ts)
            .map(|e| Pending {
                probes: e.probes,
                waited: now.since(e.last_probe_ts).max(0.0),
            });
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
            Some(run) => (run.first_idle, run.gap(), run.gave_up.map(|_| run.probes)),
            None => (p.idle(), p.interval(), p.count()),
        };
        KeepaliveSummary {
            prober,
            probes: c.probes + s.probes,
            answered: c.answered + s.answered,
            unanswered: c.unanswered + s.unanswered,
            rst: c.rst + s.rst,
            idle,
            interval,
            count,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: f64) -> Timestamp {
        Timestamp::new(s.trunc() as i64, ((s.fract()) * 1e9).round() as u32)
    }

    #[test]
    fn dead_peer_episode_infers_interval_and_count() {
        let mut k = Tracker::default();
        assert!(matches!(
            k.probe(0, 4, t(12.0), Some(2.0), None),
            Note::Probe { number: 1, .. }
        ));
        assert!(matches!(
            k.probe(0, 5, t(13.0), Some(1.0), None),
            Note::Probe {
                number: 2,
                since_prev: Some(_),
                ..
            }
        ));
        assert!(matches!(k.rst(0, t(14.0)), Note::GaveUp { count: 2, .. }));
        k.finish(t(15.0));
        let p = &k.sides[0];
        assert_eq!((p.probes, p.unanswered, p.answered), (2, 2, 0));
        assert_eq!(p.idle(), Some(2.0));
        assert!((p.interval().unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(p.count(), Some(2));
        assert_eq!(k.last_outcome(), Some(Outcome::GaveUp));
    }

    #[test]
    fn answered_probes_are_separate_episodes() {
        let mut k = Tracker::default();
        k.probe(0, 4, t(12.0), Some(2.0), None);
        assert!(matches!(
            k.answered(1, t(12.001), None),
            Note::ProbeAnswered {
                reply_to: 4,
                number: 1,
                ..
            }
        ));
        assert!(matches!(
            k.probe(0, 6, t(14.001), Some(2.0), None),
            Note::Probe { number: 1, .. }
        ));
        k.answered(1, t(14.002), None);
        k.finish(t(20.0));
        assert_eq!(k.sides[0].interval(), None);
        assert_eq!(k.sides[0].count(), None);
        assert_eq!(k.last_outcome(), Some(Outcome::Answered));
    }

    #[test]
    fn rst_reply_is_peer_reset() {
        let mut k = Tracker::default();
        k.probe(0, 9, t(5.0), Some(2.0), None);
        assert!(matches!(
            k.rst(1, t(5.001)),
            Note::PeerReset {
                reply_to: 9,
                number: 1,
                ordinal: 1
            }
        ));
        assert_eq!(k.last_outcome(), Some(Outcome::PeerReset));
        assert_eq!(k.sides[0].rst, 1);
    }
}

#[cfg(test)]
mod deaf {
    use super::*;

    fn t(s: f64) -> Timestamp {
        Timestamp::new(1_700_000_000, 0).plus(s)
    }

    #[test]
    fn answered_probes_the_prober_did_not_hear_are_one_episode() {
        // Probes 75 s apart, each answered on the wire (TS val 500, 600),
        // but every probe echoes TS ecr 100: the answers never arrived.
        let mut k = Tracker::default();
        k.probe(0, 1, t(0.0), Some(7200.0), Some((10, 100)));
        k.answered(1, t(0.001), Some(500));
        let note = k.probe(0, 3, t(75.0), Some(75.0), Some((85, 100)));
        assert!(matches!(
            note,
            Note::Probe {
                number: 2,
                unheard: true,
                ..
            }
        ));
        k.answered(1, t(75.001), Some(600));
        assert!(matches!(
            k.rst(0, t(150.0)),
            Note::GaveUp {
                count: 2,
                unheard: true,
                ..
            }
        ));
        let run = k.sides[0].run;
        assert!(run.deaf());
        assert_eq!((run.probes, run.answered, run.unheard), (2, 2, 1));
        assert_eq!(run.first_idle, Some(7200.0));
        assert!((run.gap().unwrap() - 75.0).abs() < 1e-6);
    }

    #[test]
    fn a_heard_answer_moves_ts_ecr_and_is_no_evidence() {
        let mut k = Tracker::default();
        k.probe(0, 1, t(0.0), Some(2.0), Some((10, 100)));
        k.answered(1, t(0.001), Some(500));
        let note = k.probe(0, 3, t(2.0), Some(2.0), Some((12, 500)));
        assert!(matches!(
            note,
            Note::Probe {
                number: 1,
                unheard: false,
                ..
            }
        ));
        k.answered(1, t(2.001), Some(700));
        assert!(!k.sides[0].run.deaf());
    }

    #[test]
    fn without_timestamps_the_probers_rst_after_answered_probes_is_the_evidence() {
        let mut k = Tracker::default();
        for i in 0..3 {
            let at = 75.0 * f64::from(i);
            k.probe(0, 1, t(at), Some(75.0), None);
            k.answered(1, t(at + 0.001), None);
        }
        assert!(matches!(
            k.rst(0, t(225.0)),
            Note::GaveUp {
                count: 3,
                unheard: true,
                ..
            }
        ));
        assert!(k.sides[0].run.deaf());
        // An application's abort long after an answered probe is not.
        let mut k = Tracker::default();
        k.probe(0, 1, t(0.0), Some(2.0), None);
        k.answered(1, t(0.001), None);
        k.probe(0, 3, t(2.0), Some(2.0), None);
        k.answered(1, t(2.001), None);
        assert!(matches!(k.rst(0, t(30.0)), Note::None));
        assert!(!k.sides[0].run.deaf());
    }
}

#[cfg(test)]
mod defaults {
    use super::*;

    #[test]
    fn only_settings_that_differ_are_named_and_unknown_ones_never() {
        let d = LINUX_DEFAULTS;
        assert_eq!(
            d.differing(Some(20.48), Some(1.02), Some(9)),
            [true, true, false]
        );
        assert_eq!(
            d.differing(Some(7210.0), Some(75.3), None),
            [false, false, false]
        );
        assert_eq!(d.differing(None, None, None), [false, false, false]);
    }
}
