//! Mojo handles attached to user messages (spec §5.2): the public
//! [`Handle`] values, the form they take inside the ports layer while a
//! message is queued ([`Body`]), and their serialization to and from wire
//! dispatchers with exact fd accounting.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mojo_legacy_wire::PortName;
use mojo_legacy_wire::user_message::{
    DataPipeState, Dispatcher, MessagePipeState, SharedBufferState,
};
use mojo_wire_kit::{Guid, RegionMode};

use super::error::{HandleError, NodeError};

/// A user-held message pipe end of a [`LegacyNode`](super::LegacyNode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRef(PortName);

impl PortRef {
    pub(crate) fn new(name: PortName) -> Self {
        Self(name)
    }

    /// The port's name on its node.
    pub fn name(self) -> PortName {
        self.0
    }
}

/// A shared memory region in transit: its fds, size, id and access mode.
/// The fd count always matches the mode (writable: read-write and
/// read-only fd of the same file; read-only and unsafe: one fd).
#[derive(Debug)]
pub struct SharedBuffer {
    size: u64,
    guid: Guid,
    mode: RegionMode,
    fds: Vec<OwnedFd>,
}

impl SharedBuffer {
    /// A region of `size` bytes (non-zero) with id `guid` (valid) and
    /// `mode`, whose `fds` are as many as [`RegionMode::num_fds`] says. The
    /// fds are dropped (closed) when the value is refused.
    pub fn new(
        size: u64,
        guid: Guid,
        mode: RegionMode,
        fds: Vec<OwnedFd>,
    ) -> Result<Self, HandleError> {
        if size == 0 {
            return Err(HandleError::ZeroSizedBuffer);
        }
        if !guid.is_valid() {
            return Err(HandleError::InvalidGuid);
        }
        if fds.len() != mode.num_fds() {
            return Err(HandleError::SharedBufferFdCount {
                mode,
                expected: mode.num_fds(),
                actual: fds.len(),
            });
        }
        Ok(Self {
            size,
            guid,
            mode,
            fds,
        })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Region id.
    pub fn guid(&self) -> Guid {
        self.guid
    }

    /// Access mode.
    pub fn mode(&self) -> RegionMode {
        self.mode
    }

    /// The fds, in wire order (read-write first for a writable region).
    pub fn fds(&self) -> &[OwnedFd] {
        &self.fds
    }

    /// Takes the fds.
    pub fn into_fds(self) -> Vec<OwnedFd> {
        self.fds
    }
}

/// One end of a data pipe in transit: the dispatcher state, its control
/// port and its ring buffer fd (an unsafe-mode region). The data pipe state
/// machine lives elsewhere; this layer only carries the values.
#[derive(Debug)]
pub struct DataPipeEnd {
    /// The serialized producer or consumer state (§5.2).
    pub state: DataPipeState,
    /// The pipe's control port (a message pipe end).
    pub control_port: PortRef,
    /// The ring buffer region.
    pub ring: OwnedFd,
}

/// A Mojo handle attached to a user message.
#[derive(Debug)]
pub enum Handle {
    /// A message pipe end; it leaves the sender and arrives as a new port.
    MessagePipe(PortRef),
    /// A shared memory region, mode kept.
    SharedBuffer(SharedBuffer),
    /// A wrapped platform handle (any fd).
    PlatformHandle(OwnedFd),
    /// A data pipe producer end.
    DataPipeProducer(DataPipeEnd),
    /// A data pipe consumer end.
    DataPipeConsumer(DataPipeEnd),
}

impl Handle {
    /// Fds the handle travels with.
    pub fn num_fds(&self) -> usize {
        match self {
            Self::MessagePipe(_) => 0,
            Self::SharedBuffer(b) => b.fds.len(),
            Self::PlatformHandle(_) | Self::DataPipeProducer(_) | Self::DataPipeConsumer(_) => 1,
        }
    }
}

/// Counts fds held on behalf of one peer; a [`FdTicket`] gives its share
/// back when the message holding the fds goes away, however it goes.
#[derive(Debug, Default)]
pub(crate) struct FdCounter(Arc<AtomicUsize>);

impl FdCounter {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn ticket(&self, count: usize) -> Option<FdTicket> {
        (count > 0).then(|| {
            self.0.fetch_add(count, Ordering::Relaxed);
            FdTicket {
                counter: Arc::clone(&self.0),
                count,
            }
        })
    }
}

/// `count` fds of a received message, counted against its sender.
#[derive(Debug)]
pub(crate) struct FdTicket {
    counter: Arc<AtomicUsize>,
    count: usize,
}

impl Drop for FdTicket {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.count, Ordering::Relaxed);
    }
}

/// A handle without its port (the ports layer carries that separately).
#[derive(Debug)]
pub(crate) enum Attachment {
    MessagePipe,
    SharedBuffer(SharedBuffer),
    PlatformHandle(OwnedFd),
    DataPipe {
        producer: bool,
        state: DataPipeState,
        ring: OwnedFd,
    },
}

impl Attachment {
    fn num_ports(&self) -> usize {
        match self {
            Self::MessagePipe | Self::DataPipe { .. } => 1,
            Self::SharedBuffer(_) | Self::PlatformHandle(_) => 0,
        }
    }

    fn num_fds(&self) -> usize {
        match self {
            Self::MessagePipe => 0,
            Self::SharedBuffer(b) => b.fds.len(),
            Self::PlatformHandle(_) | Self::DataPipe { .. } => 1,
        }
    }
}

/// The payload a user message carries through the ports layer.
#[derive(Debug, Default)]
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    pub(crate) attachments: Vec<Attachment>,
    /// Set for received messages that hold fds: counted against the peer.
    pub(crate) ticket: Option<FdTicket>,
    /// Set for every message that holds fds: counted against the node.
    pub(crate) node_ticket: Option<FdTicket>,
}

impl Body {
    pub(crate) fn num_fds(&self) -> usize {
        self.attachments.iter().map(Attachment::num_fds).sum()
    }
}

/// Splits handles into the attachments a [`Body`] keeps and the ports the
/// ports layer moves, in dispatcher order.
pub(crate) fn split_handles(handles: Vec<Handle>) -> (Vec<Attachment>, Vec<PortName>) {
    let mut attachments = Vec::with_capacity(handles.len());
    let mut ports = Vec::new();
    for h in handles {
        attachments.push(match h {
            Handle::MessagePipe(p) => {
                ports.push(p.name());
                Attachment::MessagePipe
            }
            Handle::SharedBuffer(b) => Attachment::SharedBuffer(b),
            Handle::PlatformHandle(fd) => Attachment::PlatformHandle(fd),
            Handle::DataPipeProducer(d) => {
                ports.push(d.control_port.name());
                Attachment::DataPipe {
                    producer: true,
                    state: d.state,
                    ring: d.ring,
                }
            }
            Handle::DataPipeConsumer(d) => {
                ports.push(d.control_port.name());
                Attachment::DataPipe {
                    producer: false,
                    state: d.state,
                    ring: d.ring,
                }
            }
        });
    }
    (attachments, ports)
}

/// Rebuilds the handles of a message read from a port: `ports` are the
/// message's ports (now user-held), consumed in attachment order. Both
/// counts were checked when the message arrived, so a mismatch means a bug;
/// it is reported, never papered over.
pub(crate) fn join_handles(
    attachments: Vec<Attachment>,
    ports: Vec<PortName>,
) -> Result<Vec<Handle>, (usize, usize)> {
    let claimed: usize = attachments.iter().map(Attachment::num_ports).sum();
    if claimed != ports.len() {
        return Err((claimed, ports.len()));
    }
    let mut ports = ports.into_iter().map(PortRef::new);
    let mut handles = Vec::with_capacity(attachments.len());
    for a in attachments {
        handles.push(match a {
            Attachment::MessagePipe => match ports.next() {
                Some(p) => Handle::MessagePipe(p),
                None => return Err((claimed, 0)),
            },
            Attachment::SharedBuffer(b) => Handle::SharedBuffer(b),
            Attachment::PlatformHandle(fd) => Handle::PlatformHandle(fd),
            Attachment::DataPipe {
                producer,
                state,
                ring,
            } => {
                let Some(control_port) = ports.next() else {
                    return Err((claimed, 0));
                };
                let end = DataPipeEnd {
                    state,
                    control_port,
                    ring,
                };
                if producer {
                    Handle::DataPipeProducer(end)
                } else {
                    Handle::DataPipeConsumer(end)
                }
            }
        });
    }
    Ok(handles)
}

/// The state a message pipe end is sent with: what the recorded C++ senders
/// write (no tracing id, endpoint 1; spec §5.2).
const MESSAGE_PIPE_STATE: MessagePipeState = MessagePipeState {
    pipe_id: 0,
    endpoint: 1,
};

/// Serializes attachments as wire dispatchers; the fds come out in the
/// order the dispatchers claim them.
pub(crate) fn to_dispatchers(
    attachments: Vec<Attachment>,
) -> (Vec<Dispatcher<'static>>, Vec<OwnedFd>) {
    let mut dispatchers = Vec::with_capacity(attachments.len());
    let mut fds = Vec::new();
    for a in attachments {
        dispatchers.push(match a {
            Attachment::MessagePipe => Dispatcher::MessagePipe(MESSAGE_PIPE_STATE),
            Attachment::SharedBuffer(b) => {
                fds.extend(b.fds);
                Dispatcher::SharedBuffer(SharedBufferState {
                    num_bytes: b.size,
                    access_mode: b.mode,
                    guid: b.guid,
                })
            }
            Attachment::PlatformHandle(fd) => {
                fds.push(fd);
                Dispatcher::PlatformHandle
            }
            Attachment::DataPipe {
                producer,
                state,
                ring,
            } => {
                fds.push(ring);
                if producer {
                    Dispatcher::DataPipeProducer(state)
                } else {
                    Dispatcher::DataPipeConsumer(state)
                }
            }
        });
    }
    (dispatchers, fds)
}

/// Deserializes received dispatchers, checking them as a Chromium reader
/// does and taking their fds from `fds` in order. The dispatchers must
/// claim exactly `num_ports` ports and at most `fds.len()` fds; fds nobody
/// claims are dropped (closed) with the iterator.
pub(crate) fn from_dispatchers(
    dispatchers: &[Dispatcher<'_>],
    num_ports: usize,
    fds: Vec<OwnedFd>,
) -> Result<Vec<Attachment>, NodeError> {
    let claimed_ports: u64 = dispatchers.iter().map(|d| u64::from(d.num_ports())).sum();
    if claimed_ports != num_ports as u64 {
        return Err(NodeError::PortClaimMismatch {
            claimed: claimed_ports,
            attached: num_ports,
        });
    }
    let claimed_fds: u64 = dispatchers
        .iter()
        .map(|d| u64::from(d.num_platform_handles()))
        .sum();
    if claimed_fds > fds.len() as u64 {
        return Err(NodeError::FdClaimsExceedFds {
            claimed: claimed_fds,
            received: fds.len(),
        });
    }
    let mut fds = fds.into_iter();
    let mut take = |n: usize| -> Result<Vec<OwnedFd>, NodeError> {
        let got: Vec<OwnedFd> = fds.by_ref().take(n).collect();
        if got.len() == n {
            Ok(got)
        } else {
            Err(NodeError::FdClaimsExceedFds {
                claimed: claimed_fds,
                received: got.len(),
            })
        }
    };
    let mut out = Vec::with_capacity(dispatchers.len());
    for d in dispatchers {
        d.check_state().map_err(|error| NodeError::Malformed {
            layer: super::error::Layer::Dispatcher,
            error,
        })?;
        out.push(match d {
            Dispatcher::MessagePipe(_) => Attachment::MessagePipe,
            Dispatcher::SharedBuffer(s) => {
                let fds = take(s.access_mode.num_fds())?;
                let buffer = SharedBuffer::new(s.num_bytes, s.guid, s.access_mode, fds)
                    .map_err(NodeError::BadHandle)?;
                Attachment::SharedBuffer(buffer)
            }
            Dispatcher::PlatformHandle => {
                let fd = take(1)?.pop().ok_or(NodeError::FdClaimsExceedFds {
                    claimed: claimed_fds,
                    received: 0,
                })?;
                Attachment::PlatformHandle(fd)
            }
            Dispatcher::DataPipeProducer(state) | Dispatcher::DataPipeConsumer(state) => {
                let ring = take(1)?.pop().ok_or(NodeError::FdClaimsExceedFds {
                    claimed: claimed_fds,
                    received: 0,
                })?;
                Attachment::DataPipe {
                    producer: matches!(d, Dispatcher::DataPipeProducer(_)),
                    state: *state,
                    ring,
                }
            }
            // `check_state` refuses every other type.
            Dispatcher::Unknown {
                dispatcher_type, ..
            } => {
                return Err(NodeError::UntransferableDispatcher {
                    dispatcher_type: *dispatcher_type,
                });
            }
        });
    }
    Ok(out)
}
