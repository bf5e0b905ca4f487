//! `MOJO_HANDLE_SIGNAL_NEW_DATA_READABLE` of a data pipe consumer, the same
//! in every system: [`NewData`] tracks whether bytes arrived since the
//! end's last read call.
//!
//! Mojo's rules (its consumer dispatcher): the signal is raised when the
//! readable byte count grows (the producer wrote), and lowered by every read
//! call of the end (`MojoReadData` with any flags, discard and query
//! included, and `MojoBeginReadData`), whatever its result once it is past
//! the `BUSY` check. It is satisfied while raised, bytes are readable and
//! no two-phase read is under way; satisfiable while raised or while the
//! producer is open. A consumer that arrives in a message starts raised if
//! bytes are readable.
//!
//! The systems learn of arrivals only by looking at the byte count, so they
//! [`observe`](NewData::observe) it whenever they compute the end's signals
//! and around read calls. Only the consumer's own calls make the count
//! smaller, and each of them ends with [`sync`](NewData::sync): a count
//! above the one last seen is new data.

use crate::{Signals, SignalsState};

/// One consumer end's new-data state; see the module page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewData {
    /// Readable bytes when the system last looked.
    seen: u32,
    /// Bytes arrived since the last read call.
    raised: bool,
}

impl NewData {
    /// Looks at the readable byte count: more than last seen raises the
    /// signal.
    pub fn observe(&mut self, bytes: u32) {
        if bytes > self.seen {
            self.raised = true;
        }
        self.seen = bytes;
    }

    /// A read call of the end begins (past its `BUSY` check): the bytes
    /// readable now (`bytes`, after a last look) are no longer new.
    pub fn read_call(&mut self, bytes: u32) {
        self.observe(bytes);
        self.raised = false;
    }

    /// The end's own call changed the count to `bytes` (a read, a discard,
    /// the end of a two-phase read): nothing new arrived by it.
    pub fn sync(&mut self, bytes: u32) {
        self.seen = bytes;
    }

    /// Whether the signal is raised.
    pub fn is_raised(&self) -> bool {
        self.raised
    }

    /// Adds the signal to `state`, a consumer's state after its two-phase
    /// mask (so `READABLE` in it means bytes readable outside a two-phase
    /// read).
    pub fn apply(&self, mut state: SignalsState) -> SignalsState {
        if self.raised && state.satisfied.intersects(Signals::READABLE) {
            state.satisfied = state.satisfied | Signals::NEW_DATA_READABLE;
        }
        if self.raised || !state.satisfied.intersects(Signals::PEER_CLOSED) {
            state.satisfiable = state.satisfiable | Signals::NEW_DATA_READABLE;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(bytes: u32, peer_closed: bool) -> SignalsState {
        SignalsState::of_consumer(bytes, peer_closed && bytes == 0, peer_closed)
    }

    #[test]
    fn raised_by_arrivals_lowered_by_read_calls() {
        let mut n = NewData::default();
        n.observe(0);
        assert!(!n.is_raised());
        let s = n.apply(consumer(0, false));
        assert!(!s.satisfied.intersects(Signals::NEW_DATA_READABLE));
        assert!(s.satisfiable.intersects(Signals::NEW_DATA_READABLE));

        n.observe(5);
        assert!(
            n.apply(consumer(5, false))
                .satisfied
                .intersects(Signals::NEW_DATA_READABLE)
        );
        // Looking again without new bytes keeps it raised.
        n.observe(5);
        assert!(n.is_raised());
        // A read of 2 lowers it; the 3 left are not new.
        n.read_call(5);
        n.sync(3);
        n.observe(3);
        assert!(!n.is_raised());
        assert!(
            !n.apply(consumer(3, false))
                .satisfied
                .intersects(Signals::NEW_DATA_READABLE)
        );
        // One more byte is new again.
        n.observe(4);
        assert!(n.is_raised());
    }

    #[test]
    fn satisfiable_while_raised_or_the_producer_is_open() {
        let mut n = NewData::default();
        n.observe(4);
        // The producer closed with new bytes: still satisfied.
        let s = n.apply(consumer(4, true));
        assert!(s.satisfied.intersects(Signals::NEW_DATA_READABLE));
        assert!(s.satisfiable.intersects(Signals::NEW_DATA_READABLE));
        n.read_call(4);
        n.sync(0);
        let s = n.apply(consumer(0, true));
        assert!(!s.satisfiable.intersects(Signals::NEW_DATA_READABLE));
        // Masked by a two-phase read (no READABLE): not satisfied, but
        // still satisfiable while raised.
        let mut n = NewData::default();
        n.observe(4);
        let masked = SignalsState {
            satisfied: Signals::PEER_CLOSED,
            satisfiable: Signals::READABLE | Signals::PEER_CLOSED,
        };
        let s = n.apply(masked);
        assert!(!s.satisfied.intersects(Signals::NEW_DATA_READABLE));
        assert!(s.satisfiable.intersects(Signals::NEW_DATA_READABLE));
    }
}
