//! MojoIpcz data pipes for the ipcz system: the ends
//! this node holds ([`DataPipes`]), each an
//! [`ipcz_node::data_pipe`] state machine over a mapping of its ring plus
//! its control portal, and the spec §8.3 rules for carrying them in
//! parcels (a DataPipe box in place, its control portal appended).
//!
//! The state machines never touch the node; [`DataPipes`] does: before and
//! after every operation on an end it *pumps* it (takes the control
//! portal's parcels into the state machine, notices the portal's peer
//! closure, puts the counts the state machine has for the peer), so the
//! runtime's signal re-reads after each input are enough for flow control.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use ipcz_node::data_pipe::{DataPipeConsumer, DataPipeError, DataPipeProducer, new_pipe_objects};
use ipcz_node::node::{DriverBox, Node, NodeHandle};
use ipcz_node::router::{Handle, RouterId};
use ipcz_wire::driver_object::{DataPipe, DataPipeEndpointType, DriverObject, SharedBuffer};
use mojo_platform_channel::{Mapping, OsRandom, SharedMemoryRegion};
use mojo_wire_kit::{Guid, RegionMode};

use crate::two_phase::DataEndState;
use crate::{MojoError, MojoResult, SignalsState, data_pipe_capacity};

/// Most data pipe ends one node holds (each costs an fd and a mapping);
/// ends beyond it are refused on creation and closed on arrival.
pub const MAX_DATA_PIPE_ENDS: usize = 4096;

/// The state machine of one end.
#[derive(Debug)]
enum Machine {
    Producer(DataPipeProducer<Mapping>),
    Consumer(DataPipeConsumer<Mapping>),
}

impl Machine {
    fn handle_control(&mut self, data: &[u8], num_handles: usize) -> Result<u32, DataPipeError> {
        match self {
            Self::Producer(p) => p.handle_control(data, num_handles),
            Self::Consumer(c) => c.handle_control(data, num_handles),
        }
    }

    fn handle_peer_closed(&mut self) {
        match self {
            Self::Producer(p) => p.handle_peer_closed(),
            Self::Consumer(c) => c.handle_peer_closed(),
        }
    }

    fn is_peer_closed(&self) -> bool {
        match self {
            Self::Producer(p) => p.is_peer_closed(),
            Self::Consumer(c) => c.is_peer_closed(),
        }
    }

    fn poll_control_parcel(&mut self) -> Option<[u8; 4]> {
        match self {
            Self::Producer(p) => p.poll_control_parcel(),
            Self::Consumer(c) => c.poll_control_parcel(),
        }
    }

    fn serialize(&self) -> Result<DataPipe, DataPipeError> {
        match self {
            Self::Producer(p) => p.serialize(),
            Self::Consumer(c) => c.serialize(),
        }
    }
}

/// A data pipe end held here.
#[derive(Debug)]
struct DataEnd {
    machine: Machine,
    control: RouterId,
    /// The ring's fds as they travel with the end.
    ring_fds: Vec<OwnedFd>,
}

/// Which kind of end an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    /// A producer.
    Producer,
    /// A consumer.
    Consumer,
}

/// The data pipe ends of one node, by the runtime's ids for them.
#[derive(Debug, Default)]
pub struct DataPipes {
    ends: HashMap<u64, DataEnd>,
    next_id: u64,
}

/// Whether `h` is a boxed DataPipe.
fn is_data_pipe(h: &NodeHandle) -> bool {
    matches!(h, Handle::Object(b) if matches!(b.object(), DriverObject::DataPipe(_)))
}

/// Closes the portals among `handles` (the boxes close their fds on drop).
pub fn discard(node: &mut Node<Mapping>, handles: Vec<NodeHandle>) {
    for h in handles {
        if let Handle::Portal(p) = h {
            let _ = node.close(p);
        }
    }
}

/// §8.3 on reading: a parcel's handles split into the application's and
/// the control portals of its DataPipe boxes (the last k handles for k
/// boxes, in order). Fewer than 2k handles, or a trailing handle that is
/// not a portal, gives every handle back as `Err` (to be discarded).
pub fn split_control_portals(
    mut handles: Vec<NodeHandle>,
) -> Result<(Vec<NodeHandle>, Vec<RouterId>), Vec<NodeHandle>> {
    let k = handles.iter().filter(|h| is_data_pipe(h)).count();
    if k == 0 {
        return Ok((handles, Vec::new()));
    }
    if handles.len() < 2 * k {
        return Err(handles);
    }
    let tail = handles.split_off(handles.len() - k);
    if !tail.iter().all(|h| matches!(h, Handle::Portal(_))) {
        handles.extend(tail);
        return Err(handles);
    }
    let portals = tail
        .into_iter()
        .filter_map(|h| match h {
            Handle::Portal(p) => Some(p),
            Handle::Object(_) => None,
        })
        .collect();
    Ok((handles, portals))
}

impl DataPipes {
    /// How many ends are held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no end is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn add(&mut self, end: DataEnd) -> u64 {
        self.next_id += 1;
        self.ends.insert(self.next_id, end);
        self.next_id
    }

    /// `MojoCreateDataPipe`: a new ring (an unsafe memfd region both ends
    /// map) and control portal pair; the producer's and consumer's ids.
    pub fn create(
        &mut self,
        node: &mut Node<Mapping>,
        element_size: u32,
        capacity: u32,
    ) -> MojoResult<(u64, u64)> {
        let capacity = data_pipe_capacity(element_size, capacity)?;
        if self.ends.len() + 2 > MAX_DATA_PIPE_ENDS {
            return Err(MojoError::ResourceExhausted);
        }
        let mut rng = OsRandom::new().map_err(|_| MojoError::Internal)?;
        let region = SharedMemoryRegion::create(RegionMode::Unsafe, capacity as usize, &mut rng)
            .map_err(|_| MojoError::ResourceExhausted)?;
        let buffer = SharedBuffer {
            buffer_size: capacity,
            mode: RegionMode::Unsafe,
            guid: Guid::from(region.guid()),
        };
        let (p, c) =
            new_pipe_objects(element_size, buffer).map_err(|_| MojoError::InvalidArgument)?;
        let map = || region.map().map_err(|_| MojoError::ResourceExhausted);
        let producer = DataPipeProducer::new(&p, map()?).map_err(|_| MojoError::Internal)?;
        let consumer = DataPipeConsumer::new(&c, map()?).map_err(|_| MojoError::Internal)?;
        let consumer_fd = region
            .fd()
            .try_clone_to_owned()
            .map_err(|_| MojoError::ResourceExhausted)?;
        let producer_fds = region.into_fds();
        let (pc, cc) = node.create_portal_pair();
        let p = self.add(DataEnd {
            machine: Machine::Producer(producer),
            control: pc,
            ring_fds: producer_fds,
        });
        let c = self.add(DataEnd {
            machine: Machine::Consumer(consumer),
            control: cc,
            ring_fds: vec![consumer_fd],
        });
        Ok((p, c))
    }

    /// Takes in the peer's control parcels and puts ours.
    fn pump(&mut self, node: &mut Node<Mapping>, id: u64) {
        let Some(end) = self.ends.get_mut(&id) else {
            return;
        };
        while !end.machine.is_peer_closed() {
            match node.get(end.control) {
                Ok(Some(parcel)) => {
                    let num_handles = parcel.handles.len();
                    discard(node, parcel.handles);
                    // A count past the ring is ignored; a malformed parcel
                    // has made the machine treat its peer as closed.
                    let _ = end.machine.handle_control(&parcel.data, num_handles);
                }
                Ok(None) => {
                    // ipcz reports closure only once every parcel arrived.
                    if node.status(end.control).is_ok_and(|s| s.peer_closed) {
                        end.machine.handle_peer_closed();
                    }
                    break;
                }
                Err(_) => end.machine.handle_peer_closed(),
            }
        }
        while let Some(parcel) = end.machine.poll_control_parcel() {
            // Refused only once the peer is gone, which needs no counts.
            let _ = node.put(end.control, parcel.to_vec(), Vec::new());
        }
    }

    /// `MojoWriteData` on producer `id` (whole elements only).
    pub fn write(&mut self, node: &mut Node<Mapping>, id: u64, data: &[u8]) -> MojoResult<usize> {
        self.pump(node, id);
        let Some(DataEnd {
            machine: Machine::Producer(p),
            ..
        }) = self.ends.get_mut(&id)
        else {
            return Err(MojoError::InvalidArgument);
        };
        if p.is_peer_closed() {
            return Err(MojoError::FailedPrecondition);
        }
        if data.len() % p.element_size().max(1) as usize != 0 {
            return Err(MojoError::InvalidArgument);
        }
        let n = p.write(data).map_err(|_| MojoError::InvalidArgument)?;
        self.pump(node, id);
        if n == 0 {
            Err(MojoError::ShouldWait)
        } else {
            Ok(n)
        }
    }

    /// `MojoReadData` on consumer `id`.
    pub fn read(&mut self, node: &mut Node<Mapping>, id: u64, buf: &mut [u8]) -> MojoResult<usize> {
        self.pump(node, id);
        let Some(DataEnd {
            machine: Machine::Consumer(c),
            ..
        }) = self.ends.get_mut(&id)
        else {
            return Err(MojoError::InvalidArgument);
        };
        let n = c.read(buf).map_err(|_| MojoError::InvalidArgument)?;
        let drained = c.is_drained();
        self.pump(node, id);
        match n {
            0 if drained => Err(MojoError::FailedPrecondition),
            0 => Err(MojoError::ShouldWait),
            n => Ok(n),
        }
    }

    /// The counts of end `id` for a two-phase call (after taking in the
    /// peer's parcels).
    pub fn state(&mut self, node: &mut Node<Mapping>, id: u64) -> MojoResult<DataEndState> {
        self.pump(node, id);
        match self.ends.get(&id).map(|e| &e.machine) {
            Some(Machine::Producer(p)) => Ok(DataEndState {
                element_size: p.element_size(),
                bytes: p.available_capacity(),
                peer_closed: p.is_peer_closed(),
            }),
            Some(Machine::Consumer(c)) => Ok(DataEndState {
                element_size: c.element_size(),
                bytes: c.bytes_available(),
                peer_closed: c.is_peer_closed(),
            }),
            None => Err(MojoError::InvalidArgument),
        }
    }

    /// Copies readable bytes of consumer `id` without consuming them.
    pub fn peek(&mut self, node: &mut Node<Mapping>, id: u64, buf: &mut [u8]) -> MojoResult<usize> {
        self.pump(node, id);
        match self.ends.get(&id).map(|e| &e.machine) {
            Some(Machine::Consumer(c)) => c.peek(buf).map_err(|_| MojoError::InvalidArgument),
            _ => Err(MojoError::InvalidArgument),
        }
    }

    /// Consumes up to `len` readable bytes of consumer `id` uncopied.
    pub fn discard(&mut self, node: &mut Node<Mapping>, id: u64, len: usize) -> MojoResult<usize> {
        self.pump(node, id);
        let n = match self.ends.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::Consumer(c)) => c.discard(len),
            _ => return Err(MojoError::InvalidArgument),
        };
        self.pump(node, id);
        Ok(n)
    }

    /// The signals of end `id` (after taking in the peer's parcels).
    pub fn signals(&mut self, node: &mut Node<Mapping>, id: u64) -> SignalsState {
        self.pump(node, id);
        match self.ends.get(&id).map(|e| &e.machine) {
            Some(Machine::Producer(p)) => {
                SignalsState::of_producer(p.is_peer_closed(), p.available_capacity())
            }
            Some(Machine::Consumer(c)) => {
                SignalsState::of_consumer(c.bytes_available(), c.is_drained(), c.is_peer_closed())
            }
            None => SignalsState::default(),
        }
    }

    /// `MojoClose` of end `id`: its counts go out, then its portal closes
    /// (the peer sees closure after them) and its ring is unmapped.
    pub fn close(&mut self, node: &mut Node<Mapping>, id: u64) {
        self.pump(node, id);
        if let Some(end) = self.ends.remove(&id) {
            let _ = node.close(end.control);
        }
    }

    /// End `id` leaving in a parcel: its boxed DataPipe object and its
    /// control portal (for the end of the handle list). The end is no
    /// longer held here, whatever the result.
    pub fn take_for_sending(
        &mut self,
        node: &mut Node<Mapping>,
        id: u64,
    ) -> MojoResult<(NodeHandle, RouterId)> {
        self.pump(node, id);
        let end = self.ends.remove(&id).ok_or(MojoError::InvalidArgument)?;
        let boxed = end
            .machine
            .serialize()
            .map_err(|_| MojoError::FailedPrecondition)
            .and_then(|object| {
                DriverBox::new(DriverObject::DataPipe(object), end.ring_fds)
                    .map_err(|_| MojoError::Internal)
            });
        match boxed {
            Ok(b) => Ok((Handle::Object(b), end.control)),
            Err(e) => {
                let _ = node.close(end.control);
                Err(e)
            }
        }
    }

    /// A DataPipe object that arrived (with its ring fds) and its control
    /// portal, held here from now on: its id and kind. The ring is imported
    /// by the platform crate's one ring policy
    /// ([`mojo_platform_channel::import_peer_ring`]: mapped even if
    /// unsealed, as real Chromium rings are), whatever this node's trust in
    /// its peer's other memory. A bad object, a ring that cannot be mapped,
    /// or one end too many closes the portal and gives `None`.
    pub fn adopt(
        &mut self,
        node: &mut Node<Mapping>,
        object: &DataPipe,
        fds: Vec<OwnedFd>,
        control: RouterId,
    ) -> Option<(u64, EndKind)> {
        let adopted = self.adopt_inner(object, fds, control);
        match adopted {
            Some(end) if self.ends.len() < MAX_DATA_PIPE_ENDS => {
                let kind = match end.machine {
                    Machine::Producer(_) => EndKind::Producer,
                    Machine::Consumer(_) => EndKind::Consumer,
                };
                let id = self.add(end);
                // Parcels queued on the portal before it moved are ours now.
                self.pump(node, id);
                Some((id, kind))
            }
            _ => {
                let _ = node.close(control);
                None
            }
        }
    }

    fn adopt_inner(
        &self,
        object: &DataPipe,
        fds: Vec<OwnedFd>,
        control: RouterId,
    ) -> Option<DataEnd> {
        let buffer = object.buffer;
        // A ring is one unsafe region (written by the producer, its counts
        // by nobody else): a read-only or writable-mode region is none.
        if buffer.mode != RegionMode::Unsafe {
            return None;
        }
        let region = mojo_platform_channel::import_peer_ring(
            buffer.buffer_size as usize,
            u128::from(buffer.guid),
            fds,
        )
        .ok()?;
        let mapping = region.map().ok()?;
        let machine = match object.endpoint_type {
            DataPipeEndpointType::PRODUCER => {
                Machine::Producer(DataPipeProducer::new(object, mapping).ok()?)
            }
            DataPipeEndpointType::CONSUMER => {
                Machine::Consumer(DataPipeConsumer::new(object, mapping).ok()?)
            }
            _ => return None,
        };
        Some(DataEnd {
            machine,
            control,
            ring_fds: region.into_fds(),
        })
    }
}

#[cfg(test)]
mod tests;
