//! The connection table's storage: values in a slab, found by their key
//! through a small index of slot numbers.

use crate::core::keyed::KeyedState;
use std::hash::{BuildHasher, Hash};

/// Values (flows) in a slab, found through a small index of slot numbers
/// (4 bytes a connection, so the index of a busy table stays in the core's cache:
/// the key is compared in the slot, which the packet touches anyway);
/// growing the index moves no flows. The index hashes with the run's secret
/// seed (`keyed`): the keys (addresses, ports) are chosen by whoever sends
/// the traffic.
pub(crate) struct Slab<K, V> {
    index: hashbrown::HashTable<u32>,
    slots: Vec<Option<Slot<K, V>>>,
    free: Vec<u32>,
    hasher: KeyedState,
}

pub(crate) struct Slot<K, V> {
    key: K,
    entry: V,
}

impl<K, V> Default for Slab<K, V> {
    fn default() -> Self {
        Slab {
            index: hashbrown::HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hasher: KeyedState::default(),
        }
    }
}

impl<K: Copy + Eq + Hash, V> Slab<K, V> {
    /// The slot number of `k`, if it is in the table.
    #[inline]
    pub(crate) fn find(&self, k: &K) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(k), |&i| {
                slots[i as usize].as_ref().is_some_and(|s| s.key == *k)
            })
            .copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        let i = self.find(k)?;
        self.slots[i as usize].as_ref().map(|s| &s.entry)
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = self.find(k)?;
        self.slots[i as usize].as_mut().map(|s| &mut s.entry)
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let slots = &self.slots;
        let found = self.index.find_entry(self.hasher.hash_one(k), |&i| {
            slots[i as usize].as_ref().is_some_and(|s| s.key == *k)
        });
        let (i, _) = found.ok()?.remove();
        self.free.push(i);
        self.slots[i as usize].take().map(|s| s.entry)
    }

    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        let hash = self.hasher.hash_one(k);
        let slots = &mut self.slots;
        let found = self.index.find(hash, |&i| {
            slots[i as usize].as_ref().is_some_and(|s| s.key == k)
        });
        let i = match found {
            Some(&i) => i,
            None => {
                let slot = Some(Slot {
                    key: k,
                    entry: make(),
                });
                let i = match self.free.pop() {
                    Some(i) => {
                        slots[i as usize] = slot;
                        i
                    }
                    None => {
                        slots.push(slot);
                        (slots.len() - 1) as u32
                    }
                };
                let (slots, hasher) = (&self.slots, self.hasher);
                self.index.insert_unique(hash, i, |&j| {
                    slots[j as usize]
                        .as_ref()
                        .map_or(0, |s| hasher.hash_one(s.key))
                });
                i
            }
        };
        &mut self.slots[i as usize]
            .as_mut()
            .expect("every indexed slot holds a value")
            .entry
    }

    /// What `pick` takes from each value it picks (a key and a flow id),
    /// in slot order.
    pub(crate) fn pick<T>(&self, pick: impl Fn(&K, &V) -> Option<T>) -> Vec<T> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|s| pick(&s.key, &s.entry))
            .collect()
    }

    /// Every value in the table, with its key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots.iter().flatten().map(|s| (&s.key, &s.entry))
    }

    /// Empties the table, handing every value to `each` in the order of
    /// `order` (a flow id: unique). Values are sorted by slot number, not
    /// moved: a flow is hundreds of bytes.
    pub(crate) fn drain_by<O: Ord>(&mut self, order: impl Fn(&V) -> O, mut each: impl FnMut(V)) {
        let mut sorted: Vec<(O, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (order(&s.entry), i as u32)))
            .collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.index.clear();
        self.free.clear();
        for (_, i) in sorted {
            if let Some(s) = self.slots[i as usize].take() {
                each(s.entry);
            }
        }
        self.slots.clear();
    }
}
