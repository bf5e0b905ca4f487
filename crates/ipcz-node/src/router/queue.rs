//! The sequenced queue of one route direction (§6.2): elements pushed in any
//! order, taken strictly in sequence order, with an optional final length.

use mojo_wire_kit::ReorderBuffer;

/// Largest distance ahead of the next expected sequence number that a
/// parcel (or a final length) may be; Chrome's `SequencedQueue` limit.
pub const MAX_SEQUENCE_GAP: u64 = 1_000_000;

/// Largest number of parcels one router holds in one direction (received
/// and not yet taken or forwarded). A remote peer that goes beyond it is
/// misbehaving; the application gets an error instead of growing memory.
///
/// As large as the whole link's budget
/// ([`crate::link::MAX_QUEUED_PARCELS_PER_LINK`]): a sender may run far
/// ahead of a slow reader on one busy pipe (Chrome queues without a count
/// bound; a flood of 20,000 small messages is ordinary), and the link's
/// bound already caps what all of its pipes hold together.
pub const MAX_QUEUED_PARCELS_PER_ROUTER: usize = crate::link::MAX_QUEUED_PARCELS_PER_LINK;

/// Why a push was refused. All but `Full` are the silent drops of §6.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushRefused {
    /// Below the next sequence number to take (already taken).
    Stale,
    /// At or beyond the known final length.
    BeyondFinal,
    /// More than [`MAX_SEQUENCE_GAP`] ahead.
    TooFarAhead,
    /// That sequence number is already queued.
    Duplicate,
    /// [`MAX_QUEUED_PARCELS_PER_ROUTER`] elements are queued already.
    Full,
}

#[derive(Debug)]
pub(crate) struct SequencedQueue<T> {
    /// The elements; its front is the next sequence number to take.
    entries: ReorderBuffer<T>,
    final_length: Option<u64>,
}

impl<T> Default for SequencedQueue<T> {
    fn default() -> Self {
        Self::starting_at(0)
    }
}

impl<T> SequencedQueue<T> {
    pub(crate) fn starting_at(base: u64) -> Self {
        Self {
            entries: ReorderBuffer::new(base),
            final_length: None,
        }
    }

    /// Next sequence number to take (`current_sequence_number`).
    pub(crate) fn base(&self) -> u64 {
        self.entries.front_seq()
    }

    /// `base` plus the number of elements available from it.
    pub(crate) fn current_len(&self) -> u64 {
        self.entries.run_end()
    }

    pub(crate) fn final_length(&self) -> Option<u64> {
        self.final_length
    }

    pub(crate) fn queued(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn push(&mut self, seq: u64, item: T) -> Result<(), (PushRefused, T)> {
        let base = self.base();
        if seq < base {
            return Err((PushRefused::Stale, item));
        }
        if self.final_length.is_some_and(|f| seq >= f) {
            return Err((PushRefused::BeyondFinal, item));
        }
        // u64::MAX is never a sequence number, so the contiguous end cannot overflow.
        if seq - base > MAX_SEQUENCE_GAP || seq == u64::MAX {
            return Err((PushRefused::TooFarAhead, item));
        }
        if self.entries.contains(seq) {
            return Err((PushRefused::Duplicate, item));
        }
        if self.entries.len() >= MAX_QUEUED_PARCELS_PER_ROUTER {
            return Err((PushRefused::Full, item));
        }
        // Cannot fail: `seq` is neither taken nor held.
        self.entries
            .insert(seq, item)
            .map_err(|item| (PushRefused::Duplicate, item))
    }

    pub(crate) fn peek(&self) -> Option<&T> {
        self.entries.front()
    }

    /// Takes the next element. The ring keeps its capacity when it empties:
    /// the table decides whose it keeps (`kept_rings`).
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.entries.pop_front_keeping_capacity()
    }

    /// Bytes of ring capacity beyond what an empty ring keeps.
    pub(crate) fn excess_bytes(&self) -> usize {
        self.entries
            .excess_capacity()
            .saturating_mul(size_of::<T>())
    }

    /// Gives the excess capacity back if the ring is empty.
    pub(crate) fn trim_excess(&mut self) {
        self.entries.trim_excess();
    }

    /// Sets the final length; `Err` if one is known already, if an element
    /// at or beyond `len` is queued or was taken, or if `len` is too far ahead.
    pub(crate) fn set_final_length(&mut self, len: u64) -> Result<(), ()> {
        let base = self.base();
        if self.final_length.is_some() || len < base {
            return Err(());
        }
        if self.entries.last_seq().is_some_and(|last| last >= len) {
            return Err(());
        }
        if len - base > MAX_SEQUENCE_GAP {
            return Err(());
        }
        self.final_length = Some(len);
        Ok(())
    }

    /// Disconnection: the final length becomes the current length; the
    /// elements beyond the gap are returned for disposal.
    pub(crate) fn force_terminate(&mut self) -> Vec<T> {
        let len = self.current_len();
        self.final_length = Some(self.final_length.map_or(len, |f| f.min(len)));
        self.entries.split_off(len)
    }

    /// Whether elements below the final length are still to arrive.
    pub(crate) fn expects_more(&self) -> bool {
        self.final_length.is_none_or(|f| self.current_len() < f)
    }

    /// Whether every element up to the final length was taken.
    pub(crate) fn fully_consumed(&self) -> bool {
        self.final_length == Some(self.base())
    }

    /// The queued elements, in sequence order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter()
    }

    /// Everything still queued, for disposal.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.entries.drain_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_becomes_in_order() {
        let mut q = SequencedQueue::default();
        q.push(2, 'c').unwrap();
        q.push(1, 'b').unwrap();
        assert_eq!(q.current_len(), 0);
        assert!(q.pop().is_none());
        q.push(0, 'a').unwrap();
        assert_eq!(q.current_len(), 3);
        assert_eq!(
            (q.pop(), q.pop(), q.pop(), q.pop()),
            (Some('a'), Some('b'), Some('c'), None)
        );
    }

    #[test]
    fn push_drop_rules() {
        let mut q = SequencedQueue::starting_at(5);
        assert_eq!(q.push(4, ()).unwrap_err().0, PushRefused::Stale);
        assert_eq!(
            q.push(5 + MAX_SEQUENCE_GAP + 1, ()).unwrap_err().0,
            PushRefused::TooFarAhead
        );
        q.push(5 + MAX_SEQUENCE_GAP, ()).unwrap();
        assert_eq!(
            q.push(5 + MAX_SEQUENCE_GAP, ()).unwrap_err().0,
            PushRefused::Duplicate
        );
        let mut q = SequencedQueue::default();
        q.set_final_length(2).unwrap();
        assert_eq!(q.push(2, ()).unwrap_err().0, PushRefused::BeyondFinal);
    }

    #[test]
    fn final_length_rules() {
        let mut q = SequencedQueue::default();
        q.push(3, ()).unwrap();
        assert!(q.set_final_length(3).is_err());
        assert!(q.set_final_length(MAX_SEQUENCE_GAP + 1).is_err());
        q.set_final_length(4).unwrap();
        assert!(q.set_final_length(4).is_err());
        assert!(q.expects_more());
        for s in 0..3 {
            q.push(s, ()).unwrap();
        }
        assert!(!q.expects_more());
        while q.pop().is_some() {}
        assert!(q.fully_consumed());
    }

    #[test]
    fn force_terminate_keeps_the_contiguous_run() {
        let mut q = SequencedQueue::default();
        q.push(0, 0).unwrap();
        q.push(2, 2).unwrap();
        assert_eq!(q.force_terminate(), vec![2]);
        assert_eq!(q.final_length(), Some(1));
        assert!(!q.expects_more());
    }

    #[test]
    fn bounded() {
        let mut q = SequencedQueue::default();
        for s in 1..=MAX_QUEUED_PARCELS_PER_ROUTER as u64 {
            q.push(s, ()).unwrap();
        }
        assert_eq!(q.push(0, ()).unwrap_err().0, PushRefused::Full);
    }
}
