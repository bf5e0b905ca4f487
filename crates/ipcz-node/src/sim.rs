//! Helpers for in-memory simulations of several nodes in one process.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use mojo_wire_kit::{Guid, HeapMemory, RegionMode, SharedMemory, ShmAccessError};

use crate::node::{DriverBox, Node, NodeError, NodeEvent};

/// One [`HeapMemory`] region seen by several simulated nodes: clones share
/// the bytes (unlike cloning a `HeapMemory`, which copies them).
#[derive(Clone, Debug)]
pub struct SharedHeap(Rc<HeapMemory>);

impl SharedHeap {
    /// A zero-filled region of `size` bytes.
    pub fn new(size: usize) -> Self {
        Self(Rc::new(HeapMemory::new(size)))
    }

    /// The region itself (to inspect or scribble on it as a hostile peer).
    pub fn heap(&self) -> &HeapMemory {
        &self.0
    }

    /// Whether `other` is a handle to the same region.
    pub fn same_region(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl SharedMemory for SharedHeap {
    fn size(&self) -> usize {
        self.0.size()
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, ShmAccessError> {
        self.0.load_u32(offset, order)
    }
    fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, ShmAccessError> {
        self.0.load_u64(offset, order)
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), ShmAccessError> {
        self.0.store_u32(offset, value, order)
    }
    fn store_u64(&self, offset: usize, value: u64, order: Ordering) -> Result<(), ShmAccessError> {
        self.0.store_u64(offset, value, order)
    }
    fn fetch_add_u32(&self, offset: usize, v: u32, o: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_add_u32(offset, v, o)
    }
    fn fetch_sub_u32(&self, offset: usize, v: u32, o: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_sub_u32(offset, v, o)
    }
    fn fetch_or_u32(&self, offset: usize, v: u32, o: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_or_u32(offset, v, o)
    }
    fn fetch_and_u32(&self, offset: usize, v: u32, o: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_and_u32(offset, v, o)
    }
    fn fetch_add_u64(&self, offset: usize, v: u64, o: Ordering) -> Result<u64, ShmAccessError> {
        self.0.fetch_add_u64(offset, v, o)
    }
    fn fetch_sub_u64(&self, offset: usize, v: u64, o: Ordering) -> Result<u64, ShmAccessError> {
        self.0.fetch_sub_u64(offset, v, o)
    }
    fn compare_exchange_u32(
        &self,
        offset: usize,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u32, u32>, ShmAccessError> {
        self.0
            .compare_exchange_u32(offset, current, new, success, failure)
    }
    fn compare_exchange_u64(
        &self,
        offset: usize,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u64, u64>, ShmAccessError> {
        self.0
            .compare_exchange_u64(offset, current, new, success, failure)
    }
    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ShmAccessError> {
        self.0.read(offset, dst)
    }
    fn write(&self, offset: usize, src: &[u8]) -> Result<(), ShmAccessError> {
        self.0.write(offset, src)
    }
}

/// The shared-memory regions of a simulated network, named by GUID as the
/// platform's would be: what a test world needs to answer a node's
/// [`NodeEvent::CreateBlockBuffer`] and [`NodeEvent::MapBlockBuffer`] the way
/// a driver does, without real memory or fds (each box carries `/dev/null`
/// where a real one carries its memfd).
#[derive(Debug, Default)]
pub struct SimRegions {
    regions: HashMap<Guid, SharedHeap>,
    next_guid: u64,
}

/// What [`SimRegions::answer`] did with an event.
#[derive(Debug)]
pub enum MemoryAnswer {
    /// A new block buffer was given to the node, with the node's verdict
    /// (an error means the node dropped the link).
    Provided(Result<(), NodeError>),
    /// A buffer the peer added was mapped, with the node's verdict.
    Mapped(Result<(), NodeError>),
    /// No region could be made (`/dev/null` did not open); the node was
    /// told its request failed.
    RegionFailed(std::io::Error),
    /// The buffer names no region of this network: the node was told, and
    /// dropped the link.
    Unmappable,
    /// Not a memory event: handed back untouched.
    NotMemory(NodeEvent),
}

impl SimRegions {
    /// A new zero-filled region of `size` bytes and its SharedBuffer box.
    pub fn new_region(&mut self, size: usize) -> std::io::Result<(SharedHeap, DriverBox)> {
        self.next_guid += 1;
        let guid = Guid::new(0x5eed, self.next_guid);
        let region = SharedHeap::new(size);
        let object = DriverObject::SharedBuffer(SharedBuffer {
            buffer_size: u32::try_from(size).map_err(std::io::Error::other)?,
            mode: RegionMode::Unsafe,
            guid,
        });
        let fd = OwnedFd::from(std::fs::File::open("/dev/null")?);
        let boxed = DriverBox::new(object, vec![fd]).map_err(std::io::Error::other)?;
        self.regions.insert(guid, region.clone());
        Ok((region, boxed))
    }

    /// The region named `guid`, if it is one of this network's.
    pub fn region(&self, guid: &Guid) -> Option<SharedHeap> {
        self.regions.get(guid).cloned()
    }

    /// The region a SharedBuffer box names, if it is one of this network's.
    pub fn region_of(&self, buffer: &DriverBox) -> Option<SharedHeap> {
        match buffer.object() {
            DriverObject::SharedBuffer(b) => self.regions.get(&b.guid).cloned(),
            _ => None,
        }
    }

    /// Answers `event` for `node` if it is memory work.
    pub fn answer(&mut self, node: &mut Node<SharedHeap>, event: NodeEvent) -> MemoryAnswer {
        match event {
            NodeEvent::CreateBlockBuffer {
                link,
                block_size,
                buffer_size,
            } => match self.new_region(buffer_size) {
                Ok((region, boxed)) => MemoryAnswer::Provided(
                    node.provide_block_buffer(link, block_size, region, boxed),
                ),
                Err(e) => {
                    node.block_buffer_failed(link, block_size);
                    MemoryAnswer::RegionFailed(e)
                }
            },
            NodeEvent::MapBlockBuffer {
                link, id, buffer, ..
            } => match self.region_of(&buffer) {
                Some(region) => MemoryAnswer::Mapped(node.block_buffer_mapped(link, id, region)),
                None => {
                    node.block_buffer_unmappable(link, id);
                    MemoryAnswer::Unmappable
                }
            },
            other => MemoryAnswer::NotMemory(other),
        }
    }
}
