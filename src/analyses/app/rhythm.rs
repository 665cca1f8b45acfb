//! Keepalives under encryption (TLS, SSH), by their rhythm: the content is
//! hidden, the sizes and times are not.
//!
//! The rule: an *exchange* is a small segment (at most [`SMALL_RECORD`]
//! bytes of payload) from one side answered by a small segment from the
//! other within [`ANSWER_WITHIN`]; a *run* is a series of exchanges with the
//! same sender and the same two sizes, at a near-constant period (each gap
//! within [`TOLERANCE`] of the first, which is at least [`MIN_PERIOD`]), with
//! no other payload between them. A keepalive's answer is immediate (a
//! round trip, not the peer's work: at most [`IMMEDIATE`] of the period)
//! and no bigger than its request by more than [`ANSWER_GROWTH`] bytes (it
//! echoes or acknowledges): so a login loop whose failures come seconds
//! after each attempt is no keepalive either way round (the attempt waits
//! for work; read from the failure, the "answer" is the next, bigger,
//! attempt). A run of [`MIN_REPEATS`] or more is
//! reported as "likely application keepalive (encrypted)" — never as
//! certain. What looks the same: any request/answer of fixed size polled at
//! a fixed period (a status poll, a metrics scrape on a kept-alive
//! connection); keystroke echo typed at a steady pace slower than
//! [`MIN_PERIOD`]. A bulk transfer or irregular traffic breaks every run.
//!
//! Labels: the answer of the exchange that makes the run reach
//! [`MIN_REPEATS`], and every matching exchange after it (its request
//! `ping`, its answer `pong`); the run's earlier exchanges are relabeled
//! then (`Rhythm::relabel`, a revision as for a probe first taken for an
//! ACK).

use super::{AppEvent, AppNote, Label, State};
use crate::analyses::{Ctx, Relabel};
use crate::core::tcp::Side;
use crate::core::time::Timestamp;

pub const SMALL_RECORD: u32 = 160;
pub const ANSWER_WITHIN: f64 = 2.0;
pub const MIN_PERIOD: f64 = 0.5;
pub const TOLERANCE: f64 = 0.15;
pub const MIN_REPEATS: u32 = 3;
pub const IMMEDIATE: f64 = 0.25;
pub const ANSWER_GROWTH: u16 = 32;

/// A series of equal exchanges at a steady period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    pub side: Side,
    pub sizes: (u16, u16),
    pub first: Timestamp,
    pub last: Timestamp,
    pub period: f64,
    pub count: u32,
    /// The slowest answer of the run, in seconds.
    pub slowest: f64,
    /// Frame numbers of its first two exchanges: request, answer, request,
    /// answer.
    pub early: [u64; 4],
}

#[derive(Clone, Debug, Default)]
pub struct Rhythm {
    /// A small segment waiting for its answer: sender, size, time, frame.
    open: Option<(Side, u16, Timestamp, u64)>,
    run: Option<Run>,
    best: Option<Run>,
}

impl Rhythm {
    /// The longest run that reached [`MIN_REPEATS`].
    pub fn best(&self) -> Option<Run> {
        let cur = self.run.filter(|r| r.count >= MIN_REPEATS);
        match (cur, self.best) {
            (Some(c), Some(b)) if b.count >= c.count => Some(b),
            (Some(c), _) => Some(c),
            (None, b) => b,
        }
    }

    fn end_run(&mut self) {
        if let Some(r) = self.run.take()
            && r.count >= MIN_REPEATS
            && self.best.is_none_or(|b| r.count > b.count)
        {
            self.best = Some(r);
        }
    }

    /// Whether a request of `size` from `side` at `ts` would keep the run.
    fn fits(&self, side: Side, size: u16, ts: Timestamp) -> bool {
        self.run.is_some_and(|r| {
            r.count >= MIN_REPEATS - 1 && r.side == side && r.sizes.0 == size && {
                let gap = ts.since(r.last);
                (gap - r.period).abs() <= TOLERANCE * r.period
            }
        })
    }

    /// A completed exchange, answered `delay` seconds after its request
    /// at `at`; returns the run when it keeps one.
    fn exchange(
        &mut self,
        side: Side,
        sizes: (u16, u16),
        at: Timestamp,
        delay: f64,
        frames: [u64; 2],
    ) -> Option<Run> {
        if sizes.1 > sizes.0.saturating_add(ANSWER_GROWTH) {
            // An answer that carries more than its request: not a pong.
            self.end_run();
            return None;
        }
        if let Some(r) = self.run.as_mut()
            && r.side == side
            && r.sizes == sizes
        {
            let gap = at.since(r.last);
            let slowest = r.slowest.max(delay);
            let fits = if r.count == 1 {
                gap >= MIN_PERIOD
            } else {
                (gap - r.period).abs() <= TOLERANCE * r.period
            } && slowest <= IMMEDIATE * gap;
            if fits {
                if r.count == 1 {
                    r.period = gap;
                    r.early[2..].copy_from_slice(&frames);
                }
                r.count += 1;
                r.last = at;
                r.slowest = slowest;
                return Some(*r);
            }
        }
        self.end_run();
        self.run = Some(Run {
            side,
            sizes,
            first: at,
            last: at,
            period: 0.0,
            count: 1,
            slowest: delay,
            early: [frames[0], frames[1], 0, 0],
        });
        None
    }
}

impl Rhythm {
    /// The run just reached [`MIN_REPEATS`] (its answer's note says so):
    /// its first two exchanges, as they read now.
    pub fn relabel(&self) -> Option<Relabel<AppNote>> {
        let r = self.run.filter(|r| r.count == MIN_REPEATS)?;
        let note = |k: usize| {
            let request = k.is_multiple_of(2);
            let size = if request { r.sizes.0 } else { r.sizes.1 };
            AppNote {
                label: Some(if request { Label::Ping } else { Label::Pong }),
                event: Some(AppEvent::Exchange {
                    request,
                    size,
                    period: r.period as f32,
                    repeats: 1 + k as u32 / 2,
                }),
            }
        };
        Some(Relabel {
            from: r.side,
            items: [0, 1, 2, 3].map(|k| (r.early[k], note(k))),
        })
    }
}

/// One segment of a TLS or SSH connection.
pub fn segment(state: &mut State, cx: &Ctx, note: &mut AppNote) {
    let len = cx.seg.len;
    let r = &mut state.rhythm;
    if len > SMALL_RECORD {
        r.open = None;
        r.end_run();
        return;
    }
    let size = len as u16;
    match r.open {
        Some((side, req, at, n)) if side != cx.from && cx.ts.since(at) <= ANSWER_WITHIN => {
            r.open = None;
            if let Some(run) = r.exchange(side, (req, size), at, cx.ts.since(at), [n, cx.n])
                && run.count >= MIN_REPEATS
            {
                note.add(
                    Some(Label::Pong),
                    AppEvent::Exchange {
                        request: false,
                        size,
                        period: run.period as f32,
                        repeats: run.count,
                    },
                );
            }
        }
        _ => {
            if r.open.is_some() {
                // Two small segments from one side, or an answer too late:
                // not the rhythm of a keepalive.
                r.end_run();
                r.run = None;
            }
            let fits = r.fits(cx.from, size, cx.ts);
            r.open = Some((cx.from, size, cx.ts, cx.n));
            if fits && let Some(run) = r.run {
                note.add(
                    Some(Label::Ping),
                    AppEvent::Exchange {
                        request: true,
                        size,
                        period: run.period as f32,
                        repeats: run.count + 1,
                    },
                );
            }
        }
    }
}
