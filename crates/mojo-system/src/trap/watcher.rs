//! [`Watcher`]: Mojo's `SimpleWatcher` (`mojo/public/cpp/system/simple_watcher.h`)
//! for an event loop: one trap watching one handle, its notifications
//! pulled with [`Watcher::next_event`] (or waited for), its fd the trap's.

use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Instant;

use super::{ArmTrapError, Trap, TrapEvent, TriggerCondition};
use crate::{MojoError, MojoHandle, MojoResult, MojoSystem, Signals, SignalsState};

/// `SimpleWatcher::ArmingPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmingPolicy {
    /// `AUTOMATIC`: armed on watch and after each notification handed out.
    Automatic,
    /// `MANUAL`: armed only when the caller says so.
    Manual,
}

/// A notification: the result (`OK`, `FAILED_PRECONDITION`, `CANCELLED`)
/// and the handle's signals then (`SimpleWatcher`'s callback arguments).
pub type WatcherEvent = (MojoResult<()>, SignalsState);

/// A `SimpleWatcher` for an event loop. `S` is a reference to the system
/// or an `Arc` of it.
///
/// As in `SimpleWatcher`: [`ArmingPolicy::Automatic`] arms on
/// [`watch`](Watcher::watch) and again after each `OK` notification
/// (lazily, when the next one is asked for, i.e. once the caller has dealt
/// with the previous one, as `SimpleWatcher` re-arms when its callback
/// returns); a `FAILED_PRECONDITION` notification comes once and does not
/// re-arm. [`ArmingPolicy::Manual`] arms only on [`arm`](Watcher::arm) or
/// [`arm_or_notify`](Watcher::arm_or_notify). Arming a handle that is
/// ready already notifies at once (`arm_or_notify`, and the automatic
/// policy). Closing the watched handle ends the watch with one `CANCELLED`
/// notification; [`cancel`](Watcher::cancel) ends it silently.
pub struct Watcher<S>
where
    S: Deref,
    S::Target: MojoSystem,
{
    system: S,
    trap: Trap,
    policy: ArmingPolicy,
    /// The watched handle, while watching.
    handle: Option<MojoHandle>,
    /// The current watch's trigger context: events of earlier watches are
    /// stale.
    watch_id: u64,
    /// Automatic policy: arm before handing out the next notification.
    rearm: bool,
}

impl<S> Watcher<S>
where
    S: Deref,
    S::Target: MojoSystem,
{
    /// A watcher with its own trap on `system`, watching nothing yet.
    pub fn new(system: S, policy: ArmingPolicy) -> MojoResult<Self> {
        let trap = system.create_trap()?;
        Ok(Self {
            system,
            trap,
            policy,
            handle: None,
            watch_id: 0,
            rearm: false,
        })
    }

    /// `SimpleWatcher::Watch`: watches `handle` (a message or data pipe
    /// end) for `signals` under `condition`; the automatic policy arms at
    /// once. `ALREADY_EXISTS` while watching, `INVALID_ARGUMENT` for a
    /// handle that cannot be watched.
    pub fn watch(
        &mut self,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
    ) -> MojoResult<()> {
        if self.handle.is_some() {
            return Err(MojoError::AlreadyExists);
        }
        self.watch_id += 1;
        self.system
            .add_trigger(&self.trap, handle, signals, condition, self.watch_id)?;
        self.handle = Some(handle);
        self.rearm = false;
        if self.policy == ArmingPolicy::Automatic {
            self.arm_or_notify();
        }
        Ok(())
    }

    /// `SimpleWatcher::Cancel`: stops watching, without a notification.
    pub fn cancel(&mut self) {
        if self.handle.take().is_some() {
            // NOT_FOUND if the handle's closure raced us: nothing to remove.
            let _ = self.system.remove_trigger(&self.trap, self.watch_id);
        }
        self.rearm = false;
    }

    /// True while watching a handle.
    pub fn is_watching(&self) -> bool {
        self.handle.is_some()
    }

    /// The handle watched, if any.
    pub fn handle(&self) -> Option<MojoHandle> {
        self.handle
    }

    /// `SimpleWatcher::Arm`: arms the trap. `FAILED_PRECONDITION` with the
    /// ready notification (one blocking event) if the handle is ready now;
    /// `NOT_FOUND` if not watching.
    pub fn arm(&mut self) -> Result<(), ArmTrapError> {
        if self.handle.is_none() {
            return Err(ArmTrapError::new(MojoError::NotFound));
        }
        self.system.arm_trap(&self.trap, 1)
    }

    /// `SimpleWatcher::ArmOrNotify`: arms, or, if the handle is ready now,
    /// queues that notification (the fd turns readable).
    pub fn arm_or_notify(&mut self) {
        self.rearm = false;
        if let Err(e) = self.arm() {
            // NOT_FOUND: not watching, or the handle closed (its CANCELLED
            // is queued already).
            if let Some(ready) = e.blocking_events.first() {
                self.trap.push(*ready);
            }
        }
    }

    /// The next notification, without waiting (the automatic policy first
    /// re-arms after the previous one). Drain it until `None` after each
    /// readiness of the fd.
    pub fn next_event(&mut self) -> Option<WatcherEvent> {
        if self.rearm && self.policy == ArmingPolicy::Automatic {
            self.arm_or_notify();
        }
        loop {
            let event = self.trap.next_event()?;
            if let Some(n) = self.notification(event) {
                return Some(n);
            }
        }
    }

    /// The next notification, waiting for one until `deadline` (`None`:
    /// for ever). `DEADLINE_EXCEEDED` when it passes; `FAILED_PRECONDITION`
    /// when not watching (none can come).
    pub fn wait_event(&mut self, deadline: Option<Instant>) -> MojoResult<WatcherEvent> {
        loop {
            if let Some(n) = self.next_event() {
                return Ok(n);
            }
            if self.handle.is_none() {
                return Err(MojoError::FailedPrecondition);
            }
            if !self.trap.wait_queued(deadline) {
                return Err(MojoError::DeadlineExceeded);
            }
        }
    }

    /// The notification an event makes, if it belongs to the current watch.
    fn notification(&mut self, event: TrapEvent) -> Option<WatcherEvent> {
        if self.handle.is_none() || event.context != self.watch_id {
            return None;
        }
        match event.result {
            Err(MojoError::Cancelled) => {
                self.handle = None;
                self.rearm = false;
            }
            Ok(()) => self.rearm = self.policy == ArmingPolicy::Automatic,
            Err(_) => self.rearm = false,
        }
        Some((event.result, event.signals_state))
    }
}

impl<S> AsFd for Watcher<S>
where
    S: Deref,
    S::Target: MojoSystem,
{
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.trap.as_fd()
    }
}

impl<S> AsRawFd for Watcher<S>
where
    S: Deref,
    S::Target: MojoSystem,
{
    fn as_raw_fd(&self) -> RawFd {
        self.trap.as_raw_fd()
    }
}

/// A watcher in a `mio` poll: its trap's fd.
impl<S> mio::event::Source for Watcher<S>
where
    S: Deref,
    S::Target: MojoSystem,
{
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> std::io::Result<()> {
        self.trap.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> std::io::Result<()> {
        self.trap.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> std::io::Result<()> {
        self.trap.deregister(registry)
    }
}
