//! Traps and watchers: Mojo's `MojoCreateTrap` / `MojoAddTrigger` /
//! `MojoRemoveTrigger` / `MojoArmTrap` (`mojo/public/c/system/trap.h`) and
//! a `SimpleWatcher`-like [`Watcher`].
//!
//! A [`Trap`] is a typed, owned handle (dropping it is `MojoClose`, which
//! cancels its triggers). Where Mojo calls an event handler, a trap queues
//! [`TrapEvent`]s for the caller's event loop: the trap owns an eventfd
//! that is readable while events are queued, so it is an [`AsFd`] and a
//! [`mio::event::Source`]; [`Trap::next_event`] pops, [`Trap::wait_event`]
//! blocks. The calls are [`MojoSystem`](crate::MojoSystem) methods
//! (`create_trap`, `add_trigger`, `remove_trigger`, `arm_trap`).
//!
//! Mojo's rules, as its C header and both cores (Mojo Core's watcher
//! dispatcher, the ipcz driver's trap) keep them:
//!
//! - A trigger watches one handle for signals, with a condition (satisfied
//!   or unsatisfied) and a context unique in its trap; a trap watches a
//!   handle at most once (`ALREADY_EXISTS` for either duplicate).
//! - A trap fires only while armed, and firing disarms it: one event per
//!   arming, `OK` (the condition holds) or `FAILED_PRECONDITION` (watched
//!   for satisfied signals that can never be satisfied again).
//! - Arming fails with `FAILED_PRECONDITION` if any trigger would fire at
//!   once, handing back up to the caller's count of such events (consecutive
//!   failures go round the triggers so none is starved); `NOT_FOUND` without
//!   triggers; arming an armed trap succeeds.
//! - A trigger added to an armed trap whose condition holds fires at once.
//! - A trigger ends with one `CANCELLED` event, armed or not: when removed,
//!   when its handle closes (or leaves in a message), when its trap closes.
//!
//! For implementations: [`Traps`] is the sans-IO core of all of a system's
//! traps (trap calls and "handle H's signals are now S" / "H closed" in,
//! events out), [`TrapHost`] adds the queues and is what a system keeps
//! under its lock.
//!
//! ```
//! use mojo_system::{ArmTrapError, MojoError, Signals, SignalsState, TriggerCondition};
//! use mojo_system::trap::Traps;
//! use mojo_system::MojoHandle;
//!
//! // The sans-IO core: a trap watching handle 2 for READABLE.
//! let (trap, pipe) = (MojoHandle::new(1).unwrap(), MojoHandle::new(2).unwrap());
//! let idle = SignalsState { satisfied: Signals::WRITABLE, satisfiable: Signals::READABLE };
//! let mut traps = Traps::new();
//! traps.create(trap).unwrap();
//! traps.add_trigger(trap, pipe, Signals::READABLE, TriggerCondition::SignalsSatisfied, 7, idle).unwrap();
//! traps.arm(trap, 1, |_| idle).unwrap();
//! let readable = SignalsState { satisfied: Signals::READABLE, ..idle };
//! traps.update(pipe, readable);
//! let (to, event) = traps.poll_event().unwrap();
//! assert_eq!((to, event.context, event.result), (trap, 7, Ok(())));
//! // Fired, hence disarmed; arming now reports the blocking trigger.
//! let err: ArmTrapError = traps.arm(trap, 1, |_| readable).unwrap_err();
//! assert_eq!(err.error, MojoError::FailedPrecondition);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::{HandleCloser, MojoError, MojoHandle, MojoResult, OwnedHandle, SignalsState};

#[doc(hidden)]
pub mod conformance;
mod host;
mod table;
mod watcher;

pub use host::TrapHost;
pub use table::Traps;
pub use watcher::{ArmingPolicy, Watcher, WatcherEvent};

/// `MojoTriggerCondition`: when a trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerCondition {
    /// `MOJO_TRIGGER_CONDITION_SIGNALS_SATISFIED`: when any watched signal
    /// is satisfied, or (`FAILED_PRECONDITION`) when none ever can be.
    SignalsSatisfied,
    /// `MOJO_TRIGGER_CONDITION_SIGNALS_UNSATISFIED`: when not all watched
    /// signals are satisfied.
    SignalsUnsatisfied,
}

/// `MojoTrapEvent`: what a trap reports about one trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapEvent {
    /// The trigger's context (`trigger_context`).
    pub context: u64,
    /// `Ok`: the condition holds; `FAILED_PRECONDITION`: it never can;
    /// `CANCELLED`: the trigger is gone (removed, its handle or its trap
    /// closed) and sends nothing more.
    pub result: MojoResult<()>,
    /// The handle's signals when the event was made (empty for
    /// `CANCELLED`).
    pub signals_state: SignalsState,
}

/// A failed `MojoArmTrap`: the result and, for `FAILED_PRECONDITION`, the
/// events of triggers that would fire at once (at most as many as asked
/// for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmTrapError {
    /// `FAILED_PRECONDITION` (a condition holds already), `NOT_FOUND` (no
    /// triggers) or `INVALID_ARGUMENT` (not a trap of this system).
    pub error: MojoError,
    /// The blocking events (`blocking_events` of `MojoArmTrap`).
    pub blocking_events: Vec<TrapEvent>,
}

impl ArmTrapError {
    /// An error without blocking events.
    pub const fn new(error: MojoError) -> Self {
        Self {
            error,
            blocking_events: Vec::new(),
        }
    }
}

impl fmt::Display for ArmTrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} with {} blocking events",
            self.error,
            self.blocking_events.len()
        )
    }
}

impl std::error::Error for ArmTrapError {}

/// A trap's event queue and its eventfd (readable while events wait).
/// Systems make it through [`TrapHost`]; users see it as a [`Trap`].
pub struct TrapEvents {
    queue: Mutex<VecDeque<TrapEvent>>,
    arrived: Condvar,
    fd: EventFd,
}

impl TrapEvents {
    fn new() -> MojoResult<Arc<Self>> {
        let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|_| MojoError::ResourceExhausted)?;
        Ok(Arc::new(Self {
            queue: Mutex::new(VecDeque::new()),
            arrived: Condvar::new(),
            fd,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<TrapEvent>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `event`; the fd turns readable if the queue was empty.
    pub(crate) fn push(&self, event: TrapEvent) {
        let mut q = self.lock();
        if q.is_empty() {
            // Only an overflowing counter fails; the count is 0 or 1.
            let _ = self.fd.write(1);
        }
        q.push_back(event);
        drop(q);
        self.arrived.notify_all();
    }

    /// The oldest event; the fd stops being readable with the last one.
    fn pop(&self) -> Option<TrapEvent> {
        let mut q = self.lock();
        let event = q.pop_front()?;
        if q.is_empty() {
            // EAGAIN only if the counter is already 0.
            let _ = self.fd.read();
        }
        Some(event)
    }

    /// Blocks until an event is queued or `deadline` passes; true if one is.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut q = self.lock();
        while q.is_empty() {
            q = match deadline {
                None => self.arrived.wait(q).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.arrived
                        .wait_timeout(q, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        true
    }
}

/// A trap handle (`MojoCreateTrap`): its triggers are added, removed and
/// armed through the [`MojoSystem`](crate::MojoSystem) that made it, its
/// events come out here. Dropping it closes the trap (its triggers end;
/// their `CANCELLED` events go with the queue). A trap cannot be sent in a
/// message (nor can it in Mojo).
pub struct Trap {
    handle: OwnedHandle,
    events: Arc<TrapEvents>,
}

impl Trap {
    /// Takes ownership of trap `raw`, which `closer` closes on drop, with
    /// the event queue [`TrapHost::create_trap`] made for it. Only a
    /// [`MojoSystem`](crate::MojoSystem) implementation makes traps.
    pub fn from_raw(
        raw: MojoHandle,
        closer: Arc<dyn HandleCloser>,
        events: Arc<TrapEvents>,
    ) -> Self {
        Self {
            handle: OwnedHandle {
                raw,
                closer: Some(closer),
            },
            events,
        }
    }

    /// The raw value, still owned by `self`.
    pub fn raw(&self) -> MojoHandle {
        self.handle.raw
    }

    /// The oldest queued event, without waiting.
    pub fn next_event(&self) -> Option<TrapEvent> {
        self.events.pop()
    }

    /// Every queued event, oldest first (for an edge-triggered event loop:
    /// drain after each readiness).
    pub fn drain(&self) -> impl Iterator<Item = TrapEvent> + '_ {
        std::iter::from_fn(|| self.next_event())
    }

    /// The oldest event, waiting for one until `deadline` (`None`: for
    /// ever). `DEADLINE_EXCEEDED` when it passes.
    pub fn wait_event(&self, deadline: Option<Instant>) -> MojoResult<TrapEvent> {
        loop {
            if let Some(event) = self.next_event() {
                return Ok(event);
            }
            if !self.events.wait(deadline) {
                return Err(MojoError::DeadlineExceeded);
            }
        }
    }

    /// Blocks until an event is queued or `deadline` passes, leaving it
    /// queued; true if one is.
    pub(crate) fn wait_queued(&self, deadline: Option<Instant>) -> bool {
        self.events.wait(deadline)
    }

    /// Queues an event of the caller's own (the watcher's notifications).
    pub(crate) fn push(&self, event: TrapEvent) {
        self.events.push(event);
    }
}

impl fmt::Debug for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Trap({})", self.handle.raw.value())
    }
}

impl AsFd for Trap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.events.fd.as_fd()
    }
}

impl AsRawFd for Trap {
    fn as_raw_fd(&self) -> RawFd {
        self.events.fd.as_raw_fd()
    }
}

/// A trap in a `mio` poll: readable while events are queued (register it
/// with [`mio::Interest::READABLE`]; mio is edge-triggered, so drain).
impl mio::event::Source for Trap {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> std::io::Result<()> {
        mio::unix::SourceFd(&self.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> std::io::Result<()> {
        mio::unix::SourceFd(&self.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> std::io::Result<()> {
        mio::unix::SourceFd(&self.as_raw_fd()).deregister(registry)
    }
}
