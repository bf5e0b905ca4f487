//! Unix stream socket channel with fd passing, and Chromium-style shared
//! memory. This is the only library crate of the workspace that makes system
//! calls; the wire crates above it are sans-IO.
//!
//! * [`Endpoint`]: a non-blocking `AF_UNIX` `SOCK_STREAM` socket that sends
//!   queued messages with their fds (`SCM_RIGHTS`, at most
//!   [`MAX_FDS_PER_SENDMSG`] per `sendmsg`, split the way a Chromium receiver
//!   expects) and receives into a reused buffer plus an fd FIFO for a framing
//!   layer. It implements [`mio::event::Source`].
//! * [`from_inherited_fd`] / [`validate_inherited_fd`] (`unsafe`: the caller
//!   promises nobody else owns the number): adopt a socket fd given by number
//!   on the command line, after checking what it is.
//! * [`spawn_with_endpoint`] / [`recover_passed_endpoint`]: hand a channel
//!   end to a launched process and find it there, with Chromium's
//!   `--mojo-platform-channel-handle=N` switch.
//! * [`SharedMemoryRegion`] (read-only / writable / unsafe, as
//!   `base::subtle::PlatformSharedMemoryRegion` on Linux; created as sealed
//!   memfds, with guids from an injected [`RandomSource`] such as
//!   [`OsRandom`]) and [`Mapping`], reached only through [`SharedMemory`]:
//!   bounds- and alignment-checked atomics and word-wise atomic copies, never
//!   a reference into the mapping.
//!
//! * `CountingAlloc` (feature `alloc-count`, benchmark builds only): the
//!   system allocator with an allocation counter.
//!
//! Errors of system calls are [`SysError`] (call name and errno).
//!
//! ```
//! use mojo_platform_channel::{OsRandom, RegionMode, SharedMemory, SharedMemoryRegion, socketpair};
//! use std::sync::atomic::Ordering;
//!
//! // A shared-memory region, sent over a socket pair with its two fds.
//! let mut rng = OsRandom::new()?;
//! let region = SharedMemoryRegion::create(RegionMode::Writable, 4096, &mut rng)?;
//! let mapping = region.map()?;
//! mapping.store_u32(0, 42, Ordering::Release)?;
//! let (size, guid) = (region.size(), region.guid());
//!
//! let (mut a, mut b) = socketpair()?;
//! a.send(b"region".to_vec(), region.into_fds())?;
//! while b.queued_fds() < 2 {
//!     b.read_available()?;
//! }
//! assert_eq!(b.buffered(), b"region");
//! let fds = b.take_fds(2).expect("two fds arrived");
//! let received = SharedMemoryRegion::from_fds(RegionMode::Writable, size, guid, fds)?;
//! assert!(received.is_sealed());
//! assert_eq!(received.map()?.load_u32(0, Ordering::Acquire)?, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Unsafe code
//!
//! The crate is `#![deny(unsafe_code)]

include!("target_guard.rs");

#[cfg(feature = "alloc-count")]
#[allow(unsafe_code)]
mod alloc_count;
mod endpoint;
mod error;
#[allow(unsafe_code)]
mod fd_passing;
#[allow(unsafe_code)]
mod launch;
mod queue;
#[allow(unsafe_code)]
mod shm;

#[cfg(feature = "alloc-count")]
pub use alloc_count::CountingAlloc;
pub use endpoint::{
    ChannelError, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_QUEUED_FDS,
    DEFAULT_MAX_QUEUED_OUTPUT_BYTES, Endpoint, Limits, MAX_READ_BATCH_BYTES, READ_CHUNK_SIZE,
    ReadOutcome, WriteOutcome, socketpair, socketpair_fds,
};
pub use error::SysError;
pub use fd_passing::{FileKind, InheritError, from_inherited_fd, validate_inherited_fd};
pub use launch::{
    HANDLE_SWITCH, PassedEndpointError, passed_endpoint_number, recover_passed_endpoint,
    spawn_with_endpoint,
};
pub use queue::{
    COALESCE_CHUNK_BYTES, MAX_COALESCED_MESSAGE_BYTES, MAX_FDS_PER_SENDMSG, MAX_SENT_BUFFERS_KEPT,
    QueueError, SCM_MAX_FD, sendmsg_calls_for_fds,
};
pub use shm::{
    FdAccessMode, MAP_UNSEALED_PEER_RINGS, MAX_REGION_SIZE, MEMFD_NAME, Mapping, OsRandom, SHM_DIR,
    SHM_NAME_PREFIX, SharedMemoryRegion, ShmBackend, ShmError, fd_access_mode, import_peer_ring,
    map_peer_ring, verify_fd_read_only,
};

/// Re-exported from `mojo-wire-kit`, whose definitions they are, so that
/// users of regions and mappings need not depend on it themselves.
pub use mojo_wire_kit::{BufferedRandom, RandomSource, RegionMode, SharedMemory, ShmAccessError};

#[doc(hidden)]
pub mod test_support;
