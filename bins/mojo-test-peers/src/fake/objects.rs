//! The fake system's object table: what each handle refers to (pipe ends,
//! buffers, fds, data pipe ends), the Mojo consequences of closing one, and
//! the signals each object reports.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::{Condvar, Mutex, MutexGuard, Weak};

use crate::system::new_data::NewData;
use crate::system::trap::TrapHost;
use crate::system::two_phase::{DataEndState, TwoPhase};
use crate::system::{
    Handle, HandleCloser, HandleKind, MojoError, MojoHandle, MojoResult, RegionAccessMode, Signals,
    SignalsState,
};

pub(super) struct Inner {
    pub(super) state: Mutex<State>,
    pub(super) changed: Condvar,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) handles: HashMap<u32, Object>,
    pub(super) next_handle: u32,
    pub(super) pipes: HashMap<u64, PipeState>,
    pub(super) data_pipes: HashMap<u64, DataPipeState>,
    /// Data pipe ends in a two-phase operation (only active ones).
    pub(super) two_phase: HashMap<u32, TwoPhase>,
    /// The traps (their handle values come from `next_handle` too).
    pub(super) traps: TrapHost,
    pub(super) next_id: u64,
    pub(super) next_guid: u128,
}

/// What a handle refers to; also what a message carries in transit.
pub(super) enum Object {
    Pipe { id: u64, side: usize },
    Buffer(BufferObject),
    Platform(OwnedFd),
    Producer(u64),
    Consumer(u64),
}

pub(super) struct BufferObject {
    pub(super) rw: Option<OwnedFd>,
    pub(super) ro: Option<OwnedFd>,
    pub(super) mode: RegionAccessMode,
    pub(super) size: u64,
    pub(super) guid: u128,
}

pub(super) struct PipeState {
    /// `inbox[s]`: messages for side `s` to read.
    pub(super) inbox: [VecDeque<InTransit>; 2],
    pub(super) open: [bool; 2],
}

pub(super) struct InTransit {
    pub(super) bytes: Vec<u8>,
    pub(super) objects: Vec<Object>,
}

pub(super) struct DataPipeState {
    pub(super) ring: VecDeque<u8>,
    pub(super) capacity: usize,
    pub(super) element_size: usize,
    pub(super) producer_open: bool,
    pub(super) consumer_open: bool,
    /// The consumer's `NEW_DATA_READABLE` state (the fake sees every
    /// write, so it observes the ring after each one).
    pub(super) new_data: NewData,
}

/// Closes handles of a [`FakeSystem`] when typed handles drop.
pub(super) struct Closer(pub(super) Weak<Inner>);

impl HandleCloser for Closer {
    fn close_handle(&self, handle: MojoHandle) {
        if let Some(inner) = self.0.upgrade() {
            let mut st = inner.lock();
            st.two_phase.remove(&handle.value());
            if let Some(obj) = st.handles.remove(&handle.value()) {
                st.close_object(obj);
            }
            st.traps.close(handle);
            st.refresh_traps();
            drop(st);
            inner.changed.notify_all();
        }
    }
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the other peer.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    pub(super) fn add(&mut self, obj: Object) -> MojoResult<MojoHandle> {
        let raw = self.alloc()?;
        self.handles.insert(raw.value(), obj);
        Ok(raw)
    }

    /// A new handle value.
    pub(super) fn alloc(&mut self) -> MojoResult<MojoHandle> {
        self.next_handle = self
            .next_handle
            .checked_add(1)
            .ok_or(MojoError::ResourceExhausted)?;
        MojoHandle::new(self.next_handle).ok_or(MojoError::ResourceExhausted)
    }

    pub(super) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The pipe id and side of a message pipe handle.
    pub(super) fn pipe_end(&self, raw: MojoHandle) -> Option<(u64, usize)> {
        match self.handles.get(&raw.value()) {
            Some(Object::Pipe { id, side }) => Some((*id, *side)),
            _ => None,
        }
    }

    /// The data pipe behind a producer (`producer`) or consumer handle:
    /// `INVALID_ARGUMENT` for any other handle, `FAILED_PRECONDITION` once
    /// the data pipe is gone.
    pub(super) fn data_pipe_mut(
        &mut self,
        raw: MojoHandle,
        producer: bool,
    ) -> MojoResult<&mut DataPipeState> {
        let id = match (self.handles.get(&raw.value()), producer) {
            (Some(Object::Producer(id)), true) | (Some(Object::Consumer(id)), false) => *id,
            _ => return Err(MojoError::InvalidArgument),
        };
        self.data_pipes
            .get_mut(&id)
            .ok_or(MojoError::FailedPrecondition)
    }

    /// Closes an object: the Mojo consequences of `MojoClose`.
    pub(super) fn close_object(&mut self, obj: Object) {
        match obj {
            Object::Pipe { id, side } => {
                let Some(p) = self.pipes.get_mut(&id) else {
                    return;
                };
                p.open[side] = false;
                let unread: Vec<InTransit> = p.inbox[side].drain(..).collect();
                if !p.open[0] && !p.open[1] {
                    self.pipes.remove(&id);
                }
                for m in unread {
                    for o in m.objects {
                        self.close_object(o);
                    }
                }
            }
            Object::Producer(id) => self.close_data_pipe_end(id, true),
            Object::Consumer(id) => self.close_data_pipe_end(id, false),
            Object::Buffer(_) | Object::Platform(_) => {} // fds close on drop
        }
    }

    pub(super) fn close_data_pipe_end(&mut self, id: u64, producer: bool) {
        if let Some(d) = self.data_pipes.get_mut(&id) {
            if producer {
                d.producer_open = false;
            } else {
                d.consumer_open = false;
                d.ring.clear();
            }
            if !d.producer_open && !d.consumer_open {
                self.data_pipes.remove(&id);
            }
        }
    }

    /// The signals of `raw`, as a two-phase operation on it masks them.
    pub(super) fn signals(&self, raw: MojoHandle) -> MojoResult<SignalsState> {
        let state = self.raw_signals(raw)?;
        let state = self
            .two_phase
            .get(&raw.value())
            .map_or(state, |tp| tp.mask(state));
        Ok(match self.handles.get(&raw.value()) {
            Some(Object::Consumer(id)) => self
                .data_pipes
                .get(id)
                .map_or(state, |d| d.new_data.apply(state)),
            _ => state,
        })
    }

    /// A data pipe end's counts for a two-phase call.
    pub(super) fn data_end_state(
        &mut self,
        raw: MojoHandle,
        producer: bool,
    ) -> MojoResult<DataEndState> {
        let d = self.data_pipe_mut(raw, producer)?;
        let (bytes, peer_closed) = if producer {
            (d.capacity - d.ring.len(), !d.consumer_open)
        } else {
            (d.ring.len(), !d.producer_open)
        };
        Ok(DataEndState {
            element_size: d.element_size as u32,
            bytes: bytes as u32,
            peer_closed,
        })
    }

    /// A read call of consumer `raw` begins (past its `BUSY` check): the
    /// bytes readable now are no longer new.
    pub(super) fn read_call(&mut self, raw: MojoHandle) -> MojoResult<()> {
        let d = self.data_pipe_mut(raw, false)?;
        d.new_data.read_call(d.ring.len() as u32);
        Ok(())
    }

    /// `BUSY` while `raw` is in a two-phase operation.
    pub(super) fn check_idle(&self, raw: MojoHandle) -> MojoResult<()> {
        self.two_phase
            .get(&raw.value())
            .map_or(Ok(()), TwoPhase::check_idle)
    }

    /// Runs `op` on `raw`'s two-phase state and keeps it only if active.
    pub(super) fn with_two_phase<T>(
        &mut self,
        raw: MojoHandle,
        op: impl FnOnce(&mut TwoPhase) -> T,
    ) -> T {
        let mut tp = self.two_phase.remove(&raw.value()).unwrap_or_default();
        let out = op(&mut tp);
        if tp.is_active() {
            self.two_phase.insert(raw.value(), tp);
        }
        out
    }

    fn raw_signals(&self, raw: MojoHandle) -> MojoResult<SignalsState> {
        let none = SignalsState::default();
        Ok(
            match self
                .handles
                .get(&raw.value())
                .ok_or(MojoError::InvalidArgument)?
            {
                Object::Pipe { id, side } => {
                    let Some(p) = self.pipes.get(id) else {
                        return Ok(none);
                    };
                    let peer_open = p.open[1 - side];
                    let readable = !p.inbox[*side].is_empty();
                    let mut satisfied = Signals::NONE;
                    let mut satisfiable = Signals::PEER_CLOSED;
                    if readable {
                        satisfied = satisfied | Signals::READABLE;
                    }
                    if readable || peer_open {
                        satisfiable = satisfiable | Signals::READABLE;
                    }
                    if peer_open {
                        satisfied = satisfied | Signals::WRITABLE;
                        satisfiable = satisfiable | Signals::WRITABLE;
                    } else {
                        satisfied = satisfied | Signals::PEER_CLOSED;
                    }
                    // The peer is in this process: never remote.
                    SignalsState {
                        satisfied,
                        satisfiable,
                    }
                    .with_peer_remote(false)
                }
                Object::Producer(id) => {
                    let Some(d) = self.data_pipes.get(id) else {
                        return Ok(none);
                    };
                    let mut s = SignalsState {
                        satisfied: Signals::NONE,
                        satisfiable: Signals::PEER_CLOSED,
                    };
                    if d.consumer_open {
                        s.satisfiable = s.satisfiable | Signals::WRITABLE;
                        if d.ring.len() < d.capacity {
                            s.satisfied = s.satisfied | Signals::WRITABLE;
                        }
                    } else {
                        s.satisfied = s.satisfied | Signals::PEER_CLOSED;
                    }
                    s
                }
                Object::Consumer(id) => {
                    let Some(d) = self.data_pipes.get(id) else {
                        return Ok(none);
                    };
                    let mut s = SignalsState {
                        satisfied: Signals::NONE,
                        satisfiable: Signals::PEER_CLOSED,
                    };
                    if !d.ring.is_empty() {
                        s.satisfied = s.satisfied | Signals::READABLE;
                    }
                    if !d.ring.is_empty() || d.producer_open {
                        s.satisfiable = s.satisfiable | Signals::READABLE;
                    }
                    if !d.producer_open {
                        s.satisfied = s.satisfied | Signals::PEER_CLOSED;
                    }
                    s
                }
                Object::Buffer(_) | Object::Platform(_) => none,
            },
        )
    }

    /// The objects of `handles`, already checked by `check_attachments`; their
    /// triggers are cancelled (a handle sent away is closed for its traps).
    pub(super) fn take_checked(&mut self, handles: Vec<Handle>) -> Vec<Object> {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            let (_, raw) = h.into_raw();
            if let Some(o) = self.handles.remove(&raw.value()) {
                self.traps.close(raw);
                out.push(o);
            }
        }
        out
    }
}

/// The kind of handle an object is.
pub(super) fn kind_of(obj: &Object) -> HandleKind {
    match obj {
        Object::Pipe { .. } => HandleKind::MessagePipe,
        Object::Buffer(_) => HandleKind::SharedBuffer,
        Object::Platform(_) => HandleKind::PlatformHandle,
        Object::Producer(_) => HandleKind::DataPipeProducer,
        Object::Consumer(_) => HandleKind::DataPipeConsumer,
    }
}
