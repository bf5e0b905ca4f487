//! Test support shared by the `memory_*` tests: one heap region seen by two
//! simulated nodes, with a hook that lets the "other side" act in the middle
//! of an operation (right before its next write or compare-and-swap).

#![allow(dead_code, unreachable_pub)]

pub mod shm_vectors;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use mojo_wire_kit::{HeapMemory, SharedMemory, ShmAccessError};

/// What runs before a write: given the raw region, it may change anything.
pub type Hook = Box<dyn FnMut(&HeapMemory) -> HookNext>;

/// Whether a hook stays installed after it ran.
pub enum HookNext {
    /// Run again before the next write.
    Keep,
    /// Done.
    Remove,
}

/// A handle to a region shared by several simulated nodes.
#[derive(Clone)]
pub struct Shared {
    pub heap: Rc<HeapMemory>,
    hook: Rc<RefCell<Option<Hook>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.heap.fmt(f)
    }
}

impl Shared {
    pub fn new(heap: HeapMemory) -> Self {
        Self {
            heap: Rc::new(heap),
            hook: Rc::new(RefCell::new(None)),
        }
    }

    /// Installs `hook` for every handle of this region.
    pub fn set_hook(&self, hook: Hook) {
        *self.hook.borrow_mut() = Some(hook);
    }

    pub fn clear_hook(&self) {
        *self.hook.borrow_mut() = None;
    }

    fn before_write(&self) {
        let Some(mut hook) = self.hook.borrow_mut().take() else {
            return;
        };
        if let HookNext::Keep = hook(&self.heap) {
            let mut slot = self.hook.borrow_mut();
            if slot.is_none() {
                *slot = Some(hook);
            }
        }
    }
}

impl SharedMemory for Shared {
    fn size(&self) -> usize {
        self.heap.size()
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, ShmAccessError> {
        self.heap.load_u32(offset, order)
    }
    fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, ShmAccessError> {
        self.heap.load_u64(offset, order)
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), ShmAccessError> {
        self.before_write();
        self.heap.store_u32(offset, value, order)
    }
    fn store_u64(&self, offset: usize, value: u64, order: Ordering) -> Result<(), ShmAccessError> {
        self.before_write();
        self.heap.store_u64(offset, value, order)
    }
    fn fetch_add_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError> {
        self.before_write();
        self.heap.fetch_add_u32(offset, value, order)
    }
    fn fetch_sub_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError> {
        self.before_write();
        self.heap.fetch_sub_u32(offset, value, order)
    }
    fn fetch_or_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError> {
        self.before_write();
        self.heap.fetch_or_u32(offset, value, order)
    }
    fn fetch_and_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError> {
        self.before_write();
        self.heap.fetch_and_u32(offset, value, order)
    }
    fn fetch_add_u64(
        &self,
        offset: usize,
        value: u64,
        order: Ordering,
    ) -> Result<u64, ShmAccessError> {
        self.before_write();
        self.heap.fetch_add_u64(offset, value, order)
    }
    fn fetch_sub_u64(
        &self,
        offset: usize,
        value: u64,
        order: Ordering,
    ) -> Result<u64, ShmAccessError> {
        self.before_write();
        self.heap.fetch_sub_u64(offset, value, order)
    }
    fn compare_exchange_u32(
        &self,
        offset: usize,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u32, u32>, ShmAccessError> {
        self.before_write();
        self.heap
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
        self.before_write();
        self.heap
            .compare_exchange_u64(offset, current, new, success, failure)
    }
    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ShmAccessError> {
        self.heap.read(offset, dst)
    }
    fn write(&self, offset: usize, src: &[u8]) -> Result<(), ShmAccessError> {
        self.before_write();
        self.heap.write(offset, src)
    }
}
