//! The bridge's typed errors and the reports of what it could not translate.

use core::fmt;

use ipcz_wire::driver_object::ObjectType;
use mojo_legacy_node::node::ApiError;

/// Why a [`Bridge`](crate::Bridge) call failed.
#[derive(Debug)]
pub enum BridgeError {
    /// The ipcz node refused a frame (the link was dropped) or a setup call.
    Ipcz(ipcz_node::node::NodeError),
    /// The legacy node refused a frame (the peer was dropped).
    Legacy(mojo_legacy_node::NodeError),
    /// A legacy node call failed during setup.
    LegacyApi(ApiError),
    /// No attachment was given, or more than [`crate::MAX_ATTACHMENTS`].
    AttachmentCount {
        /// How many were given.
        count: usize,
    },
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipcz(e) => write!(f, "ipcz side: {e}"),
            Self::Legacy(e) => write!(f, "legacy side: {e}"),
            Self::LegacyApi(e) => write!(f, "legacy node: {e}"),
            Self::AttachmentCount { count } => write!(
                f,
                "{count} attachments (1 to {} allowed)",
                crate::MAX_ATTACHMENTS
            ),
        }
    }
}

impl std::error::Error for BridgeError {}

impl From<ipcz_node::node::NodeError> for BridgeError {
    fn from(e: ipcz_node::node::NodeError) -> Self {
        Self::Ipcz(e)
    }
}

impl From<mojo_legacy_node::NodeError> for BridgeError {
    fn from(e: mojo_legacy_node::NodeError) -> Self {
        Self::Legacy(e)
    }
}

impl From<ApiError> for BridgeError {
    fn from(e: ApiError) -> Self {
        Self::LegacyApi(e)
    }
}

/// A handle the bridge could not carry to the other side. The message's
/// handles were all closed and its bytes forwarded without them; the pipe
/// keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untranslatable {
    /// A legacy data pipe end (not bridged yet).
    LegacyDataPipe {
        /// The producer end (else the consumer).
        producer: bool,
    },
    /// An ipcz driver object with no legacy counterpart (a transport, a
    /// data pipe end, an indirect platform handle).
    IpczObject {
        /// Its type.
        object_type: ObjectType,
    },
    /// An ipcz message whose data pipe boxes lack their trailing control
    /// portals (§8.3: MojoIpcz discards every handle of such a message).
    MissingDataPipePortals {
        /// Data pipe boxes in the message.
        data_pipes: usize,
        /// Handles in the message.
        handles: usize,
    },
    /// A legacy shared buffer too large for an ipcz SharedBuffer object.
    OversizedSharedBuffer {
        /// Its size in bytes.
        size: u64,
    },
    /// More fds than one message of the receiving side may carry.
    TooManyFds {
        /// Fds the message's handles hold.
        count: usize,
        /// The receiving side's limit.
        limit: usize,
    },
    /// A handle that does not fit the receiving node's rules (its error
    /// is not kept: the handle is gone either way).
    Refused,
    /// A data pipe end arrived while [`MAX_DATA_PIPES`](crate::MAX_DATA_PIPES)
    /// pipes were already bridged.
    TooManyDataPipes {
        /// The limit.
        limit: usize,
    },
    /// Bridging a data pipe would map more ring memory than the limits
    /// allow (its capacity over
    /// [`MAX_DATA_PIPE_CAPACITY`](crate::MAX_DATA_PIPE_CAPACITY), or all
    /// rings over [`MAX_DATA_PIPE_BYTES`](crate::MAX_DATA_PIPE_BYTES)).
    DataPipeMemory {
        /// The pipe's ring capacity.
        capacity: u64,
        /// Ring bytes already mapped for bridged pipes.
        in_use: u64,
    },
    /// The ring memory could not be created or mapped (or the bridge has
    /// no [`RingMemory`](crate::RingMemory)).
    DataPipeRing,
    /// A legacy data pipe end's state was refused.
    BadLegacyDataPipe(mojo_legacy_node::data_pipe::DataPipeError),
    /// An ipcz data pipe object was refused.
    BadIpczDataPipe(ipcz_node::data_pipe::DataPipeError),
}

impl fmt::Display for Untranslatable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LegacyDataPipe { producer: true } => write!(f, "a legacy data pipe producer"),
            Self::LegacyDataPipe { producer: false } => write!(f, "a legacy data pipe consumer"),
            Self::IpczObject { object_type } => write!(f, "an ipcz {object_type:?} object"),
            Self::MissingDataPipePortals {
                data_pipes,
                handles,
            } => write!(
                f,
                "{data_pipes} data pipe boxes without their control portals among {handles} handles"
            ),
            Self::OversizedSharedBuffer { size } => {
                write!(f, "a {size}-byte shared buffer (too large for ipcz)")
            }
            Self::TooManyFds { count, limit } => {
                write!(f, "{count} fds in one message (at most {limit})")
            }
            Self::Refused => write!(f, "a handle the receiving node refused"),
            Self::TooManyDataPipes { limit } => {
                write!(f, "a data pipe beyond the {limit} bridged at once")
            }
            Self::DataPipeMemory { capacity, in_use } => write!(
                f,
                "a data pipe with a {capacity}-byte ring ({in_use} ring bytes already mapped)"
            ),
            Self::DataPipeRing => write!(f, "a data pipe whose ring memory could not be had"),
            Self::BadLegacyDataPipe(e) => write!(f, "a bad legacy data pipe end: {e}"),
            Self::BadIpczDataPipe(e) => write!(f, "a bad ipcz data pipe end: {e}"),
        }
    }
}
