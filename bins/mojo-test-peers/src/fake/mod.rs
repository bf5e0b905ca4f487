//! An in-process [`MojoSystem`] for tests: both peers run on threads of one
//! process and share one `FakeSystem`. **For tests only**: the binaries
//! never use it.
//!
//! - Message pipes are two in-memory queues; a message holds the objects of
//!   its attached handles, so a pipe end in transit is neither open nor
//!   closed for its peer, and closing an end with unread messages closes the
//!   handles inside them (as Mojo does).
//! - Shared buffers are real memfds with Chromium's Linux fds (writable: a
//!   read-write fd and an `O_RDONLY` reopen; read-only: the latter; unsafe:
//!   the former) and Mojo's duplicate rules; mappings copy through
//!   `pread`/`pwrite` on a dup of the fd, and the read-only probes ask the
//!   kernel (a writable `mmap` of that fd).
//! - Platform handles are the real fds.
//! - Data pipes are bounded in-memory rings.
//!
//! One mutex guards everything; one condition variable wakes every waiter
//! on any change. Simple, and fast enough for the test counts.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use nix::fcntl::{OFlag, open};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::Mode;

use crate::system::new_data::NewData;
use crate::system::two_phase::discard_count;
use crate::system::{ArmTrapError, Trap, TriggerCondition};
use crate::system::{
    DataPipeConsumer, DataPipeProducer, Handle, HandleCloser, HandleKind, Message, MessagePipe,
    MojoError, MojoHandle, MojoResult, MojoSystem, PlatformHandle, RegionAccessMode, SharedBuffer,
    Signals, SignalsState, UnwrappedRegion, WaitError, WrapRegionError, WriteMessageError,
    check_attachments, data_pipe_capacity, region::check_region, scan_wait_any,
};

mod objects;
mod traps;

/// The fake system's mappings.
pub use crate::system::mapping::FdMapping as FakeMapping;
use objects::{
    BufferObject, Closer, DataPipeState, InTransit, Inner, Object, PipeState, State, kind_of,
};

/// Largest shared buffer the fake creates (Chromium's `INT_MAX` bound).
pub const MAX_BUFFER_SIZE: u64 = i32::MAX as u64;

/// The in-process fake system. Create it with [`FakeSystem::new`].
pub struct FakeSystem {
    inner: Arc<Inner>,
}

impl Default for FakeSystem {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeSystem {
    /// A new, empty system.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
        }
    }

    fn closer(&self) -> Arc<dyn HandleCloser> {
        Arc::new(Closer(Arc::downgrade(&self.inner)))
    }

    fn handle_for(&self, kind: HandleKind, raw: MojoHandle) -> Handle {
        let c = self.closer();
        match kind {
            HandleKind::MessagePipe => Handle::MessagePipe(MessagePipe::from_raw(raw, c)),
            HandleKind::SharedBuffer => Handle::SharedBuffer(SharedBuffer::from_raw(raw, c)),
            HandleKind::PlatformHandle => Handle::PlatformHandle(PlatformHandle::from_raw(raw, c)),
            HandleKind::DataPipeProducer => {
                Handle::DataPipeProducer(DataPipeProducer::from_raw(raw, c))
            }
            HandleKind::DataPipeConsumer => {
                Handle::DataPipeConsumer(DataPipeConsumer::from_raw(raw, c))
            }
        }
    }

    /// Number of open handles (for leak checks in tests).
    pub fn open_handles(&self) -> usize {
        self.inner.lock().handles.len()
    }

    /// Runs `op` on the state, then wakes waiters whatever it returned (a
    /// failed end still ends a two-phase call).
    fn locked<T>(&self, op: impl FnOnce(&mut State) -> MojoResult<T>) -> MojoResult<T> {
        let result = op(&mut self.inner.lock());
        self.notify();
        result
    }

    fn notify(&self) {
        self.inner.lock().refresh_traps();
        self.inner.changed.notify_all();
    }
}

fn dup(fd: &OwnedFd) -> MojoResult<OwnedFd> {
    fd.try_clone().map_err(|_| MojoError::ResourceExhausted)
}

/// Opens a second, `O_RDONLY` fd of the memfd (as Chromium does for memfds).
fn reopen_read_only(fd: &OwnedFd) -> MojoResult<OwnedFd> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| MojoError::ResourceExhausted)
}

impl MojoSystem for FakeSystem {
    type Mapping = FakeMapping;

    fn create_message_pipe(&self) -> MojoResult<(MessagePipe, MessagePipe)> {
        let (a, b) = {
            let mut st = self.inner.lock();
            let id = st.id();
            st.pipes.insert(
                id,
                PipeState {
                    inbox: [VecDeque::new(), VecDeque::new()],
                    open: [true, true],
                },
            );
            let a = st.add(Object::Pipe { id, side: 0 })?;
            let b = st.add(Object::Pipe { id, side: 1 })?;
            (a, b)
        };
        Ok((
            MessagePipe::from_raw(a, self.closer()),
            MessagePipe::from_raw(b, self.closer()),
        ))
    }

    fn try_write_message(
        &self,
        pipe: &MessagePipe,
        bytes: &[u8],
        handles: Vec<Handle>,
    ) -> Result<(), WriteMessageError> {
        let mut st = self.inner.lock();
        let checked = st
            .pipe_end(pipe.raw())
            .ok_or(MojoError::InvalidArgument)
            .and_then(|end| {
                check_attachments(
                    pipe.raw(),
                    &handles,
                    |h| st.handles.contains_key(&h.value()),
                    |h| st.two_phase.contains_key(&h.value()),
                )
                .map(|()| end)
            });
        let (id, side) = match checked {
            Ok(end) => end,
            Err(error) => return Err(WriteMessageError { error, handles }),
        };
        let objects = st.take_checked(handles);
        let peer_open = st.pipes.get(&id).is_some_and(|p| p.open[1 - side]);
        if !peer_open {
            for o in objects {
                st.close_object(o);
            }
            return Err(WriteMessageError {
                error: MojoError::FailedPrecondition,
                handles: Vec::new(),
            });
        }
        if let Some(p) = st.pipes.get_mut(&id) {
            p.inbox[1 - side].push_back(InTransit {
                bytes: bytes.to_vec(),
                objects,
            });
        }
        drop(st);
        self.notify();
        Ok(())
    }

    fn read_message(&self, pipe: &MessagePipe) -> MojoResult<Message> {
        let (bytes, kinds_raws) = {
            let mut st = self.inner.lock();
            let (id, side) = st.pipe_end(pipe.raw()).ok_or(MojoError::InvalidArgument)?;
            let p = st.pipes.get_mut(&id).ok_or(MojoError::FailedPrecondition)?;
            let Some(m) = p.inbox[side].pop_front() else {
                return Err(if p.open[1 - side] {
                    MojoError::ShouldWait
                } else {
                    MojoError::FailedPrecondition
                });
            };
            let mut out = Vec::with_capacity(m.objects.len());
            for o in m.objects {
                let kind = kind_of(&o);
                if let Object::Consumer(id) = o {
                    // An arriving consumer's readable bytes are new.
                    if let Some(d) = st.data_pipes.get_mut(&id) {
                        d.new_data = NewData::default();
                        d.new_data.observe(d.ring.len() as u32);
                    }
                }
                out.push((kind, st.add(o)?));
            }
            (m.bytes, out)
        };
        self.notify();
        Ok(Message {
            bytes,
            handles: kinds_raws
                .into_iter()
                .map(|(k, r)| self.handle_for(k, r))
                .collect(),
        })
    }

    fn query_signals(&self, handle: MojoHandle) -> MojoResult<SignalsState> {
        self.inner.lock().signals(handle)
    }

    fn wait_any(
        &self,
        handles: &[(MojoHandle, Signals)],
        deadline: Option<Instant>,
    ) -> Result<usize, WaitError> {
        let mut st = self.inner.lock();
        loop {
            if let Some(done) = scan_wait_any(handles, |h| st.signals(h)) {
                return done;
            }
            st = match deadline {
                None => self
                    .inner
                    .changed
                    .wait(st)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(WaitError {
                            error: MojoError::DeadlineExceeded,
                            index: None,
                        });
                    }
                    self.inner
                        .changed
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    fn create_shared_buffer(&self, size: u64) -> MojoResult<SharedBuffer> {
        if size == 0 || size > MAX_BUFFER_SIZE {
            return Err(MojoError::InvalidArgument);
        }
        let rw = memfd_create("mojo_test_peers_fake_shm", MFdFlags::MFD_CLOEXEC)
            .map_err(|_| MojoError::ResourceExhausted)?;
        nix::unistd::ftruncate(&rw, size as i64).map_err(|_| MojoError::ResourceExhausted)?;
        let ro = reopen_read_only(&rw)?;
        let raw = {
            let mut st = self.inner.lock();
            st.next_guid += 1;
            let guid = st.next_guid;
            st.add(Object::Buffer(BufferObject {
                rw: Some(rw),
                ro: Some(ro),
                mode: RegionAccessMode::Writable,
                size,
                guid,
            }))?
        };
        Ok(SharedBuffer::from_raw(raw, self.closer()))
    }

    fn duplicate_buffer(&self, buffer: &SharedBuffer, read_only: bool) -> MojoResult<SharedBuffer> {
        let raw = {
            let mut st = self.inner.lock();
            let Some(Object::Buffer(b)) = st.handles.get_mut(&buffer.raw().value()) else {
                return Err(MojoError::InvalidArgument);
            };
            // Mojo's rules: a read-only duplicate makes a writable original
            // read-only (its writable fd goes), a writable one makes it
            // unsafe (no read-only duplicate may follow); the other way
            // round is refused.
            let (refused, mode) = if read_only {
                (RegionAccessMode::Unsafe, RegionAccessMode::ReadOnly)
            } else {
                (RegionAccessMode::ReadOnly, RegionAccessMode::Unsafe)
            };
            if b.mode == refused {
                return Err(MojoError::FailedPrecondition);
            }
            if b.mode == RegionAccessMode::Writable {
                if read_only {
                    b.rw = None;
                } else {
                    b.ro = None;
                }
                b.mode = mode;
            }
            let kept = if read_only { &b.ro } else { &b.rw };
            let fd = Some(dup(kept.as_ref().ok_or(MojoError::Internal)?)?);
            let (rw, ro) = if read_only { (None, fd) } else { (fd, None) };
            let dupl = BufferObject {
                rw,
                ro,
                mode,
                size: b.size,
                guid: b.guid,
            };
            st.add(Object::Buffer(dupl))?
        };
        Ok(SharedBuffer::from_raw(raw, self.closer()))
    }

    fn buffer_size(&self, buffer: &SharedBuffer) -> MojoResult<u64> {
        match self.inner.lock().handles.get(&buffer.raw().value()) {
            Some(Object::Buffer(b)) => Ok(b.size),
            _ => Err(MojoError::InvalidArgument),
        }
    }

    fn map_buffer(&self, buffer: &SharedBuffer, offset: u64, len: u64) -> MojoResult<FakeMapping> {
        let st = self.inner.lock();
        let Some(Object::Buffer(b)) = st.handles.get(&buffer.raw().value()) else {
            return Err(MojoError::InvalidArgument);
        };
        if len == 0 || offset.checked_add(len).is_none_or(|end| end > b.size) {
            return Err(MojoError::InvalidArgument);
        }
        let (fd, writable) = match (&b.rw, &b.ro) {
            (Some(rw), _) => (dup(rw)?, true),
            (None, Some(ro)) => (dup(ro)?, false),
            (None, None) => return Err(MojoError::Internal),
        };
        Ok(FakeMapping::new(fd, offset, len as usize, writable))
    }

    fn unwrap_shared_buffer(&self, buffer: SharedBuffer) -> MojoResult<UnwrappedRegion> {
        let raw = buffer.into_raw();
        let mut st = self.inner.lock();
        match st.handles.remove(&raw.value()) {
            Some(Object::Buffer(b)) => Ok(UnwrappedRegion {
                fds: b.rw.into_iter().chain(b.ro).collect(),
                size: b.size,
                guid: b.guid,
                access_mode: b.mode,
            }),
            Some(other) => {
                st.close_object(other);
                Err(MojoError::InvalidArgument)
            }
            None => Err(MojoError::InvalidArgument),
        }
    }

    fn wrap_shared_buffer(&self, region: UnwrappedRegion) -> Result<SharedBuffer, WrapRegionError> {
        let r = check_region(region).map_err(WrapRegionError::Rejected)?;
        let raw = self.inner.lock().add(Object::Buffer(BufferObject {
            rw: r.rw,
            ro: r.ro,
            mode: r.mode,
            size: r.size,
            guid: r.guid,
        }))?;
        Ok(SharedBuffer::from_raw(raw, self.closer()))
    }

    fn wrap_platform_handle(&self, fd: OwnedFd) -> MojoResult<PlatformHandle> {
        let raw = self.inner.lock().add(Object::Platform(fd))?;
        Ok(PlatformHandle::from_raw(raw, self.closer()))
    }

    fn unwrap_platform_handle(&self, handle: PlatformHandle) -> MojoResult<OwnedFd> {
        let raw = handle.into_raw();
        let mut st = self.inner.lock();
        match st.handles.remove(&raw.value()) {
            Some(Object::Platform(fd)) => Ok(fd),
            Some(other) => {
                st.close_object(other);
                Err(MojoError::InvalidArgument)
            }
            None => Err(MojoError::InvalidArgument),
        }
    }

    fn create_data_pipe(
        &self,
        element_size: u32,
        capacity: u32,
    ) -> MojoResult<(DataPipeProducer, DataPipeConsumer)> {
        let capacity = data_pipe_capacity(element_size, capacity)?;
        let (p, c) = {
            let mut st = self.inner.lock();
            let id = st.id();
            st.data_pipes.insert(
                id,
                DataPipeState {
                    ring: VecDeque::new(),
                    capacity: capacity as usize,
                    element_size: element_size as usize,
                    producer_open: true,
                    consumer_open: true,
                    new_data: NewData::default(),
                },
            );
            (st.add(Object::Producer(id))?, st.add(Object::Consumer(id))?)
        };
        Ok((
            DataPipeProducer::from_raw(p, self.closer()),
            DataPipeConsumer::from_raw(c, self.closer()),
        ))
    }

    fn write_data(&self, producer: &DataPipeProducer, data: &[u8]) -> MojoResult<usize> {
        let mut st = self.inner.lock();
        st.data_pipe_mut(producer.raw(), true)?;
        st.check_idle(producer.raw())?;
        let d = st.data_pipe_mut(producer.raw(), true)?;
        if data.len() % d.element_size != 0 {
            return Err(MojoError::InvalidArgument);
        }
        if !d.consumer_open {
            return Err(MojoError::FailedPrecondition);
        }
        let space = d.capacity - d.ring.len();
        let n = space.min(data.len()) / d.element_size * d.element_size;
        if n == 0 {
            return Err(MojoError::ShouldWait);
        }
        d.ring.extend(&data[..n]);
        d.new_data.observe(d.ring.len() as u32);
        drop(st);
        self.notify();
        Ok(n)
    }

    fn read_data(&self, consumer: &DataPipeConsumer, buf: &mut [u8]) -> MojoResult<usize> {
        let raw = consumer.raw();
        self.locked(|st| {
            st.data_pipe_mut(raw, false)?;
            st.check_idle(raw)?;
            st.read_call(raw)?;
            let d = st.data_pipe_mut(raw, false)?;
            if d.ring.is_empty() {
                return Err(if d.producer_open {
                    MojoError::ShouldWait
                } else {
                    MojoError::FailedPrecondition
                });
            }
            let n = (buf.len() / d.element_size * d.element_size).min(d.ring.len());
            for (dst, src) in buf.iter_mut().zip(d.ring.drain(..n)) {
                *dst = src;
            }
            d.new_data.sync(d.ring.len() as u32);
            Ok(n)
        })
    }

    fn begin_write_data(&self, producer: &DataPipeProducer) -> MojoResult<Vec<u8>> {
        let raw = producer.raw();
        self.locked(|st| {
            st.check_idle(raw)?;
            let end = st.data_end_state(raw, true)?;
            let n = st.with_two_phase(raw, |tp| tp.begin_write(end))?;
            Ok(vec![0; n as usize])
        })
    }

    fn end_write_data(&self, producer: &DataPipeProducer, written: &[u8]) -> MojoResult<()> {
        let raw = producer.raw();
        self.locked(|st| {
            let end = st.data_end_state(raw, true)?;
            st.with_two_phase(raw, |tp| tp.end(written.len(), end.element_size))?;
            let d = st.data_pipe_mut(raw, true)?;
            if d.consumer_open {
                d.ring.extend(written);
                d.new_data.observe(d.ring.len() as u32);
            }
            Ok(())
        })
    }

    fn begin_read_data(&self, consumer: &DataPipeConsumer) -> MojoResult<Vec<u8>> {
        let raw = consumer.raw();
        self.locked(|st| {
            st.check_idle(raw)?;
            st.read_call(raw)?;
            let end = st.data_end_state(raw, false)?;
            let n = st.with_two_phase(raw, |tp| tp.begin_read(end))?;
            let d = st.data_pipe_mut(raw, false)?;
            Ok(d.ring.iter().take(n as usize).copied().collect())
        })
    }

    fn end_read_data(&self, consumer: &DataPipeConsumer, num_bytes: usize) -> MojoResult<()> {
        let raw = consumer.raw();
        self.locked(|st| {
            let end = st.data_end_state(raw, false)?;
            let n = st.with_two_phase(raw, |tp| tp.end(num_bytes, end.element_size))?;
            let d = st.data_pipe_mut(raw, false)?;
            d.ring.drain(..(n as usize).min(d.ring.len()));
            d.new_data.sync(d.ring.len() as u32);
            Ok(())
        })
    }

    fn discard_data(&self, consumer: &DataPipeConsumer, num_bytes: usize) -> MojoResult<usize> {
        let raw = consumer.raw();
        self.locked(|st| {
            st.check_idle(raw)?;
            st.read_call(raw)?;
            let end = st.data_end_state(raw, false)?;
            let n = discard_count(end, num_bytes)? as usize;
            let d = st.data_pipe_mut(raw, false)?;
            let n = n.min(d.ring.len());
            d.ring.drain(..n);
            d.new_data.sync(d.ring.len() as u32);
            Ok(n)
        })
    }

    fn query_data(&self, consumer: &DataPipeConsumer) -> MojoResult<usize> {
        let raw = consumer.raw();
        self.locked(|st| {
            st.check_idle(raw)?;
            // A query is a read call too: it lowers NEW_DATA_READABLE.
            st.read_call(raw)?;
            Ok(st.data_end_state(raw, false)?.bytes as usize)
        })
    }

    fn create_trap(&self) -> MojoResult<Trap> {
        let (raw, events) = self.inner.lock().create_trap()?;
        Ok(Trap::from_raw(raw, self.closer(), events))
    }

    fn add_trigger(
        &self,
        trap: &Trap,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
        context: u64,
    ) -> MojoResult<()> {
        let mut st = self.inner.lock();
        st.add_trigger(trap.raw(), handle, signals, condition, context)
    }

    fn remove_trigger(&self, trap: &Trap, context: u64) -> MojoResult<()> {
        self.inner.lock().traps.remove_trigger(trap.raw(), context)
    }

    fn arm_trap(&self, trap: &Trap, max_blocking_events: usize) -> Result<(), ArmTrapError> {
        self.inner.lock().arm_trap(trap.raw(), max_blocking_events)
    }
}

#[cfg(test)]
mod trap_tests;
#[cfg(test)]
mod two_phase_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::conformance::pipes::{PipeOp, pipe_model};
    use crate::system::{BufferMapping, peer_closed, read_one, wait};
    use nix::errno::Errno;
    use std::time::Duration;

    #[test]
    fn pipe_messages_and_close() {
        let sys = FakeSystem::new();
        let (a, b) = sys.create_message_pipe().unwrap();
        assert_eq!(sys.read_message(&b).unwrap_err(), MojoError::ShouldWait);
        sys.write_message(&a, b"hi", vec![]).unwrap();
        assert_eq!(read_one(&sys, &b, None).unwrap().bytes, b"hi");
        drop(a);
        assert!(peer_closed(&sys, b.raw()));
        assert_eq!(
            sys.read_message(&b).unwrap_err(),
            MojoError::FailedPrecondition
        );
        assert_eq!(
            sys.write_message(&b, b"x", vec![]).unwrap_err(),
            MojoError::FailedPrecondition
        );
        drop(b);
        assert_eq!(sys.open_handles(), 0);
    }

    #[test]
    fn handles_in_unread_messages_close_with_the_pipe() {
        let sys = FakeSystem::new();
        let (a, b) = sys.create_message_pipe().unwrap();
        let (c, d) = sys.create_message_pipe().unwrap();
        sys.write_message(&a, b"carry", vec![d.into()]).unwrap();
        assert!(!peer_closed(&sys, c.raw()), "in transit is not closed");
        drop(b);
        assert!(peer_closed(&sys, c.raw()));
        drop((a, c));
        assert_eq!(sys.open_handles(), 0);
    }

    #[test]
    fn wait_deadline_and_precondition() {
        let sys = FakeSystem::new();
        let (a, b) = sys.create_message_pipe().unwrap();
        let t = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            wait(&sys, b.raw(), Signals::READABLE, Some(t)),
            Err(MojoError::DeadlineExceeded)
        );
        drop(a);
        assert_eq!(
            wait(&sys, b.raw(), Signals::READABLE, None),
            Err(MojoError::FailedPrecondition)
        );
        assert_eq!(wait(&sys, b.raw(), Signals::PEER_CLOSED, None), Ok(()));
    }

    #[test]
    fn buffer_duplicate_rules() {
        let sys = FakeSystem::new();
        let buf = sys.create_shared_buffer(4096).unwrap();
        let mut m = sys.map_buffer(&buf, 0, 4096).unwrap();
        m.write(10, b"abc").unwrap();
        let ro = sys.duplicate_buffer(&buf, true).unwrap();
        // Writable duplicate of a (now) read-only buffer is refused.
        assert_eq!(
            sys.duplicate_buffer(&buf, false).unwrap_err(),
            MojoError::FailedPrecondition
        );
        assert_eq!(
            sys.duplicate_buffer(&ro, false).unwrap_err(),
            MojoError::FailedPrecondition
        );
        let mut rm = sys.map_buffer(&ro, 0, 4096).unwrap();
        assert!(!rm.is_writable());
        assert_eq!(rm.write(0, b"x"), Err(MojoError::PermissionDenied));
        assert_eq!(rm.try_make_writable(), Err(Errno::EACCES));
        assert_eq!(m.try_make_writable(), Ok(()));
        let mut got = [0u8; 3];
        rm.read(10, &mut got).unwrap();
        assert_eq!(&got, b"abc");
        let u = sys.unwrap_shared_buffer(ro).unwrap();
        assert_eq!(u.access_mode, RegionAccessMode::ReadOnly);
        assert_eq!(u.fds.len(), 1);
        assert_eq!(
            crate::os::probe_writable_mmap(&u.fds[0], 4096),
            Err(Errno::EACCES)
        );
        assert_eq!(crate::os::fd_access_mode(&u.fds[0]), 0);
        let w = sys.create_shared_buffer(100).unwrap();
        let u = sys.unwrap_shared_buffer(w).unwrap();
        assert_eq!(
            (u.access_mode, u.fds.len(), u.size),
            (RegionAccessMode::Writable, 2, 100)
        );
        // Writable dup makes the original unsafe; then no read-only dup.
        let w = sys.create_shared_buffer(100).unwrap();
        let _w2 = sys.duplicate_buffer(&w, false).unwrap();
        assert_eq!(
            sys.duplicate_buffer(&w, true).unwrap_err(),
            MojoError::FailedPrecondition
        );
    }

    #[test]
    fn data_pipe_ring() {
        let sys = FakeSystem::new();
        let (p, c) = sys.create_data_pipe(1, 8).unwrap();
        assert_eq!(sys.write_data(&p, &[1; 20]), Ok(8));
        assert_eq!(sys.write_data(&p, &[1]), Err(MojoError::ShouldWait));
        let mut buf = [0u8; 5];
        assert_eq!(sys.read_data(&c, &mut buf), Ok(5));
        drop(p);
        assert_eq!(sys.read_data(&c, &mut buf), Ok(3));
        assert_eq!(
            sys.read_data(&c, &mut buf),
            Err(MojoError::FailedPrecondition)
        );
        assert_eq!(
            sys.create_data_pipe(0, 8).unwrap_err(),
            MojoError::InvalidArgument
        );
    }

    #[test]
    fn platform_handle_round_trip() {
        let sys = FakeSystem::new();
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let h = sys.wrap_platform_handle(w).unwrap();
        let w = sys.unwrap_platform_handle(h).unwrap();
        nix::unistd::write(&w, b"x").unwrap();
        drop((r, w));
        assert_eq!(sys.open_handles(), 0);
    }

    fn pipe_op() -> impl proptest::strategy::Strategy<Value = PipeOp> {
        use proptest::prelude::*;
        prop_oneof![
            (
                0usize..2,
                proptest::collection::vec(any::<u8>(), 0..8),
                any::<bool>()
            )
                .prop_map(|(end, bytes, attach)| PipeOp::Write { end, bytes, attach }),
            (0usize..2).prop_map(PipeOp::Read),
            (0usize..2).prop_map(PipeOp::Close),
        ]
    }

    proptest::proptest! {
        /// A message pipe behaves like two queues and two open flags (the
        /// shared model, `conformance::pipes`), and leaves no handle open.
        #[test]
        fn pipe_matches_model(ops in proptest::collection::vec(pipe_op(), 0..40)) {
            let sys = FakeSystem::new();
            let (a, b) = sys.create_message_pipe().unwrap();
            pipe_model(&sys, a, &sys, b, &ops);
            proptest::prop_assert_eq!(sys.open_handles(), 0);
        }
    }
}
