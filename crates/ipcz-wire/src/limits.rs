//! Every size, count and limit of the protocol as a named constant (spec §11.1).

/// Size of the channel frame header Chrome sends since mid-2024 (`IpczHeader`).
pub const FRAME_HEADER_SIZE: usize = 16;
/// Smallest frame header size a receiver accepts (pre-M129 senders use 8).
pub const MIN_FRAME_HEADER_SIZE: usize = 8;
/// Largest number of fds Chrome puts into (and reads from) one `sendmsg()`.
pub const MAX_FDS_PER_SENDMSG: usize = 128;
/// Largest `num_handles` a frame header can carry.
pub const MAX_FDS_PER_FRAME: usize = u16::MAX as usize;
/// Default largest frame a [`crate::frame::Deframer`] accepts. Chrome has no
/// limit below `u32`; Mojo's own default message limit is 256 MiB.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 256 * 1024 * 1024;
/// Default slack a deframer buffers beyond one maximal frame (one read's worth
/// of following frames).
pub const DEFAULT_MAX_BUFFERED_EXTRA: usize = 1024 * 1024;

/// Size of the ipcz `MessageHeader` (version 0).
pub const MESSAGE_HEADER_SIZE: usize = 24;
/// Size of a params `StructHeader`.
pub const STRUCT_HEADER_SIZE: usize = 8;
/// Size of an `ArrayHeader`.
pub const ARRAY_HEADER_SIZE: usize = 8;
/// Size of one `DriverObjectData` record.
pub const DRIVER_OBJECT_DATA_SIZE: usize = 8;
/// Size of a driver object array field (`DriverObjectArrayData`).
pub const DRIVER_OBJECT_ARRAY_DATA_SIZE: usize = 8;
/// Offset of the V0 params block inside a message (header + StructHeader).
pub const V0_OFFSET: usize = MESSAGE_HEADER_SIZE + STRUCT_HEADER_SIZE;
/// Driver object field value meaning "no object".
pub const INVALID_DRIVER_OBJECT_INDEX: u32 = 0xFFFF_FFFF;
/// ipcz `kProtocolVersion`, sent in every `protocol_version` field.
pub const PROTOCOL_VERSION: u32 = 0;

/// Size of the driver `ObjectHeader` (POSIX).
pub const OBJECT_HEADER_SIZE: usize = 8;
/// Size of `TransportHeader`.
pub const TRANSPORT_HEADER_SIZE: usize = 8;
/// Size of the SharedBuffer `BufferHeader`.
pub const BUFFER_HEADER_SIZE: usize = 32;
/// Size of `WrappedPlatformHandleHeader`.
pub const WRAPPED_PLATFORM_HANDLE_HEADER_SIZE: usize = 8;
/// Size of `DataPipeHeader`.
pub const DATA_PIPE_HEADER_SIZE: usize = 24;
/// Largest `buffer_size` a SharedBuffer may claim (`INT_MAX`).
pub const MAX_SHARED_BUFFER_SIZE: u32 = i32::MAX as u32;

/// Size of a RouterDescriptor since M117.
pub const ROUTER_DESCRIPTOR_SIZE: usize = 96;
/// Size of a RouterDescriptor before M117.
pub const LEGACY_ROUTER_DESCRIPTOR_SIZE: usize = 112;

/// Largest `num_subparcels` a receiver accepts.
pub const MAX_SUBPARCELS_PER_PARCEL: u32 = 1024;
/// Largest gap between a queue's base and a sequence number it accepts.
pub const MAX_SEQUENCE_GAP: u64 = 1_000_000;
/// Initial portals per link (`kMaxInitialPortals`); also the first sublink id
/// allocated from the shared counter.
pub const MAX_INITIAL_PORTALS: usize = 12;
/// Most attachments a Mojo invitation carries (portal 0 is reserved).
pub const MAX_MOJO_ATTACHMENTS: usize = 7;

/// Size of the primary buffer (BufferId 0) of every NodeLinkMemory.
pub const PRIMARY_BUFFER_SIZE: usize = 128 * 1024;
/// Reserved header at the start of the primary buffer.
pub const PRIMARY_BUFFER_RESERVED_HEADER_SIZE: usize = 256;
/// Size of a RouterLinkState.
pub const ROUTER_LINK_STATE_SIZE: usize = 64;
/// Size of the header at the start of a parcel data fragment.
pub const FRAGMENT_HEADER_SIZE: usize = 8;
/// Smallest block (fragment) size of any BlockAllocator.
pub const MIN_BLOCK_SIZE: u32 = 64;
/// Page size for buffers added with AddBlockBuffer.
pub const BLOCK_ALLOCATOR_PAGE_SIZE: usize = 64 * 1024;
/// Fewest blocks a buffer added with AddBlockBuffer holds.
pub const MIN_BLOCKS_PER_ADDED_BUFFER: usize = 8;
/// Most blocks one BlockAllocator can manage (block indices are `i16`).
pub const MAX_BLOCKS_PER_ALLOCATOR: usize = i16::MAX as usize;
/// Largest fragment ever allocated from a BlockAllocator.
pub const MAX_FRAGMENT_SIZE_FOR_BLOCK_ALLOCATION: usize = 1024 * 1024;
/// Most automatic block capacity Chrome adds per block size.
pub const MAX_BLOCK_CAPACITY_PER_FRAGMENT_SIZE: usize = 2 * 1024 * 1024;
/// First BufferId the shared counter hands out.
pub const FIRST_ALLOCATABLE_BUFFER_ID: u64 = 1;
/// First SublinkId the shared counter hands out.
pub const FIRST_ALLOCATABLE_SUBLINK_ID: u64 = MAX_INITIAL_PORTALS as u64;
