//! User message serialization (spec section 5): the message header, dispatcher
//! headers, every dispatcher's serialized state, and data pipe control
//! messages.
//!
//! Layout of the user-message part of a `UserMessage` event:
//!
//! ```text
//! MessageHeader { num_dispatchers u32, header_size u32 }
//! DispatcherHeader[num_dispatchers] { type i32, num_bytes u32, num_ports u32, num_platform_handles u32 }
//! dispatcher states, concatenated (no padding)
//! user payload                 <- starts at header_size
//! ```

use std::fmt;

use crate::channel::FrameBuilder;
use crate::codec::{
    Reader, len_u32, put_guid, put_i32, put_u8, put_u32, put_u64, put_zeros, require_canonical,
};
use crate::error::{Error, Result};
use crate::event::{
    AttachedPort, EventType, SenderInfo, write_event_header, write_user_message_data,
};
use crate::limits::{
    MAX_DECODABLE_DISPATCHERS, MAX_DISPATCHERS_ACCEPTED, MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES,
};
use crate::name::{Guid, PortName};
use crate::node::NodeMessageType;
use crate::profile::Profile;
use crate::protocol_enum::protocol_enum;

/// Size of `MessageHeader`.
pub const MESSAGE_HEADER_LEN: usize = 8;
/// Size of `DispatcherHeader`.
pub const DISPATCHER_HEADER_LEN: usize = 16;

protocol_enum! {
    /// A dispatcher type (i32). Unknown values are kept.
    pub struct DispatcherType(pub i32), unknown "DISPATCHER_TYPE_" {
        /// 1: a message pipe end (1 port).
        MESSAGE_PIPE = 1 => "MESSAGE_PIPE",
        /// 2: a data pipe producer (1 port, 1 fd).
        DATA_PIPE_PRODUCER = 2 => "DATA_PIPE_PRODUCER",
        /// 3: a data pipe consumer (1 port, 1 fd).
        DATA_PIPE_CONSUMER = 3 => "DATA_PIPE_CONSUMER",
        /// 4: a shared buffer (1 or 2 fds).
        SHARED_BUFFER = 4 => "SHARED_BUFFER",
        /// 5: not transferable.
        WATCHER = 5 => "WATCHER",
        /// 6: not transferable.
        INVITATION = 6 => "INVITATION",
        /// -1: a wrapped platform handle (1 fd).
        PLATFORM_HANDLE = -1 => "PLATFORM_HANDLE",
    }
}

/// `MESSAGE_PIPE` state (16 bytes). Both fields are debug-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MessagePipeState {
    /// 0 without tracing; [`crate::limits::INVITATION_PIPE_ID`] for invitation pipes.
    pub pipe_id: u64,
    /// 0 or 1.
    pub endpoint: i8,
}

impl MessagePipeState {
    /// Size of the state.
    pub const LEN: usize = 16;
}

/// Shared buffer access mode (u32 on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AccessMode {
    /// 0: one `O_RDONLY` fd.
    ReadOnly,
    /// 1: two fds, `O_RDWR` then `O_RDONLY` of the same file.
    #[default]
    Writable,
    /// 2: one `O_RDWR` fd.
    Unsafe,
}

impl AccessMode {
    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::ReadOnly => 0,
            Self::Writable => 1,
            Self::Unsafe => 2,
        }
    }

    /// Decodes the wire value.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::ReadOnly),
            1 => Some(Self::Writable),
            2 => Some(Self::Unsafe),
            _ => None,
        }
    }

    /// Number of fds a shared buffer in this mode carries (Linux / Chrome OS).
    pub fn num_fds(self) -> u32 {
        match self {
            Self::Writable => 2,
            Self::ReadOnly | Self::Unsafe => 1,
        }
    }
}

/// `SHARED_BUFFER` state (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SharedBufferState {
    /// Region size (non-zero and <= i32::MAX for the receiver; see
    /// [`Dispatcher::check_state`]).
    pub num_bytes: u64,
    /// Access mode; decides the fd count.
    pub access_mode: AccessMode,
    /// Region id (non-zero for the receiver); unaligned at state offset 12.
    pub guid: Guid,
}

impl SharedBufferState {
    /// Size of the state.
    pub const LEN: usize = 32;
}

/// `MojoCreateDataPipeOptions` as serialized in a data pipe state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DataPipeOptions {
    /// 16.
    pub struct_size: u32,
    /// 0.
    pub flags: u32,
    /// Element size (>= 1).
    pub element_num_bytes: u32,
    /// Ring capacity (>= element size; default 65536).
    pub capacity_num_bytes: u32,
}

/// `DATA_PIPE_PRODUCER` / `DATA_PIPE_CONSUMER` state (56 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DataPipeState {
    /// Creation options.
    pub options: DataPipeOptions,
    /// Debug id.
    pub pipe_id: u64,
    /// Producer: `write_offset`; consumer: `read_offset`.
    pub offset: u32,
    /// Producer: `available_capacity`; consumer: `bytes_available`.
    pub available: u32,
    /// Bit 0 ([`DataPipeState::FLAG_PEER_CLOSED`]): the other end is closed.
    pub flags: u8,
    /// Ring buffer region id (unaligned at state offset 33).
    pub buffer_guid: Guid,
}

impl DataPipeState {
    /// Size of the state.
    pub const LEN: usize = 56;
    /// `flags` bit: the other end is closed.
    pub const FLAG_PEER_CLOSED: u8 = 1;
}

/// One attached Mojo handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dispatcher<'a> {
    /// A message pipe end: 16 state bytes, 1 port, 0 fds.
    MessagePipe(MessagePipeState),
    /// A data pipe producer: 56 bytes, 1 port (control port), 1 fd (ring).
    DataPipeProducer(DataPipeState),
    /// A data pipe consumer: 56 bytes, 1 port, 1 fd.
    DataPipeConsumer(DataPipeState),
    /// A shared buffer: 32 bytes, 0 ports, 1 or 2 fds by access mode.
    SharedBuffer(SharedBufferState),
    /// A wrapped platform handle: no state, 0 ports, 1 fd.
    PlatformHandle,
    /// Any other type (a Chromium receiver fails to read such a message).
    Unknown {
        /// The type.
        dispatcher_type: DispatcherType,
        /// Ports it claims.
        num_ports: u32,
        /// Fds it claims.
        num_platform_handles: u32,
        /// Its state bytes.
        state: &'a [u8],
    },
}

impl Dispatcher<'_> {
    /// The type.
    pub fn dispatcher_type(&self) -> DispatcherType {
        match self {
            Self::MessagePipe(_) => DispatcherType::MESSAGE_PIPE,
            Self::DataPipeProducer(_) => DispatcherType::DATA_PIPE_PRODUCER,
            Self::DataPipeConsumer(_) => DispatcherType::DATA_PIPE_CONSUMER,
            Self::SharedBuffer(_) => DispatcherType::SHARED_BUFFER,
            Self::PlatformHandle => DispatcherType::PLATFORM_HANDLE,
            Self::Unknown {
                dispatcher_type, ..
            } => *dispatcher_type,
        }
    }

    /// State size (`DispatcherHeader.num_bytes`).
    pub fn state_len(&self) -> usize {
        match self {
            Self::MessagePipe(_) => MessagePipeState::LEN,
            Self::DataPipeProducer(_) | Self::DataPipeConsumer(_) => DataPipeState::LEN,
            Self::SharedBuffer(_) => SharedBufferState::LEN,
            Self::PlatformHandle => 0,
            Self::Unknown { state, .. } => state.len(),
        }
    }

    /// Ports it consumes from the event's port list.
    pub fn num_ports(&self) -> u32 {
        match self {
            Self::MessagePipe(_) | Self::DataPipeProducer(_) | Self::DataPipeConsumer(_) => 1,
            Self::SharedBuffer(_) | Self::PlatformHandle => 0,
            Self::Unknown { num_ports, .. } => *num_ports,
        }
    }

    /// Fds it consumes from the message's fds.
    pub fn num_platform_handles(&self) -> u32 {
        match self {
            Self::MessagePipe(_) => 0,
            Self::DataPipeProducer(_) | Self::DataPipeConsumer(_) | Self::PlatformHandle => 1,
            Self::SharedBuffer(s) => s.access_mode.num_fds(),
            Self::Unknown {
                num_platform_handles,
                ..
            } => *num_platform_handles,
        }
    }

    fn write_state(&self, out: &mut Vec<u8>) {
        match self {
            Self::MessagePipe(s) => {
                put_u64(out, s.pipe_id);
                put_u8(out, s.endpoint as u8);
                put_zeros(out, 7);
            }
            Self::DataPipeProducer(s) | Self::DataPipeConsumer(s) => {
                put_u32(out, s.options.struct_size);
                put_u32(out, s.options.flags);
                put_u32(out, s.options.element_num_bytes);
                put_u32(out, s.options.capacity_num_bytes);
                put_u64(out, s.pipe_id);
                put_u32(out, s.offset);
                put_u32(out, s.available);
                put_u8(out, s.flags);
                put_guid(out, s.buffer_guid);
                put_zeros(out, 7);
            }
            Self::SharedBuffer(s) => {
                put_u64(out, s.num_bytes);
                put_u32(out, s.access_mode.to_u32());
                put_guid(out, s.guid);
                put_zeros(out, 4);
            }
            Self::PlatformHandle => {}
            Self::Unknown { state, .. } => out.extend_from_slice(state),
        }
    }

    fn state_field_at(&self, o: usize) -> &'static str {
        match self {
            Self::MessagePipe(_) => match o {
                0..8 => "message_pipe.pipe_id",
                8 => "message_pipe.endpoint",
                _ => "message_pipe.padding",
            },
            Self::DataPipeProducer(_) | Self::DataPipeConsumer(_) => match o {
                0..4 => "data_pipe.options.struct_size",
                4..8 => "data_pipe.options.flags",
                8..12 => "data_pipe.options.element_num_bytes",
                12..16 => "data_pipe.options.capacity_num_bytes",
                16..24 => "data_pipe.pipe_id",
                24..28 => "data_pipe.offset",
                28..32 => "data_pipe.available",
                32 => "data_pipe.flags",
                33..49 => "data_pipe.buffer_guid",
                _ => "data_pipe.padding",
            },
            Self::SharedBuffer(_) => match o {
                0..8 => "shared_buffer.num_bytes",
                8..12 => "shared_buffer.access_mode",
                12..28 => "shared_buffer.guid",
                _ => "shared_buffer.padding",
            },
            Self::PlatformHandle => "platform_handle",
            Self::Unknown { .. } => "dispatcher.state",
        }
    }
}

impl Dispatcher<'_> {
    /// Applies the checks Chromium's `Dispatcher::Deserialize` makes on a
    /// decoded dispatcher's state when the receiver extracts the message's
    /// handles (`UserMessageImpl::ExtractSerializedHandles`). A failure there
    /// invalidates the message's handles (`MOJO_RESULT_ABORTED`); it is not a
    /// channel error, so [`UserMessage::parse`] does not apply these checks.
    ///
    /// The rules, per type (the counts and state sizes are already enforced
    /// by `parse`; port and fd checks that need the node or the fds are the
    /// caller's):
    ///
    /// - `SHARED_BUFFER` (`shared_buffer_dispatcher.cc` and
    ///   `PlatformSharedMemoryRegion::Take`): `num_bytes` non-zero and at most
    ///   [`MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES`], `guid` non-zero.
    /// - `DATA_PIPE_PRODUCER` / `DATA_PIPE_CONSUMER`
    ///   (`data_pipe_{producer,consumer}_dispatcher.cc`):
    ///   `element_num_bytes` non-zero; `capacity_num_bytes` non-zero, at least
    ///   `element_num_bytes` and at most
    ///   [`MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES`] (the ring buffer region);
    ///   `offset` (write/read offset) below the capacity; `available`
    ///   (available capacity / bytes available) at most the capacity;
    ///   `buffer_guid` non-zero. Chromium does *not* check
    ///   `options.struct_size`, `options.flags`, that the capacity is a
    ///   multiple of the element size, or the `flags` bits, so neither does
    ///   this.
    /// - `MESSAGE_PIPE`, `PLATFORM_HANDLE`: nothing in the state (Chromium
    ///   only looks the port up; `pipe_id` and `endpoint` are debug values).
    /// - any other type, including `WATCHER` and `INVITATION`: always fails
    ///   (`dispatcher.type`).
    pub fn check_state(&self) -> Result<()> {
        match self {
            Self::MessagePipe(_) | Self::PlatformHandle => Ok(()),
            Self::SharedBuffer(s) => {
                if s.num_bytes == 0 {
                    return Err(Error::InvalidValue {
                        field: "shared_buffer.num_bytes",
                        value: 0,
                        reason: "zero-sized shared buffer",
                    });
                }
                if !s.guid.is_valid() {
                    return Err(Error::InvalidValue {
                        field: "shared_buffer.guid",
                        value: 0,
                        reason: "zero guid (never created)",
                    });
                }
                if s.num_bytes > MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES {
                    return Err(Error::LimitExceeded {
                        field: "shared_buffer.num_bytes",
                        value: s.num_bytes,
                        limit: MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES,
                    });
                }
                Ok(())
            }
            Self::DataPipeProducer(s) | Self::DataPipeConsumer(s) => s.check(),
            Self::Unknown {
                dispatcher_type, ..
            } => Err(Error::InvalidValue {
                field: "dispatcher.type",
                value: dispatcher_type.0 as i64 as u64,
                reason: "not a transferable dispatcher type",
            }),
        }
    }
}

impl DataPipeState {
    /// The state checks of Chromium's data pipe producer and consumer
    /// deserialization; see [`Dispatcher::check_state`].
    pub fn check(&self) -> Result<()> {
        let capacity = self.options.capacity_num_bytes;
        let element = self.options.element_num_bytes;
        if capacity == 0 {
            return Err(Error::InvalidValue {
                field: "data_pipe.options.capacity_num_bytes",
                value: 0,
                reason: "zero capacity",
            });
        }
        if element == 0 {
            return Err(Error::InvalidValue {
                field: "data_pipe.options.element_num_bytes",
                value: 0,
                reason: "zero element size",
            });
        }
        if capacity < element {
            return Err(Error::Mismatch {
                field: "data_pipe.options.capacity_num_bytes",
                expected: u64::from(element),
                actual: u64::from(capacity),
            });
        }
        if self.offset >= capacity {
            return Err(Error::LimitExceeded {
                field: "data_pipe.offset",
                value: u64::from(self.offset),
                limit: u64::from(capacity - 1),
            });
        }
        if self.available > capacity {
            return Err(Error::LimitExceeded {
                field: "data_pipe.available",
                value: u64::from(self.available),
                limit: u64::from(capacity),
            });
        }
        if !self.buffer_guid.is_valid() {
            return Err(Error::InvalidValue {
                field: "data_pipe.buffer_guid",
                value: 0,
                reason: "zero guid (never created)",
            });
        }
        if u64::from(capacity) > MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES {
            return Err(Error::LimitExceeded {
                field: "data_pipe.options.capacity_num_bytes",
                value: u64::from(capacity),
                limit: MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES,
            });
        }
        Ok(())
    }
}

fn expect(field: &'static str, expected: u32, actual: u32) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::Mismatch {
            field,
            expected: u64::from(expected),
            actual: u64::from(actual),
        })
    }
}

fn parse_dispatcher<'a>(
    dispatcher_type: DispatcherType,
    num_ports: u32,
    num_platform_handles: u32,
    state: &'a [u8],
) -> Result<Dispatcher<'a>> {
    let num_bytes = len_u32(state.len());
    let mut r = Reader::new(state);
    Ok(match dispatcher_type {
        DispatcherType::MESSAGE_PIPE => {
            expect(
                "dispatcher.num_bytes",
                MessagePipeState::LEN as u32,
                num_bytes,
            )?;
            expect("dispatcher.num_ports", 1, num_ports)?;
            expect("dispatcher.num_platform_handles", 0, num_platform_handles)?;
            let pipe_id = r.u64("message_pipe.pipe_id")?;
            let endpoint = r.u8("message_pipe.endpoint")? as i8;
            r.padding(7, "message_pipe.padding")?;
            Dispatcher::MessagePipe(MessagePipeState { pipe_id, endpoint })
        }
        DispatcherType::DATA_PIPE_PRODUCER | DispatcherType::DATA_PIPE_CONSUMER => {
            expect("dispatcher.num_bytes", DataPipeState::LEN as u32, num_bytes)?;
            expect("dispatcher.num_ports", 1, num_ports)?;
            expect("dispatcher.num_platform_handles", 1, num_platform_handles)?;
            let options = DataPipeOptions {
                struct_size: r.u32("data_pipe.options.struct_size")?,
                flags: r.u32("data_pipe.options.flags")?,
                element_num_bytes: r.u32("data_pipe.options.element_num_bytes")?,
                capacity_num_bytes: r.u32("data_pipe.options.capacity_num_bytes")?,
            };
            let s = DataPipeState {
                options,
                pipe_id: r.u64("data_pipe.pipe_id")?,
                offset: r.u32("data_pipe.offset")?,
                available: r.u32("data_pipe.available")?,
                flags: r.u8("data_pipe.flags")?,
                buffer_guid: r.guid("data_pipe.buffer_guid")?,
            };
            r.padding(7, "data_pipe.padding")?;
            if dispatcher_type == DispatcherType::DATA_PIPE_PRODUCER {
                Dispatcher::DataPipeProducer(s)
            } else {
                Dispatcher::DataPipeConsumer(s)
            }
        }
        DispatcherType::SHARED_BUFFER => {
            expect(
                "dispatcher.num_bytes",
                SharedBufferState::LEN as u32,
                num_bytes,
            )?;
            expect("dispatcher.num_ports", 0, num_ports)?;
            let size = r.u64("shared_buffer.num_bytes")?;
            let mode = r.u32("shared_buffer.access_mode")?;
            let access_mode = AccessMode::from_u32(mode).ok_or(Error::InvalidValue {
                field: "shared_buffer.access_mode",
                value: u64::from(mode),
                reason: "not 0 (read-only), 1 (writable) or 2 (unsafe)",
            })?;
            let guid = r.guid("shared_buffer.guid")?;
            r.padding(4, "shared_buffer.padding")?;
            expect(
                "dispatcher.num_platform_handles",
                access_mode.num_fds(),
                num_platform_handles,
            )?;
            Dispatcher::SharedBuffer(SharedBufferState {
                num_bytes: size,
                access_mode,
                guid,
            })
        }
        DispatcherType::PLATFORM_HANDLE => {
            expect("dispatcher.num_bytes", 0, num_bytes)?;
            expect("dispatcher.num_ports", 0, num_ports)?;
            expect("dispatcher.num_platform_handles", 1, num_platform_handles)?;
            Dispatcher::PlatformHandle
        }
        dispatcher_type => Dispatcher::Unknown {
            dispatcher_type,
            num_ports,
            num_platform_handles,
            state,
        },
    })
}

/// The user-message part of a `UserMessage` event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct UserMessage<'a> {
    /// Attached handles, in order; they consume the event's ports and the
    /// message's fds in this order.
    pub dispatchers: Vec<Dispatcher<'a>>,
    /// The application's bytes.
    pub payload: &'a [u8],
}

impl<'a> UserMessage<'a> {
    /// A message without handles.
    pub fn plain(payload: &'a [u8]) -> Self {
        Self {
            dispatchers: Vec::new(),
            payload,
        }
    }

    /// Parses and decodes every dispatcher. Fails where a Chromium reader
    /// fails (`UserMessageImpl::CreateFromChannelMessage` and
    /// `ExtractSerializedHandles`: `MOJO_RESULT_ABORTED`), except that unknown
    /// dispatcher types are kept. As in Chromium, the user payload starts at
    /// `header_size`: bytes between the last dispatcher state and
    /// `header_size` are ignored, and a message without dispatchers may even
    /// declare a `header_size` below 8 (Chromium then skips the dispatcher
    /// checks entirely). Dispatcher state padding is ignored. The values in
    /// the states are not checked: run [`UserMessage::check_dispatchers`] for
    /// the rules Chromium applies when it deserializes the handles.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        r.need(MESSAGE_HEADER_LEN, "user message header")?;
        let num_dispatchers = r.u32("message_header.num_dispatchers")?;
        let header_size = r.u32("message_header.header_size")?;
        let header_len = header_size as usize;
        if header_len > bytes.len() {
            return Err(Error::InvalidValue {
                field: "message_header.header_size",
                value: u64::from(header_size),
                reason: "larger than the user message",
            });
        }
        // `CreateFromChannelMessage` drops the event above this; below it,
        // `ExtractSerializedHandles` fails above MAX_DECODABLE_DISPATCHERS.
        if num_dispatchers > MAX_DISPATCHERS_ACCEPTED {
            return Err(Error::LimitExceeded {
                field: "message_header.num_dispatchers",
                value: u64::from(num_dispatchers),
                limit: u64::from(MAX_DISPATCHERS_ACCEPTED),
            });
        }
        if num_dispatchers > MAX_DECODABLE_DISPATCHERS {
            return Err(Error::LimitExceeded {
                field: "message_header.num_dispatchers",
                value: u64::from(num_dispatchers),
                limit: u64::from(MAX_DECODABLE_DISPATCHERS),
            });
        }
        let payload = bytes.get(header_len..).unwrap_or(&[]);
        if num_dispatchers == 0 {
            return Ok(Self {
                dispatchers: Vec::new(),
                payload,
            });
        }
        let n = num_dispatchers as usize;
        let headers_end = MESSAGE_HEADER_LEN + DISPATCHER_HEADER_LEN * n;
        if headers_end > header_len {
            return Err(Error::InvalidValue {
                field: "message_header.header_size",
                value: u64::from(header_size),
                reason: "smaller than the dispatcher headers",
            });
        }
        let mut headers = Vec::with_capacity(n);
        for _ in 0..n {
            headers.push((
                DispatcherType(r.i32("dispatcher.type")?),
                r.u32("dispatcher.num_bytes")?,
                r.u32("dispatcher.num_ports")?,
                r.u32("dispatcher.num_platform_handles")?,
            ));
        }
        let mut states = Reader::new(bytes.get(headers_end..header_len).unwrap_or(&[]));
        let mut dispatchers = Vec::with_capacity(n);
        for (dispatcher_type, num_bytes, num_ports, num_platform_handles) in headers {
            let state = states.take(num_bytes as usize, "dispatcher state (within header_size)")?;
            dispatchers.push(parse_dispatcher(
                dispatcher_type,
                num_ports,
                num_platform_handles,
                state,
            )?);
        }
        Ok(Self {
            dispatchers,
            payload,
        })
    }

    /// [`UserMessage::parse`], then requires `bytes` to be the canonical
    /// encoding of the result (`header_size` exactly 8 + 16 per dispatcher +
    /// state bytes, zero state padding); any `Ok` re-encodes to exactly
    /// `bytes`. Fails with [`Error::NotCanonical`] otherwise.
    pub fn parse_exact(bytes: &'a [u8]) -> Result<Self> {
        let m = Self::parse(bytes)?;
        let mut out = Vec::with_capacity(m.encoded_len());
        m.encode(&mut out);
        require_canonical(bytes, &out, |o| m.field_at(o))?;
        Ok(m)
    }

    /// [`UserMessage::parse`], then checks that the dispatchers consume no more
    /// than `num_ports` ports (the event's) and `num_fds` fds (the channel
    /// message's), as a Chromium reader does.
    pub fn parse_checked(bytes: &'a [u8], num_ports: usize, num_fds: usize) -> Result<Self> {
        let m = Self::parse(bytes)?;
        if m.num_ports() > num_ports as u64 {
            return Err(Error::LimitExceeded {
                field: "dispatcher.num_ports",
                value: m.num_ports(),
                limit: num_ports as u64,
            });
        }
        if m.num_platform_handles() > num_fds as u64 {
            return Err(Error::LimitExceeded {
                field: "dispatcher.num_platform_handles",
                value: m.num_platform_handles(),
                limit: num_fds as u64,
            });
        }
        Ok(m)
    }

    /// Checks every dispatcher as Chromium does when it deserializes the
    /// message's handles ([`Dispatcher::check_state`], in order, first failure
    /// returned), plus the dispatcher count limit
    /// ([`MAX_DECODABLE_DISPATCHERS`], only reachable for a hand-built value).
    ///
    /// `Ok` after [`UserMessage::parse`] (or [`UserMessage::parse_checked`])
    /// means a Chromium receiver gets valid handles, as far as the bytes go.
    /// `Err` means it gets none: the message's handle extraction fails and the
    /// message is dropped, but the channel stays up, which is why `parse`
    /// accepts such messages.
    pub fn check_dispatchers(&self) -> Result<()> {
        if self.dispatchers.len() > MAX_DECODABLE_DISPATCHERS as usize {
            return Err(Error::LimitExceeded {
                field: "message_header.num_dispatchers",
                value: self.dispatchers.len() as u64,
                limit: u64::from(MAX_DECODABLE_DISPATCHERS),
            });
        }
        self.dispatchers
            .iter()
            .try_for_each(Dispatcher::check_state)
    }

    /// `header_size`: 8 + 16 per dispatcher + state bytes.
    pub fn header_size(&self) -> usize {
        MESSAGE_HEADER_LEN
            + self
                .dispatchers
                .iter()
                .map(|d| DISPATCHER_HEADER_LEN + d.state_len())
                .sum::<usize>()
    }

    /// Total ports the dispatchers consume.
    pub fn num_ports(&self) -> u64 {
        self.dispatchers
            .iter()
            .map(|d| u64::from(d.num_ports()))
            .sum()
    }

    /// Total fds the dispatchers consume (the channel header's `num_handles`).
    pub fn num_platform_handles(&self) -> u64 {
        self.dispatchers
            .iter()
            .map(|d| u64::from(d.num_platform_handles()))
            .sum()
    }

    /// Size of the encoding.
    pub fn encoded_len(&self) -> usize {
        self.header_size() + self.payload.len()
    }

    /// Appends the serialized message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, len_u32(self.dispatchers.len()));
        put_u32(out, len_u32(self.header_size()));
        for d in &self.dispatchers {
            put_i32(out, d.dispatcher_type().0);
            put_u32(out, len_u32(d.state_len()));
            put_u32(out, d.num_ports());
            put_u32(out, d.num_platform_handles());
        }
        for d in &self.dispatchers {
            d.write_state(out);
        }
        out.extend_from_slice(self.payload);
    }

    /// Name of the field at `offset` of the encoded message, for diagnostics.
    pub fn field_at(&self, offset: usize) -> &'static str {
        match offset {
            0..4 => return "message_header.num_dispatchers",
            4..8 => return "message_header.header_size",
            _ => {}
        }
        let headers_end = MESSAGE_HEADER_LEN + DISPATCHER_HEADER_LEN * self.dispatchers.len();
        if offset < headers_end {
            return match (offset - MESSAGE_HEADER_LEN) % DISPATCHER_HEADER_LEN {
                0..4 => "dispatcher.type",
                4..8 => "dispatcher.num_bytes",
                8..12 => "dispatcher.num_ports",
                _ => "dispatcher.num_platform_handles",
            };
        }
        let mut start = headers_end;
        for d in &self.dispatchers {
            let end = start + d.state_len();
            if offset < end {
                return d.state_field_at(offset - start);
            }
            start = end;
        }
        "payload"
    }
}

/// Appends a complete `UserMessage` event (header, event data, user message)
/// without building the user message separately. `sender` selects the
/// extended header form.
pub fn encode_user_message_event(
    out: &mut Vec<u8>,
    port_name: PortName,
    sender: Option<SenderInfo>,
    sequence_num: u64,
    ports: &[AttachedPort],
    message: &UserMessage<'_>,
) {
    write_event_header(out, EventType::USER_MESSAGE, port_name, sender);
    write_user_message_data(out, sequence_num, ports);
    message.encode(out);
}

/// Appends a complete fresh channel message carrying a `UserMessage` event in
/// `profile` (header form and event header form), with `num_handles` set to the
/// dispatchers' fd count. Returns the frame length.
pub fn encode_user_message_frame(
    out: &mut Vec<u8>,
    profile: Profile,
    port_name: PortName,
    sender: Option<SenderInfo>,
    sequence_num: u64,
    ports: &[AttachedPort],
    message: &UserMessage<'_>,
) -> Result<usize> {
    let fds = message.num_platform_handles();
    let num_handles = u16::try_from(fds).map_err(|_| Error::LimitExceeded {
        field: "channel.num_handles",
        value: fds,
        limit: u64::from(u16::MAX),
    })?;
    let b = FrameBuilder::begin(out, &profile.normal_header(num_handles))?;
    put_u32(out, NodeMessageType::EVENT_MESSAGE.0);
    put_u32(out, 0);
    encode_user_message_event(out, port_name, sender, sequence_num, ports, message);
    b.finish(out)
}

/// A data pipe control command (u32). Unknown values are kept.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DataPipeCommand(pub u32);

impl DataPipeCommand {
    /// 0: the producer wrote `num_bytes`.
    pub const DATA_WAS_WRITTEN: Self = Self(0);
    /// 1: the consumer read `num_bytes`.
    pub const DATA_WAS_READ: Self = Self(1);
}

impl fmt::Debug for DataPipeCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("DATA_WAS_WRITTEN"),
            1 => f.write_str("DATA_WAS_READ"),
            n => write!(f, "DataPipeCommand({n})"),
        }
    }
}

/// `DataPipeControlMessage`: the user payload of messages on a data pipe's
/// control port (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DataPipeControlMessage {
    /// What happened.
    pub command: DataPipeCommand,
    /// How many bytes.
    pub num_bytes: u32,
}

impl DataPipeControlMessage {
    /// Size on the wire.
    pub const LEN: usize = 8;

    /// Parses a control-port payload; bytes after the first 8 are ignored,
    /// as Chromium ignores them.
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        r.need(Self::LEN, "data pipe control message")?;
        Ok(Self {
            command: DataPipeCommand(r.u32("data_pipe_control.command")?),
            num_bytes: r.u32("data_pipe_control.num_bytes")?,
        })
    }

    /// Appends the 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.command.0);
        put_u32(out, self.num_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message() {
        let bytes = [0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x2d];
        let m = UserMessage::parse(&bytes).unwrap();
        assert_eq!(m, UserMessage::plain(&[1, 0, 0, 0, 0x2d]));
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn header_size_slack_is_skipped_but_not_exact() {
        // One platform handle but header_size 32 (8 bytes of gap): Chromium
        // starts the payload at header_size and never looks at the gap.
        let mut b = Vec::new();
        put_u32(&mut b, 1);
        put_u32(&mut b, 32);
        put_i32(&mut b, -1);
        put_u32(&mut b, 0);
        put_u32(&mut b, 0);
        put_u32(&mut b, 1);
        b.extend_from_slice(&[0xee; 8]);
        b.extend_from_slice(b"hi");
        let m = UserMessage::parse(&b).unwrap();
        assert_eq!(m.dispatchers, [Dispatcher::PlatformHandle]);
        assert_eq!(m.payload, b"hi");
        assert_eq!(m.header_size(), 24);
        assert_eq!(
            UserMessage::parse_exact(&b),
            Err(Error::NotCanonical {
                offset: 4,
                field: "message_header.header_size"
            })
        );
        // A dispatcher state running past header_size is still fatal.
        b[4..8].copy_from_slice(&20u32.to_le_bytes());
        b[12..16].copy_from_slice(&8u32.to_le_bytes());
        assert!(UserMessage::parse(&b).is_err());
    }

    #[test]
    fn no_dispatchers_skips_the_header_checks() {
        // Chromium's ExtractSerializedHandles returns early without
        // dispatchers, so header_size may even be below 8.
        let b = [0, 0, 0, 0, 2, 0, 0, 0, 7];
        let m = UserMessage::parse(&b).unwrap();
        assert!(m.dispatchers.is_empty());
        assert_eq!(m.payload, &b[2..]);
        let e = UserMessage::parse_exact(&b).unwrap_err();
        assert_eq!(e.field(), "message_header.header_size");
        // header_size beyond the message is rejected as by Chromium.
        assert!(UserMessage::parse(&[0, 0, 0, 0, 10, 0, 0, 0, 7]).is_err());
    }

    #[test]
    fn state_padding_is_ignored_but_not_exact() {
        let m = UserMessage {
            dispatchers: vec![Dispatcher::MessagePipe(MessagePipeState {
                pipe_id: 5,
                endpoint: 1,
            })],
            payload: b"x",
        };
        let mut b = Vec::new();
        m.encode(&mut b);
        // Byte 9 of the 16-byte state is message_pipe.padding.
        let o = 8 + 16 + 9;
        assert_eq!(m.field_at(o), "message_pipe.padding");
        b[o] = 0x5a;
        assert_eq!(UserMessage::parse(&b).unwrap(), m);
        assert_eq!(
            UserMessage::parse_exact(&b),
            Err(Error::NotCanonical {
                offset: o,
                field: "message_pipe.padding"
            })
        );
    }

    #[test]
    fn wrong_counts_are_named() {
        let m = UserMessage {
            dispatchers: vec![Dispatcher::SharedBuffer(SharedBufferState {
                num_bytes: 4096,
                access_mode: AccessMode::Writable,
                guid: Guid { high: 1, low: 2 },
            })],
            payload: &[],
        };
        let mut b = Vec::new();
        m.encode(&mut b);
        assert_eq!(UserMessage::parse(&b).unwrap(), m);
        // num_platform_handles 2 -> 1.
        b[20] = 1;
        let e = UserMessage::parse(&b).unwrap_err();
        assert_eq!(e.field(), "dispatcher.num_platform_handles");
        b[20] = 2;
        assert!(UserMessage::parse_checked(&b, 0, 1).is_err());
        assert!(UserMessage::parse_checked(&b, 0, 2).is_ok());
    }

    const G: Guid = Guid { high: 1, low: 2 };

    fn shared_buffer(num_bytes: u64, guid: Guid) -> Dispatcher<'static> {
        Dispatcher::SharedBuffer(SharedBufferState {
            num_bytes,
            access_mode: AccessMode::ReadOnly,
            guid,
        })
    }

    fn data_pipe(element: u32, capacity: u32, offset: u32, available: u32) -> DataPipeState {
        DataPipeState {
            options: DataPipeOptions {
                struct_size: 16,
                flags: 0,
                element_num_bytes: element,
                capacity_num_bytes: capacity,
            },
            pipe_id: 0,
            offset,
            available,
            flags: 0,
            buffer_guid: G,
        }
    }

    fn check_field(d: Dispatcher<'_>) -> Option<&'static str> {
        d.check_state().err().map(|e| e.field())
    }

    #[test]
    fn shared_buffer_checks() {
        assert_eq!(check_field(shared_buffer(1, G)), None);
        assert_eq!(
            check_field(shared_buffer(MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES, G)),
            None
        );
        assert_eq!(
            check_field(shared_buffer(0, G)),
            Some("shared_buffer.num_bytes")
        );
        assert_eq!(
            shared_buffer(MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES + 1, G).check_state(),
            Err(Error::LimitExceeded {
                field: "shared_buffer.num_bytes",
                value: 1 << 31,
                limit: (1 << 31) - 1,
            })
        );
        assert_eq!(
            check_field(shared_buffer(u64::MAX, G)),
            Some("shared_buffer.num_bytes")
        );
        assert_eq!(
            check_field(shared_buffer(4096, Guid { high: 0, low: 0 })),
            Some("shared_buffer.guid")
        );
        // Either half non-zero is a valid token.
        assert_eq!(
            check_field(shared_buffer(4096, Guid { high: 0, low: 1 })),
            None
        );
        assert_eq!(
            check_field(shared_buffer(4096, Guid { high: 1, low: 0 })),
            None
        );
    }

    #[test]
    fn data_pipe_checks() {
        let both = |s: DataPipeState| {
            let p = check_field(Dispatcher::DataPipeProducer(s));
            assert_eq!(p, check_field(Dispatcher::DataPipeConsumer(s)));
            p
        };
        // Boundaries Chromium accepts.
        assert_eq!(both(data_pipe(1, 1, 0, 1)), None);
        assert_eq!(both(data_pipe(1, 65_536, 65_535, 65_536)), None);
        assert_eq!(both(data_pipe(4, 4, 0, 0)), None);
        // Not checked by Chromium: capacity not a multiple of the element
        // size, struct_size, options.flags, state flags.
        assert_eq!(both(data_pipe(4, 10, 9, 10)), None);
        let mut odd = data_pipe(1, 8, 0, 0);
        odd.options.struct_size = 0;
        odd.options.flags = 0xffff_ffff;
        odd.flags = 0xff;
        assert_eq!(both(odd), None);
        let cap = MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES as u32;
        assert_eq!(both(data_pipe(1, cap, cap - 1, cap)), None);
        // Rejected.
        assert_eq!(
            both(data_pipe(1, 0, 0, 0)),
            Some("data_pipe.options.capacity_num_bytes")
        );
        assert_eq!(
            both(data_pipe(0, 16, 0, 0)),
            Some("data_pipe.options.element_num_bytes")
        );
        assert_eq!(
            data_pipe(8, 4, 0, 0).check(),
            Err(Error::Mismatch {
                field: "data_pipe.options.capacity_num_bytes",
                expected: 8,
                actual: 4,
            })
        );
        assert_eq!(both(data_pipe(1, 16, 16, 0)), Some("data_pipe.offset"));
        assert_eq!(both(data_pipe(1, 16, 0, 17)), Some("data_pipe.available"));
        let mut no_guid = data_pipe(1, 16, 0, 0);
        no_guid.buffer_guid = Guid::default();
        assert_eq!(both(no_guid), Some("data_pipe.buffer_guid"));
        assert_eq!(
            data_pipe(1, cap + 1, 0, 0).check(),
            Err(Error::LimitExceeded {
                field: "data_pipe.options.capacity_num_bytes",
                value: u64::from(cap) + 1,
                limit: u64::from(cap),
            })
        );
    }

    #[test]
    fn other_dispatcher_checks() {
        let pipe = Dispatcher::MessagePipe(MessagePipeState {
            pipe_id: u64::MAX,
            endpoint: -7,
        });
        assert_eq!(pipe.check_state(), Ok(()));
        assert_eq!(Dispatcher::PlatformHandle.check_state(), Ok(()));
        for t in [
            DispatcherType::WATCHER,
            DispatcherType::INVITATION,
            DispatcherType(-2),
        ] {
            let d = Dispatcher::Unknown {
                dispatcher_type: t,
                num_ports: 0,
                num_platform_handles: 0,
                state: &[],
            };
            assert_eq!(check_field(d), Some("dispatcher.type"));
        }
    }

    #[test]
    fn check_dispatchers_reports_the_first_bad_one() {
        let mut m = UserMessage {
            dispatchers: vec![Dispatcher::PlatformHandle, shared_buffer(4096, G)],
            payload: b"p",
        };
        assert_eq!(m.check_dispatchers(), Ok(()));
        assert_eq!(UserMessage::plain(b"").check_dispatchers(), Ok(()));
        m.dispatchers.push(shared_buffer(0, G));
        m.dispatchers
            .push(Dispatcher::DataPipeConsumer(data_pipe(0, 1, 0, 0)));
        assert_eq!(
            m.check_dispatchers().unwrap_err().field(),
            "shared_buffer.num_bytes"
        );
        // parse still accepts it: it is a handle failure, not a framing one.
        let mut b = Vec::new();
        m.encode(&mut b);
        assert_eq!(UserMessage::parse_exact(&b), Ok(m));
        let many = UserMessage {
            dispatchers: vec![Dispatcher::PlatformHandle; MAX_DECODABLE_DISPATCHERS as usize + 1],
            payload: &[],
        };
        assert_eq!(
            many.check_dispatchers().unwrap_err().field(),
            "message_header.num_dispatchers"
        );
    }

    #[test]
    fn dispatcher_count_limits() {
        for (n, limit) in [
            (MAX_DECODABLE_DISPATCHERS + 1, MAX_DECODABLE_DISPATCHERS),
            (MAX_DISPATCHERS_ACCEPTED + 1, MAX_DISPATCHERS_ACCEPTED),
        ] {
            let mut b = Vec::new();
            put_u32(&mut b, n);
            put_u32(&mut b, 8);
            assert_eq!(
                UserMessage::parse(&b),
                Err(Error::LimitExceeded {
                    field: "message_header.num_dispatchers",
                    value: u64::from(n),
                    limit: u64::from(limit),
                })
            );
        }
    }

    #[test]
    fn data_pipe_control() {
        let c = DataPipeControlMessage {
            command: DataPipeCommand::DATA_WAS_READ,
            num_bytes: 5,
        };
        let mut b = Vec::new();
        c.encode(&mut b);
        assert_eq!(b, [1, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(DataPipeControlMessage::parse(&b), Ok(c));
        assert!(DataPipeControlMessage::parse(&b[..7]).is_err());
    }
}
