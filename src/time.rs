//! Capture timestamps with nanosecond resolution.

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

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> f64 {
        (self.sec - earlier.sec) as f64 + (f64::from(self.nsec) - f64::from(earlier.nsec)) * 1e-9
    }

    /// Nanoseconds from `earlier` to `self`, saturating at zero.
    pub fn nanos_since(self, earlier: Timestamp) -> u64 {
        let a = self.sec as i128 * 1_000_000_000 + i128::from(self.nsec);
        let b = earlier.sec as i128 * 1_000_000_000 + i128::from(earlier.nsec);
        (a - b).clamp(0, i128::from(u64::MAX)) as u64
    }
}
