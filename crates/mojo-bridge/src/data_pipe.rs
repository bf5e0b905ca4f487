//! Data pipe translation (ipcz §8.3, legacy §5.2): a data pipe end arriving
//! from one side is kept by the bridge, which becomes its peer's peer there;
//! a fresh pipe is made on the other side, whose matching end is forwarded,
//! and the bridge pumps bytes between the two rings.
//!
//! - Flow control: never more is read from one ring than the other has
//!   room for now; the rest waits in its ring until a control message
//!   (the nodes' readiness events) says room or data appeared.
//! - Closure: once the arriving side's producer closed and everything it
//!   wrote was forwarded, or the far consumer closed, both ends the bridge
//!   holds are closed (the last control message is sent first).
//! - Memory comes from the injected [`RingMemory`]; the limits
//!   [`MAX_DATA_PIPES`], [`MAX_DATA_PIPE_CAPACITY`] and
//!   [`MAX_DATA_PIPE_BYTES`] bound it, and a pipe beyond them is
//!   [`Untranslatable`].

use std::fmt;
use std::os::fd::OwnedFd;

use ipcz_node::data_pipe as ipcz_dp;
use ipcz_node::node::{DriverBox, NodeHandle};
use ipcz_node::router::{Handle as IpczHandle, RouterId};
use ipcz_wire::driver_object::{
    DataPipe as IpczDataPipe, DataPipeEndpointType, DriverObject, SharedBuffer,
};
use mojo_legacy_node::data_pipe as legacy_dp;
use mojo_legacy_node::node::{DataPipeEnd, Handle as LegacyHandle, PortRef};
use mojo_legacy_wire::user_message::DataPipeOptions;
use mojo_wire_kit::{Guid, RegionMode, SharedMemory};

use crate::{Bridge, Untranslatable};

/// Most data pipes bridged at once.
pub const MAX_DATA_PIPES: usize = 64;

/// Largest ring capacity of one bridged data pipe (Mojo's default is
/// 64 KiB).
pub const MAX_DATA_PIPE_CAPACITY: u32 = 16 << 20;

/// Most ring bytes mapped for all bridged pipes together (each pipe maps
/// two rings: the arriving one and the fresh one).
pub const MAX_DATA_PIPE_BYTES: u64 = 256 << 20;

/// Most bytes moved between two rings in one copy.
const PUMP_CHUNK: usize = 64 << 10;

/// A fresh unsafe-mode region for a data pipe ring.
#[derive(Debug)]
pub struct NewRing<M> {
    /// The bridge's mapping of it.
    pub memory: M,
    /// Its GUID.
    pub guid: Guid,
    /// Its fds (one, for an unsafe region).
    pub fds: Vec<OwnedFd>,
}

/// Why ring memory could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingMemoryError {
    /// A region of `size` bytes could not be created.
    Create {
        /// Its size.
        size: usize,
        /// What the platform said.
        reason: String,
    },
    /// A region of `size` bytes that arrived could not be mapped.
    Map {
        /// Its size.
        size: usize,
        /// What the platform said.
        reason: String,
    },
}

impl fmt::Display for RingMemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create { size, reason } => {
                write!(f, "creating a {size}-byte ring region failed: {reason}")
            }
            Self::Map { size, reason } => {
                write!(f, "mapping a {size}-byte ring region failed: {reason}")
            }
        }
    }
}

impl std::error::Error for RingMemoryError {}

/// Where the bridge gets data pipe rings: the driver implements it with
/// the platform crate, tests with shared heaps.
pub trait RingMemory<M> {
    /// A new unsafe-mode region of `size` bytes, mapped.
    fn create(&mut self, size: usize) -> Result<NewRing<M>, RingMemoryError>;

    /// Maps an unsafe-mode region of `size` bytes named `guid` that arrived
    /// with `fds`; the fds are the implementation's to keep or close.
    fn map(&mut self, size: usize, guid: Guid, fds: Vec<OwnedFd>) -> Result<M, RingMemoryError>;
}

/// The injected [`RingMemory`], boxed.
pub(crate) struct Rings<M>(pub(crate) Box<dyn RingMemory<M>>);

impl<M> fmt::Debug for Rings<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RingMemory")
    }
}

/// The two ends the bridge holds for one bridged pipe, by direction.
#[derive(Debug)]
enum Pump<M> {
    /// Bytes from a legacy producer to an ipcz consumer.
    LegacyToIpcz {
        from: legacy_dp::DataPipeConsumer<M>,
        to: ipcz_dp::DataPipeProducer<M>,
    },
    /// Bytes from an ipcz producer to a legacy consumer.
    IpczToLegacy {
        from: ipcz_dp::DataPipeConsumer<M>,
        to: legacy_dp::DataPipeProducer<M>,
    },
}

/// One bridged data pipe: its two ends, their control pipes and the ring
/// bytes it accounts for.
#[derive(Debug)]
pub(crate) struct BridgedPipe<M> {
    pump: Pump<M>,
    port: PortRef,
    portal: RouterId,
    ring_bytes: u64,
}

/// Which end kind arrived.
#[derive(Clone, Copy)]
enum Kind {
    Producer,
    Consumer,
}

impl<M: SharedMemory> Bridge<M> {
    /// Installs the ring memory factory: from now on data pipe ends are
    /// translated instead of being [`Untranslatable`].
    pub fn set_ring_memory(&mut self, rings: Box<dyn RingMemory<M>>) {
        self.rings = Some(Rings(rings));
    }

    /// As [`set_ring_memory`](Self::set_ring_memory), builder style.
    #[must_use]
    pub fn with_ring_memory(mut self, rings: Box<dyn RingMemory<M>>) -> Self {
        self.set_ring_memory(rings);
        self
    }

    /// Whether data pipe ends are translated.
    pub fn translates_data_pipes(&self) -> bool {
        self.rings.is_some()
    }

    /// Data pipes bridged now.
    pub fn data_pipe_count(&self) -> usize {
        self.pipes.len()
    }

    /// Ring bytes mapped for bridged data pipes now.
    pub fn data_pipe_ring_bytes(&self) -> u64 {
        self.ring_bytes
    }

    /// Checks the limits for a pipe of `capacity` bytes (two rings).
    fn admit(&self, capacity: u32) -> Result<u64, Untranslatable> {
        if self.pipes.len() >= MAX_DATA_PIPES {
            return Err(Untranslatable::TooManyDataPipes {
                limit: MAX_DATA_PIPES,
            });
        }
        let bytes = 2 * u64::from(capacity);
        if capacity > MAX_DATA_PIPE_CAPACITY
            || self.ring_bytes.saturating_add(bytes) > MAX_DATA_PIPE_BYTES
        {
            return Err(Untranslatable::DataPipeMemory {
                capacity: u64::from(capacity),
                in_use: self.ring_bytes,
            });
        }
        Ok(bytes)
    }

    fn new_ring(&mut self, size: u32) -> Result<NewRing<M>, Untranslatable> {
        let rings = self.rings.as_mut().ok_or(Untranslatable::DataPipeRing)?;
        rings.0.create(size as usize).map_err(|e| {
            log::warn!("data pipe ring: {e}");
            Untranslatable::DataPipeRing
        })
    }

    fn map_ring(&mut self, size: u32, guid: Guid, fds: Vec<OwnedFd>) -> Result<M, Untranslatable> {
        let rings = self.rings.as_mut().ok_or(Untranslatable::DataPipeRing)?;
        rings.0.map(size as usize, guid, fds).map_err(|e| {
            log::warn!("data pipe ring: {e}");
            Untranslatable::DataPipeRing
        })
    }

    /// Bridges a legacy data pipe end: the bridge keeps it and returns the
    /// matching end of a fresh ipcz pipe (its box and control portal). On
    /// an error the end's control port is closed.
    pub(crate) fn bridge_legacy_end(
        &mut self,
        end: DataPipeEnd,
        producer: bool,
    ) -> Result<(NodeHandle, RouterId), Untranslatable> {
        let port = end.control_port;
        let result = self.try_bridge_legacy_end(end, producer);
        if result.is_err() {
            let _ = self.legacy.close_port(port);
        }
        result
    }

    fn try_bridge_legacy_end(
        &mut self,
        end: DataPipeEnd,
        producer: bool,
    ) -> Result<(NodeHandle, RouterId), Untranslatable> {
        let options = end.state.options;
        let capacity = options.capacity_num_bytes;
        let ring_bytes = self.admit(capacity)?;
        let ring = self.map_ring(capacity, end.state.buffer_guid, vec![end.ring])?;
        let fresh = self.new_ring(capacity)?;
        let buffer = SharedBuffer {
            buffer_size: capacity,
            mode: RegionMode::Unsafe,
            guid: fresh.guid,
        };
        let (p, c) = ipcz_dp::new_pipe_objects(options.element_num_bytes, buffer)
            .map_err(Untranslatable::BadIpczDataPipe)?;
        let (pump, forwarded) = if producer {
            let to = legacy_dp::DataPipeProducer::new(&end.state, ring)
                .map_err(Untranslatable::BadLegacyDataPipe)?;
            let from = ipcz_dp::DataPipeConsumer::new(&c, fresh.memory)
                .map_err(Untranslatable::BadIpczDataPipe)?;
            (Pump::IpczToLegacy { from, to }, p)
        } else {
            let from = legacy_dp::DataPipeConsumer::new(&end.state, ring)
                .map_err(Untranslatable::BadLegacyDataPipe)?;
            let to = ipcz_dp::DataPipeProducer::new(&p, fresh.memory)
                .map_err(Untranslatable::BadIpczDataPipe)?;
            (Pump::LegacyToIpcz { from, to }, c)
        };
        let boxed = DriverBox::new(DriverObject::DataPipe(forwarded), fresh.fds)
            .map_err(|_| Untranslatable::DataPipeRing)?;
        let (ours, theirs) = self.ipcz.create_portal_pair();
        self.add_pipe(BridgedPipe {
            pump,
            port: end.control_port,
            portal: ours,
            ring_bytes,
        });
        Ok((IpczHandle::Object(boxed), theirs))
    }

    /// Bridges an ipcz data pipe end (its object, ring fds and control
    /// portal): the bridge keeps it and returns the matching end of a
    /// fresh legacy pipe. On an error the control portal is closed.
    pub(crate) fn bridge_ipcz_end(
        &mut self,
        object: IpczDataPipe,
        fds: Vec<OwnedFd>,
        control: RouterId,
    ) -> Result<LegacyHandle, Untranslatable> {
        let result = self.try_bridge_ipcz_end(object, fds, control);
        if result.is_err() {
            let _ = self.ipcz.close(control);
        }
        result
    }

    fn try_bridge_ipcz_end(
        &mut self,
        object: IpczDataPipe,
        fds: Vec<OwnedFd>,
        control: RouterId,
    ) -> Result<LegacyHandle, Untranslatable> {
        let kind = match object.endpoint_type {
            DataPipeEndpointType::PRODUCER => Kind::Producer,
            DataPipeEndpointType::CONSUMER => Kind::Consumer,
            found => {
                return Err(Untranslatable::BadIpczDataPipe(
                    ipcz_dp::DataPipeError::WrongEndpointType {
                        expected: DataPipeEndpointType::PRODUCER,
                        found,
                    },
                ));
            }
        };
        let capacity = object.buffer.buffer_size;
        let ring_bytes = self.admit(capacity)?;
        if object.buffer.mode != RegionMode::Unsafe {
            return Err(Untranslatable::DataPipeRing);
        }
        let ring = self.map_ring(capacity, object.buffer.guid, fds)?;
        let mut fresh = self.new_ring(capacity)?;
        let options = DataPipeOptions {
            struct_size: 16,
            flags: 0,
            element_num_bytes: object.element_size,
            capacity_num_bytes: capacity,
        };
        self.next_pipe_id = self.next_pipe_id.wrapping_add(1);
        let (p, c) = legacy_dp::new_pipe_states(options, self.next_pipe_id, fresh.guid)
            .map_err(Untranslatable::BadLegacyDataPipe)?;
        let (pump, state) = match kind {
            Kind::Producer => {
                let to = ipcz_dp::DataPipeProducer::new(&object, ring)
                    .map_err(Untranslatable::BadIpczDataPipe)?;
                let from = legacy_dp::DataPipeConsumer::new(&c, fresh.memory)
                    .map_err(Untranslatable::BadLegacyDataPipe)?;
                (Pump::LegacyToIpcz { from, to }, p)
            }
            Kind::Consumer => {
                let from = ipcz_dp::DataPipeConsumer::new(&object, ring)
                    .map_err(Untranslatable::BadIpczDataPipe)?;
                let to = legacy_dp::DataPipeProducer::new(&p, fresh.memory)
                    .map_err(Untranslatable::BadLegacyDataPipe)?;
                (Pump::IpczToLegacy { from, to }, c)
            }
        };
        let (Some(ring_fd), true) = (fresh.fds.pop(), fresh.fds.is_empty()) else {
            return Err(Untranslatable::DataPipeRing);
        };
        let (ours, theirs) = self
            .legacy
            .create_pipe()
            .map_err(|_| Untranslatable::Refused)?;
        self.add_pipe(BridgedPipe {
            pump,
            port: ours,
            portal: control,
            ring_bytes,
        });
        let end = DataPipeEnd {
            state,
            control_port: theirs,
            ring: ring_fd,
        };
        Ok(match kind {
            Kind::Producer => LegacyHandle::DataPipeProducer(end),
            Kind::Consumer => LegacyHandle::DataPipeConsumer(end),
        })
    }

    fn add_pipe(&mut self, pipe: BridgedPipe<M>) {
        let id = self.next_pipe;
        self.next_pipe += 1;
        self.ring_bytes = self.ring_bytes.saturating_add(pipe.ring_bytes);
        self.pipe_by_port.insert(pipe.port, id);
        self.pipe_by_portal.insert(pipe.portal, id);
        log::debug!(
            "data pipe {id} bridged: port {:?}, portal {:?}",
            pipe.port,
            pipe.portal
        );
        self.pipes.insert(id, pipe);
        self.dirty_pipes.insert(id);
    }

    /// Closes a bridged pipe's two ends and frees its rings.
    fn drop_pipe(&mut self, id: u64, pipe: BridgedPipe<M>) {
        self.pipe_by_port.remove(&pipe.port);
        self.pipe_by_portal.remove(&pipe.portal);
        self.dirty_pipes.remove(&id);
        self.ring_bytes = self.ring_bytes.saturating_sub(pipe.ring_bytes);
        let _ = self.legacy.close_port(pipe.port);
        let _ = self.ipcz.close(pipe.portal);
        log::debug!("data pipe {id} closed");
    }

    /// Closes every bridged pipe after a last pump (shutdown).
    pub(crate) fn close_all_pipes(&mut self) {
        let ids: Vec<u64> = self.pipes.keys().copied().collect();
        for id in ids {
            self.pump_pipe(id);
            if let Some(pipe) = self.pipes.remove(&id) {
                self.drop_pipe(id, pipe);
            }
        }
    }

    /// Takes control messages in on both sides, moves what fits, sends
    /// control messages out, and closes the pipe once it is over.
    pub(crate) fn pump_pipe(&mut self, id: u64) {
        let Some(mut pipe) = self.pipes.remove(&id) else {
            return;
        };
        let over = self.pump(&mut pipe).is_err() || pipe.is_over();
        if over {
            self.drop_pipe(id, pipe);
        } else {
            self.pipes.insert(id, pipe);
        }
    }

    fn pump(&mut self, pipe: &mut BridgedPipe<M>) -> Result<(), ()> {
        // Control messages in, legacy side.
        loop {
            match self.legacy.read_message(pipe.port) {
                Ok(Some((bytes, handles))) => {
                    self.discard_legacy(handles);
                    // A bad message makes the end treat its peer as
                    // closed, which `is_over` sees.
                    match &mut pipe.pump {
                        Pump::LegacyToIpcz { from, .. } => {
                            let _ = from.handle_control(&bytes);
                        }
                        Pump::IpczToLegacy { to, .. } => {
                            let _ = to.handle_control(&bytes);
                        }
                    }
                }
                Ok(None) => break,
                Err(mojo_legacy_node::node::ApiError::InconsistentMessage { .. }) => {}
                Err(_) => {
                    match &mut pipe.pump {
                        Pump::LegacyToIpcz { from, .. } => from.handle_peer_closed(),
                        Pump::IpczToLegacy { to, .. } => to.handle_peer_closed(),
                    }
                    break;
                }
            }
        }
        // Control parcels in, ipcz side.
        while let Ok(Some(parcel)) = self.ipcz.get(pipe.portal) {
            let num_handles = parcel.handles.len();
            self.discard_ipcz(parcel.handles);
            match &mut pipe.pump {
                Pump::LegacyToIpcz { to, .. } => {
                    let _ = to.handle_control(&parcel.data, num_handles);
                }
                Pump::IpczToLegacy { from, .. } => {
                    let _ = from.handle_control(&parcel.data, num_handles);
                }
            }
        }
        if self
            .ipcz
            .status(pipe.portal)
            .map_or(true, |s| s.peer_closed)
        {
            match &mut pipe.pump {
                Pump::LegacyToIpcz { to, .. } => to.handle_peer_closed(),
                Pump::IpczToLegacy { from, .. } => from.handle_peer_closed(),
            }
        }
        // Bytes, as many as the far ring takes now.
        let scratch = &mut self.scratch;
        let moved = match &mut pipe.pump {
            Pump::LegacyToIpcz { from, to } => move_bytes(scratch, from, to),
            Pump::IpczToLegacy { from, to } => move_bytes(scratch, from, to),
        };
        // Control out, both sides, even after a failed copy.
        let (legacy_out, ipcz_out) = match &mut pipe.pump {
            Pump::LegacyToIpcz { from, to } => (
                from.poll_control_payload(),
                to.poll_control_parcel().map(|p| p.to_vec()),
            ),
            Pump::IpczToLegacy { from, to } => (
                to.poll_control_payload(),
                from.poll_control_parcel().map(|p| p.to_vec()),
            ),
        };
        if let Some(m) = legacy_out {
            let _ = self.legacy.write_message(pipe.port, &m, Vec::new());
        }
        if let Some(p) = ipcz_out {
            let _ = self.ipcz.put(pipe.portal, p, Vec::new());
        }
        moved
    }
}

impl<M: SharedMemory> BridgedPipe<M> {
    /// Whether nothing more can flow: the source closed and was drained, or
    /// the sink closed.
    fn is_over(&self) -> bool {
        match &self.pump {
            Pump::LegacyToIpcz { from, to } => from.is_drained() || to.is_peer_closed(),
            Pump::IpczToLegacy { from, to } => from.is_drained() || to.is_peer_closed(),
        }
    }
}

/// A consumer the bridge reads from.
trait Source {
    fn available(&self) -> u32;
    fn element(&self) -> u32;
    fn take(&mut self, buf: &mut [u8]) -> Option<usize>;
}

/// A producer the bridge writes to.
trait Sink {
    fn room(&self) -> u32;
    fn put(&mut self, data: &[u8]) -> Option<usize>;
}

impl<M: SharedMemory> Source for legacy_dp::DataPipeConsumer<M> {
    fn available(&self) -> u32 {
        self.bytes_available()
    }
    fn element(&self) -> u32 {
        self.options().element_num_bytes
    }
    fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.read(buf).ok()
    }
}

impl<M: SharedMemory> Source for ipcz_dp::DataPipeConsumer<M> {
    fn available(&self) -> u32 {
        self.bytes_available()
    }
    fn element(&self) -> u32 {
        self.element_size()
    }
    fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.read(buf).ok()
    }
}

impl<M: SharedMemory> Sink for legacy_dp::DataPipeProducer<M> {
    fn room(&self) -> u32 {
        self.available_capacity()
    }
    fn put(&mut self, data: &[u8]) -> Option<usize> {
        self.write(data).ok()
    }
}

impl<M: SharedMemory> Sink for ipcz_dp::DataPipeProducer<M> {
    fn room(&self) -> u32 {
        self.available_capacity()
    }
    fn put(&mut self, data: &[u8]) -> Option<usize> {
        self.write(data).ok()
    }
}

/// Copies from `from` to `to` until either has nothing: each copy at most
/// what both allow now, in whole elements. An error means a ring refused
/// what it had announced.
fn move_bytes(scratch: &mut Vec<u8>, from: &mut impl Source, to: &mut impl Sink) -> Result<(), ()> {
    let element = from.element().max(1) as usize;
    let chunk = PUMP_CHUNK.max(element);
    if scratch.len() < chunk {
        scratch.resize(chunk, 0);
    }
    loop {
        let n = (from.available().min(to.room()) as usize).min(chunk);
        let n = n - n % element;
        if n == 0 {
            return Ok(());
        }
        let buf = scratch.get_mut(..n).ok_or(())?;
        let k = from.take(buf).ok_or(())?;
        let data = buf.get(..k).ok_or(())?;
        if k == 0 || to.put(data) != Some(k) {
            return Err(());
        }
    }
}

/// The kind of an ipcz data pipe box, for the checks before translation.
pub(crate) fn is_data_pipe(h: &NodeHandle) -> bool {
    matches!(h, IpczHandle::Object(b) if matches!(b.object(), DriverObject::DataPipe(_)))
}
