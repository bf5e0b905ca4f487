//! Helpers for in-memory simulations of several nodes in one process.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use mojo_wire_kit::{HeapMemory, SharedMemory, ShmAccessError};

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
