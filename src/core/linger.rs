//! Finished connections waiting out their linger (the time a finished flow
//! keeps absorbing late segments), earliest first.
//!
//! Ordered by time, not by arrival: one connection that lingers longer (an
//! unacknowledged FIN) must not hold back the others, or a flow would be
//! reported at a moment that depends on which connections share its table
//! (`--threads`). Equal moments keep the order they were queued in.

use crate::core::time::Timestamp;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

struct Queued<K> {
    at: Timestamp,
    seq: u64,
    key: K,
    id: u32,
}

impl<K> PartialEq for Queued<K> {
    fn eq(&self, other: &Queued<K>) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<K> Eq for Queued<K> {}

impl<K> PartialOrd for Queued<K> {
    fn partial_cmp(&self, other: &Queued<K>) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Queued<K> {
    fn cmp(&self, other: &Queued<K>) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The queue: connection keys and flow ids, each with the moment it was
/// queued. Moments mostly come in order (the capture clock), so those sit in
/// a plain queue (O(1) each, as on the hot path of a busy capture); only one
/// queued before the last (a longer linger, a clock stepped back) goes to a
/// heap. The earliest of the two fronts comes out first.
pub struct Lingering<K> {
    in_order: VecDeque<Queued<K>>,
    late: BinaryHeap<Reverse<Queued<K>>>,
    queued: u64,
}

impl<K> Default for Lingering<K> {
    fn default() -> Lingering<K> {
        Lingering {
            in_order: VecDeque::new(),
            late: BinaryHeap::new(),
            queued: 0,
        }
    }
}

impl<K> Lingering<K> {
    /// Queues flow `id` (on `key`) at moment `at`.
    pub fn push(&mut self, key: K, id: u32, at: Timestamp) {
        self.queued += 1;
        let q = Queued {
            at,
            seq: self.queued,
            key,
            id,
        };
        match self.in_order.back() {
            Some(last) if at < last.at => self.late.push(Reverse(q)),
            _ => self.in_order.push_back(q),
        }
    }

    /// Whether the next to come out is the plain queue's front.
    fn front_first(&self) -> Option<bool> {
        match (self.in_order.front(), self.late.peek()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(a), Some(Reverse(b))) => Some(a < b),
        }
    }

    /// The earliest moment queued.
    pub fn first(&self) -> Option<Timestamp> {
        Some(match self.front_first()? {
            true => self.in_order.front()?.at,
            false => self.late.peek()?.0.at,
        })
    }

    /// Takes the earliest queued flow.
    pub fn pop(&mut self) -> Option<(K, u32)> {
        let q = match self.front_first()? {
            true => self.in_order.pop_front()?,
            false => self.late.pop()?.0,
        };
        Some((q.key, q.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_equal_moments_in_queueing_order() {
        let at = |sec: i64| Timestamp { sec, nsec: 0 };
        let mut q = Lingering::default();
        q.push('a', 1, at(200));
        q.push('b', 2, at(10));
        q.push('c', 3, at(10));
        assert_eq!(q.first(), Some(at(10)));
        assert_eq!(q.pop(), Some(('b', 2)));
        assert_eq!(q.pop(), Some(('c', 3)));
        assert_eq!(q.pop(), Some(('a', 1)));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn late_ones_interleave_with_the_ones_in_order() {
        let at = |sec: i64| Timestamp { sec, nsec: 0 };
        let mut q = Lingering::default();
        for (i, s) in [5, 7, 3, 9, 7, 1, 12, 9].into_iter().enumerate() {
            q.push(i, 0, at(s));
        }
        let order: Vec<usize> = std::iter::from_fn(|| q.pop().map(|(k, _)| k)).collect();
        // By moment, equal moments in the order they were queued.
        assert_eq!(order, [5, 2, 0, 1, 4, 3, 7, 6]);
    }
}
