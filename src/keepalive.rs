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

use crate::analysis::{Analysis, Ctx};
use crate::flows::Flow;
use crate::tcp::{Kind, Side};
use crate::time::Timestamp;

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
    Probe {
        number: u32,
        idle: Option<f64>,
        since_prev: Option<f64>,
        next_due: Option<Timestamp>,
    },
    /// The peer answered probe `number` (frame `reply_to`) after `rtt`
    /// seconds; `next_due`: when the next probe is due.
    ProbeAnswered {
        reply_to: u64,
        number: u32,
        rtt: f64,
        next_due: Option<Timestamp>,
    },
    /// The peer answered probe `number` (frame `reply_to`) with RST.
    PeerReset { reply_to: u64, number: u32 },
    /// The prober reset the connection after `count` unanswered probes,
    /// `after` seconds after the last one.
    GaveUp { count: u32, after: f64 },
}

/// Bounded list of samples with a median.
#[derive(Clone, Debug, Default)]
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
    /// known), else one idle time after the last segment.
    pub fn next_probe_due(&self, last_ts: Timestamp) -> Option<Timestamp> {
        match self.episode {
            Some(ep) if ep.waiting => self.interval().map(|i| ep.last_probe_ts.plus(i)),
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
    /// A keepalive probe from side `s`. `idle` is the silence before it.
    pub fn probe(&mut self, s: usize, n: u64, ts: Timestamp, idle: Option<f64>) -> Note {
        let p = &mut self.sides[s];
        p.probes += 1;
        match &mut p.episode {
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
                    idle,
                    since_prev: Some(gap),
                    next_due: None,
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
                    idle,
                    since_prev: None,
                    next_due: None,
                }
            }
        }
    }

    /// A non-RST segment from side `s` that acknowledges the other side's
    /// outstanding probe.
    pub fn answered(&mut self, s: usize, ts: Timestamp) -> Note {
        let p = &mut self.sides[1 - s];
        match p.episode {
            Some(ep) if ep.waiting => {
                p.answered += 1;
                p.end_episode(Outcome::Answered, ts);
                Note::ProbeAnswered {
                    reply_to: ep.last_probe_n,
                    number: ep.probes,
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
        if let Some(ep) = other.episode
            && ep.waiting
        {
            other.rst += 1;
            other.end_episode(Outcome::PeerReset, ts);
            return Note::PeerReset {
                reply_to: ep.last_probe_n,
                number: ep.probes,
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
                after,
            };
        }
        Note::None
    }

    /// Side `s` sent something that is neither a probe nor a RST and carries
    /// sequence space (data, FIN): an open episode of its own is over.
    pub fn resumed(&mut self, s: usize, ts: Timestamp) {
        let p = &mut self.sides[s];
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
    /// For a connection still open: when its next probe is due.
    pub next_probe: Option<Timestamp>,
}

/// The keepalive analysis: a [`Tracker`] from a connection's first probe on
/// (most connections never probe, and pay one pointer).
#[derive(Debug, Default)]
pub struct Keepalive(Option<Box<Tracker>>);

impl Analysis for Keepalive {
    type Note = Note;
    type Summary = KeepaliveSummary;

    fn segment(&mut self, cx: &Ctx) -> Note {
        let s = cx.from.idx();
        let mut note = match (cx.kind, &mut self.0) {
            (Kind::Keepalive, k) => k
                .get_or_insert_with(Box::default)
                .probe(s, cx.n, cx.ts, cx.silence),
            (_, None) => return Note::None,
            // A middlebox's RST is not the peer answering, nor the prober giving up.
            (Kind::Rst, Some(_)) if cx.injected => Note::None,
            (Kind::Rst, Some(k)) => k.rst(s, cx.ts),
            (_, Some(k)) => {
                let note = if cx.answers_probe {
                    k.answered(s, cx.ts)
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

    fn finish(&mut self, flow: &Flow) -> KeepaliveSummary {
        let Some(k) = self.0.as_deref_mut() else {
            return KeepaliveSummary::default();
        };
        k.finish(flow.last_ts);
        let [c, s] = &k.sides;
        let prober = match (c.probes > 0, s.probes > 0) {
            (true, true) => Some(Prober::Both),
            (true, false) => Some(Prober::Client),
            (false, true) => Some(Prober::Server),
            (false, false) => None,
        };
        let p = &k.sides[prober.map_or(Side::Client, Prober::side).idx()];
        KeepaliveSummary {
            prober,
            probes: c.probes + s.probes,
            answered: c.answered + s.answered,
            unanswered: c.unanswered + s.unanswered,
            rst: c.rst + s.rst,
            idle: p.idle(),
            interval: p.interval(),
            count: p.count(),
            outcome: k.last_outcome(),
            next_probe: if flow.finished {
                None
            } else {
                k.next_probe_due(flow.last_ts)
            },
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

impl SystemDefaults {
    /// Reads the sysctls; `None` where they do not exist (not Linux).
    pub fn read() -> Option<SystemDefaults> {
        let get = |name: &str| -> Option<f64> {
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        Some(SystemDefaults {
            time: get("tcp_keepalive_time")?,
            intvl: get("tcp_keepalive_intvl")?,
            probes: get("tcp_keepalive_probes")? as u32,
        })
    }

    /// Whether inferred settings differ from these defaults (10% timer slack).
    pub fn differs(&self, idle: Option<f64>, interval: Option<f64>, count: Option<u32>) -> bool {
        let off = |v: Option<f64>, d: f64| v.is_some_and(|v| (v - d).abs() > d * 0.1 + 0.05);
        off(idle, self.time) || off(interval, self.intvl) || count.is_some_and(|c| c != self.probes)
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
            k.probe(0, 4, t(12.0), Some(2.0)),
            Note::Probe { number: 1, .. }
        ));
        assert!(matches!(
            k.probe(0, 5, t(13.0), Some(1.0)),
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
        k.probe(0, 4, t(12.0), Some(2.0));
        assert!(matches!(
            k.answered(1, t(12.001)),
            Note::ProbeAnswered {
                reply_to: 4,
                number: 1,
                ..
            }
        ));
        assert!(matches!(
            k.probe(0, 6, t(14.001), Some(2.0)),
            Note::Probe { number: 1, .. }
        ));
        k.answered(1, t(14.002));
        k.finish(t(20.0));
        assert_eq!(k.sides[0].interval(), None);
        assert_eq!(k.sides[0].count(), None);
        assert_eq!(k.last_outcome(), Some(Outcome::Answered));
    }

    #[test]
    fn rst_reply_is_peer_reset() {
        let mut k = Tracker::default();
        k.probe(0, 9, t(5.0), Some(2.0));
        assert!(matches!(
            k.rst(1, t(5.001)),
            Note::PeerReset {
                reply_to: 9,
                number: 1
            }
        ));
        assert_eq!(k.last_outcome(), Some(Outcome::PeerReset));
        assert_eq!(k.sides[0].rst, 1);
    }
}
