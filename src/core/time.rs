//! Capture timestamps with nanosecond resolution.

/// Farther apart than this (a day), two capture times are not of one
/// capture's steady flow of time: one of them is an outlier (see `clock`).
pub const FAR: f64 = 86_400.0;

/// A packet's capture time: seconds since the epoch and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

impl Timestamp {
    pub fn new(sec: i64, nsec: u32) -> Timestamp {
        Timestamp { sec, nsec }
    }

    /// The wall clock.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::new(d.as_secs() as i64, d.subsec_nanos())
    }

    /// `self` plus `secs` seconds.
    pub fn plus(self, secs: f64) -> Timestamp {
        let total = self.sec as f64 + f64::from(self.nsec) * 1e-9 + secs;
        let sec = total.floor();
        Timestamp::new(sec as i64, ((total - sec) * 1e9).min(999_999_999.0) as u32)
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later);
    /// no overflow, whatever the timestamps (a pcapng file can hold any
    /// i64): the seconds are subtracted as f64, exact below 2^53 s.
    #[inline]
    pub fn since(self, earlier: Timestamp) -> f64 {
        (self.sec as f64 - earlier.sec as f64)
            + (f64::from(self.nsec) - f64::from(earlier.nsec)) * 1e-9
    }

    /// Nanoseconds from `earlier` to `self`, saturating at zero.
    pub fn nanos_since(self, earlier: Timestamp) -> u64 {
        let a = self.sec as i128 * 1_000_000_000 + i128::from(self.nsec);
        let b = earlier.sec as i128 * 1_000_000_000 + i128::from(earlier.nsec);
        (a - b).clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// A moment kept compactly in per-connection state (8 bytes, where an
/// `Option<Timestamp>` takes 24): nanoseconds since the epoch (exact for
/// 292 years either side of 1970; stamps beyond saturate), or never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When(i64);

impl Default for When {
    fn default() -> Self {
        When::NEVER
    }
}

impl When {
    pub const NEVER: When = When(i64::MIN);

    #[inline]
    pub fn at(ts: Timestamp) -> When {
        let ns = ts
            .sec
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(ts.nsec));
        When(ns.max(i64::MIN + 1))
    }

    /// Seconds from this moment to `ts`; `None` if never.
    #[inline]
    pub fn until(self, ts: Timestamp) -> Option<f64> {
        (self != When::NEVER).then(|| When::at(ts).0.saturating_sub(self.0) as f64 * 1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn extreme_timestamps_neither_overflow_nor_wrap() {
        let (lo, hi) = (
            Timestamp::new(i64::MIN, 0),
            Timestamp::new(i64::MAX, 999_999_999),
        );
        assert!(hi.since(lo) > 1e18);
        assert!(lo.since(hi) < -1e18);
        assert_eq!(hi.nanos_since(lo), u64::MAX);
        assert_eq!(lo.nanos_since(hi), 0);
        // plus saturates instead of wrapping.
        assert_eq!(hi.plus(1e9).sec, i64::MAX);
        assert_eq!(lo.plus(-1e9).sec, i64::MIN);
    }
}
