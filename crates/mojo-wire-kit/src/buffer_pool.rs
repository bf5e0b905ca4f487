//! [`BufferPool`]: spare byte vectors kept for reuse, so a node's steady
//! message path (frames out, payloads in and out) allocates nothing once
//! the pool holds buffers of the working size. Bounded both in count and in
//! retained capacity, so an idle node keeps little and a burst of huge
//! messages leaves nothing huge behind.

/// Spare `Vec<u8>`s, handed out empty and taken back after use.
#[derive(Debug)]
pub struct BufferPool {
    spare: Vec<Vec<u8>>,
    retained: usize,
    max_buffers: usize,
    max_bytes: usize,
}

impl BufferPool {
    /// An empty pool that keeps at most `max_buffers` spare buffers of at
    /// most `max_bytes` capacity in all. Nothing is allocated until a buffer
    /// is given back (the pool's own list then grows once, to at most
    /// `max_buffers` entries).
    pub const fn new(max_buffers: usize, max_bytes: usize) -> Self {
        Self {
            spare: Vec::new(),
            retained: 0,
            max_buffers,
            max_bytes,
        }
    }

    /// An empty buffer: a spare one if there is any (its capacity kept),
    /// else a new one that has not allocated yet.
    pub fn take(&mut self) -> Vec<u8> {
        match self.spare.pop() {
            Some(buffer) => {
                self.retained -= buffer.capacity();
                buffer
            }
            None => Vec::new(),
        }
    }

    /// A buffer holding a copy of `bytes` (a spare one when there is any).
    pub fn copy_of(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut buffer = self.take();
        buffer.extend_from_slice(bytes);
        buffer
    }

    /// Takes `buffer` back for reuse, emptied; drops it instead when it has
    /// no capacity or the pool is at either of its bounds.
    pub fn give(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity == 0
            || self.spare.len() >= self.max_buffers
            || self.retained.saturating_add(capacity) > self.max_bytes
        {
            return;
        }
        buffer.clear();
        self.retained += capacity;
        self.spare.push(buffer);
    }

    /// Spare buffers held now.
    pub fn len(&self) -> usize {
        self.spare.len()
    }

    /// Whether no spare buffer is held.
    pub fn is_empty(&self) -> bool {
        self.spare.is_empty()
    }

    /// Capacity held in spare buffers, in bytes.
    pub fn retained_bytes(&self) -> usize {
        self.retained
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_buffer_given_back_comes_out_again_empty_with_its_capacity() {
        let mut pool = BufferPool::new(4, 1 << 20);
        let mut b = pool.take();
        b.extend_from_slice(&[1; 100]);
        let capacity = b.capacity();
        pool.give(b);
        assert_eq!((pool.len(), pool.retained_bytes()), (1, capacity));
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), capacity);
        assert_eq!((pool.len(), pool.retained_bytes()), (0, 0));
        assert_eq!(pool.copy_of(b"abc"), b"abc");
    }

    #[test]
    fn the_pool_keeps_neither_more_buffers_nor_more_bytes_than_its_bounds() {
        let mut pool = BufferPool::new(2, 1000);
        for _ in 0..3 {
            pool.give(Vec::with_capacity(100));
        }
        assert_eq!(pool.len(), 2, "count bound");
        let mut pool = BufferPool::new(8, 1000);
        pool.give(Vec::with_capacity(600));
        pool.give(Vec::with_capacity(600));
        assert_eq!((pool.len(), pool.retained_bytes()), (1, 600), "byte bound");
        pool.give(Vec::new());
        assert_eq!(pool.len(), 1, "a buffer with no capacity is not kept");
    }

    proptest! {
        #[test]
        fn retained_bytes_is_the_sum_of_the_spares_and_stays_bounded(
            ops in proptest::collection::vec((any::<bool>(), 0usize..5000), 0..200),
        ) {
            let mut pool = BufferPool::new(5, 8000);
            for (give, size) in ops {
                if give {
                    pool.give(Vec::with_capacity(size));
                } else {
                    let b = pool.take();
                    prop_assert!(b.is_empty());
                }
                let sum: usize = pool.spare.iter().map(Vec::capacity).sum();
                prop_assert_eq!(pool.retained_bytes(), sum);
                prop_assert!(pool.len() <= 5 && sum <= 8000);
            }
        }
    }
}
