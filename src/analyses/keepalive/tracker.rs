//! The keepalive tracker of one connection: per side, its episodes (runs
//! of probes after a silence and how they ended), the samples the settings
//! are inferred from, and the latest run (what tells a prober that does not
//! hear the answers its peer sends).

use super::{Note, Outcome, Pending};
use crate::core::time::Timestamp;

/// Most samples kept per statistic: medians over the first ones (kept
/// inline, so a flow's keepalive state needs no allocation beyond its box).
const MAX_SAMPLES: usize = 16;

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
    /// Nothing from the peer was heard before its first probe in the
    /// capture: earlier probes may have gone before the capture began, so
    /// its count is a lower bound.
    blind: bool,
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
    /// The same over the gaps before probes that show the previous answer
    /// went unheard: those alone are one TCP_KEEPINTVL each (the gaps
    /// before, while answers were heard, are TCP_KEEPIDLE).
    deaf_gap_sum: f64,
    deaf_gaps: u32,
    /// Probes since the last one whose answer the prober heard: the first
    /// unheard answer's probe and every probe after it (0 while all heard).
    pub deaf_probes: u32,
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

    /// The mean gap between consecutive probes of the run: of its unheard
    /// episode when the TS ecr shows one, else of all its probes.
    pub fn gap(&self) -> Option<f64> {
        if self.deaf_gaps > 0 {
            return Some(self.deaf_gap_sum / f64::from(self.deaf_gaps));
        }
        (self.gaps > 0).then(|| self.gap_sum / f64::from(self.gaps))
    }

    /// The probes the prober sent without hearing an answer: its unheard
    /// episode when the TS ecr shows one, else the whole run.
    pub fn deaf_count(&self) -> u32 {
        if self.deaf_probes > 0 {
            self.deaf_probes
        } else {
            self.probes
        }
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
    /// `count` is a lower bound (see `Episode::blind`).
    pub count_at_least: bool,
    episode: Option<Episode>,
    /// Outcome and end time of the latest finished episode.
    pub last: Option<(Outcome, Timestamp)>,
    pub run: Run,
    /// The latest episode ended `Interrupted` (the prober sent data) and
    /// nothing came from the peer since: its data may have gone unanswered
    /// too, which is no sign of life.
    pub peer_quiet: bool,
    /// Answers the capture missed (counted in `answered`): see
    /// [`Tracker::probe`].
    pub missed: u32,
    /// The TS val of the latest segment seen from the peer.
    peer_tsval: Option<u32>,
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
    /// Probes still unanswered when the connection is reported at `now`:
    /// the side that probed last.
    pub fn pending(&self, now: Timestamp) -> Option<Pending> {
        self.sides
            .iter()
            .filter_map(|p| p.episode.filter(|e| e.waiting))
            .max_by_key(|e| e.last_probe_ts)
            .map(|e| Pending {
                probes: e.probes,
                waited: now.since(e.last_probe_ts).max(0.0),
            })
    }

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
        let ecr = tsopt.map(|(_, e)| e);
        // The previous probe looks unanswered, but this one's TS ecr moved
        // to a TS val the capture never showed from the peer: the prober
        // heard from its peer in between (ts_recent moves only on what it
        // accepts), so the answer arrived and the capture missed it. It
        // counts as answered, and this probe opens a new episode one idle
        // after it (no interval from the gap).
        let mut idle = idle;
        let missed = match p.episode {
            Some(ep) if ep.waiting => {
                let moved = p.run.last_ecr.is_some_and(|prev| {
                    ecr.is_some_and(|e| e != 0 && e != prev && Some(e) != p.peer_tsval)
                });
                if moved {
                    let gap = ts.since(ep.last_probe_ts);
                    p.answered += 1;
                    p.missed += 1;
                    p.run.answered += 1;
                    p.run.last_answered = true;
                    p.run.answer_tsval = ecr;
                    p.end_episode(Outcome::Answered, ep.last_probe_ts);
                    idle = Some(gap);
                }
                moved
            }
            _ => false,
        };
        let run = &mut p.run;
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
        if unheard {
            if let Some(g) = gap {
                run.deaf_gap_sum += g;
                run.deaf_gaps += 1;
            }
            // The previous probe's answer was the first unheard one.
            run.deaf_probes = if run.deaf_probes == 0 {
                2
            } else {
                run.deaf_probes + 1
            };
        } else if run.deaf_probes > 0 {
            run.deaf_probes += 1;
        }
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
                blind: run.first_idle.is_none(),
            });
            return Note::Probe {
                number,
                ordinal,
                idle,
                since_prev: Some(gap),
                next_due: None,
                unheard: true,
                missed,
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
                    // The silence before it: nothing since the last probe.
                    idle: Some(gap),
                    since_prev: Some(gap),
                    next_due: None,
                    unheard: false,
                    missed,
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
                    blind: idle.is_none(),
                });
                Note::Probe {
                    number: 1,
                    ordinal,
                    idle,
                    since_prev: None,
                    next_due: None,
                    unheard: false,
                    missed,
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
            me.count_at_least = ep.blind;
            me.rst_gaps.push(after);
            me.end_episode(Outcome::GaveUp, ts);
            return Note::GaveUp {
                count: ep.probes,
                at_least: ep.blind,
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
                me.count = Some(run.deaf_count());
                me.count_at_least = run.first_idle.is_none();
                me.rst_gaps.push(after);
                me.last = Some((Outcome::GaveUp, ts));
                return Note::GaveUp {
                    count: run.deaf_count(),
                    at_least: run.first_idle.is_none(),
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
            p.peer_quiet = true;
        }
    }

    /// Side `s` sent something (`tsval`: its TS val): its peer's
    /// interrupted episode (if any) has its sign of life.
    pub fn heard_from(&mut self, s: usize, tsval: Option<u32>) {
        let p = &mut self.sides[1 - s];
        p.peer_quiet = false;
        if tsval.is_some() {
            p.peer_tsval = tsval;
        }
    }

    /// End of the flow: probes still waiting count as unanswered, and an
    /// episode the prober's data interrupted, with nothing from the peer
    /// since, went unanswered (the data was not answered either).
    pub fn finish(&mut self, ts: Timestamp) {
        for p in &mut self.sides {
            if p.peer_quiet
                && let Some((Outcome::Interrupted, at)) = p.last
            {
                p.last = Some((Outcome::Unanswered, at));
            }
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
