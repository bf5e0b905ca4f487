//! The injected random source: names, tokens and GUIDs come from the caller,
//! so protocol cores and the platform crate stay deterministic under test.

/// A source of random bytes. Production code passes one backed by the OS
/// (`getrandom`); tests pass [`SeededRandom`] for reproducible names.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// A random u64.
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }

    /// A random 128-bit value that is not zero (Chromium refuses zero
    /// names, tokens and GUIDs), as two u64 halves in wire order.
    fn nonzero_u128(&mut self) -> (u64, u64) {
        loop {
            let pair = (self.next_u64(), self.next_u64());
            if pair != (0, 0) {
                return pair;
            }
        }
    }
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn fill(&mut self, buf: &mut [u8]) {
        (**self).fill(buf);
    }
}

/// A deterministic [`RandomSource`] (SplitMix64) for tests and simulations.
/// Not for production: its output is predictable.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    /// A source whose output is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let word = z.to_le_bytes();
            for (byte, value) in chunk.iter_mut().zip(word) {
                *byte = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_is_reproducible_and_seed_dependent() {
        let (mut a, mut b, mut c) = (
            SeededRandom::new(1),
            SeededRandom::new(1),
            SeededRandom::new(2),
        );
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(x, y);
        assert_ne!(x, z);
        let mut odd = [0u8; 13];
        a.fill(&mut odd);
        assert_ne!(odd, [0u8; 13]);
        assert_ne!(a.nonzero_u128(), (0, 0));
    }
}
