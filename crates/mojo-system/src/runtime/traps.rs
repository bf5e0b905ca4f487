//! The runtime's traps: the trap calls of [`RealSystem`] over the table's
//! [`TrapHost`](crate::trap::TrapHost), and the re-reading of watched
//! handles after changes.
//!
//! Every trap call runs under the table lock. After any change (input,
//! link loss, a local operation, a close) the runtime re-reads the signals
//! of the handles that armed traps watch and fires what holds; the
//! protocols do not say which handles a change touched, so that is all of
//! them, but only while some trap is armed: `Shared::traps_armed` tells
//! the change paths without taking the lock, so without armed traps a
//! change costs one atomic load.

use std::sync::atomic::Ordering;

use super::{Protocol, RealSystem, Shared, Table, WireHandle};
use crate::{ArmTrapError, MojoError, MojoHandle, MojoResult, Signals, Trap, TriggerCondition};

impl<P: Protocol> Shared<P> {
    /// Re-reads the armed traps' handles (the table is locked) and fires
    /// what holds; keeps `traps_armed` up to date.
    pub(super) fn settle(&self, t: &mut Table<P>) {
        if !self.traps_armed.load(Ordering::Acquire) {
            return;
        }
        let mut host = std::mem::take(&mut t.traps);
        host.refresh(|h| t.signals(h).ok());
        t.traps = host;
        self.traps_armed
            .store(t.traps.has_armed(), Ordering::Release);
    }

    /// [`settle`](Self::settle) from outside the lock, if a trap is armed.
    pub(super) fn refresh_traps(&self) {
        if self.traps_armed.load(Ordering::Acquire) {
            self.settle(&mut self.lock());
        }
    }

    /// After a trap call: whether changes must now be looked at.
    fn traps_changed(&self, t: &Table<P>) {
        self.traps_armed
            .store(t.traps.has_armed(), Ordering::Release);
    }
}

impl<P: Protocol> RealSystem<P> {
    pub(super) fn trap_create(&self) -> MojoResult<Trap> {
        let mut t = self.shared.lock();
        let raw = t.alloc()?;
        let events = t.traps.create_trap(raw)?;
        drop(t);
        Ok(Trap::from_raw(raw, self.closer(), events))
    }

    pub(super) fn trap_add_trigger(
        &self,
        trap: &Trap,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
        context: u64,
    ) -> MojoResult<()> {
        let mut t = self.shared.lock();
        if !t.traps.is_trap(trap.raw()) {
            return Err(MojoError::InvalidArgument);
        }
        match t.handles.get(&handle.value()) {
            Some(WireHandle::Pipe(_) | WireHandle::Producer(_) | WireHandle::Consumer(_)) => {}
            _ => return Err(MojoError::InvalidArgument),
        }
        let state = t.signals(handle)?;
        let result = t
            .traps
            .add_trigger(trap.raw(), handle, signals, condition, context, state);
        self.shared.traps_changed(&t);
        drop(t);
        // Reading a data pipe end's signals may have queued frames.
        self.shared.wake();
        result
    }

    pub(super) fn trap_remove_trigger(&self, trap: &Trap, context: u64) -> MojoResult<()> {
        let mut t = self.shared.lock();
        let result = t.traps.remove_trigger(trap.raw(), context);
        self.shared.traps_changed(&t);
        result
    }

    pub(super) fn trap_arm(&self, trap: &Trap, max: usize) -> Result<(), ArmTrapError> {
        let mut t = self.shared.lock();
        let mut host = std::mem::take(&mut t.traps);
        let result = host.arm(trap.raw(), max, |h| t.signals(h).unwrap_or_default());
        t.traps = host;
        self.shared.traps_changed(&t);
        drop(t);
        self.shared.wake();
        result
    }
}
