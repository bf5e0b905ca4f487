//! [`RealSystem`]: the [`MojoSystem`] over any [`Protocol`], a protocol node
//! driven over real sockets.
//!
//! One I/O thread runs a [`mojo_driver::Driver`] over the protocol's links;
//! the protocol and the handle table share one mutex; waiters sleep on a
//! condition variable that every change (input, link loss, a local
//! operation) wakes; local operations wake the I/O thread through a
//! socket-pair waker link so their frames go out at once. After each change
//! the handles that armed traps watch are re-read (`runtime/traps.rs`). The
//! protocols are [`crate::legacy`] and [`crate::ipcz`]; [`protocol`] is
//! their contract.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mojo_driver::{
    CloseReason, Core, CoreRequest, Driver, DriverError, LinkId, NewLinkError, ReceivedFds,
    Transmit,
};
use mojo_platform_channel::{OsRandom, RegionMode, SharedMemoryRegion};

pub mod protocol;
mod traps;

pub use protocol::{Protocol, RegionObject, RegionSource, WireHandle, WireMessage};

use crate::mapping::FdMapping;
use crate::new_data::NewData;
use crate::region::check_region;
use crate::trap::TrapHost;
use crate::two_phase::{DataEndState, TwoPhase, discard_count};
use crate::{ArmTrapError, Trap, TriggerCondition};
use crate::{
    DataPipeConsumer, DataPipeProducer, Handle, HandleCloser, Message, MessagePipe, MojoError,
    MojoHandle, MojoResult, MojoSystem, PlatformHandle, RegionAccessMode, SharedBuffer, Signals,
    SignalsState, UnwrappedRegion, WaitError, WrapRegionError, WriteMessageError,
    check_attachments, scan_wait_any,
};

/// Why a process could not join a network (`send_invitation`,
/// `accept_invitation` of [`crate::legacy`] and [`crate::ipcz`]): the
/// failing step's reason, for a person to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError(String);

impl ConnectError {
    /// An error with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// An error whose reason is `error`'s text.
    pub fn from_display(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

/// Largest shared buffer the runtime creates (Chromium's `INT_MAX` bound).
pub const MAX_BUFFER_SIZE: u64 = i32::MAX as u64;

/// How long a waiter sleeps at most before looking again (a safety net:
/// every change notifies, so this only bounds a missed wake-up).
const RECHECK: Duration = Duration::from_millis(500);

struct Table<P: Protocol> {
    protocol: P,
    handles: HashMap<u32, WireHandle<P::Pipe>>,
    /// The data pipe ends in a two-phase operation (only active ones).
    two_phase: HashMap<u32, TwoPhase>,
    /// Each consumer end's `NEW_DATA_READABLE` state (by handle value).
    new_data: HashMap<u32, NewData>,
    /// The traps (their handle values come from `next_handle` too).
    traps: TrapHost,
    next_handle: u32,
    /// The system is being dropped: the I/O thread flushes and ends.
    shutdown: bool,
    /// The I/O thread has ended.
    io_done: bool,
}

impl<P: Protocol> Table<P> {
    fn alloc(&mut self) -> MojoResult<MojoHandle> {
        self.next_handle = self
            .next_handle
            .checked_add(1)
            .ok_or(MojoError::ResourceExhausted)?;
        MojoHandle::new(self.next_handle).ok_or(MojoError::ResourceExhausted)
    }

    fn add(&mut self, obj: WireHandle<P::Pipe>) -> MojoResult<MojoHandle> {
        let raw = self.alloc()?;
        self.handles.insert(raw.value(), obj);
        Ok(raw)
    }

    fn close(&mut self, obj: WireHandle<P::Pipe>) {
        match obj {
            WireHandle::Pipe(p) => self.protocol.close_pipe(p),
            WireHandle::Producer(id) | WireHandle::Consumer(id) => self.protocol.close_data(id),
            WireHandle::Buffer(_) | WireHandle::Platform(_) => {} // fds close on drop
        }
    }

    fn data_id(&self, raw: MojoHandle, producer: bool) -> MojoResult<u64> {
        match (self.handles.get(&raw.value()), producer) {
            (Some(WireHandle::Producer(id)), true) | (Some(WireHandle::Consumer(id)), false) => {
                Ok(*id)
            }
            _ => Err(MojoError::InvalidArgument),
        }
    }

    /// The objects of `handles`, already checked by [`check_attachments`]; their
    /// triggers are cancelled (a handle sent away is closed for its traps).
    fn take_checked(&mut self, handles: Vec<Handle>) -> Vec<WireHandle<P::Pipe>> {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            let (_, raw) = h.into_raw();
            if let Some(o) = self.handles.remove(&raw.value()) {
                self.traps.close(raw);
                self.new_data.remove(&raw.value());
                out.push(o);
            }
        }
        out
    }

    /// `BUSY` while `raw` is in a two-phase operation.
    fn check_idle(&self, raw: MojoHandle) -> MojoResult<()> {
        self.two_phase
            .get(&raw.value())
            .map_or(Ok(()), TwoPhase::check_idle)
    }

    /// Runs `op` on `raw`'s two-phase state and keeps it only if active.
    fn with_two_phase<T>(&mut self, raw: MojoHandle, op: impl FnOnce(&mut TwoPhase) -> T) -> T {
        let mut tp = self.two_phase.remove(&raw.value()).unwrap_or_default();
        let out = op(&mut tp);
        if tp.is_active() {
            self.two_phase.insert(raw.value(), tp);
        }
        out
    }

    /// The `NEW_DATA_READABLE` state of consumer `raw`.
    fn new_data(&mut self, raw: MojoHandle) -> &mut NewData {
        self.new_data.entry(raw.value()).or_default()
    }

    /// A read call of consumer `raw` (protocol id `id`) begins: the bytes
    /// readable now are no longer new.
    fn read_call(&mut self, raw: MojoHandle, id: u64) -> MojoResult<DataEndState> {
        let state = self.protocol.data_state(id)?;
        self.new_data(raw).read_call(state.bytes);
        Ok(state)
    }

    /// After consumer `raw`'s own call consumed bytes.
    fn sync_new_data(&mut self, raw: MojoHandle, id: u64) {
        if let Ok(state) = self.protocol.data_state(id) {
            self.new_data(raw).sync(state.bytes);
        }
    }

    fn pipe(&self, raw: MojoHandle) -> MojoResult<P::Pipe> {
        match self.handles.get(&raw.value()) {
            Some(WireHandle::Pipe(p)) => Ok(*p),
            _ => Err(MojoError::InvalidArgument),
        }
    }

    fn signals(&mut self, raw: MojoHandle) -> MojoResult<SignalsState> {
        match self.handles.get(&raw.value()) {
            Some(WireHandle::Pipe(p)) => Ok(self
                .protocol
                .pipe_signals(*p)
                .with_peer_remote(self.protocol.pipe_peer_remote(*p))),
            Some(WireHandle::Producer(id)) => {
                let id = *id;
                let state = self.protocol.data_signals(id);
                Ok(self
                    .two_phase
                    .get(&raw.value())
                    .map_or(state, |tp| tp.mask(state)))
            }
            Some(WireHandle::Consumer(id)) => {
                let id = *id;
                let state = self.protocol.data_signals(id);
                let state = self
                    .two_phase
                    .get(&raw.value())
                    .map_or(state, |tp| tp.mask(state));
                let bytes = self.protocol.data_state(id).map_or(0, |s| s.bytes);
                let new_data = self.new_data.entry(raw.value()).or_default();
                new_data.observe(bytes);
                Ok(new_data.apply(state))
            }
            Some(_) => Ok(SignalsState::default()),
            None => Err(MojoError::InvalidArgument),
        }
    }
}

struct Shared<P: Protocol> {
    table: Mutex<Table<P>>,
    changed: Condvar,
    /// The application end of the waker socket pair (non-blocking).
    waker: OwnedFd,
    wake_pending: AtomicBool,
    /// Some trap is armed: changes must be looked at (see [`traps`]).
    traps_armed: AtomicBool,
}

impl<P: Protocol> Shared<P> {
    fn lock(&self) -> MutexGuard<'_, Table<P>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the I/O thread there may be frames to send.
    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            // EAGAIN means bytes are already waiting: the thread wakes anyway.
            let _ = nix::unistd::write(&self.waker, &[1]);
        }
    }

    fn changed(&self) {
        self.refresh_traps();
        self.changed.notify_all();
        self.wake();
    }

    fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Table<P>>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, Table<P>>> {
        let now = Instant::now();
        let wait = match deadline {
            Some(d) if d <= now => return None,
            Some(d) => (d - now).min(RECHECK),
            None => RECHECK,
        };
        Some(
            self.changed
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0,
        )
    }
}

struct Closer<P: Protocol>(Weak<Shared<P>>);

impl<P: Protocol> HandleCloser for Closer<P> {
    fn close_handle(&self, handle: MojoHandle) {
        if let Some(shared) = self.0.upgrade() {
            let mut t = shared.lock();
            t.two_phase.remove(&handle.value());
            t.new_data.remove(&handle.value());
            if let Some(obj) = t.handles.remove(&handle.value()) {
                t.close(obj);
            }
            t.traps.close(handle);
            drop(t);
            shared.changed();
        }
    }
}

/// The driver's view of the runtime: every call locks the table.
struct IoCore<P: Protocol> {
    shared: Arc<Shared<P>>,
    waker_link: LinkId,
    shutdown_sent: bool,
}

impl<P: Protocol> Core for IoCore<P> {
    type Error = P::Error;

    fn handle_input(
        &mut self,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Result<usize, P::Error> {
        if link == self.waker_link {
            self.shared.wake_pending.store(false, Ordering::Release);
            while fds.pop().is_some() {}
            return Ok(input.len());
        }
        let mut t = self.shared.lock();
        let result = t.protocol.handle_input(link, input, fds);
        self.shared.settle(&mut t);
        drop(t);
        self.shared.changed.notify_all();
        result
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.shared.lock().protocol.poll_transmit()
    }

    fn poll_request(&mut self) -> Option<CoreRequest> {
        let mut t = self.shared.lock();
        if let Some(r) = t.protocol.poll_request() {
            return Some(r);
        }
        if t.shutdown && !self.shutdown_sent {
            self.shutdown_sent = true;
            return Some(CoreRequest::Shutdown);
        }
        None
    }

    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason) {
        if link != self.waker_link {
            // A peer hanging up or a requested close is ordinary; a failed
            // channel loses the peer's pipes, so say why.
            if matches!(reason, CloseReason::Channel(_) | CloseReason::Epoll { .. }) {
                eprintln!("[mojo] {link}: closed: {reason}");
            }
            let mut t = self.shared.lock();
            t.protocol.handle_link_closed(link, reason);
            self.shared.settle(&mut t);
            drop(t);
            self.shared.changed.notify_all();
        }
    }

    fn handle_link_adopted(&mut self, tag: u64, result: Result<LinkId, NewLinkError>) {
        let mut t = self.shared.lock();
        t.protocol.handle_link_adopted(tag, result);
        self.shared.settle(&mut t);
        drop(t);
        self.shared.changed.notify_all();
    }
}

fn io_loop<P: Protocol>(mut driver: Driver, mut core: IoCore<P>) {
    loop {
        match driver.turn(&mut core, None) {
            Ok(None) => {}
            Ok(Some(exit)) => {
                log::debug!("I/O thread: {exit}");
                break;
            }
            Err(DriverError::Core { link, error }) => {
                eprintln!("[mojo] {link}: {error}; dropping it");
                driver.abort_link(link);
            }
            Err(e) => {
                eprintln!("[mojo] I/O failed: {e}");
                break;
            }
        }
    }
    core.shared.lock().io_done = true;
    core.shared.changed.notify_all();
}

/// The real Mojo system over protocol `P`: see the [module page](super).
pub struct RealSystem<P: Protocol> {
    shared: Arc<Shared<P>>,
    io: Mutex<Option<JoinHandle<()>>>,
}

impl<P: Protocol> RealSystem<P> {
    /// Starts the I/O thread driving `protocol` over the links already in
    /// `driver` (and those the protocol adds).
    pub fn start(mut driver: Driver, protocol: P) -> std::io::Result<Self> {
        let (io_end, app_end) =
            mojo_platform_channel::socketpair().map_err(std::io::Error::other)?;
        let waker_link = driver.add_link(io_end)?;
        let waker = app_end
            .into_fd(true)
            .map_err(|_| std::io::Error::other("waker socket"))?;
        let shared = Arc::new(Shared {
            table: Mutex::new(Table {
                protocol,
                handles: HashMap::new(),
                two_phase: HashMap::new(),
                new_data: HashMap::new(),
                traps: TrapHost::default(),
                next_handle: 0,
                shutdown: false,
                io_done: false,
            }),
            changed: Condvar::new(),
            waker,
            wake_pending: AtomicBool::new(false),
            traps_armed: AtomicBool::new(false),
        });
        let core = IoCore {
            shared: shared.clone(),
            waker_link,
            shutdown_sent: false,
        };
        let io = std::thread::Builder::new()
            .name("mojo-io".into())
            .spawn(move || io_loop(driver, core))?;
        Ok(Self {
            shared,
            io: Mutex::new(Some(io)),
        })
    }

    /// Runs `op` on the table, then wakes waiters and the I/O thread
    /// whatever it returned (a failed end still ends a two-phase call).
    fn locked<T>(&self, op: impl FnOnce(&mut Table<P>) -> MojoResult<T>) -> MojoResult<T> {
        let result = op(&mut self.shared.lock());
        self.shared.changed();
        result
    }

    fn closer(&self) -> Arc<dyn HandleCloser> {
        Arc::new(Closer(Arc::downgrade(&self.shared)))
    }

    fn typed(&self, raw: MojoHandle, obj_kind: Kind) -> Handle {
        let c = self.closer();
        match obj_kind {
            Kind::Pipe => Handle::MessagePipe(MessagePipe::from_raw(raw, c)),
            Kind::Buffer => Handle::SharedBuffer(SharedBuffer::from_raw(raw, c)),
            Kind::Platform => Handle::PlatformHandle(PlatformHandle::from_raw(raw, c)),
            Kind::Producer => Handle::DataPipeProducer(DataPipeProducer::from_raw(raw, c)),
            Kind::Consumer => Handle::DataPipeConsumer(DataPipeConsumer::from_raw(raw, c)),
        }
    }

    /// A protocol pipe end (an invitation attachment) as a handle.
    pub fn adopt_pipe(&self, pipe: P::Pipe) -> MojoResult<MessagePipe> {
        let raw = self.shared.lock().add(WireHandle::Pipe(pipe))?;
        Ok(MessagePipe::from_raw(raw, self.closer()))
    }

    /// Waits until `f` finds what it looks for in the protocol (e.g. an
    /// invitation's attachments), or `deadline` passes, or the I/O ends.
    pub fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut f: impl FnMut(&mut P) -> Option<T>,
    ) -> Option<T> {
        let mut t = self.shared.lock();
        loop {
            if let Some(v) = f(&mut t.protocol) {
                drop(t);
                self.shared.changed();
                return Some(v);
            }
            if t.io_done {
                return None;
            }
            t = self.shared.wait(t, deadline)?;
        }
    }

    /// Runs `f` on the protocol (under the lock), then wakes everyone.
    pub fn with_protocol<T>(&self, f: impl FnOnce(&mut P) -> T) -> T {
        let v = f(&mut self.shared.lock().protocol);
        self.shared.changed();
        v
    }

    fn buffer_object<T>(
        &self,
        buffer: &SharedBuffer,
        f: impl FnOnce(&mut RegionObject) -> MojoResult<T>,
    ) -> MojoResult<T> {
        match self.shared.lock().handles.get_mut(&buffer.raw().value()) {
            Some(WireHandle::Buffer(b)) => f(b),
            _ => Err(MojoError::InvalidArgument),
        }
    }
}

impl<P: Protocol> Drop for RealSystem<P> {
    fn drop(&mut self) {
        {
            let mut t = self.shared.lock();
            t.shutdown = true;
            t.traps.close_all();
            let objects: Vec<_> = t.handles.drain().map(|(_, o)| o).collect();
            for o in objects {
                t.close(o);
            }
        }
        self.shared.changed();
        let io = self.io.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(io) = io {
            let _ = io.join();
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Pipe,
    Buffer,
    Platform,
    Producer,
    Consumer,
}

fn kind_of<P>(o: &WireHandle<P>) -> Kind {
    match o {
        WireHandle::Pipe(_) => Kind::Pipe,
        WireHandle::Buffer(_) => Kind::Buffer,
        WireHandle::Platform(_) => Kind::Platform,
        WireHandle::Producer(_) => Kind::Producer,
        WireHandle::Consumer(_) => Kind::Consumer,
    }
}

fn dup(fd: &OwnedFd) -> MojoResult<OwnedFd> {
    fd.try_clone().map_err(|_| MojoError::ResourceExhausted)
}

/// A writable region of our own (memfd, read-write and read-only fds).
pub fn local_region(size: u64) -> MojoResult<RegionObject> {
    if size == 0 || size > MAX_BUFFER_SIZE {
        return Err(MojoError::InvalidArgument);
    }
    let mut rng = OsRandom::new().map_err(|_| MojoError::Internal)?;
    let len = usize::try_from(size).map_err(|_| MojoError::InvalidArgument)?;
    let region = SharedMemoryRegion::create(RegionMode::Writable, len, &mut rng)
        .map_err(|_| MojoError::ResourceExhausted)?;
    let guid = region.guid();
    let mut fds = region.into_fds().into_iter();
    let (Some(rw), Some(ro)) = (fds.next(), fds.next()) else {
        return Err(MojoError::Internal);
    };
    Ok(RegionObject {
        rw: Some(rw),
        ro: Some(ro),
        mode: RegionAccessMode::Writable,
        size,
        guid,
    })
}

impl<P: Protocol> MojoSystem for RealSystem<P> {
    type Mapping = FdMapping;

    fn create_message_pipe(&self) -> MojoResult<(MessagePipe, MessagePipe)> {
        let (a, b) = {
            let mut t = self.shared.lock();
            let (a, b) = t.protocol.create_pipe()?;
            (t.add(WireHandle::Pipe(a))?, t.add(WireHandle::Pipe(b))?)
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
        let result = {
            let mut t = self.shared.lock();
            let checked = t.pipe(pipe.raw()).and_then(|p| {
                check_attachments(
                    pipe.raw(),
                    &handles,
                    |h| t.handles.contains_key(&h.value()),
                    |h| t.two_phase.contains_key(&h.value()),
                )
                .map(|()| p)
            });
            let p = match checked {
                Ok(p) => p,
                Err(error) => return Err(WriteMessageError { error, handles }),
            };
            let objects = t.take_checked(handles);
            t.protocol.write_message(p, bytes, objects)
        };
        self.shared.changed();
        result.map_err(|error| WriteMessageError {
            error,
            handles: Vec::new(),
        })
    }

    fn read_message(&self, pipe: &MessagePipe) -> MojoResult<Message> {
        let (bytes, raws) = {
            let mut t = self.shared.lock();
            let p = t.pipe(pipe.raw())?;
            let (bytes, objects) = t.protocol.read_message(p)?;
            let mut raws = Vec::with_capacity(objects.len());
            for o in objects {
                let kind = kind_of(&o);
                raws.push((t.add(o)?, kind));
            }
            (bytes, raws)
        };
        self.shared.changed();
        Ok(Message {
            bytes,
            handles: raws.into_iter().map(|(r, k)| self.typed(r, k)).collect(),
        })
    }

    fn query_signals(&self, handle: MojoHandle) -> MojoResult<SignalsState> {
        let s = self.shared.lock().signals(handle);
        // Taking in control messages may have queued frames.
        self.shared.wake();
        s
    }

    fn wait_any(
        &self,
        handles: &[(MojoHandle, Signals)],
        deadline: Option<Instant>,
    ) -> Result<usize, WaitError> {
        let mut t = self.shared.lock();
        loop {
            if let Some(done) = scan_wait_any(handles, |h| t.signals(h)) {
                return done;
            }
            t = match self.shared.wait(t, deadline) {
                Some(t) => t,
                None => {
                    return Err(WaitError {
                        error: MojoError::DeadlineExceeded,
                        index: None,
                    });
                }
            };
        }
    }

    fn create_shared_buffer(&self, size: u64) -> MojoResult<SharedBuffer> {
        if size == 0 || size > MAX_BUFFER_SIZE {
            return Err(MojoError::InvalidArgument);
        }
        let mut t = self.shared.lock();
        let region = loop {
            match t.protocol.create_region(size)? {
                RegionSource::Local => {
                    drop(t);
                    let region = local_region(size)?;
                    t = self.shared.lock();
                    break region;
                }
                RegionSource::Requested => {
                    // The request frame goes out now; the answer wakes us.
                    self.shared.wake();
                    let answer = loop {
                        if let Some(r) = t.protocol.poll_region() {
                            break r;
                        }
                        if t.io_done {
                            return Err(MojoError::Unavailable);
                        }
                        t = self.shared.wait(t, None).ok_or(MojoError::Internal)?;
                    };
                    break answer?;
                }
                RegionSource::Busy => {
                    if t.io_done {
                        return Err(MojoError::Unavailable);
                    }
                    t = self.shared.wait(t, None).ok_or(MojoError::Internal)?;
                }
            }
        };
        let raw = t.add(WireHandle::Buffer(region))?;
        drop(t);
        Ok(SharedBuffer::from_raw(raw, self.closer()))
    }

    fn duplicate_buffer(&self, buffer: &SharedBuffer, read_only: bool) -> MojoResult<SharedBuffer> {
        let dupl = self.buffer_object(buffer, |b| {
            // Mojo's rules: a read-only duplicate makes a writable original
            // read-only, a writable one makes it unsafe; the other way round
            // is refused.
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
            Ok(RegionObject {
                rw,
                ro,
                mode,
                size: b.size,
                guid: b.guid,
            })
        })?;
        let raw = self.shared.lock().add(WireHandle::Buffer(dupl))?;
        Ok(SharedBuffer::from_raw(raw, self.closer()))
    }

    fn buffer_size(&self, buffer: &SharedBuffer) -> MojoResult<u64> {
        self.buffer_object(buffer, |b| Ok(b.size))
    }

    fn map_buffer(&self, buffer: &SharedBuffer, offset: u64, len: u64) -> MojoResult<FdMapping> {
        self.buffer_object(buffer, |b| {
            if len == 0 || offset.checked_add(len).is_none_or(|end| end > b.size) {
                return Err(MojoError::InvalidArgument);
            }
            let (fd, writable) = match (&b.rw, &b.ro) {
                (Some(rw), _) => (dup(rw)?, true),
                (None, Some(ro)) => (dup(ro)?, false),
                (None, None) => return Err(MojoError::Internal),
            };
            let len = usize::try_from(len).map_err(|_| MojoError::InvalidArgument)?;
            Ok(FdMapping::new(fd, offset, len, writable))
        })
    }

    fn unwrap_shared_buffer(&self, buffer: SharedBuffer) -> MojoResult<UnwrappedRegion> {
        let raw = buffer.into_raw();
        let mut t = self.shared.lock();
        match t.handles.remove(&raw.value()) {
            Some(WireHandle::Buffer(b)) => Ok(UnwrappedRegion {
                fds: b.rw.into_iter().chain(b.ro).collect(),
                size: b.size,
                guid: b.guid,
                access_mode: b.mode,
            }),
            Some(other) => {
                t.close(other);
                Err(MojoError::InvalidArgument)
            }
            None => Err(MojoError::InvalidArgument),
        }
    }

    fn wrap_shared_buffer(&self, region: UnwrappedRegion) -> Result<SharedBuffer, WrapRegionError> {
        let region = check_region(region).map_err(WrapRegionError::Rejected)?;
        let raw = self.shared.lock().add(WireHandle::Buffer(region))?;
        Ok(SharedBuffer::from_raw(raw, self.closer()))
    }

    fn wrap_platform_handle(&self, fd: OwnedFd) -> MojoResult<PlatformHandle> {
        let raw = self.shared.lock().add(WireHandle::Platform(fd))?;
        Ok(PlatformHandle::from_raw(raw, self.closer()))
    }

    fn unwrap_platform_handle(&self, handle: PlatformHandle) -> MojoResult<OwnedFd> {
        let raw = handle.into_raw();
        let mut t = self.shared.lock();
        match t.handles.remove(&raw.value()) {
            Some(WireHandle::Platform(fd)) => Ok(fd),
            Some(other) => {
                t.close(other);
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
        let (p, c) = {
            let mut t = self.shared.lock();
            let (p, c) = t.protocol.create_data_pipe(element_size, capacity)?;
            (
                t.add(WireHandle::Producer(p))?,
                t.add(WireHandle::Consumer(c))?,
            )
        };
        Ok((
            DataPipeProducer::from_raw(p, self.closer()),
            DataPipeConsumer::from_raw(c, self.closer()),
        ))
    }

    fn write_data(&self, producer: &DataPipeProducer, data: &[u8]) -> MojoResult<usize> {
        let result = {
            let mut t = self.shared.lock();
            let id = t.data_id(producer.raw(), true)?;
            t.check_idle(producer.raw())?;
            t.protocol.write_data(id, data)
        };
        self.shared.changed();
        result
    }

    fn read_data(&self, consumer: &DataPipeConsumer, buf: &mut [u8]) -> MojoResult<usize> {
        let result = {
            let mut t = self.shared.lock();
            let id = t.data_id(consumer.raw(), false)?;
            t.check_idle(consumer.raw())?;
            t.read_call(consumer.raw(), id)?;
            let result = t.protocol.read_data(id, buf);
            t.sync_new_data(consumer.raw(), id);
            result
        };
        self.shared.changed();
        result
    }

    fn begin_write_data(&self, producer: &DataPipeProducer) -> MojoResult<Vec<u8>> {
        let raw = producer.raw();
        self.locked(|t| {
            let id = t.data_id(raw, true)?;
            t.check_idle(raw)?;
            let state = t.protocol.data_state(id)?;
            t.with_two_phase(raw, |tp| tp.begin_write(state))
                .map(|n| vec![0; n as usize])
        })
    }

    fn end_write_data(&self, producer: &DataPipeProducer, written: &[u8]) -> MojoResult<()> {
        let raw = producer.raw();
        self.locked(|t| {
            let id = t.data_id(raw, true)?;
            let state = t.protocol.data_state(id)?;
            match t.with_two_phase(raw, |tp| tp.end(written.len(), state.element_size)) {
                Ok(0) => Ok(()),
                // The room was reserved, so all of it fits; a consumer gone
                // meanwhile drops the bytes and the end still succeeds.
                Ok(_) => match t.protocol.write_data(id, written) {
                    Ok(n) if n == written.len() => Ok(()),
                    Ok(_) => Err(MojoError::Internal),
                    Err(MojoError::FailedPrecondition) => Ok(()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        })
    }

    fn begin_read_data(&self, consumer: &DataPipeConsumer) -> MojoResult<Vec<u8>> {
        let raw = consumer.raw();
        self.locked(|t| {
            let id = t.data_id(raw, false)?;
            t.check_idle(raw)?;
            let state = t.read_call(raw, id)?;
            let n = t.with_two_phase(raw, |tp| tp.begin_read(state))?;
            let mut buf = vec![0; n as usize];
            match t.protocol.peek_data(id, &mut buf) {
                Ok(k) => {
                    buf.truncate(k);
                    Ok(buf)
                }
                Err(e) => {
                    t.two_phase.remove(&raw.value());
                    Err(e)
                }
            }
        })
    }

    fn end_read_data(&self, consumer: &DataPipeConsumer, num_bytes: usize) -> MojoResult<()> {
        let raw = consumer.raw();
        self.locked(|t| {
            let id = t.data_id(raw, false)?;
            let state = t.protocol.data_state(id)?;
            // Bytes that came during the two-phase read are new.
            t.new_data(raw).observe(state.bytes);
            let result = match t.with_two_phase(raw, |tp| tp.end(num_bytes, state.element_size))? {
                0 => Ok(()),
                n => match t.protocol.discard_data(id, n as usize)? {
                    k if k == n as usize => Ok(()),
                    _ => Err(MojoError::Internal),
                },
            };
            t.sync_new_data(raw, id);
            result
        })
    }

    fn discard_data(&self, consumer: &DataPipeConsumer, num_bytes: usize) -> MojoResult<usize> {
        let raw = consumer.raw();
        self.locked(|t| {
            let id = t.data_id(raw, false)?;
            t.check_idle(raw)?;
            let state = t.read_call(raw, id)?;
            let n = discard_count(state, num_bytes)?;
            let result = t.protocol.discard_data(id, n as usize);
            t.sync_new_data(raw, id);
            result
        })
    }

    fn query_data(&self, consumer: &DataPipeConsumer) -> MojoResult<usize> {
        let raw = consumer.raw();
        self.locked(|t| {
            let id = t.data_id(raw, false)?;
            t.check_idle(raw)?;
            // A query is a read call too: it lowers NEW_DATA_READABLE.
            Ok(t.read_call(raw, id)?.bytes as usize)
        })
    }

    fn create_trap(&self) -> MojoResult<Trap> {
        self.trap_create()
    }

    fn add_trigger(
        &self,
        trap: &Trap,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
        context: u64,
    ) -> MojoResult<()> {
        self.trap_add_trigger(trap, handle, signals, condition, context)
    }

    fn remove_trigger(&self, trap: &Trap, context: u64) -> MojoResult<()> {
        self.trap_remove_trigger(trap, context)
    }

    fn arm_trap(&self, trap: &Trap, max_blocking_events: usize) -> Result<(), ArmTrapError> {
        self.trap_arm(trap, max_blocking_events)
    }
}
