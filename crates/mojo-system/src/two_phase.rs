//! Mojo's two-phase data pipe rules (`MojoBeginWriteData`/`MojoEndWriteData`,
//! `MojoBeginReadData`/`MojoEndReadData`), kept once so that every system
//! answers the same codes in the same order.
//!
//! A [`TwoPhase`] is the state of one data pipe end; the system asks it
//! before touching the ring and reports the end's counts as a
//! [`DataEndState`]. The rules, as Mojo Core's data pipe dispatchers apply
//! them:
//!
//! - While a two-phase operation is under way on an end, every other data
//!   call on it (write, read, discard, query, a second begin) is `BUSY`, and
//!   so is sending the end in a message.
//! - Begin: `BUSY` first; then, for a write, `FAILED_PRECONDITION` once the
//!   consumer is closed and `SHOULD_WAIT` while there is no room; for a
//!   read, `SHOULD_WAIT` while nothing is readable, or `FAILED_PRECONDITION`
//!   if the producer is also closed.
//! - End without a begin is `FAILED_PRECONDITION`. End with more bytes than
//!   begun, or with a count that is not whole elements, is
//!   `INVALID_ARGUMENT`, and the two-phase operation is over all the same
//!   (nothing is committed). A write may end after its consumer closed.
//! - During a two-phase write the producer is not `WRITABLE`; during a
//!   two-phase read the consumer is not `READABLE` (both stay satisfiable).
//!
//! No reference into shared memory is ever handed out (the crate's rule for
//! mappings another process can change), so the two-phase buffer is a copy:
//! a write's buffer is the application's to fill and is copied into the
//! ring at the end; a read's buffer holds a copy of the readable bytes. The
//! ring's room (or its bytes) stays reserved between begin and end, as in
//! Mojo; unlike Mojo, the buffer covers all of the room (or of the readable
//! bytes), not only the part before the ring wraps.

use crate::{MojoError, MojoResult, Signals, SignalsState};

/// A data pipe end's counts as a two-phase call needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataEndState {
    /// The pipe's element size in bytes (never 0).
    pub element_size: u32,
    /// A producer's room for writing, or a consumer's readable bytes.
    pub bytes: u32,
    /// The other end is closed.
    pub peer_closed: bool,
}

impl DataEndState {
    /// True if `num_bytes` is a whole number of elements.
    fn whole(&self, num_bytes: usize) -> bool {
        num_bytes % (self.element_size.max(1) as usize) == 0
    }
}

/// The two-phase state of one data pipe end: idle, or begun with a buffer
/// of some size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TwoPhase {
    begun: Option<u32>,
}

impl TwoPhase {
    /// True between a successful begin and its end.
    pub fn is_active(&self) -> bool {
        self.begun.is_some()
    }

    /// `BUSY` while a two-phase operation is under way: the check before
    /// every other data call on the end and before sending it.
    pub fn check_idle(&self) -> MojoResult<()> {
        if self.is_active() {
            Err(MojoError::Busy)
        } else {
            Ok(())
        }
    }

    /// `MojoBeginWriteData` on a producer in state `end`: the size of the
    /// buffer to offer (all the room), or why not.
    pub fn begin_write(&mut self, end: DataEndState) -> MojoResult<u32> {
        self.check_idle()?;
        if end.peer_closed {
            return Err(MojoError::FailedPrecondition);
        }
        if end.bytes == 0 {
            return Err(MojoError::ShouldWait);
        }
        self.begun = Some(end.bytes);
        Ok(end.bytes)
    }

    /// `MojoBeginReadData` on a consumer in state `end`: how many readable
    /// bytes to copy into the buffer, or why not.
    pub fn begin_read(&mut self, end: DataEndState) -> MojoResult<u32> {
        self.check_idle()?;
        if end.bytes == 0 {
            return Err(if end.peer_closed {
                MojoError::FailedPrecondition
            } else {
                MojoError::ShouldWait
            });
        }
        self.begun = Some(end.bytes);
        Ok(end.bytes)
    }

    /// `MojoEndWriteData` / `MojoEndReadData` of `num_bytes` on a pipe of
    /// `element_size`: ends the two-phase operation and says whether to
    /// commit `num_bytes` (`Ok`) or nothing (`INVALID_ARGUMENT`);
    /// `FAILED_PRECONDITION` if none was under way.
    pub fn end(&mut self, num_bytes: usize, element_size: u32) -> MojoResult<u32> {
        let begun = self.begun.take().ok_or(MojoError::FailedPrecondition)?;
        let state = DataEndState {
            element_size,
            bytes: begun,
            peer_closed: false,
        };
        match u32::try_from(num_bytes) {
            Ok(n) if n <= begun && state.whole(num_bytes) => Ok(n),
            _ => Err(MojoError::InvalidArgument),
        }
    }

    /// `state` as the end reports it while this two-phase state holds: a
    /// producer in a two-phase write is not writable, a consumer in a
    /// two-phase read not readable.
    pub fn mask(&self, state: SignalsState) -> SignalsState {
        if !self.is_active() {
            return state;
        }
        SignalsState {
            satisfied: state
                .satisfied
                .difference(Signals::READABLE | Signals::WRITABLE),
            satisfiable: state.satisfiable,
        }
    }
}

/// `MojoReadData` with `MOJO_READ_DATA_FLAG_DISCARD` of `num_bytes` on a
/// consumer in state `end`: how many bytes to discard. `INVALID_ARGUMENT`
/// for a count that is not whole elements; when nothing can be discarded
/// (nothing readable, or a count of 0, as in Mojo) `SHOULD_WAIT`, or
/// `FAILED_PRECONDITION` if the producer is closed.
pub fn discard_count(end: DataEndState, num_bytes: usize) -> MojoResult<u32> {
    if !end.whole(num_bytes) {
        return Err(MojoError::InvalidArgument);
    }
    let n = u32::try_from(num_bytes).unwrap_or(u32::MAX).min(end.bytes);
    let n = n - n % end.element_size.max(1);
    if n == 0 {
        return Err(if end.peer_closed {
            MojoError::FailedPrecondition
        } else {
            MojoError::ShouldWait
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn end(element_size: u32, bytes: u32, peer_closed: bool) -> DataEndState {
        DataEndState {
            element_size,
            bytes,
            peer_closed,
        }
    }

    #[test]
    fn begin_twice_is_busy_and_end_without_begin_a_precondition() {
        let mut tp = TwoPhase::default();
        assert_eq!(tp.end(0, 1), Err(MojoError::FailedPrecondition));
        assert_eq!(tp.begin_write(end(1, 8, false)), Ok(8));
        assert_eq!(tp.check_idle(), Err(MojoError::Busy));
        assert_eq!(tp.begin_write(end(1, 8, false)), Err(MojoError::Busy));
        assert_eq!(tp.begin_read(end(1, 8, false)), Err(MojoError::Busy));
        assert_eq!(tp.end(8, 1), Ok(8));
        assert_eq!(tp.end(0, 1), Err(MojoError::FailedPrecondition));
    }

    #[test]
    fn begin_order_of_errors() {
        let mut tp = TwoPhase::default();
        // A closed consumer wins over a full ring for a write...
        assert_eq!(
            tp.begin_write(end(1, 0, true)),
            Err(MojoError::FailedPrecondition)
        );
        assert_eq!(tp.begin_write(end(1, 0, false)), Err(MojoError::ShouldWait));
        // ...but a read with bytes left succeeds after the producer closed.
        assert_eq!(tp.begin_read(end(1, 0, false)), Err(MojoError::ShouldWait));
        assert_eq!(
            tp.begin_read(end(1, 0, true)),
            Err(MojoError::FailedPrecondition)
        );
        assert!(!tp.is_active(), "a failed begin begins nothing");
        assert_eq!(tp.begin_read(end(1, 3, true)), Ok(3));
    }

    #[test]
    fn an_invalid_end_still_ends() {
        let mut tp = TwoPhase::default();
        tp.begin_read(end(4, 16, false)).unwrap();
        assert_eq!(tp.end(20, 4), Err(MojoError::InvalidArgument));
        assert!(!tp.is_active());
        tp.begin_read(end(4, 16, false)).unwrap();
        assert_eq!(tp.end(6, 4), Err(MojoError::InvalidArgument));
        tp.begin_read(end(4, 16, false)).unwrap();
        assert_eq!(tp.end(0, 4), Ok(0));
    }

    #[test]
    fn masks_only_while_active() {
        let all = SignalsState {
            satisfied: Signals::READABLE | Signals::WRITABLE | Signals::PEER_CLOSED,
            satisfiable: Signals::READABLE | Signals::WRITABLE | Signals::PEER_CLOSED,
        };
        let mut tp = TwoPhase::default();
        assert_eq!(tp.mask(all), all);
        tp.begin_write(end(1, 1, false)).unwrap();
        let masked = tp.mask(all);
        assert_eq!(masked.satisfied, Signals::PEER_CLOSED);
        assert_eq!(masked.satisfiable, all.satisfiable);
    }

    #[test]
    fn discard_counts() {
        assert_eq!(discard_count(end(2, 10, false), 4), Ok(4));
        assert_eq!(discard_count(end(2, 10, false), 12), Ok(10));
        assert_eq!(
            discard_count(end(2, 10, false), 3),
            Err(MojoError::InvalidArgument)
        );
        assert_eq!(
            discard_count(end(2, 10, false), 0),
            Err(MojoError::ShouldWait)
        );
        assert_eq!(
            discard_count(end(2, 0, true), 2),
            Err(MojoError::FailedPrecondition)
        );
    }

    proptest! {
        /// Any sequence of begins and ends keeps Mojo's invariants: a begin
        /// succeeds only when idle, an end only when active, and a
        /// successful end commits at most what was begun, in whole elements.
        #[test]
        fn two_phase_invariants(
            element_size in 1u32..5,
            ops in proptest::collection::vec((any::<bool>(), 0u32..40, any::<bool>()), 0..40),
        ) {
            let mut tp = TwoPhase::default();
            let mut model: Option<u32> = None;
            for (begin, bytes, closed) in ops {
                if begin {
                    let r = tp.begin_read(end(element_size, bytes, closed));
                    match model {
                        Some(_) => prop_assert_eq!(r, Err(MojoError::Busy)),
                        None if bytes == 0 => prop_assert!(r.is_err()),
                        None => {
                            prop_assert_eq!(r, Ok(bytes));
                            model = Some(bytes);
                        }
                    }
                } else {
                    let r = tp.end(bytes as usize, element_size);
                    match model.take() {
                        None => prop_assert_eq!(r, Err(MojoError::FailedPrecondition)),
                        Some(b) if bytes <= b && bytes % element_size == 0 => {
                            prop_assert_eq!(r, Ok(bytes));
                        }
                        Some(_) => prop_assert_eq!(r, Err(MojoError::InvalidArgument)),
                    }
                }
                prop_assert_eq!(tp.is_active(), model.is_some());
            }
        }
    }
}
