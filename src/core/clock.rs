//! The capture clock: the latest capture time, robust to timestamps that do
//! not belong with the rest. A frame stamped far from the clock (a year
//! ahead, a broken stamp, a clock step) is an outlier: analyzed, but the
//! clock does not follow it — one wrong stamp would otherwise stop every
//! connection from expiring. When frames keep arriving far from the clock,
//! the clock was what was wrong (the first frame was the outlier, or the
//! clock really stepped): it moves there.

use crate::core::time::{FAR, Timestamp};

/// Farther than this from the clock, a frame is an outlier.
pub const JUMP: f64 = FAR;
/// Consecutive frames that agree on a new time before the clock moves there.
const AGREE: u32 = 32;

#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    now: Option<Timestamp>,
    /// Frames in a row far from the clock, and the latest of them.
    streak: u32,
    latest: Option<Timestamp>,
    /// Frames whose stamp the clock did not follow.
    pub outliers: u64,
}

impl Clock {
    /// The clock (the epoch before any frame).
    pub fn now(&self) -> Timestamp {
        self.now.unwrap_or_default()
    }

    /// A frame stamped `ts`; returns the clock after it.
    #[inline]
    pub fn frame(&mut self, ts: Timestamp) -> Timestamp {
        let Some(now) = self.now else {
            self.now = Some(ts);
            return ts;
        };
        // Whole seconds are enough to tell near from far (cheap: this runs
        // per packet).
        let d = ts.sec.wrapping_sub(now.sec);
        if d.unsigned_abs() <= JUMP as u64 {
            self.streak = 0;
            if ts > now {
                self.now = Some(ts);
                return ts;
            }
            return now;
        }
        self.far(ts)
    }

    #[cold]
    fn far(&mut self, ts: Timestamp) -> Timestamp {
        let near_latest = self.latest.is_some_and(|l| ts.since(l).abs() <= JUMP);
        self.streak = if near_latest { self.streak + 1 } else { 1 };
        self.latest = Some(ts);
        if self.streak >= AGREE {
            // The rest agree: the clock moves (an outlier first frame, or a
            // real step); the frames of the streak were not outliers.
            // The time left behind was the outlier.
            self.outliers = self.outliers.saturating_sub(u64::from(AGREE - 1)) + 1;
            self.streak = 0;
            self.now = Some(ts);
        } else {
            self.outliers += 1;
        }
        self.now()
    }

    /// A live capture's wall clock, without packets.
    pub fn tick(&mut self, wall: Timestamp) -> Timestamp {
        match self.now {
            Some(now) if wall <= now || wall.since(now) > JUMP => now,
            _ => {
                self.now = Some(wall);
                wall
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: f64) -> Timestamp {
        Timestamp::new(1_700_000_000, 0).plus(s)
    }

    #[test]
    fn one_far_future_stamp_is_an_outlier() {
        let mut c = Clock::default();
        c.frame(t(0.0));
        assert_eq!(c.frame(t(10.0 * 365.0 * 86_400.0)), t(0.0));
        assert_eq!(c.frame(t(1.0)), t(1.0));
        assert_eq!(c.outliers, 1);
    }

    #[test]
    fn a_wrong_first_stamp_gives_way_to_the_rest() {
        let mut c = Clock::default();
        c.frame(t(10.0 * 365.0 * 86_400.0));
        for i in 0..40 {
            c.frame(t(f64::from(i)));
        }
        assert_eq!(c.now(), t(39.0));
        assert_eq!(c.outliers, 1);
    }

    #[test]
    fn time_goes_forward_only_and_a_live_wall_clock_ticks() {
        let mut c = Clock::default();
        c.frame(t(5.0));
        assert_eq!(c.frame(t(4.0)), t(5.0));
        assert_eq!(c.tick(t(6.0)), t(6.0));
        assert_eq!(c.tick(t(1e9)), t(6.0));
    }
}
