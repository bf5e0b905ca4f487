//! Dispatchers (attached Mojo handles): their types, their serialized
//! states (layouts in [`crate::layouts`]) and how a state is decoded from its
//! dispatcher header values.

use mojo_wire_kit::le::{U32, U64};
use mojo_wire_kit::{Guid, RegionMode, WireLayout, protocol_enum};

use crate::codec::{Reader, Writer, len_u32};
use crate::error::{Error, Result};
use crate::layouts::{DataPipeStateBody, MessagePipeStateBody, SharedBufferStateBody};

protocol_enum! {
    /// A dispatcher type (i32). Unknown values are kept.
    pub struct DispatcherType(pub i32), unknown "DISPATCHER_TYPE_{}", debug wrapped {
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

/// `SHARED_BUFFER` state (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SharedBufferState {
    /// Region size (non-zero and <= i32::MAX for the receiver; see
    /// [`Dispatcher::check_state`]).
    pub num_bytes: u64,
    /// Access mode; decides the fd count.
    pub access_mode: RegionMode,
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
            Self::SharedBuffer(s) => s.access_mode.num_fds() as u32,
            Self::Unknown {
                num_platform_handles,
                ..
            } => *num_platform_handles,
        }
    }

    pub(super) fn write_state(&self, w: &mut Writer<'_>) {
        match self {
            Self::MessagePipe(s) => w.layout(&MessagePipeStateBody {
                pipe_id: U64::new(s.pipe_id),
                endpoint: s.endpoint as u8,
                padding: [0; 7],
            }),
            Self::DataPipeProducer(s) | Self::DataPipeConsumer(s) => w.layout(&DataPipeStateBody {
                struct_size: U32::new(s.options.struct_size),
                options_flags: U32::new(s.options.flags),
                element_num_bytes: U32::new(s.options.element_num_bytes),
                capacity_num_bytes: U32::new(s.options.capacity_num_bytes),
                pipe_id: U64::new(s.pipe_id),
                offset: U32::new(s.offset),
                available: U32::new(s.available),
                flags: s.flags,
                buffer_guid: s.buffer_guid.into(),
                padding: [0; 7],
            }),
            Self::SharedBuffer(s) => w.layout(&SharedBufferStateBody {
                num_bytes: U64::new(s.num_bytes),
                access_mode: U32::new(s.access_mode.to_wire()),
                guid: s.guid.into(),
                padding: [0; 4],
            }),
            Self::PlatformHandle => {}
            Self::Unknown { state, .. } => w.bytes(state),
        }
    }

    pub(super) fn state_field_at(&self, o: usize) -> &'static str {
        let name = match self {
            Self::MessagePipe(_) => MessagePipeStateBody::field_at(o),
            Self::DataPipeProducer(_) | Self::DataPipeConsumer(_) => DataPipeStateBody::field_at(o),
            Self::SharedBuffer(_) => SharedBufferStateBody::field_at(o),
            Self::PlatformHandle => Some("platform_handle"),
            Self::Unknown { .. } => Some("dispatcher.state"),
        };
        name.unwrap_or("dispatcher.state")
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

/// Decodes one dispatcher from its header values and state bytes, checking
/// the sizes and counts a Chromium reader checks.
pub(super) fn decode_dispatcher<'a>(
    dispatcher_type: DispatcherType,
    num_ports: u32,
    num_platform_handles: u32,
    state: &'a [u8],
) -> Result<Dispatcher<'a>> {
    let num_bytes = len_u32("dispatcher.num_bytes", state.len())?;
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
            let s: MessagePipeStateBody = r.layout()?;
            Dispatcher::MessagePipe(MessagePipeState {
                pipe_id: s.pipe_id.get(),
                endpoint: s.endpoint as i8,
            })
        }
        DispatcherType::DATA_PIPE_PRODUCER | DispatcherType::DATA_PIPE_CONSUMER => {
            expect("dispatcher.num_bytes", DataPipeState::LEN as u32, num_bytes)?;
            expect("dispatcher.num_ports", 1, num_ports)?;
            expect("dispatcher.num_platform_handles", 1, num_platform_handles)?;
            let b: DataPipeStateBody = r.layout()?;
            let s = DataPipeState {
                options: DataPipeOptions {
                    struct_size: b.struct_size.get(),
                    flags: b.options_flags.get(),
                    element_num_bytes: b.element_num_bytes.get(),
                    capacity_num_bytes: b.capacity_num_bytes.get(),
                },
                pipe_id: b.pipe_id.get(),
                offset: b.offset.get(),
                available: b.available.get(),
                flags: b.flags,
                buffer_guid: b.buffer_guid.into(),
            };
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
            let b: SharedBufferStateBody = r.layout()?;
            let mode = b.access_mode.get();
            let access_mode = RegionMode::from_wire(mode).ok_or(Error::InvalidValue {
                field: "shared_buffer.access_mode",
                value: u64::from(mode),
                reason: "not 0 (read-only), 1 (writable) or 2 (unsafe)",
            })?;
            expect(
                "dispatcher.num_platform_handles",
                access_mode.num_fds() as u32,
                num_platform_handles,
            )?;
            Dispatcher::SharedBuffer(SharedBufferState {
                num_bytes: b.num_bytes.get(),
                access_mode,
                guid: b.guid.into(),
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
