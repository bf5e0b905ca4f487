//! The toolkit both wire crates (`mojo-legacy-wire`, `ipcz-wire`) and the
//! platform crate share, so that one concept has one definition:
//!
//! - the codec toolkit: [`Reader`], a cursor over untrusted bytes whose every
//!   read names its field; [`Writer`], whose writes at fixed offsets are in
//!   range or an error, with [`checked_len`] for length fields (no silent
//!   drops, no saturation); [`CodecError`], which each crate's error wraps;
//!   [`protocol_enum!`] for open enums over a wire integer; [`wire_layout!`]
//!   to declare a fixed little-endian layout once (zerocopy struct, size
//!   check, and the [`WireLayout::FIELDS`] name/span table used by errors
//!   and `--verify`); [`first_difference`] and [`require_canonical`], the
//!   check behind every `decode_exact`, and [`contract!`], the decoding
//!   contract every fuzz oracle checks, and [`deframe_pieces`], the one
//!   deframing loop of their tests and tools;
//! - [`Guid`]: `base::UnguessableToken`, with both protocols' byte orders;
//! - [`RegionMode`]: the access mode of a shared-memory region, with the wire
//!   values both protocols and Chromium's `PlatformSharedMemoryRegion` use;
//! - [`SharedMemory`]: word-level access to memory another process may write
//!   at any time. The platform crate implements it over a real mapping; tests
//!   and fuzzers use [`HeapMemory`]. Protocol cores take `&impl SharedMemory`
//!   and so stay sans-IO;
//! - [`RandomSource`]: names, tokens and GUIDs come from an injected source
//!   ([`SeededRandom`] in tests), never from a call hidden inside a library;
//!   [`BufferedRandom`] batches a costly source's calls (one per 4 KiB);
//! - [`BufferPool`]: bounded spare byte vectors, and [`ReorderBuffer`], the
//!   sequence-ordered storage under both protocols' message queues, so the
//!   nodes' steady message path reuses memory instead of allocating.
//!
//! The crate depends only on zerocopy and makes no system calls.
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
//!
//! A codec in a few lines:
//!
//! ```
//! use mojo_wire_kit::le::U32;
//! use mojo_wire_kit::{Reader, WireLayout, Writer, require_canonical, wire_layout};
//!
//! wire_layout! {
//!     /// Length-prefixed record header.
//!     pub struct Header: size 8, names "record" {
//!         /// Bytes after the header.
//!         pub len: U32,
//!         /// Ignored by receivers, zero from senders.
//!         pub reserved: [u8; 4],
//!     }
//! }
//!
//! let input = [2, 0, 0, 0, 0, 0, 9, 0, b'h', b'i'];
//! let mut r = Reader::new(&input);
//! let header: Header = r.layout().unwrap();
//! let body = r.take(header.len.get() as usize, "record.body").unwrap();
//!
//! let mut out = Vec::new();
//! let mut w = Writer::new(&mut out);
//! w.layout(&Header { len: U32::new(2), reserved: [0; 4] });
//! w.bytes(body);
//! let e = require_canonical(&input, &out, |o| Header::field_at(o).unwrap_or("record.body"));
//! assert_eq!(e.unwrap_err().field, "record.reserved");
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

// Lets `wire_layout!` name this crate by its external path inside it too.
extern crate self as mojo_wire_kit;

mod buffer_pool;
mod canonical;
mod contract;
mod deframe;
mod error;
mod guid;
mod hash;
mod layout;
mod protocol_enum;
mod random;
mod reader;
mod region_mode;
mod reorder;
mod shared_memory;
mod writer;

pub use buffer_pool::BufferPool;
pub use canonical::{NotCanonical, first_difference, require_canonical};
pub use contract::ExactDecodeError;
pub use deframe::{FrameCopy, FrameSource, StreamFrames, deframe_pieces};
pub use error::CodecError;
pub use guid::Guid;
pub use hash::{KeyHasher, KeyedHasher};
pub use layout::{LayoutField, WireLayout, field_name_at, fields_tile, le};
pub use random::{BUFFERED_RANDOM_CAPACITY, BufferedRandom, RandomSource, SeededRandom};
pub use reader::Reader;
pub use region_mode::RegionMode;
pub use reorder::ReorderBuffer;
pub use shared_memory::{HeapMemory, SharedMemory, ShmAccessError, check_access};
pub use writer::{Writer, append_or_rollback, checked_len};

/// Re-exports for the macros (not part of the API).
#[doc(hidden)]
pub mod __private {
    pub use zerocopy;
}
