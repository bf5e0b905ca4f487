//! Which routers' emptied parcel queues keep the capacity a burst gave them.
//!
//! A router's queue is a ring that grows with a burst. Given back each time
//! it empties, every burst on a busy pipe grows it again (the last heap
//! allocations on the proxy's steady message path); kept by every router,
//! 10,000 pipes that once had a burst would each hold a large idle ring. So
//! a table keeps the excess of a few rings, those emptied most recently,
//! within a byte budget, and trims the rest: a busy pipe allocates nothing,
//! an idle one gives its ring back once newer ones push it out.

use std::collections::VecDeque;

use super::RouterId;

/// Largest number of emptied rings a table keeps large.
pub const MAX_KEPT_RINGS: usize = 16;

/// Largest excess capacity, in bytes, the kept rings of one table hold
/// together; a ring with more than this is trimmed as soon as it empties.
pub const KEPT_RING_BYTES: usize = 1 << 20;

/// One queue of one router: `true` for the inbound one.
type RingKey = (RouterId, bool);

/// The kept rings, least recently emptied first, with their excess bytes
/// as last seen.
#[derive(Debug)]
pub(crate) struct KeptRings {
    entries: VecDeque<(RingKey, usize)>,
    bytes: usize,
}

impl Default for KeptRings {
    fn default() -> Self {
        Self {
            // One over the bound: an entry is added before the oldest goes.
            entries: VecDeque::with_capacity(MAX_KEPT_RINGS + 1),
            bytes: 0,
        }
    }
}

impl KeptRings {
    /// Records that the ring `key` is empty with `excess_bytes` beyond what
    /// an empty ring keeps; `false` if it is too large to keep (trim it now).
    /// Afterwards the caller trims each [`next_to_trim`](Self::next_to_trim).
    pub(crate) fn keep(&mut self, key: RingKey, excess_bytes: usize) -> bool {
        if let Some(i) = self.entries.iter().position(|(k, _)| *k == key)
            && let Some((_, old)) = self.entries.remove(i)
        {
            self.bytes -= old;
        }
        if excess_bytes > KEPT_RING_BYTES {
            return false;
        }
        self.entries.push_back((key, excess_bytes));
        self.bytes += excess_bytes;
        true
    }

    /// The least recently emptied ring, removed from the kept ones, while
    /// they are over either bound.
    pub(crate) fn next_to_trim(&mut self) -> Option<RingKey> {
        if self.bytes <= KEPT_RING_BYTES && self.entries.len() <= MAX_KEPT_RINGS {
            return None;
        }
        let (key, bytes) = self.entries.pop_front()?;
        self.bytes -= bytes;
        Some(key)
    }

    /// Rings kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(n: u64, inbound: bool) -> RingKey {
        (RouterId(n), inbound)
    }

    #[test]
    fn the_oldest_ring_goes_first_and_a_kept_one_moves_to_the_back() {
        let mut k = KeptRings::default();
        for n in 0..MAX_KEPT_RINGS as u64 {
            assert!(k.keep(key(n, true), 100));
            assert_eq!(k.next_to_trim(), None);
        }
        // Ring 0 empties again: now the most recent.
        assert!(k.keep(key(0, true), 200));
        assert_eq!(k.len(), MAX_KEPT_RINGS);
        assert!(k.keep(key(99, false), 100));
        assert_eq!(k.next_to_trim(), Some(key(1, true)));
        assert_eq!(k.next_to_trim(), None);
        // The two queues of one router are two rings.
        assert!(k.keep(key(99, true), 100));
        assert_eq!(k.next_to_trim(), Some(key(2, true)));
    }

    #[test]
    fn the_byte_budget_trims_old_rings_and_refuses_a_huge_one() {
        let mut k = KeptRings::default();
        assert!(!k.keep(key(1, true), KEPT_RING_BYTES + 1));
        assert_eq!((k.len(), k.next_to_trim()), (0, None));
        assert!(k.keep(key(1, true), KEPT_RING_BYTES / 2));
        assert!(k.keep(key(2, true), KEPT_RING_BYTES / 2));
        assert_eq!(k.next_to_trim(), None, "exactly the budget");
        assert!(k.keep(key(3, true), 1));
        assert_eq!(k.next_to_trim(), Some(key(1, true)));
        assert_eq!(k.next_to_trim(), None);
        // A kept ring that grew past the budget is no longer kept.
        assert!(!k.keep(key(2, true), KEPT_RING_BYTES * 2));
        assert_eq!(k.len(), 1);
    }

    /// Through the table: a pipe's emptied ring is kept while it is among
    /// the most recently emptied, and trimmed once newer ones push it out.
    #[test]
    fn a_table_keeps_the_rings_of_recent_bursts_only() {
        use crate::router::{Handle, InMemoryLinkState, RouterConfig, Routers};
        use ipcz_wire::types::NodeName;
        let mut states = InMemoryLinkState::default();
        let mut node: Routers<()> =
            Routers::new(NodeName { high: 1, low: 1 }, RouterConfig::default());
        let burst = |node: &mut Routers<()>, states: &mut InMemoryLinkState, a, b| {
            for _ in 0..1_000 {
                node.put(a, vec![1], Vec::<Handle<()>>::new(), states)
                    .unwrap();
            }
            while node.get(b, states).unwrap().is_some() {}
        };
        let excess = |node: &Routers<()>, b| node.routers[&b].inbound.excess_bytes();
        let (a0, b0) = node.open_pair(&mut states);
        burst(&mut node, &mut states, a0, b0);
        let kept = excess(&node, b0);
        assert!(kept > 0, "kept after the burst");
        burst(&mut node, &mut states, a0, b0);
        assert_eq!(excess(&node, b0), kept, "the next burst fits");
        for _ in 0..MAX_KEPT_RINGS {
            let (a, b) = node.open_pair(&mut states);
            burst(&mut node, &mut states, a, b);
            assert!(excess(&node, b) > 0);
        }
        assert_eq!(excess(&node, b0), 0, "pushed out: trimmed");
    }

    proptest! {
        /// Whatever is recorded, once the trims are taken the kept rings are
        /// within both bounds and each ring is kept at most once.
        #[test]
        fn bounds_hold_after_the_trims(
            ops in proptest::collection::vec((0u64..40, any::<bool>(), 0usize..(KEPT_RING_BYTES / 4)), 0..300),
        ) {
            let mut k = KeptRings::default();
            for (n, inbound, bytes) in ops {
                k.keep(key(n, inbound), bytes);
                while k.next_to_trim().is_some() {}
                prop_assert!(k.len() <= MAX_KEPT_RINGS);
                prop_assert!(k.bytes <= KEPT_RING_BYTES);
                prop_assert_eq!(k.bytes, k.entries.iter().map(|(_, b)| b).sum::<usize>());
                let mut keys: Vec<_> = k.entries.iter().map(|(k, _)| *k).collect();
                keys.sort_by_key(|(r, i)| (r.0, *i));
                keys.dedup();
                prop_assert_eq!(keys.len(), k.len());
            }
        }
    }
}
