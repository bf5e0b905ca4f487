//! [`KeyedHasher`]: the hasher of the nodes' hash maps on the message path
//! (routers, ports, pairings), much cheaper per lookup than std's SipHash
//! and still keyed, so a peer that picks names cannot aim for one bucket.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Mixes `a` and `b` with one full 64 × 64 → 128-bit multiply and folds the
/// halves together (the step of foldhash and wyhash).
const fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A constant odd multiplier (π's fractional digits) mixed into each word.
const ARBITRARY: u64 = 0x243f_6a88_85a3_08d3;

/// Builds [`KeyHasher`]s with two secret 64-bit keys, drawn once per map
/// from std's [`RandomState`] (itself seeded from the OS once per thread),
/// so two maps, or two runs, hash differently.
#[derive(Debug, Clone, Copy)]
pub struct KeyedHasher {
    k0: u64,
    k1: u64,
}

impl KeyedHasher {
    /// A hasher with the given keys (tests use fixed ones).
    pub const fn with_keys(k0: u64, k1: u64) -> Self {
        Self { k0, k1 }
    }
}

impl Default for KeyedHasher {
    fn default() -> Self {
        let random = RandomState::new();
        Self::with_keys(random.hash_one(0u64), random.hash_one(1u64))
    }
}

impl BuildHasher for KeyedHasher {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            state: self.k0,
            key: self.k1 ^ ARBITRARY,
        }
    }
}

/// The hasher of one key: one folded multiply per 64-bit word written.
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher {
    state: u64,
    key: u64,
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let mut tail = 0u64;
        for (i, b) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(*b) << (8 * i);
        }
        // The length keeps "ab" and "ab\0" apart.
        self.write_u64(tail ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.state = folded_multiply(self.state ^ i, self.key);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn hash<T: std::hash::Hash>(b: &KeyedHasher, v: T) -> u64 {
        b.hash_one(v)
    }

    #[test]
    fn equal_keys_hash_equal_and_the_keys_matter() {
        let a = KeyedHasher::with_keys(1, 2);
        let b = KeyedHasher::with_keys(3, 4);
        assert_eq!(hash(&a, (7u64, 9u64)), hash(&a, (7u64, 9u64)));
        assert_ne!(hash(&a, (7u64, 9u64)), hash(&b, (7u64, 9u64)));
        assert_ne!(
            hash(&a, (7u64, 9u64)),
            hash(&a, (9u64, 7u64)),
            "order counts"
        );
        assert_ne!(hash(&a, &b"ab"[..]), hash(&a, &b"ab\0"[..]));
        // Two default builders draw different keys.
        let (c, d) = (KeyedHasher::default(), KeyedHasher::default());
        assert_ne!(hash(&c, 5u64), hash(&d, 5u64));
    }

    #[test]
    fn sequential_ids_spread_over_the_buckets() {
        // hashbrown takes the bucket from the low bits and a tag from the
        // top 7: both must vary for ids 0, 1, 2, ...
        let b = KeyedHasher::with_keys(0, 0);
        let low: HashSet<u64> = (0..4096u64).map(|i| hash(&b, i) & 4095).collect();
        let top: HashSet<u64> = (0..4096u64).map(|i| hash(&b, i) >> 57).collect();
        assert!(low.len() > 2500, "{} distinct buckets of 4096", low.len());
        assert_eq!(top.len(), 128, "every tag value used");
        let mut m: HashMap<u64, u64, KeyedHasher> = HashMap::default();
        for i in 0..10_000 {
            m.insert(i, i * 2);
        }
        assert_eq!(m.get(&9_999), Some(&19_998));
    }
}
