//! Unix stream socket channel with fd passing, and Chromium-style shared
//! memory. This is the only library crate of the workspace that makes system
//! calls; the wire crates above it are sans-IO.
//!
//! * [`Endpoint`]: a non-blocking `AF_UNIX` `SOCK_STREAM` socket that sends
//!   queued messages with their fds (`SCM_RIGHTS`, at most
//!   [`MAX_FDS_PER_SENDMSG`] per `sendmsg`, split the way a Chromium receiver
//!   expects) and receives into a reused buffer plus an fd FIFO for a framing
//!   layer. It implements [`mio::event::Source`].
//! * [`queue`]: the sans-IO bookkeeping behind it ([`OutgoingQueue`],
//!   [`IncomingBuffer`]), generic over the fd type so it can be tested
//!   without sockets.
//! * [`from_inherited_fd`] / [`validate_inherited_fd`]: adopt a socket fd
//!   given by number on the command line, after checking what it is.
//! * [`shm`]: [`SharedMemoryRegion`] (read-only / writable / unsafe, as
//!   `base::subtle::PlatformSharedMemoryRegion` on Linux), [`Mapping`] with
//!   bounds-checked copies and atomic views for ipcz's shared state.
//!
//! # Unsafe code
//!
//! The crate is `#![deny(unsafe_code)]`; only two modules may use it, each
//! block with a `// SAFETY:` comment: `fd_passing` (adopting fds the kernel
//! just gave us, and an inherited fd after validation) and [`shm`] (mmap,
//! byte copies in and out of mappings, and atomic views into them).
//!
//! # Why nix rather than rustix
//!
//! We use `nix` for system calls. Its functions are thin, one-to-one wrappers
//! over the libc calls Chromium itself makes (`sendmsg`/`recvmsg` with the
//! same `MSG_*` flags, `fcntl(F_GETFL)` access-mode checks, `ftruncate`,
//! `memfd_create`), which keeps this crate easy to compare line by line with
//! `socket_utils_posix.cc` and `platform_shared_memory_region_posix.cc`; it
//! goes through the same libc that `mio` and `std` already link, so there is
//! one syscall layer in the binary rather than a second, independent one (as
//! rustix's raw `linux_raw` backend would add); and it was already the
//! workspace's chosen dependency. rustix has the nicer ancillary-data API
//! (allocation-free send buffers, and it still yields the fds of a truncated
//! control message); nix's costs are that its `sendmsg` allocates a small
//! control buffer per fd-carrying call and that its `recvmsg` refuses to
//! iterate a truncated (`MSG_CTRUNC`) control buffer. We accept the first and
//! work around the second by parsing the zeroed control buffer ourselves in
//! `fd_passing` (about forty lines of safe byte parsing, unit-tested against
//! nix's `cmsg_space!`), so that fds which did arrive with a truncated message
//! are always closed rather than leaked.

#![deny(unsafe_code)]

mod endpoint;
#[allow(unsafe_code)]
mod fd_passing;
pub mod queue;
#[allow(unsafe_code)]
pub mod shm;

pub use endpoint::{
    ChannelError, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_QUEUED_FDS,
    DEFAULT_MAX_QUEUED_OUTPUT_BYTES, Endpoint, IoOp, Limits, MAX_READ_BATCH_BYTES, READ_CHUNK_SIZE,
    ReadOutcome, WriteOutcome, from_inherited_fd, socketpair, socketpair_fds,
};
pub use fd_passing::{FileKind, InheritError, set_cloexec, set_nonblocking, validate_inherited_fd};
pub use queue::{
    IncomingBuffer, MAX_FDS_PER_SENDMSG, OutgoingQueue, QueueError, SCM_MAX_FD, SendChunk,
    sendmsg_calls_for_fds,
};
pub use shm::{
    AccessMode, Mapping, SharedAtomic, SharedMemoryRegion, ShmBackend, ShmError, ShmMode, ViewError,
};

/// Re-exported so users can name `Errno` and `Shutdown` without depending on
/// nix themselves.
pub use nix::errno::Errno;
pub use nix::sys::socket::Shutdown;
