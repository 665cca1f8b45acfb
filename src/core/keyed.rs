//! A keyed hash for tables whose keys other people choose (addresses and
//! ports from the traffic): seeded at random once per run, so nobody can
//! pick 4-tuples that all land in one bucket and make every lookup walk
//! them (FxHash, which the connection table used, maps every IPv6 address
//! whose last 8 bytes equal one constant to one hash). As Zeek, Suricata
//! and conntrack do, the seed is secret and per run; the mixing is
//! foldhash's (a 64×64→128-bit multiply folded to 64 bits), about as cheap
//! as FxHash. The seed never shows in any output: tables are iterated in
//! slot order, not hash order.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

const PI: u64 = 0x243f_6a88_85a3_08d3;

/// The per-run seed, drawn once from the operating system's randomness
/// (through std's `RandomState`).
fn seed() -> (u64, u64) {
    static SEED: OnceLock<(u64, u64)> = OnceLock::new();
    *SEED.get_or_init(|| {
        let s = std::hash::RandomState::new();
        (s.hash_one(0u64), s.hash_one(1u64) | 1)
    })
}

/// Builds `KeyedHasher`s with the run's seed.
#[derive(Clone, Copy)]
pub struct KeyedState {
    k0: u64,
    k1: u64,
}

impl Default for KeyedState {
    #[inline]
    fn default() -> KeyedState {
        let (k0, k1) = seed();
        KeyedState { k0, k1 }
    }
}

impl KeyedState {
    /// A state with a seed given, not the run's (`KACAP_SHARD_SEED`: tests
    /// that place connections on given shards).
    pub fn with_seed(seed: u64) -> KeyedState {
        KeyedState {
            k0: seed ^ PI,
            k1: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        }
    }
}

impl KeyedState {
    /// Two words mixed with the key (one multiply: the hasher's step
    /// without its state), for hot paths that hash a fixed shape.
    #[inline(always)]
    pub fn mix(&self, a: u64, b: u64) -> u64 {
        fold(a ^ self.k0, b ^ self.k1)
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;
    #[inline]
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            h: self.k0,
            k: self.k1,
        }
    }
}

/// A `HashMap` keyed by the run's seed.
pub type KeyedMap<K, V> = std::collections::HashMap<K, V, KeyedState>;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The hasher: each 8-byte word folded into the state with the secret key.
pub struct KeyedHasher {
    h: u64,
    k: u64,
}

impl KeyedHasher {
    #[inline(always)]
    fn word(&mut self, w: u64) {
        self.h = fold(self.h ^ w, self.k);
    }
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes([
                w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
            ]));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.word(u64::from(v));
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.word(u64::from(v));
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.word(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.word(v);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.word(v as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        fold(self.h, self.k ^ PI)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    /// FxHash's weakness, the shape: IPv6 addresses with one fixed
    /// last half and any prefix, equal ports. Keyed, they spread over the
    /// buckets as random ones do.
    #[test]
    fn chosen_addresses_spread_like_random_ones() {
        let s = KeyedState::default();
        let buckets = 1024u64;
        let mut seen = vec![0u32; buckets as usize];
        for i in 0..20_000u64 {
            // FxHash's second seed as the last 8 bytes, little-endian.
            let a = Ipv6Addr::from((u128::from(i) << 64) | 0x4473_7003_2e8a_1913);
            seen[(s.hash_one((a.octets(), 443u16)) % buckets) as usize] += 1;
        }
        // 20,000 keys in 1,024 buckets: about 19.5 each.
        let most = *seen.iter().max().unwrap();
        assert!(most < 60, "one bucket took {most}");
    }

    #[test]
    fn one_run_one_hash() {
        let (a, b) = (KeyedState::default(), KeyedState::default());
        assert_eq!(
            a.hash_one(("10.0.0.1", 80u16)),
            b.hash_one(("10.0.0.1", 80u16))
        );
        assert_ne!(a.hash_one(1u32), a.hash_one(2u32));
    }
}
