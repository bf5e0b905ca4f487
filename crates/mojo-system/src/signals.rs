//! `MojoHandleSignals` and `MojoHandleSignalsState`, and the rules that
//! give each kind of handle end its state, shared by every system.

use std::ops::BitOr;

/// `MojoHandleSignals`: a set of handle signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Signals(u32);

impl Signals {
    /// No signal.
    pub const NONE: Self = Self(0);
    /// `MOJO_HANDLE_SIGNAL_READABLE`.
    pub const READABLE: Self = Self(1);
    /// `MOJO_HANDLE_SIGNAL_WRITABLE`.
    pub const WRITABLE: Self = Self(2);
    /// `MOJO_HANDLE_SIGNAL_PEER_CLOSED`.
    pub const PEER_CLOSED: Self = Self(4);
    /// `MOJO_HANDLE_SIGNAL_NEW_DATA_READABLE`: a data pipe consumer got
    /// bytes since its last read call (see [`crate::new_data`]).
    pub const NEW_DATA_READABLE: Self = Self(8);
    /// `MOJO_HANDLE_SIGNAL_PEER_REMOTE`: a message pipe's peer end is in
    /// another node (best effort, as in Mojo).
    pub const PEER_REMOTE: Self = Self(16);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True if any signal of `other` is in `self`.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// The signals of `self` that are not in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl BitOr for Signals {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// `MojoHandleSignalsState`: what a handle satisfies now and what it can
/// still ever satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalsState {
    /// Signals satisfied now.
    pub satisfied: Signals,
    /// Signals that may still become satisfied.
    pub satisfiable: Signals,
}

impl SignalsState {
    /// A message pipe end's state: readable while messages wait, able to
    /// become readable while any may still arrive (`may_read`), writable
    /// until the peer is closed.
    pub fn of_pipe(readable: bool, may_read: bool, peer_closed: bool) -> Self {
        let mut satisfied = Signals::NONE;
        let mut satisfiable = Signals::PEER_CLOSED;
        if readable {
            satisfied = satisfied | Signals::READABLE;
        }
        if may_read {
            satisfiable = satisfiable | Signals::READABLE;
        }
        if peer_closed {
            satisfied = satisfied | Signals::PEER_CLOSED;
        } else {
            satisfied = satisfied | Signals::WRITABLE;
            satisfiable = satisfiable | Signals::WRITABLE;
        }
        Self {
            satisfied,
            satisfiable,
        }
    }

    /// A message pipe end's state with `PEER_REMOTE` (Mojo Core's rule):
    /// satisfiable until the peer is closed, satisfied while it is open in
    /// another node (`remote`).
    pub fn with_peer_remote(mut self, remote: bool) -> Self {
        if !self.satisfied.intersects(Signals::PEER_CLOSED) {
            self.satisfiable = self.satisfiable | Signals::PEER_REMOTE;
            if remote {
                self.satisfied = self.satisfied | Signals::PEER_REMOTE;
            }
        }
        self
    }

    /// A data pipe producer's state: writable while the consumer is open
    /// and the ring has room; peer-closed once the consumer is gone.
    pub fn of_producer(peer_closed: bool, available_capacity: u32) -> Self {
        if peer_closed {
            return Self {
                satisfied: Signals::PEER_CLOSED,
                satisfiable: Signals::PEER_CLOSED,
            };
        }
        let writable = if available_capacity > 0 {
            Signals::WRITABLE
        } else {
            Signals::NONE
        };
        Self {
            satisfied: writable,
            satisfiable: Signals::PEER_CLOSED | Signals::WRITABLE,
        }
    }

    /// A data pipe consumer's state: readable while bytes wait, able to
    /// become readable until drained (peer closed and nothing left).
    pub fn of_consumer(bytes_available: u32, drained: bool, peer_closed: bool) -> Self {
        let mut satisfied = Signals::NONE;
        let mut satisfiable = Signals::PEER_CLOSED;
        if bytes_available > 0 {
            satisfied = satisfied | Signals::READABLE;
        }
        if !drained {
            satisfiable = satisfiable | Signals::READABLE;
        }
        if peer_closed {
            satisfied = satisfied | Signals::PEER_CLOSED;
        }
        Self {
            satisfied,
            satisfiable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_pipe_end_signals() {
        let full = SignalsState::of_producer(false, 0);
        assert_eq!(full.satisfied, Signals::NONE);
        assert!(full.satisfiable.intersects(Signals::WRITABLE));
        assert_eq!(
            SignalsState::of_producer(false, 1).satisfied,
            Signals::WRITABLE
        );
        let orphan = SignalsState::of_producer(true, 9);
        assert_eq!(
            (orphan.satisfied, orphan.satisfiable),
            (Signals::PEER_CLOSED, Signals::PEER_CLOSED)
        );
        let draining = SignalsState::of_consumer(5, false, true);
        assert_eq!(draining.satisfied, Signals::READABLE | Signals::PEER_CLOSED);
        assert!(draining.satisfiable.intersects(Signals::READABLE));
        let drained = SignalsState::of_consumer(0, true, true);
        assert_eq!(drained.satisfiable, Signals::PEER_CLOSED);
        assert_eq!(
            SignalsState::of_consumer(0, false, false).satisfied,
            Signals::NONE
        );
    }

    #[test]
    fn message_pipe_end_signals() {
        let open = SignalsState::of_pipe(false, true, false);
        assert_eq!(open.satisfied, Signals::WRITABLE);
        assert_eq!(
            open.satisfiable,
            Signals::READABLE | Signals::WRITABLE | Signals::PEER_CLOSED
        );
        let last_messages = SignalsState::of_pipe(true, true, true);
        assert_eq!(
            last_messages.satisfied,
            Signals::READABLE | Signals::PEER_CLOSED
        );
        assert_eq!(
            last_messages.satisfiable,
            Signals::READABLE | Signals::PEER_CLOSED
        );
        let done = SignalsState::of_pipe(false, false, true);
        assert_eq!(
            (done.satisfied, done.satisfiable),
            (Signals::PEER_CLOSED, Signals::PEER_CLOSED)
        );
    }

    #[test]
    fn peer_remote_until_the_peer_closes() {
        let open = SignalsState::of_pipe(false, true, false);
        let local = open.with_peer_remote(false);
        assert!(!local.satisfied.intersects(Signals::PEER_REMOTE));
        assert!(local.satisfiable.intersects(Signals::PEER_REMOTE));
        let remote = open.with_peer_remote(true);
        assert!(remote.satisfied.intersects(Signals::PEER_REMOTE));
        let closed = SignalsState::of_pipe(true, true, true).with_peer_remote(true);
        assert!(!closed.satisfied.intersects(Signals::PEER_REMOTE));
        assert!(!closed.satisfiable.intersects(Signals::PEER_REMOTE));
    }

    #[test]
    fn signals() {
        let s = Signals::READABLE | Signals::PEER_CLOSED;
        assert_eq!(s.bits(), 5);
        assert!(s.intersects(Signals::PEER_CLOSED));
        assert!(!s.intersects(Signals::WRITABLE));
    }
}
