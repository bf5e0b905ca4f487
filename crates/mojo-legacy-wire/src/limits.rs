//! Size and count limits, as named constants. Parsers check the incoming ones;
//! the others are for senders (the bridge) to respect.

/// Size of the 8-byte `LegacyHeader`.
pub const LEGACY_HEADER_LEN: usize = 8;
/// Size of the 16-byte `Header` (without extra header bytes).
pub const HEADER_LEN: usize = 16;
/// `kChannelMessageAlignment`: header sizes and extra-header areas are
/// multiples of this; `num_bytes` itself is never rounded.
pub const CHANNEL_MESSAGE_ALIGNMENT: usize = 8;

/// The 256 MiB message size limit of older clients (`max_message_num_bytes`,
/// fatal above it up to r780651). Never send a larger message.
pub const MAX_OUTGOING_MESSAGE_NUM_BYTES: u32 = 256 * 1024 * 1024;
/// Largest incoming channel message accepted by the parsers and the deframer
/// (256 MiB + 4 KiB, spec 1.3).
pub const MAX_INCOMING_MESSAGE_NUM_BYTES: u32 = MAX_OUTGOING_MESSAGE_NUM_BYTES + 4096;

/// `kMaxSendmsgHandles`: fds a Chromium peer sends or receives per `sendmsg`.
pub const MAX_SENDMSG_HANDLES: usize = 128;
/// Linux `SCM_MAX_FD`: more fds in one `sendmsg` fail with `EINVAL`.
pub const SCM_MAX_FD: usize = 253;
/// Safe maximum of fds per outgoing message (`kMaxAttachedHandles` before
/// r1400301).
pub const MAX_OUTGOING_HANDLES_PER_MESSAGE: usize = 64;
/// Largest `num_handles` accepted on an incoming message (`kMaxAttachedHandles`
/// on Linux since r1400301).
pub const MAX_INCOMING_HANDLES_PER_MESSAGE: u16 = 253;

/// `kMaxMojoHandleAttachments`: `num_dispatchers` above this makes a receiver
/// drop the user message event (`UserMessageImpl::CreateFromChannelMessage`);
/// the user-message parser of this crate enforces it.
pub const MAX_DISPATCHERS_ACCEPTED: u32 = 1_048_576;
/// `num_dispatchers` above this makes decoding the dispatchers fail; the
/// user-message parser of this crate enforces it.
pub const MAX_DECODABLE_DISPATCHERS: u32 = 65_535;

/// Default upper bound for shared memory regions (`max_shared_memory_num_bytes`).
pub const MAX_SHARED_MEMORY_NUM_BYTES: u64 = 1024 * 1024 * 1024;
/// Receivers reject shared buffer sizes (and data pipe capacities) above
/// `i32::MAX` (`PlatformSharedMemoryRegion::Take`); see
/// [`crate::user_message::UserMessage::check_dispatchers`].
pub const MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES: u64 = i32::MAX as u64;

/// Default capacity of a data pipe.
pub const DEFAULT_DATA_PIPE_CAPACITY: u32 = 65_536;
/// Valid range of `UPGRADE_OFFER.num_pages`; see
/// [`crate::channel::UpgradeOffer::has_valid_num_pages`].
pub const UPGRADE_OFFER_PAGES: core::ops::RangeInclusive<i32> = 1..=128;

/// `kInitialSequenceNum`.
pub const INITIAL_SEQUENCE_NUM: u64 = 1;
/// `kInvalidSequenceNum`; also the "retry" value of `ObserveProxyAck`.
pub const INVALID_SEQUENCE_NUM: u64 = u64::MAX;

/// `pipe_id` Chromium writes for invitation pipes.
pub const INVITATION_PIPE_ID: u64 = 0x7F7F_7F7F_7F7F_7F7F;
