//! [`TrapHost`]: what a [`MojoSystem`](crate::MojoSystem) implementation
//! keeps for its traps: the sans-IO [`Traps`] plus each trap's event queue,
//! and the hooks it calls (after a change, on a close).

use std::collections::HashMap;
use std::sync::Arc;

use super::{ArmTrapError, TrapEvents, Traps, TriggerCondition};
use crate::{MojoHandle, MojoResult, Signals, SignalsState};

/// A system's traps and their queues. The system holds it under the same
/// lock as its handles and calls, besides the trap calls:
/// [`refresh`](Self::refresh) after any change of any handle's signals,
/// [`close`](Self::close) when a handle closes or leaves in a message.
/// Both cost a map lookup or less while no trap is armed.
#[derive(Default)]
pub struct TrapHost {
    traps: Traps,
    queues: HashMap<MojoHandle, Arc<TrapEvents>>,
    /// Reused list of the handles to re-read (no allocation per change).
    scratch: Vec<MojoHandle>,
}

impl TrapHost {
    /// `MojoCreateTrap` with the handle value `raw` (unique among the
    /// system's handles): the queue to build the [`Trap`](super::Trap) with.
    /// `RESOURCE_EXHAUSTED` if no eventfd can be made.
    pub fn create_trap(&mut self, raw: MojoHandle) -> MojoResult<Arc<TrapEvents>> {
        let events = TrapEvents::new()?;
        self.traps.create(raw)?;
        self.queues.insert(raw, events.clone());
        Ok(events)
    }

    /// True if `raw` is one of the traps.
    pub fn is_trap(&self, raw: MojoHandle) -> bool {
        self.traps.is_trap(raw)
    }

    /// True if some armed trap watches some handle (so changes matter).
    pub fn has_armed(&self) -> bool {
        self.traps.has_armed()
    }

    /// [`Traps::add_trigger`]; the caller checked that `handle` is a
    /// message pipe or data pipe end and read its `state`.
    pub fn add_trigger(
        &mut self,
        trap: MojoHandle,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
        context: u64,
        state: SignalsState,
    ) -> MojoResult<()> {
        let result = self
            .traps
            .add_trigger(trap, handle, signals, condition, context, state);
        self.flush();
        result
    }

    /// [`Traps::remove_trigger`].
    pub fn remove_trigger(&mut self, trap: MojoHandle, context: u64) -> MojoResult<()> {
        let result = self.traps.remove_trigger(trap, context);
        self.flush();
        result
    }

    /// [`Traps::arm`], reading signals through `state_of`.
    pub fn arm(
        &mut self,
        trap: MojoHandle,
        max_blocking: usize,
        state_of: impl FnMut(MojoHandle) -> SignalsState,
    ) -> Result<(), ArmTrapError> {
        self.traps.arm(trap, max_blocking, state_of)
    }

    /// Re-reads (through `state_of`; `None` for a handle gone) the signals
    /// of every handle an armed trap watches, firing what holds. Nothing to
    /// do, and nothing read, while no trap is armed.
    pub fn refresh(&mut self, mut state_of: impl FnMut(MojoHandle) -> Option<SignalsState>) {
        if !self.traps.has_armed() {
            return;
        }
        let mut handles = std::mem::take(&mut self.scratch);
        handles.clear();
        handles.extend(self.traps.armed_handles());
        for &handle in &handles {
            if let Some(state) = state_of(handle) {
                self.traps.update(handle, state);
            }
        }
        self.scratch = handles;
        self.flush();
    }

    /// `raw` is closed, or sent away: a trap closes (its triggers end), a
    /// watched handle's triggers end. Returns true if `raw` was a trap.
    pub fn close(&mut self, raw: MojoHandle) -> bool {
        if self.traps.is_trap(raw) {
            self.traps.close(raw);
            self.flush();
            self.queues.remove(&raw);
            return true;
        }
        self.traps.handle_closed(raw);
        self.flush();
        false
    }

    /// Closes every trap (the system is going away); the `CANCELLED`
    /// events reach the traps still held.
    pub fn close_all(&mut self) {
        self.traps.close_all();
        self.flush();
        self.queues.clear();
    }

    /// Moves the core's events into their traps' queues.
    fn flush(&mut self) {
        while let Some((trap, event)) = self.traps.poll_event() {
            if let Some(q) = self.queues.get(&trap) {
                q.push(event);
            }
        }
    }
}
