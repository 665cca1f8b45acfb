//! Finished connections waiting out their linger (the time a finished flow
//! keeps absorbing late segments), earliest first.
//!
//! Ordered by time, not by arrival: one connection that lingers longer (an
//! unacknowledged FIN) must not hold back the others, or a flow would be
//! reported at a moment that depends on which connections share its table
//! (`--threads`). Equal moments keep the order they were queued in.

use crate::core::time::Timestamp;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

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
/// queued.
pub struct Lingering<K> {
    heap: BinaryHeap<Reverse<Queued<K>>>,
    queued: u64,
}

impl<K> Default for Lingering<K> {
    fn default() -> Lingering<K> {
        Lingering {
            heap: BinaryHeap::new(),
            queued: 0,
        }
    }
}

impl<K> Lingering<K> {
    /// Queues flow `id` (on `key`) at moment `at`.
    pub fn push(&mut self, key: K, id: u32, at: Timestamp) {
        self.queued += 1;
        let seq = self.queued;
        self.heap.push(Reverse(Queued { at, seq, key, id }));
    }

    /// The earliest moment queued.
    pub fn first(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse(q)| q.at)
    }

    /// Takes the earliest queued flow.
    pub fn pop(&mut self) -> Option<(K, u32)> {
        self.heap.pop().map(|Reverse(q)| (q.key, q.id))
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
}
