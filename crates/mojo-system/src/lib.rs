//! `mojo-system`: a Rust Mojo System API, in Mojo's own terms.
//!
//! [`MojoSystem`] mirrors Mojo's C system API (`mojo/public/c/system`) as far
//! as it is built: message pipes, waiting, shared buffers, platform handles
//! and data pipes (immediate, two-phase, discard and query; the rules are in
//! [`two_phase`]). Each method names its C equivalent; `docs/MOJO-SYSTEM.md`
//! maps them to Mojo's C and C++ calls. The examples are two-process
//! programs: `launch_legacy_client.rs` (a launched legacy client accepts an
//! invitation), `shared_buffer.rs` (a read-only and a writable buffer make a
//! round trip) and `data_pipe.rs`. Invitations are not part of the trait:
//! a process joins a network with a call of [`legacy`] or [`ipcz`], which
//! hands back the attached pipes.
//!
//! Handles are typed ([`MessagePipe`], [`SharedBuffer`], [`PlatformHandle`],
//! [`DataPipeProducer`], [`DataPipeConsumer`]); a message carries them as
//! [`Handle`]s. Each handle owns a raw [`MojoHandle`] value of one system and
//! closes it when dropped (`MojoClose`), like Mojo's C++ `ScopedHandle`.
//!
//! Traps ([`trap`], [`Trap`]): triggers on handles, armed explicitly, their
//! events queued for the caller's event loop behind an eventfd (a `mio`
//! source, or a blocking wait); [`Watcher`] is Mojo's `SimpleWatcher`.
//!
//! Implementations: [`runtime::RealSystem`], a protocol node driven over
//! real sockets by one I/O thread, with two protocols: [`legacy`] (legacy
//! Mojo Core, as libchrome daemons speak it) and [`ipcz`] (Mojo+ipcz, as
//! Chrome speaks it). A process joins a network with one call of either
//! module (`send_invitation`, `accept_invitation`), which returns the
//! system and the attached pipes. (The test peers also have an in-process
//! fake.) Buffer mappings are [`mapping::FdMapping`]s. Errors carry Mojo's
//! result codes:
//!
//! ```
//! use mojo_system::{MojoError, Signals, SignalsState, data_pipe_capacity, result_code};
//!
//! // A data pipe's capacity must be a multiple of its element size.
//! assert_eq!(data_pipe_capacity(3, 64), Err(MojoError::InvalidArgument));
//! assert_eq!(result_code(&data_pipe_capacity(4, 64)), 0);
//! assert_eq!(MojoError::ShouldWait.code(), 17);
//! // A producer whose consumer is gone can only ever be peer-closed.
//! let orphan = SignalsState::of_producer(true, 64);
//! assert_eq!(orphan.satisfied, Signals::PEER_CLOSED);
//! ```

#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod conformance;
pub mod fd_budget;
pub mod ipcz;
pub mod legacy;
pub mod mapping;
pub mod new_data;
pub mod region;
pub mod runtime;
mod signals;
pub mod trap;
pub mod two_phase;

pub use region::WrapRegionError;
pub use signals::{Signals, SignalsState};
pub use trap::{
    ArmTrapError, ArmingPolicy, Trap, TrapEvent, TriggerCondition, Watcher, WatcherEvent,
};

use std::fmt;
use std::num::NonZeroU32;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

/// `MOJO_RESULT_OK`: the numeric code of success.
pub const MOJO_RESULT_OK: u32 = 0;

/// A Mojo result other than `MOJO_RESULT_OK`, with Mojo's numeric codes
/// (`mojo/public/c/system/types.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MojoError {
    /// `MOJO_RESULT_CANCELLED` (1).
    Cancelled,
    /// `MOJO_RESULT_UNKNOWN` (2).
    Unknown,
    /// `MOJO_RESULT_INVALID_ARGUMENT` (3).
    InvalidArgument,
    /// `MOJO_RESULT_DEADLINE_EXCEEDED` (4).
    DeadlineExceeded,
    /// `MOJO_RESULT_NOT_FOUND` (5).
    NotFound,
    /// `MOJO_RESULT_ALREADY_EXISTS` (6).
    AlreadyExists,
    /// `MOJO_RESULT_PERMISSION_DENIED` (7).
    PermissionDenied,
    /// `MOJO_RESULT_RESOURCE_EXHAUSTED` (8).
    ResourceExhausted,
    /// `MOJO_RESULT_FAILED_PRECONDITION` (9).
    FailedPrecondition,
    /// `MOJO_RESULT_ABORTED` (10).
    Aborted,
    /// `MOJO_RESULT_OUT_OF_RANGE` (11).
    OutOfRange,
    /// `MOJO_RESULT_UNIMPLEMENTED` (12).
    Unimplemented,
    /// `MOJO_RESULT_INTERNAL` (13).
    Internal,
    /// `MOJO_RESULT_UNAVAILABLE` (14).
    Unavailable,
    /// `MOJO_RESULT_DATA_LOSS` (15).
    DataLoss,
    /// `MOJO_RESULT_BUSY` (16).
    Busy,
    /// `MOJO_RESULT_SHOULD_WAIT` (17).
    ShouldWait,
}

impl MojoError {
    const ALL: [Self; 17] = [
        Self::Cancelled,
        Self::Unknown,
        Self::InvalidArgument,
        Self::DeadlineExceeded,
        Self::NotFound,
        Self::AlreadyExists,
        Self::PermissionDenied,
        Self::ResourceExhausted,
        Self::FailedPrecondition,
        Self::Aborted,
        Self::OutOfRange,
        Self::Unimplemented,
        Self::Internal,
        Self::Unavailable,
        Self::DataLoss,
        Self::Busy,
        Self::ShouldWait,
    ];

    /// Mojo's numeric code (1..=17).
    pub const fn code(self) -> u32 {
        match self {
            Self::Cancelled => 1,
            Self::Unknown => 2,
            Self::InvalidArgument => 3,
            Self::DeadlineExceeded => 4,
            Self::NotFound => 5,
            Self::AlreadyExists => 6,
            Self::PermissionDenied => 7,
            Self::ResourceExhausted => 8,
            Self::FailedPrecondition => 9,
            Self::Aborted => 10,
            Self::OutOfRange => 11,
            Self::Unimplemented => 12,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::DataLoss => 15,
            Self::Busy => 16,
            Self::ShouldWait => 17,
        }
    }

    /// The error for a numeric code, or `None` for 0 (OK) and unknown codes.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }
}

impl fmt::Display for MojoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

impl std::error::Error for MojoError {}

/// Result of a Mojo call: `Ok` is `MOJO_RESULT_OK`.
pub type MojoResult<T> = Result<T, MojoError>;

/// The numeric code of a result (0 for `Ok`), as the peers report it.
pub fn result_code<T>(result: &MojoResult<T>) -> u32 {
    match result {
        Ok(_) => MOJO_RESULT_OK,
        Err(e) => e.code(),
    }
}

/// Capacity of a data pipe created with capacity 0 (Mojo's default).
pub const DEFAULT_DATA_PIPE_CAPACITY: u32 = 64 * 1024;

/// `MojoCreateDataPipe`'s argument checks, the same in every system: the
/// capacity to create (`requested`, or the default for 0), which must be a
/// whole number of elements of a non-zero size.
pub fn data_pipe_capacity(element_size: u32, requested: u32) -> MojoResult<u32> {
    let capacity = if requested == 0 {
        DEFAULT_DATA_PIPE_CAPACITY
    } else {
        requested
    };
    if element_size == 0 || capacity % element_size != 0 {
        return Err(MojoError::InvalidArgument);
    }
    Ok(capacity)
}

/// A raw `MojoHandle` value (never `MOJO_HANDLE_INVALID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MojoHandle(NonZeroU32);

impl MojoHandle {
    /// The handle with this value, or `None` for 0 (`MOJO_HANDLE_INVALID`).
    pub const fn new(value: u32) -> Option<Self> {
        match NonZeroU32::new(value) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// The numeric value.
    pub const fn value(self) -> u32 {
        self.0.get()
    }
}

/// What a typed handle calls when it is dropped: `MojoClose` of its system.
pub trait HandleCloser: Send + Sync {
    /// Closes `handle`; unknown handles are ignored.
    fn close_handle(&self, handle: MojoHandle);
}

/// A raw handle plus the system that closes it.
struct OwnedHandle {
    raw: MojoHandle,
    closer: Option<Arc<dyn HandleCloser>>,
}

impl OwnedHandle {
    fn release(mut self) -> MojoHandle {
        self.closer = None;
        self.raw
    }
}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        if let Some(closer) = self.closer.take() {
            closer.close_handle(self.raw);
        }
    }
}

macro_rules! typed_handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(OwnedHandle);

        impl $name {
            /// Takes ownership of `raw`, which `closer` closes on drop. Only
            /// a [`MojoSystem`] implementation makes handles.
            pub fn from_raw(raw: MojoHandle, closer: Arc<dyn HandleCloser>) -> Self {
                Self(OwnedHandle { raw, closer: Some(closer) })
            }

            /// The raw value, still owned by `self`.
            pub fn raw(&self) -> MojoHandle {
                self.0.raw
            }

            /// Gives up ownership without closing (the caller now owns `raw`).
            pub fn into_raw(self) -> MojoHandle {
                self.0.release()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.raw.value())
            }
        }
    };
}

typed_handle!(
    /// One end of a message pipe (a legacy message pipe or an ipcz portal).
    MessagePipe
);
typed_handle!(
    /// A shared buffer handle.
    SharedBuffer
);
typed_handle!(
    /// A wrapped platform handle (an fd).
    PlatformHandle
);
typed_handle!(
    /// The producer end of a data pipe.
    DataPipeProducer
);
typed_handle!(
    /// The consumer end of a data pipe.
    DataPipeConsumer
);

/// Kind of a [`Handle`], for diagnostics and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleKind {
    /// [`MessagePipe`].
    MessagePipe,
    /// [`SharedBuffer`].
    SharedBuffer,
    /// [`PlatformHandle`].
    PlatformHandle,
    /// [`DataPipeProducer`].
    DataPipeProducer,
    /// [`DataPipeConsumer`].
    DataPipeConsumer,
}

/// A handle attached to a message: one of the typed handles.
#[derive(Debug)]
pub enum Handle {
    /// A message pipe end.
    MessagePipe(MessagePipe),
    /// A shared buffer.
    SharedBuffer(SharedBuffer),
    /// A platform handle.
    PlatformHandle(PlatformHandle),
    /// A data pipe producer.
    DataPipeProducer(DataPipeProducer),
    /// A data pipe consumer.
    DataPipeConsumer(DataPipeConsumer),
}

impl Handle {
    /// The kind of handle.
    pub fn kind(&self) -> HandleKind {
        match self {
            Self::MessagePipe(_) => HandleKind::MessagePipe,
            Self::SharedBuffer(_) => HandleKind::SharedBuffer,
            Self::PlatformHandle(_) => HandleKind::PlatformHandle,
            Self::DataPipeProducer(_) => HandleKind::DataPipeProducer,
            Self::DataPipeConsumer(_) => HandleKind::DataPipeConsumer,
        }
    }

    /// The raw value.
    pub fn raw(&self) -> MojoHandle {
        match self {
            Self::MessagePipe(h) => h.raw(),
            Self::SharedBuffer(h) => h.raw(),
            Self::PlatformHandle(h) => h.raw(),
            Self::DataPipeProducer(h) => h.raw(),
            Self::DataPipeConsumer(h) => h.raw(),
        }
    }

    /// Gives up ownership without closing, returning the kind and raw value.
    pub fn into_raw(self) -> (HandleKind, MojoHandle) {
        let kind = self.kind();
        let raw = match self {
            Self::MessagePipe(h) => h.into_raw(),
            Self::SharedBuffer(h) => h.into_raw(),
            Self::PlatformHandle(h) => h.into_raw(),
            Self::DataPipeProducer(h) => h.into_raw(),
            Self::DataPipeConsumer(h) => h.into_raw(),
        };
        (kind, raw)
    }

    /// The message pipe, or the handle back if it is something else.
    pub fn into_message_pipe(self) -> Result<MessagePipe, Self> {
        match self {
            Self::MessagePipe(p) => Ok(p),
            other => Err(other),
        }
    }

    /// The shared buffer, or the handle back.
    pub fn into_shared_buffer(self) -> Result<SharedBuffer, Self> {
        match self {
            Self::SharedBuffer(b) => Ok(b),
            other => Err(other),
        }
    }

    /// The platform handle, or the handle back.
    pub fn into_platform_handle(self) -> Result<PlatformHandle, Self> {
        match self {
            Self::PlatformHandle(h) => Ok(h),
            other => Err(other),
        }
    }

    /// The data pipe consumer, or the handle back.
    pub fn into_data_pipe_consumer(self) -> Result<DataPipeConsumer, Self> {
        match self {
            Self::DataPipeConsumer(c) => Ok(c),
            other => Err(other),
        }
    }
}

impl From<MessagePipe> for Handle {
    fn from(h: MessagePipe) -> Self {
        Self::MessagePipe(h)
    }
}
impl From<SharedBuffer> for Handle {
    fn from(h: SharedBuffer) -> Self {
        Self::SharedBuffer(h)
    }
}
impl From<PlatformHandle> for Handle {
    fn from(h: PlatformHandle) -> Self {
        Self::PlatformHandle(h)
    }
}
impl From<DataPipeProducer> for Handle {
    fn from(h: DataPipeProducer) -> Self {
        Self::DataPipeProducer(h)
    }
}
impl From<DataPipeConsumer> for Handle {
    fn from(h: DataPipeConsumer) -> Self {
        Self::DataPipeConsumer(h)
    }
}

/// A message read from a pipe: payload bytes and attached handles.
#[derive(Debug, Default)]
pub struct Message {
    /// The payload (starts with the u32 opcode in the peers' protocol).
    pub bytes: Vec<u8>,
    /// The attached handles, in order.
    pub handles: Vec<Handle>,
}

/// `MojoPlatformSharedMemoryRegionAccessMode`, with Mojo's numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionAccessMode {
    /// `..._ACCESS_MODE_READ_ONLY` (0): one `O_RDONLY` fd.
    ReadOnly,
    /// `..._ACCESS_MODE_WRITABLE` (1): on Linux two fds, read-write then read-only.
    Writable,
    /// `..._ACCESS_MODE_UNSAFE` (2): one read-write fd.
    Unsafe,
}

impl RegionAccessMode {
    /// Mojo's numeric value.
    pub const fn code(self) -> u32 {
        match self {
            Self::ReadOnly => 0,
            Self::Writable => 1,
            Self::Unsafe => 2,
        }
    }
}

/// What `MojoUnwrapPlatformSharedMemoryRegion` hands back.
#[derive(Debug)]
pub struct UnwrappedRegion {
    /// The region's fds (two for a writable region: read-write, read-only).
    pub fds: Vec<OwnedFd>,
    /// Size in bytes.
    pub size: u64,
    /// The region's GUID (`MojoSharedBufferGuid`).
    pub guid: u128,
    /// The region's access mode.
    pub access_mode: RegionAccessMode,
}

/// A failed wait: the result and, where Mojo names one, the index of the
/// handle it is about (`MojoWaitMany`'s `result_index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitError {
    /// `DEADLINE_EXCEEDED`, `FAILED_PRECONDITION` (a signal can never be
    /// satisfied) or `INVALID_ARGUMENT` (a bad handle).
    pub error: MojoError,
    /// Index of the handle concerned (`None` for a deadline).
    pub index: Option<usize>,
}

/// One look of `MojoWaitMany` at `handles` (for implementors of
/// [`MojoSystem::wait_any`], under their lock): `Some(Ok(i))` if handle `i`
/// satisfies what it is waited for, `Some(Err(..))` for a bad handle or, once
/// none is satisfied, the first that can never be; `None`: wait for a
/// change and look again. An empty list is `INVALID_ARGUMENT`.
pub fn scan_wait_any(
    handles: &[(MojoHandle, Signals)],
    mut signals_of: impl FnMut(MojoHandle) -> MojoResult<SignalsState>,
) -> Option<Result<usize, WaitError>> {
    if handles.is_empty() {
        return Some(Err(WaitError {
            error: MojoError::InvalidArgument,
            index: None,
        }));
    }
    let mut unsatisfiable = None;
    for (i, (h, wanted)) in handles.iter().enumerate() {
        let s = match signals_of(*h) {
            Ok(s) => s,
            Err(error) => {
                return Some(Err(WaitError {
                    error,
                    index: Some(i),
                }));
            }
        };
        if s.satisfied.intersects(*wanted) {
            return Some(Ok(i));
        }
        if !s.satisfiable.intersects(*wanted) && unsatisfiable.is_none() {
            unsatisfiable = Some(i);
        }
    }
    unsatisfiable.map(|i| {
        Err(WaitError {
            error: MojoError::FailedPrecondition,
            index: Some(i),
        })
    })
}

/// A failed [`MojoSystem::try_write_message`]: the result, and the handles
/// back when the message was never formed (a bad pipe, a handle that is
/// the pipe itself, unknown or repeated, or one in a two-phase operation).
/// Once a message is formed, a failure (the peer closed) destroys it and
/// closes its handles, as Mojo's `MojoWriteMessage` does: `handles` is then
/// empty.
#[derive(Debug)]
pub struct WriteMessageError {
    /// `INVALID_ARGUMENT`, `BUSY` or `FAILED_PRECONDITION`.
    pub error: MojoError,
    /// The handles, still the caller's.
    pub handles: Vec<Handle>,
}

/// Whether `handles` may travel in a message on `pipe` (for implementors of
/// [`MojoSystem`], before they take anything): `INVALID_ARGUMENT` if one is
/// the pipe itself, is not a live handle of this system (`known`) or is
/// given twice; `BUSY` if one is in a two-phase operation (`busy`).
pub fn check_attachments(
    pipe: MojoHandle,
    handles: &[Handle],
    known: impl Fn(MojoHandle) -> bool,
    busy: impl Fn(MojoHandle) -> bool,
) -> MojoResult<()> {
    for (i, h) in handles.iter().enumerate() {
        let raw = h.raw();
        // Messages carry a few handles: the quadratic repeat check is cheaper
        // than a set.
        if raw == pipe || !known(raw) || handles[..i].iter().any(|o| o.raw() == raw) {
            return Err(MojoError::InvalidArgument);
        }
    }
    if handles.iter().any(|h| busy(h.raw())) {
        return Err(MojoError::Busy);
    }
    Ok(())
}

/// A mapping of a shared buffer (`MojoMapBuffer`); dropping it unmaps
/// (`MojoUnmapBuffer`). It stays valid after the buffer handle is closed or
/// sent away, as in Mojo.
pub trait BufferMapping: Send {
    /// Length in bytes.
    fn len(&self) -> usize;

    /// True for an empty mapping (Mojo never makes one).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the mapping was made writable (`PROT_READ | PROT_WRITE`).
    fn is_writable(&self) -> bool;

    /// Copies `dst.len()` bytes at `offset` out of the mapping.
    /// `OUT_OF_RANGE` past the end.
    fn read(&self, offset: usize, dst: &mut [u8]) -> MojoResult<()>;

    /// Copies `src` into the mapping at `offset`. `PERMISSION_DENIED` on a
    /// read-only mapping, `OUT_OF_RANGE` past the end.
    fn write(&mut self, offset: usize, src: &[u8]) -> MojoResult<()>;

    /// The host's read-only probe: `mprotect(PROT_READ | PROT_WRITE)` on the
    /// page-aligned mapping. `Ok` if the OS allowed it (the protection is
    /// then set back to `PROT_READ`), else the errno the OS gave (EACCES for
    /// a shared mapping of a read-only fd).
    fn try_make_writable(&mut self) -> Result<(), nix::errno::Errno>;
}

/// The Mojo system API. Implemented by [`runtime::RealSystem`] over either
/// protocol ([`legacy`], [`ipcz`]) and by the test peers' in-process fake.
/// Methods never block except [`wait_any`](Self::wait_any).
pub trait MojoSystem: Send + Sync {
    /// The mapping type of [`map_buffer`](Self::map_buffer).
    type Mapping: BufferMapping;

    /// `MojoCreateMessagePipe`: a new pipe's two ends.
    fn create_message_pipe(&self) -> MojoResult<(MessagePipe, MessagePipe)>;

    /// `MojoWriteMessage` of a message with `bytes` and `handles` (which
    /// move into the message). `FAILED_PRECONDITION` if the peer is closed;
    /// `INVALID_ARGUMENT` or `BUSY` as [`check_attachments`] says, and then
    /// the handles come back in the error ([`WriteMessageError`]).
    fn try_write_message(
        &self,
        pipe: &MessagePipe,
        bytes: &[u8],
        handles: Vec<Handle>,
    ) -> Result<(), WriteMessageError>;

    /// [`try_write_message`](Self::try_write_message) for a caller that
    /// would only close the handles of a failed write (dropping them does).
    fn write_message(
        &self,
        pipe: &MessagePipe,
        bytes: &[u8],
        handles: Vec<Handle>,
    ) -> MojoResult<()> {
        self.try_write_message(pipe, bytes, handles)
            .map_err(|e| e.error)
    }

    /// `MojoReadMessage` + `MojoGetMessageData`: the next message.
    /// `SHOULD_WAIT` if none is queued, `FAILED_PRECONDITION` if none is
    /// queued and the peer is closed.
    fn read_message(&self, pipe: &MessagePipe) -> MojoResult<Message>;

    /// `MojoQueryHandleSignalsState`. `INVALID_ARGUMENT` for an unknown handle.
    fn query_signals(&self, handle: MojoHandle) -> MojoResult<SignalsState>;

    /// Blocks until one of `handles` satisfies one of its signals (Mojo's
    /// `WaitMany` helper over a trap; `MojoWaitMany` in older Mojo). Returns
    /// the index of the first satisfied handle; `FAILED_PRECONDITION` with
    /// the index of a handle whose signals can never be satisfied;
    /// `DEADLINE_EXCEEDED` when `deadline` passes (`None`: wait forever).
    fn wait_any(
        &self,
        handles: &[(MojoHandle, Signals)],
        deadline: Option<Instant>,
    ) -> Result<usize, WaitError>;

    /// `MojoCreateSharedBuffer(size)`: a writable buffer.
    fn create_shared_buffer(&self, size: u64) -> MojoResult<SharedBuffer>;

    /// `MojoDuplicateBufferHandle`. `read_only`: with
    /// `MOJO_DUPLICATE_BUFFER_HANDLE_FLAG_READ_ONLY` (a writable buffer becomes
    /// read-only itself; an unsafe one gives `FAILED_PRECONDITION`). Without
    /// it, a read-only buffer gives `FAILED_PRECONDITION` and a writable one
    /// becomes unsafe.
    fn duplicate_buffer(&self, buffer: &SharedBuffer, read_only: bool) -> MojoResult<SharedBuffer>;

    /// `MojoGetBufferInfo`: the buffer's size.
    fn buffer_size(&self, buffer: &SharedBuffer) -> MojoResult<u64>;

    /// `MojoMapBuffer(offset, len)`: read-only for a read-only buffer.
    fn map_buffer(&self, buffer: &SharedBuffer, offset: u64, len: u64)
    -> MojoResult<Self::Mapping>;

    /// `MojoUnwrapPlatformSharedMemoryRegion`: the region's fds and mode.
    fn unwrap_shared_buffer(&self, buffer: SharedBuffer) -> MojoResult<UnwrappedRegion>;

    /// `MojoWrapPlatformSharedMemoryRegion`: a buffer of the region's fds
    /// (what [`unwrap_shared_buffer`](Self::unwrap_shared_buffer) gave, or
    /// fds from elsewhere), after [`region::check_region`]'s checks; a
    /// refused region's fds are closed ([`WrapRegionError`]).
    fn wrap_shared_buffer(&self, region: UnwrappedRegion) -> Result<SharedBuffer, WrapRegionError>;

    /// `MojoWrapPlatformHandle` of an fd.
    fn wrap_platform_handle(&self, fd: OwnedFd) -> MojoResult<PlatformHandle>;

    /// `MojoUnwrapPlatformHandle`: the fd back.
    fn unwrap_platform_handle(&self, handle: PlatformHandle) -> MojoResult<OwnedFd>;

    /// `MojoCreateDataPipe` with this element size and capacity in bytes
    /// (0: the system's default capacity).
    fn create_data_pipe(
        &self,
        element_size: u32,
        capacity: u32,
    ) -> MojoResult<(DataPipeProducer, DataPipeConsumer)>;

    /// `MojoWriteData` (no flags): writes as many whole elements as fit and
    /// returns the byte count. `SHOULD_WAIT` if full, `FAILED_PRECONDITION`
    /// if the consumer is closed.
    fn write_data(&self, producer: &DataPipeProducer, data: &[u8]) -> MojoResult<usize>;

    /// `MojoReadData` (no flags): reads up to `buf.len()` bytes. `SHOULD_WAIT`
    /// if empty, `FAILED_PRECONDITION` if empty and the producer is closed.
    fn read_data(&self, consumer: &DataPipeConsumer, buf: &mut [u8]) -> MojoResult<usize>;

    /// `MojoBeginWriteData`: reserves the producer's room and returns a
    /// buffer of that size to fill (a copy, never the ring itself; see
    /// [`two_phase`] for the rules and error order). `BUSY` during another
    /// two-phase write, `FAILED_PRECONDITION` once the consumer is closed,
    /// `SHOULD_WAIT` while the ring is full.
    fn begin_write_data(&self, producer: &DataPipeProducer) -> MojoResult<Vec<u8>>;

    /// `MojoEndWriteData`: commits `written` (the filled front of the
    /// buffer [`begin_write_data`](Self::begin_write_data) gave) and ends the
    /// two-phase write. `FAILED_PRECONDITION` without a begin;
    /// `INVALID_ARGUMENT` (nothing written, the write ended all the same) for
    /// more bytes than begun or a partial element. `Ok` also when the
    /// consumer closed meanwhile (the bytes are then dropped), as in Mojo.
    fn end_write_data(&self, producer: &DataPipeProducer, written: &[u8]) -> MojoResult<()>;

    /// `MojoBeginReadData`: a copy of the readable bytes, which stay in the
    /// ring until [`end_read_data`](Self::end_read_data). `BUSY` during
    /// another two-phase read, `SHOULD_WAIT` if empty, `FAILED_PRECONDITION`
    /// if empty and the producer is closed.
    fn begin_read_data(&self, consumer: &DataPipeConsumer) -> MojoResult<Vec<u8>>;

    /// `MojoEndReadData`: consumes the first `num_bytes` of what
    /// [`begin_read_data`](Self::begin_read_data) showed and ends the two-phase
    /// read. `FAILED_PRECONDITION` without a begin; `INVALID_ARGUMENT`
    /// (nothing consumed, the read ended all the same) for more than begun or
    /// a partial element.
    fn end_read_data(&self, consumer: &DataPipeConsumer, num_bytes: usize) -> MojoResult<()>;

    /// `MojoReadData` with `MOJO_READ_DATA_FLAG_DISCARD`: drops up to
    /// `num_bytes` (whole elements) and returns how many. `INVALID_ARGUMENT`
    /// for a partial element, `BUSY` during a two-phase read, `SHOULD_WAIT`
    /// if nothing can be dropped (also for 0 bytes, as in Mojo),
    /// `FAILED_PRECONDITION` if so and the producer is closed.
    fn discard_data(&self, consumer: &DataPipeConsumer, num_bytes: usize) -> MojoResult<usize>;

    /// `MojoReadData` with `MOJO_READ_DATA_FLAG_QUERY`: the bytes readable
    /// now (also after the producer closed). `BUSY` during a two-phase read.
    fn query_data(&self, consumer: &DataPipeConsumer) -> MojoResult<usize>;

    /// `MojoCreateTrap`: a disarmed trap without triggers, its events
    /// queued in the [`Trap`] (see [`trap`]). `RESOURCE_EXHAUSTED` if no
    /// handle or eventfd can be made.
    fn create_trap(&self) -> MojoResult<Trap>;

    /// `MojoAddTrigger`: `trap` watches `handle` (a message pipe or data
    /// pipe end) for `signals` under `condition`; its events carry
    /// `context`. `INVALID_ARGUMENT` for another handle or a trap of another
    /// system, `ALREADY_EXISTS` if the trap has a trigger with this context
    /// or on this handle. On an armed trap, a condition that holds already
    /// fires at once.
    fn add_trigger(
        &self,
        trap: &Trap,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
        context: u64,
    ) -> MojoResult<()>;

    /// `MojoRemoveTrigger`: the trigger ends with a `CANCELLED` event.
    /// `NOT_FOUND` for an unknown context.
    fn remove_trigger(&self, trap: &Trap, context: u64) -> MojoResult<()>;

    /// `MojoArmTrap`: the trap fires (once) at the next condition that
    /// holds. `FAILED_PRECONDITION` with up to `max_blocking_events` events
    /// of triggers whose conditions hold now, `NOT_FOUND` without triggers.
    fn arm_trap(&self, trap: &Trap, max_blocking_events: usize) -> Result<(), ArmTrapError>;
}

/// A shared system is a system (the peers' threads share one).
impl<S: MojoSystem + ?Sized> MojoSystem for Arc<S> {
    type Mapping = S::Mapping;
    fn create_message_pipe(&self) -> MojoResult<(MessagePipe, MessagePipe)> {
        (**self).create_message_pipe()
    }
    fn try_write_message(
        &self,
        pipe: &MessagePipe,
        bytes: &[u8],
        handles: Vec<Handle>,
    ) -> Result<(), WriteMessageError> {
        (**self).try_write_message(pipe, bytes, handles)
    }
    fn read_message(&self, pipe: &MessagePipe) -> MojoResult<Message> {
        (**self).read_message(pipe)
    }
    fn query_signals(&self, handle: MojoHandle) -> MojoResult<SignalsState> {
        (**self).query_signals(handle)
    }
    fn wait_any(
        &self,
        handles: &[(MojoHandle, Signals)],
        deadline: Option<Instant>,
    ) -> Result<usize, WaitError> {
        (**self).wait_any(handles, deadline)
    }
    fn create_shared_buffer(&self, size: u64) -> MojoResult<SharedBuffer> {
        (**self).create_shared_buffer(size)
    }
    fn duplicate_buffer(&self, buffer: &SharedBuffer, read_only: bool) -> MojoResult<SharedBuffer> {
        (**self).duplicate_buffer(buffer, read_only)
    }
    fn buffer_size(&self, buffer: &SharedBuffer) -> MojoResult<u64> {
        (**self).buffer_size(buffer)
    }
    fn map_buffer(
        &self,
        buffer: &SharedBuffer,
        offset: u64,
        len: u64,
    ) -> MojoResult<Self::Mapping> {
        (**self).map_buffer(buffer, offset, len)
    }
    fn unwrap_shared_buffer(&self, buffer: SharedBuffer) -> MojoResult<UnwrappedRegion> {
        (**self).unwrap_shared_buffer(buffer)
    }
    fn wrap_shared_buffer(&self, region: UnwrappedRegion) -> Result<SharedBuffer, WrapRegionError> {
        (**self).wrap_shared_buffer(region)
    }
    fn wrap_platform_handle(&self, fd: OwnedFd) -> MojoResult<PlatformHandle> {
        (**self).wrap_platform_handle(fd)
    }
    fn unwrap_platform_handle(&self, handle: PlatformHandle) -> MojoResult<OwnedFd> {
        (**self).unwrap_platform_handle(handle)
    }
    fn create_data_pipe(
        &self,
        element_size: u32,
        capacity: u32,
    ) -> MojoResult<(DataPipeProducer, DataPipeConsumer)> {
        (**self).create_data_pipe(element_size, capacity)
    }
    fn write_data(&self, producer: &DataPipeProducer, data: &[u8]) -> MojoResult<usize> {
        (**self).write_data(producer, data)
    }
    fn read_data(&self, consumer: &DataPipeConsumer, buf: &mut [u8]) -> MojoResult<usize> {
        (**self).read_data(consumer, buf)
    }
    fn begin_write_data(&self, producer: &DataPipeProducer) -> MojoResult<Vec<u8>> {
        (**self).begin_write_data(producer)
    }
    fn end_write_data(&self, producer: &DataPipeProducer, written: &[u8]) -> MojoResult<()> {
        (**self).end_write_data(producer, written)
    }
    fn begin_read_data(&self, consumer: &DataPipeConsumer) -> MojoResult<Vec<u8>> {
        (**self).begin_read_data(consumer)
    }
    fn end_read_data(&self, consumer: &DataPipeConsumer, num_bytes: usize) -> MojoResult<()> {
        (**self).end_read_data(consumer, num_bytes)
    }
    fn discard_data(&self, consumer: &DataPipeConsumer, num_bytes: usize) -> MojoResult<usize> {
        (**self).discard_data(consumer, num_bytes)
    }
    fn query_data(&self, consumer: &DataPipeConsumer) -> MojoResult<usize> {
        (**self).query_data(consumer)
    }
    fn create_trap(&self) -> MojoResult<Trap> {
        (**self).create_trap()
    }
    fn add_trigger(
        &self,
        trap: &Trap,
        handle: MojoHandle,
        signals: Signals,
        condition: TriggerCondition,
        context: u64,
    ) -> MojoResult<()> {
        (**self).add_trigger(trap, handle, signals, condition, context)
    }
    fn remove_trigger(&self, trap: &Trap, context: u64) -> MojoResult<()> {
        (**self).remove_trigger(trap, context)
    }
    fn arm_trap(&self, trap: &Trap, max_blocking_events: usize) -> Result<(), ArmTrapError> {
        (**self).arm_trap(trap, max_blocking_events)
    }
}

/// `mojo::Wait` (with a deadline): waits for one handle.
pub fn wait<S: MojoSystem + ?Sized>(
    system: &S,
    handle: MojoHandle,
    signals: Signals,
    deadline: Option<Instant>,
) -> MojoResult<()> {
    system
        .wait_any(&[(handle, signals)], deadline)
        .map(|_| ())
        .map_err(|e| e.error)
}

/// `rm::ReadOne`: the next message, waiting for one until `deadline`.
/// `FAILED_PRECONDITION` once the peer is closed and the queue is empty.
pub fn read_one<S: MojoSystem + ?Sized>(
    system: &S,
    pipe: &MessagePipe,
    deadline: Option<Instant>,
) -> MojoResult<Message> {
    loop {
        match system.read_message(pipe) {
            Err(MojoError::ShouldWait) => {}
            other => return other,
        }
        wait(system, pipe.raw(), Signals::READABLE, deadline)?;
    }
}

/// True if `handle`'s peer is closed (also for an invalid handle, as the
/// reference host's `PeerClosed` says).
pub fn peer_closed<S: MojoSystem + ?Sized>(system: &S, handle: MojoHandle) -> bool {
    system
        .query_signals(handle)
        .map_or(true, |s| s.satisfied.intersects(Signals::PEER_CLOSED))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_pipe_capacity_checks_like_mojo() {
        assert_eq!(data_pipe_capacity(1, 0), Ok(DEFAULT_DATA_PIPE_CAPACITY));
        assert_eq!(data_pipe_capacity(4, 64), Ok(64));
        assert_eq!(data_pipe_capacity(0, 64), Err(MojoError::InvalidArgument));
        assert_eq!(data_pipe_capacity(3, 64), Err(MojoError::InvalidArgument));
    }

    #[test]
    fn handle_zero_is_invalid() {
        assert_eq!(MojoHandle::new(0), None);
        assert_eq!(MojoHandle::new(7).map(MojoHandle::value), Some(7));
    }

    #[test]
    fn codes_round_trip() {
        for code in 1..=17 {
            assert_eq!(MojoError::from_code(code).map(MojoError::code), Some(code));
        }
        assert_eq!(MojoError::from_code(0), None);
        assert_eq!(MojoError::from_code(18), None);
        assert_eq!(MojoError::FailedPrecondition.code(), 9);
        assert_eq!(MojoError::DeadlineExceeded.code(), 4);
        assert_eq!(result_code::<()>(&Ok(())), 0);
    }
}
