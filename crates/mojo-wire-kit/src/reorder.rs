//! [`ReorderBuffer`]: elements keyed by sequence number, taken strictly in
//! order from the front: the storage under both protocols' per-route
//! message queues. Elements that arrive in order (nearly all of them) go to
//! a ring that keeps its capacity, so a steady flow allocates nothing;
//! elements that arrive ahead of a gap wait in a map until the gap closes.
//! The callers keep their protocol's rules (windows, limits, final
//! lengths); this type only stores.

use std::collections::{BTreeMap, VecDeque};

/// Capacity, in elements, a ring keeps once it is empty again; a larger one
/// (left by a burst) is given back to the allocator then. Bursts up to this
/// many queued elements allocate nothing after the first; an idle route
/// keeps at most this much.
const RETAINED_RING_CAPACITY: usize = 128;

/// Elements by sequence number, with the next to take at
/// [`front_seq`](Self::front_seq).
#[derive(Debug)]
pub struct ReorderBuffer<T> {
    /// Sequence number of `run[0]`: the next to take.
    front: u64,
    /// The elements numbered `front..front + run.len()`, all present.
    run: VecDeque<T>,
    /// Elements numbered above `front + run.len()` (that number itself is
    /// missing, or it would extend `run`).
    ahead: BTreeMap<u64, T>,
}

impl<T> ReorderBuffer<T> {
    /// Empty, the next element to take numbered `front`.
    pub const fn new(front: u64) -> Self {
        Self {
            front,
            run: VecDeque::new(),
            ahead: BTreeMap::new(),
        }
    }

    /// Sequence number of the next element to take (present or not).
    pub fn front_seq(&self) -> u64 {
        self.front
    }

    /// One past the last number of the unbroken run from the front:
    /// `front_seq()` when the front element has not arrived.
    pub fn run_end(&self) -> u64 {
        self.front.saturating_add(self.run.len() as u64)
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        self.run.len() + self.ahead.len()
    }

    /// Whether no element is held.
    pub fn is_empty(&self) -> bool {
        self.run.is_empty() && self.ahead.is_empty()
    }

    /// Whether element `seq` is held.
    pub fn contains(&self, seq: u64) -> bool {
        (self.front..self.run_end()).contains(&seq) || self.ahead.contains_key(&seq)
    }

    /// The highest sequence number held.
    pub fn last_seq(&self) -> Option<u64> {
        match self.ahead.keys().next_back() {
            Some(&last) => Some(last),
            None => (!self.run.is_empty()).then(|| self.run_end() - 1),
        }
    }

    /// Stores `item` as element `seq`; gives it back if `seq` is below the
    /// front (taken already), held already, or `u64::MAX` with the run
    /// reaching it (the run's end would not be representable).
    pub fn insert(&mut self, seq: u64, item: T) -> Result<(), T> {
        let end = self.run_end();
        if seq < end || (seq == end && end == u64::MAX) {
            return Err(item);
        }
        if seq > end {
            if self.ahead.contains_key(&seq) {
                return Err(item);
            }
            self.ahead.insert(seq, item);
            return Ok(());
        }
        self.run.push_back(item);
        // The gap after the run may have closed.
        let Some(mut next) = seq.checked_add(1) else {
            return Ok(());
        };
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != next {
                break;
            }
            self.run.push_back(entry.remove());
            next += 1;
        }
        Ok(())
    }

    /// The front element, if it has arrived.
    pub fn front(&self) -> Option<&T> {
        self.run.front()
    }

    /// Takes the front element, if it has arrived, and moves the front on.
    /// A ring that empties gives back its capacity beyond
    /// `RETAINED_RING_CAPACITY`.
    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.pop_front_keeping_capacity()?;
        self.trim_excess();
        Some(item)
    }

    /// Like [`pop_front`](Self::pop_front), but the ring keeps its capacity
    /// when it empties, so the next burst as large allocates nothing; the
    /// caller bounds what it keeps with [`trim_excess`](Self::trim_excess)
    /// (a node keeps a few busy routes' rings, not every idle one's).
    pub fn pop_front_keeping_capacity(&mut self) -> Option<T> {
        let item = self.run.pop_front()?;
        self.front += 1;
        Some(item)
    }

    /// Ring capacity, in elements, beyond what an empty ring keeps.
    pub fn excess_capacity(&self) -> usize {
        self.run.capacity().saturating_sub(RETAINED_RING_CAPACITY)
    }

    /// Gives the ring's [`excess_capacity`](Self::excess_capacity) back to
    /// the allocator if the ring is empty (else it is in use: kept).
    pub fn trim_excess(&mut self) {
        if self.run.is_empty() && self.run.capacity() > RETAINED_RING_CAPACITY {
            self.run.shrink_to(RETAINED_RING_CAPACITY);
        }
    }

    /// The elements held, in sequence order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.run.iter().chain(self.ahead.values())
    }

    /// Removes and returns the elements numbered `seq` and above, in order.
    pub fn split_off(&mut self, seq: u64) -> Vec<T> {
        let mut out = Vec::new();
        let keep = seq.saturating_sub(self.front);
        if let Ok(keep) = usize::try_from(keep)
            && keep < self.run.len()
        {
            out.extend(self.run.drain(keep..));
            // What was ahead is above the run, so all of it goes too.
            out.extend(std::mem::take(&mut self.ahead).into_values());
            return out;
        }
        out.extend(self.ahead.split_off(&seq).into_values());
        out
    }

    /// Removes and returns every element, in order (the front stays).
    pub fn drain_all(&mut self) -> Vec<T> {
        let mut out: Vec<T> = self.run.drain(..).collect();
        out.extend(std::mem::take(&mut self.ahead).into_values());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order_elements_use_the_ring_and_a_gap_waits() {
        let mut b = ReorderBuffer::new(5);
        assert_eq!(b.insert(4, 'x'), Err('x'), "below the front");
        b.insert(5, 'a').unwrap();
        b.insert(7, 'c').unwrap();
        assert_eq!((b.run_end(), b.len(), b.last_seq()), (6, 2, Some(7)));
        assert_eq!(b.insert(7, 'd'), Err('d'), "held already (ahead)");
        assert_eq!(b.insert(5, 'd'), Err('d'), "held already (run)");
        b.insert(6, 'b').unwrap();
        assert_eq!(b.run_end(), 8, "the gap closed");
        assert_eq!(b.iter().collect::<String>(), "abc");
        assert_eq!(b.pop_front(), Some('a'));
        assert_eq!((b.front_seq(), b.front()), (6, Some(&'b')));
        assert_eq!(b.split_off(7), vec!['c']);
        assert_eq!(b.drain_all(), vec!['b']);
        assert!(b.is_empty());
        assert_eq!((b.front_seq(), b.pop_front()), (6, None));
    }

    #[test]
    fn a_ring_left_large_by_a_burst_shrinks_once_empty() {
        let mut b = ReorderBuffer::new(0);
        for i in 0..10_000 {
            b.insert(i, i).unwrap();
        }
        while b.pop_front().is_some() {}
        assert!(b.run.capacity() <= RETAINED_RING_CAPACITY);
        assert_eq!(b.excess_capacity(), 0);
    }

    #[test]
    fn a_ring_kept_large_is_trimmed_only_when_empty() {
        let mut b = ReorderBuffer::new(0);
        for i in 0..1_000 {
            b.insert(i, i).unwrap();
        }
        let excess = b.excess_capacity();
        assert!(excess >= 1_000 - RETAINED_RING_CAPACITY);
        b.trim_excess();
        assert_eq!(b.excess_capacity(), excess, "in use: kept");
        while b.pop_front_keeping_capacity().is_some() {}
        assert_eq!(b.excess_capacity(), excess, "empty, still kept");
        // The next burst as large fits without growing.
        for i in 1_000..2_000 {
            b.insert(i, i).unwrap();
        }
        assert_eq!(b.excess_capacity(), excess);
        while b.pop_front_keeping_capacity().is_some() {}
        b.trim_excess();
        assert_eq!(b.excess_capacity(), 0);
        assert_eq!(b.front_seq(), 2_000);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Pop,
        PopKeepingCapacity,
        TrimExcess,
        SplitOff(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..40).prop_map(Op::Insert),
            2 => Just(Op::Pop),
            1 => Just(Op::PopKeepingCapacity),
            1 => Just(Op::TrimExcess),
            1 => (0u64..40).prop_map(Op::SplitOff),
        ]
    }

    proptest! {
        /// Against a plain map with the same rules.
        #[test]
        fn behaves_as_an_ordered_map_taken_from_the_front(
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut b = ReorderBuffer::new(0);
            let mut model = BTreeMap::new();
            let mut front = 0u64;
            for op in ops {
                match op {
                    Op::Insert(seq) => {
                        let fresh = seq >= front && !model.contains_key(&seq);
                        prop_assert_eq!(b.insert(seq, seq).is_ok(), fresh);
                        if fresh {
                            model.insert(seq, seq);
                        }
                    }
                    Op::Pop => {
                        let expected = model.remove(&front);
                        if expected.is_some() {
                            front += 1;
                        }
                        prop_assert_eq!(b.pop_front(), expected);
                    }
                    Op::PopKeepingCapacity => {
                        let expected = model.remove(&front);
                        if expected.is_some() {
                            front += 1;
                        }
                        prop_assert_eq!(b.pop_front_keeping_capacity(), expected);
                    }
                    Op::TrimExcess => b.trim_excess(),
                    Op::SplitOff(seq) => {
                        let gone: Vec<u64> = model.split_off(&seq).into_values().collect();
                        prop_assert_eq!(b.split_off(seq), gone);
                    }
                }
                prop_assert_eq!(b.front_seq(), front);
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.last_seq(), model.keys().next_back().copied());
                let mut run_end = front;
                while model.contains_key(&run_end) {
                    run_end += 1;
                }
                prop_assert_eq!(b.run_end(), run_end);
                prop_assert_eq!(b.iter().copied().collect::<Vec<_>>(),
                    model.values().copied().collect::<Vec<_>>());
                for seq in 0..45 {
                    prop_assert_eq!(b.contains(seq), model.contains_key(&seq));
                }
            }
        }
    }
}
