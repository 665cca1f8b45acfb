//! Keepalives under encryption (TLS, SSH), by their rhythm: the content is
//! hidden, the sizes and times are not.
//!
//! The rule: an *exchange* is a small segment (at most [`SMALL_RECORD`]
//! bytes of payload) from one side answered by a small segment from the
//! other within [`ANSWER_WITHIN`]; a *run* is a series of exchanges with the
//! same sender and the same two sizes, at a near-constant period (each gap
//! within [`TOLERANCE`] of the first, which is at least [`MIN_PERIOD`]), with
//! no other payload between them. A run of [`MIN_REPEATS`] or more is
//! reported as "likely application keepalive (encrypted)" — never as
//! certain. What looks the same: any request/answer of fixed size polled at
//! a fixed period (a status poll, a metrics scrape on a kept-alive
//! connection); keystroke echo typed at a steady pace slower than
//! [`MIN_PERIOD`]. A bulk transfer or irregular traffic breaks every run.
//!
//! Labels: the answer of the exchange that makes the run reach
//! [`MIN_REPEATS`], and every matching exchange after it (its request
//! `ping`, its answer `pong`); earlier exchanges of the run are not
//! relabeled.

use super::{AppEvent, AppNote, Label, State};
use crate::analyses::Ctx;
use crate::core::tcp::Side;
use crate::core::time::Timestamp;

pub const SMALL_RECORD: u32 = 160;
pub const ANSWER_WITHIN: f64 = 2.0;
pub const MIN_PERIOD: f64 = 0.5;
pub const TOLERANCE: f64 = 0.15;
pub const MIN_REPEATS: u32 = 3;

/// A series of equal exchanges at a steady period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    pub side: Side,
    pub sizes: (u16, u16),
    pub first: Timestamp,
    pub last: Timestamp,
    pub period: f64,
    pub count: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Rhythm {
    /// A small segment waiting for its answer: sender, size, time.
    open: Option<(Side, u16, Timestamp)>,
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

    /// A completed exchange; returns the run when it keeps one.
    fn exchange(&mut self, side: Side, sizes: (u16, u16), at: Timestamp) -> Option<Run> {
        if let Some(r) = self.run.as_mut()
            && r.side == side
            && r.sizes == sizes
        {
            let gap = at.since(r.last);
            let fits = if r.count == 1 {
                gap >= MIN_PERIOD
            } else {
                (gap - r.period).abs() <= TOLERANCE * r.period
            };
            if fits {
                if r.count == 1 {
                    r.period = gap;
                }
                r.count += 1;
                r.last = at;
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
        });
        None
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
        Some((side, req, at)) if side != cx.from && cx.ts.since(at) <= ANSWER_WITHIN => {
            r.open = None;
            if let Some(run) = r.exchange(side, (req, size), at)
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
            r.open = Some((cx.from, size, cx.ts));
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
