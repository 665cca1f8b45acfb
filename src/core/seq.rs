//! TCP sequence numbers: 32-bit values compared with wrapping arithmetic
//! (RFC 793 §3.3, RFC 1982 serial number arithmetic).

use std::cmp::Ordering;
use std::ops::{Add, Sub};

/// A TCP sequence or acknowledgment number.
///
/// Ordering is modular: `a < b` when `b` is less than 2^31 ahead of `a`, so
/// comparisons stay correct across the 2^32 wrap. (Two numbers exactly 2^31
/// apart compare by their raw value; no real connection has such a window.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance from `other` to `self` (`self - other`).
    #[inline]
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The later of two sequence numbers.
    #[inline]
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self >= other { self } else { other }
    }
}

impl PartialOrd for SeqNumber {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
    // The four tests without an `Ordering` in between (the per-packet
    // state updates compare several a segment): the same order as `cmp`.
    #[inline]
    fn gt(&self, other: &Self) -> bool {
        let d = self.diff(*other);
        d > 0 || (d == i32::MIN && self.0 > other.0)
    }
    #[inline]
    fn ge(&self, other: &Self) -> bool {
        let d = self.diff(*other);
        d >= 0 || (d == i32::MIN && self.0 > other.0)
    }
    #[inline]
    fn lt(&self, other: &Self) -> bool {
        !self.ge(other)
    }
    #[inline]
    fn le(&self, other: &Self) -> bool {
        !self.gt(other)
    }
}

impl Ord for SeqNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        match self.diff(*other) {
            0 => Ordering::Equal,
            d if d > 0 => Ordering::Greater,
            i32::MIN => self.0.cmp(&other.0),
            _ => Ordering::Less,
        }
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs))
    }
}

impl Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(rhs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_wraps() {
        let near_end = SeqNumber(u32::MAX - 1);
        let wrapped = near_end + 5;
        assert_eq!(wrapped, SeqNumber(3));
        assert!(wrapped > near_end);
        assert!(near_end < wrapped);
        assert_eq!(wrapped.diff(near_end), 5);
        assert_eq!(near_end.diff(wrapped), -5);
        assert_eq!(near_end.max(wrapped), wrapped);
        assert_eq!(SeqNumber(0) - 1, SeqNumber(u32::MAX));
    }

    #[test]
    fn the_four_tests_agree_with_cmp() {
        let edge = [
            0,
            1,
            5,
            1 << 31,
            (1 << 31) + 1,
            (1 << 31) - 1,
            u32::MAX,
            u32::MAX - 4,
        ];
        for &a in &edge {
            for &b in &edge {
                let (x, y) = (SeqNumber(a), SeqNumber(b));
                let o = x.cmp(&y);
                assert_eq!(x > y, o == Ordering::Greater, "{a} > {b}");
                assert_eq!(x >= y, o != Ordering::Less, "{a} >= {b}");
                assert_eq!(x < y, o == Ordering::Less, "{a} < {b}");
                assert_eq!(x <= y, o != Ordering::Greater, "{a} <= {b}");
            }
        }
    }

    #[test]
    fn ordering_is_antisymmetric_at_half_range() {
        let a = SeqNumber(0);
        let b = SeqNumber(1 << 31);
        assert_ne!(a.cmp(&b), b.cmp(&a));
    }
}
