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

/// Default capacity of a [`BufferedRandom`]: 4 KiB, i.e. 128 pipes' worth
/// of 128-bit port names per refill.
pub const BUFFERED_RANDOM_CAPACITY: usize = 4096;

/// A [`RandomSource`] that draws from `inner` a block at a time and hands
/// the block out in order, so that a process naming many ports makes one
/// call of `inner` (a system call, for the OS source) per block instead of
/// one per name.
///
/// The bytes handed out are exactly `inner`'s, each at most once: no byte is
/// reused, derived or stretched, so names stay as unguessable as `inner`
/// makes them. Each byte is zeroed in the block as it is handed out, and
/// the rest of the block when the source is dropped, so a later read of this
/// memory (a core dump, a heap reuse) does not show names the source gave.
/// A request of at least the block's size goes straight to `inner`.
///
/// A process that forks *without* exec must not use a source it buffered
/// before the fork in both processes: both would hand out the same bytes.
pub struct BufferedRandom<R> {
    inner: R,
    /// The current block; `block[..next]` is handed out (and zeroed).
    block: Box<[u8]>,
    next: usize,
}

impl<R: RandomSource> BufferedRandom<R> {
    /// A source buffering [`BUFFERED_RANDOM_CAPACITY`] bytes of `inner`.
    pub fn new(inner: R) -> Self {
        Self::with_capacity(inner, BUFFERED_RANDOM_CAPACITY)
    }

    /// A source buffering `capacity` bytes (at least 1) of `inner` at a
    /// time. Nothing is drawn until the first request.
    pub fn with_capacity(inner: R, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner,
            block: vec![0; capacity].into_boxed_slice(),
            next: capacity,
        }
    }

    /// The buffered source.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: RandomSource> RandomSource for BufferedRandom<R> {
    fn fill(&mut self, buf: &mut [u8]) {
        if buf.len() >= self.block.len() {
            self.inner.fill(buf);
            return;
        }
        let mut done = 0;
        while let Some(out) = buf.get_mut(done..).filter(|rest| !rest.is_empty()) {
            if self.next >= self.block.len() {
                self.inner.fill(&mut self.block);
                self.next = 0;
            }
            let fresh = self.block.get_mut(self.next..).unwrap_or_default();
            let n = out.len().min(fresh.len());
            for (to, from) in out.iter_mut().zip(fresh.iter_mut()) {
                *to = std::mem::take(from);
            }
            self.next += n;
            done += n;
        }
    }
}

impl<R> Drop for BufferedRandom<R> {
    fn drop(&mut self) {
        self.block.fill(0);
        // Keeps the stores: the block is about to be freed, so without a use
        // the optimizer may drop them.
        std::hint::black_box(&self.block);
    }
}

impl<R: std::fmt::Debug> std::fmt::Debug for BufferedRandom<R> {
    /// Shows the inner source and how much is buffered, never the bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedRandom")
            .field("inner", &self.inner)
            .field("capacity", &self.block.len())
            .field("buffered", &(self.block.len() - self.next))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the calls and bytes drawn from a seeded source.
    #[derive(Debug)]
    struct Counting {
        rng: SeededRandom,
        calls: usize,
        bytes: usize,
    }

    impl RandomSource for Counting {
        fn fill(&mut self, buf: &mut [u8]) {
            self.calls += 1;
            self.bytes += buf.len();
            self.rng.fill(buf);
        }
    }

    fn counting(seed: u64) -> Counting {
        Counting {
            rng: SeededRandom::new(seed),
            calls: 0,
            bytes: 0,
        }
    }

    #[test]
    fn buffered_random_hands_out_the_inner_stream_in_order_once() {
        // A seeded source's stream does not depend on how it is split into
        // requests of multiples of 8, so the buffered output of odd-sized
        // requests must be the plain stream, byte for byte, with no byte
        // repeated or skipped across refills.
        let mut plain = SeededRandom::new(7);
        let mut want = vec![0u8; 3 * 64];
        plain.fill(&mut want);
        let mut buffered = BufferedRandom::with_capacity(counting(7), 64);
        let mut got = Vec::new();
        for len in [1usize, 16, 5, 63, 2, 16, 40, 49] {
            let mut out = vec![0u8; len];
            buffered.fill(&mut out);
            got.extend_from_slice(&out);
        }
        assert_eq!(got.len(), 192);
        assert_eq!(got, want);
        assert_eq!(buffered.inner().calls, 3);
        assert_eq!(buffered.inner().bytes, 192);
    }

    #[test]
    fn buffered_random_draws_once_per_block_of_names() {
        let mut buffered = BufferedRandom::new(counting(3));
        let mut names = std::collections::HashSet::new();
        for _ in 0..BUFFERED_RANDOM_CAPACITY / 16 {
            assert!(names.insert(buffered.nonzero_u128()));
        }
        assert_eq!(buffered.inner().calls, 1);
        buffered.nonzero_u128();
        assert_eq!(buffered.inner().calls, 2);
    }

    #[test]
    fn buffered_random_zeroes_what_it_hands_out() {
        let mut buffered = BufferedRandom::with_capacity(SeededRandom::new(5), 64);
        let mut out = [0u8; 24];
        buffered.fill(&mut out);
        assert_ne!(out, [0u8; 24]);
        assert!(buffered.block[..24].iter().all(|&b| b == 0));
        assert!(buffered.block[24..].iter().any(|&b| b != 0));
        assert_eq!(buffered.next, 24);
    }

    #[test]
    fn buffered_random_sends_large_requests_straight_through() {
        let mut buffered = BufferedRandom::with_capacity(counting(9), 32);
        let mut small = [0u8; 8];
        buffered.fill(&mut small);
        let mut large = [0u8; 32];
        buffered.fill(&mut large);
        // The large request did not consume the buffered block.
        assert_eq!(buffered.inner().calls, 2);
        assert_eq!(buffered.next, 8);
        let mut plain = SeededRandom::new(9);
        let mut want = [0u8; 64];
        plain.fill(&mut want);
        assert_eq!(small, want[..8]);
        assert_eq!(large, want[32..]);
        buffered.fill(&mut []);
        assert_eq!(buffered.inner().calls, 2);
        let shown = format!("{buffered:?}");
        assert!(shown.contains("capacity: 32, buffered: 24"), "{shown}");
        assert!(!shown.contains("block"), "{shown}");
    }

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
