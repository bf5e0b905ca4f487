//! The toolkit both wire crates (`mojo-legacy-wire`, `ipcz-wire`) and the
//! platform crate share, so that one concept has one definition:
//!
//! - [`RegionMode`]: the access mode of a shared-memory region, with the wire
//!   values both protocols and Chromium's `PlatformSharedMemoryRegion` use;
//! - [`SharedMemory`]: word-level access to memory another process may write
//!   at any time. The platform crate implements it over a real mapping; tests
//!   and fuzzers use [`HeapMemory`]. Protocol cores take `&impl SharedMemory`
//!   and so stay sans-IO;
//! - [`RandomSource`]: names, tokens and GUIDs come from an injected source
//!   ([`SeededRandom`] in tests), never from a call hidden inside a library.
//!
//! The crate has no dependencies and makes no system calls.
//!
//! ```
//! use mojo_wire_kit::{HeapMemory, RegionMode, SharedMemory};
//! use std::sync::atomic::Ordering;
//!
//! assert_eq!(RegionMode::from_wire(1), Some(RegionMode::Writable));
//! let mem = HeapMemory::new(64);
//! mem.store_u32(8, 7, Ordering::Release).unwrap();
//! assert_eq!(mem.fetch_add_u32(8, 1, Ordering::AcqRel), Ok(7));
//! assert!(mem.load_u64(60, Ordering::Acquire).is_err()); // out of bounds
//! ```

#![forbid(unsafe_code)]

mod random;
mod region_mode;
mod shared_memory;

pub use random::{RandomSource, SeededRandom};
pub use region_mode::RegionMode;
pub use shared_memory::{HeapMemory, SharedMemory, ShmAccessError, check_access};
