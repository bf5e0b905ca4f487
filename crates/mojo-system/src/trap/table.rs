//! [`Traps`]: the sans-IO core of Mojo's traps (`MojoCreateTrap`,
//! `MojoAddTrigger`, `MojoRemoveTrigger`, `MojoArmTrap`) for every trap of
//! one system.
//!
//! Input: trap calls, "handle H's signals are now S" ([`Traps::update`]) and
//! "H closed" ([`Traps::handle_closed`]); output: [`TrapEvent`]s, each for
//! one trap ([`Traps::poll_event`]). No I/O, no clock, no locks.
//!
//! The rules are Mojo's (see the [trap module page](super)).
//!
//! The index by handle keeps [`Traps::update`] proportional to the triggers
//! on that handle; only handles watched by an armed trap are of interest
//! ([`Traps::armed_handles`]), since arming re-reads every trigger's state.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;

use super::{ArmTrapError, TrapEvent, TriggerCondition};
use crate::{MojoError, MojoHandle, MojoResult, Signals, SignalsState};

#[derive(Debug, Clone, Copy)]
struct Trigger {
    handle: MojoHandle,
    signals: Signals,
    condition: TriggerCondition,
}

impl Trigger {
    /// The event this trigger's condition calls for in `state`, if any.
    fn result(&self, state: SignalsState) -> Option<MojoResult<()>> {
        let wanted = self.signals.bits();
        match self.condition {
            TriggerCondition::SignalsSatisfied => {
                if state.satisfied.intersects(self.signals) {
                    Some(Ok(()))
                } else if !state.satisfiable.intersects(self.signals) {
                    Some(Err(MojoError::FailedPrecondition))
                } else {
                    None
                }
            }
            TriggerCondition::SignalsUnsatisfied => {
                (state.satisfied.bits() & wanted != wanted).then_some(Ok(()))
            }
        }
    }
}

#[derive(Debug, Default)]
struct TrapState {
    /// The triggers by context (ordered, for the round of blocking events).
    triggers: BTreeMap<u64, Trigger>,
    armed: bool,
    /// The context of the last blocking event handed out by a failed arm.
    last_blocking: Option<u64>,
}

/// Every trap of one system, without I/O: trap calls and handle changes
/// in, [`TrapEvent`]s out (see the [trap module page](super)).
#[derive(Debug, Default)]
pub struct Traps {
    traps: HashMap<MojoHandle, TrapState>,
    /// Each watched handle's triggers, as (trap, context).
    by_handle: HashMap<MojoHandle, Vec<(MojoHandle, u64)>>,
    /// Handles watched by an armed trap, with how many armed triggers.
    armed: HashMap<MojoHandle, usize>,
    out: VecDeque<(MojoHandle, TrapEvent)>,
}

impl Traps {
    /// An empty set of traps.
    pub fn new() -> Self {
        Self::default()
    }

    /// `MojoCreateTrap` with the handle value the system chose: a disarmed
    /// trap without triggers. `ALREADY_EXISTS` if `trap` is taken.
    pub fn create(&mut self, trap: MojoHandle) -> MojoResult<()> {
        if self.traps.contains_key(&trap) {
            return Err(MojoError::AlreadyExists);
        }
        self.traps.insert(trap, TrapState::default());
        Ok(())
    }

    /// True if `handle` is a trap of this set.
    pub fn is_trap(&self, handle: MojoHandle) -> bool {
        self.traps.contains_key(&handle)
    }

    /// True if there is no trap at all.
    pub fn is_empty(&self) -> bool {
        self.traps.is_empty()
    }

    /// True if some armed trap watches some handle.
    pub fn has_armed(&self) -> bool {
        !self.armed.is_empty()
    }

    /// The handles an armed trap watches: the ones whose changes
    /// [`update`](Self::update) must hear of.
    pub fn armed_handles(&self) -> impl Iterator<Item = MojoHandle> + '_ {
        self.armed.keys().copied()
    }

    /// `MojoAddTrigger`: `trap` watches `handle` (whose signals are `state`
    /// now) for `signals` under `condition`, events naming `context`.
    /// `INVALID_ARGUMENT` for an unknown trap, `ALREADY_EXISTS` if the trap
    /// has a trigger with this context or on this handle. On an armed trap
    /// a trigger whose condition already holds fires at once.
    pub fn add_trigger(
        &mut self,
        trap: MojoHandle,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
        context: u64,
        state: SignalsState,
    ) -> MojoResult<()> {
        let t = self
            .traps
            .get_mut(&trap)
            .ok_or(MojoError::InvalidArgument)?;
        let watched = self.by_handle.entry(handle).or_default();
        if t.triggers.contains_key(&context) || watched.iter().any(|(tr, _)| *tr == trap) {
            if watched.is_empty() {
                self.by_handle.remove(&handle);
            }
            return Err(MojoError::AlreadyExists);
        }
        let trigger = Trigger {
            handle,
            signals,
            condition,
        };
        t.triggers.insert(context, trigger);
        watched.push((trap, context));
        if t.armed {
            *self.armed.entry(handle).or_default() += 1;
            if let Some(result) = trigger.result(state) {
                self.fire(trap, context, result, state);
            }
        }
        Ok(())
    }

    /// `MojoRemoveTrigger`: the trigger ends with a `CANCELLED` event.
    /// `INVALID_ARGUMENT` for an unknown trap, `NOT_FOUND` for an unknown
    /// context.
    pub fn remove_trigger(&mut self, trap: MojoHandle, context: u64) -> MojoResult<()> {
        let t = self
            .traps
            .get_mut(&trap)
            .ok_or(MojoError::InvalidArgument)?;
        let trigger = t.triggers.remove(&context).ok_or(MojoError::NotFound)?;
        let armed = t.armed;
        self.unindex(trap, context, trigger.handle, armed);
        self.cancelled(trap, context);
        Ok(())
    }

    /// `MojoArmTrap`, reading each trigger's handle's signals through
    /// `state_of`. `INVALID_ARGUMENT` for an unknown trap, `NOT_FOUND`
    /// without triggers, `FAILED_PRECONDITION` with up to `max_blocking`
    /// events if any trigger's condition holds now (the trap stays
    /// disarmed). Arming an armed trap succeeds.
    pub fn arm(
        &mut self,
        trap: MojoHandle,
        max_blocking: usize,
        mut state_of: impl FnMut(MojoHandle) -> SignalsState,
    ) -> Result<(), ArmTrapError> {
        let t = self
            .traps
            .get_mut(&trap)
            .ok_or_else(|| ArmTrapError::new(MojoError::InvalidArgument))?;
        if t.armed {
            return Ok(());
        }
        if t.triggers.is_empty() {
            return Err(ArmTrapError::new(MojoError::NotFound));
        }
        // Start after the last blocking trigger, wrapping round.
        let (first, wrapped) = match t.last_blocking {
            Some(last) => (
                t.triggers.range((Bound::Excluded(last), Bound::Unbounded)),
                Some(t.triggers.range(..=last)),
            ),
            None => (t.triggers.range(..), None),
        };
        let round = first.chain(wrapped.into_iter().flatten());
        let mut blocked = false;
        let mut events = Vec::new();
        for (&context, trigger) in round {
            let state = state_of(trigger.handle);
            if let Some(result) = trigger.result(state) {
                blocked = true;
                if events.len() == max_blocking {
                    break;
                }
                events.push(TrapEvent {
                    context,
                    result,
                    signals_state: state,
                });
            }
        }
        if blocked {
            if let Some(last) = events.last() {
                t.last_blocking = Some(last.context);
            }
            return Err(ArmTrapError {
                error: MojoError::FailedPrecondition,
                blocking_events: events,
            });
        }
        t.armed = true;
        for trigger in t.triggers.values() {
            *self.armed.entry(trigger.handle).or_default() += 1;
        }
        Ok(())
    }

    /// `handle`'s signals are now `state`: every armed trap watching it
    /// whose trigger's condition holds fires (and disarms).
    pub fn update(&mut self, handle: MojoHandle, state: SignalsState) {
        if !self.armed.contains_key(&handle) {
            return;
        }
        let Some(watched) = self.by_handle.get(&handle) else {
            return;
        };
        // Firing changes neither this list nor the triggers; collect the
        // firing ones first (at most one per trap, a handful in all).
        let firing: Vec<(MojoHandle, u64, MojoResult<()>)> = watched
            .iter()
            .filter_map(|&(trap, context)| {
                let t = self.traps.get(&trap).filter(|t| t.armed)?;
                let result = t.triggers.get(&context)?.result(state)?;
                Some((trap, context, result))
            })
            .collect();
        for (trap, context, result) in firing {
            self.fire(trap, context, result, state);
        }
    }

    /// `handle` is closed (or sent away): each of its triggers ends with a
    /// `CANCELLED` event.
    pub fn handle_closed(&mut self, handle: MojoHandle) {
        let Some(watched) = self.by_handle.remove(&handle) else {
            return;
        };
        self.armed.remove(&handle);
        for (trap, context) in watched {
            if let Some(t) = self.traps.get_mut(&trap) {
                t.triggers.remove(&context);
            }
            self.cancelled(trap, context);
        }
    }

    /// Closes `trap` (`MojoClose`): each of its triggers ends with a
    /// `CANCELLED` event (in context order). Unknown traps are ignored.
    pub fn close(&mut self, trap: MojoHandle) {
        let Some(t) = self.traps.remove(&trap) else {
            return;
        };
        let armed = t.armed;
        for (context, trigger) in t.triggers {
            self.unindex(trap, context, trigger.handle, armed);
            self.cancelled(trap, context);
        }
    }

    /// Closes every trap (the system is going away).
    pub fn close_all(&mut self) {
        let traps: Vec<MojoHandle> = self.traps.keys().copied().collect();
        for trap in traps {
            self.close(trap);
        }
    }

    /// The next event, with the trap it is for.
    pub fn poll_event(&mut self) -> Option<(MojoHandle, TrapEvent)> {
        self.out.pop_front()
    }

    /// Queues an event and disarms `trap`.
    fn fire(
        &mut self,
        trap: MojoHandle,
        context: u64,
        result: MojoResult<()>,
        state: SignalsState,
    ) {
        let Some(t) = self.traps.get_mut(&trap) else {
            return;
        };
        t.armed = false;
        for trigger in t.triggers.values() {
            release(&mut self.armed, trigger.handle);
        }
        self.out.push_back((
            trap,
            TrapEvent {
                context,
                result,
                signals_state: state,
            },
        ));
    }

    fn cancelled(&mut self, trap: MojoHandle, context: u64) {
        self.out.push_back((
            trap,
            TrapEvent {
                context,
                result: Err(MojoError::Cancelled),
                signals_state: SignalsState::default(),
            },
        ));
    }

    /// Drops a removed trigger from the handle index.
    fn unindex(&mut self, trap: MojoHandle, context: u64, handle: MojoHandle, armed: bool) {
        if let Some(watched) = self.by_handle.get_mut(&handle) {
            watched.retain(|&entry| entry != (trap, context));
            if watched.is_empty() {
                self.by_handle.remove(&handle);
            }
        }
        if armed {
            release(&mut self.armed, handle);
        }
    }
}

/// One armed trigger fewer on `handle`.
fn release(armed: &mut HashMap<MojoHandle, usize>, handle: MojoHandle) {
    if let Some(n) = armed.get_mut(&handle) {
        *n -= 1;
        if *n == 0 {
            armed.remove(&handle);
        }
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
