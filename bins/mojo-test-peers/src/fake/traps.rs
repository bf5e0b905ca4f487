//! The fake system's traps: the trap calls over `mojo-system`'s
//! [`TrapHost`](crate::system::trap::TrapHost) (the same sans-IO core as the
//! node-backed systems), and the re-reading of watched handles after every
//! change.

use std::sync::Arc;

use super::objects::{Object, State};
use crate::system::trap::TrapEvents;
use crate::system::{ArmTrapError, MojoError, MojoHandle, MojoResult, Signals, TriggerCondition};

impl State {
    /// `MojoCreateTrap`: the new trap's handle value and event queue.
    pub(super) fn create_trap(&mut self) -> MojoResult<(MojoHandle, Arc<TrapEvents>)> {
        let raw = self.alloc()?;
        Ok((raw, self.traps.create_trap(raw)?))
    }

    /// `MojoAddTrigger` on a message pipe or data pipe end.
    pub(super) fn add_trigger(
        &mut self,
        trap: MojoHandle,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
        context: u64,
    ) -> MojoResult<()> {
        if !self.traps.is_trap(trap) {
            return Err(MojoError::InvalidArgument);
        }
        match self.handles.get(&handle.value()) {
            Some(Object::Pipe { .. } | Object::Producer(_) | Object::Consumer(_)) => {}
            _ => return Err(MojoError::InvalidArgument),
        }
        let state = self.signals(handle)?;
        self.traps
            .add_trigger(trap, handle, signals, condition, context, state)
    }

    /// `MojoArmTrap`, reading the triggers' current signals.
    pub(super) fn arm_trap(&mut self, trap: MojoHandle, max: usize) -> Result<(), ArmTrapError> {
        let mut host = std::mem::take(&mut self.traps);
        let result = host.arm(trap, max, |h| self.signals(h).unwrap_or_default());
        self.traps = host;
        result
    }

    /// After a change: fires the armed traps whose conditions now hold.
    pub(super) fn refresh_traps(&mut self) {
        if self.traps.has_armed() {
            let mut host = std::mem::take(&mut self.traps);
            host.refresh(|h| self.signals(h).ok());
            self.traps = host;
        }
    }
}
