//! Test support for the data pipe golden tests: the `shm/` recording reader
//! and one heap region that the replay updates while an end reads it.

#![allow(dead_code, unreachable_pub)]

pub mod shm_vectors;

use std::rc::Rc;
use std::sync::atomic::Ordering;

use mojo_wire_kit::{HeapMemory, SharedMemory, ShmAccessError};

/// A handle to a heap region that several owners see.
#[derive(Clone, Debug)]
pub struct Shared(pub Rc<HeapMemory>);

impl SharedMemory for Shared {
    fn size(&self) -> usize {
        self.0.size()
    }
    fn load_u32(&self, o: usize, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.load_u32(o, m)
    }
    fn load_u64(&self, o: usize, m: Ordering) -> Result<u64, ShmAccessError> {
        self.0.load_u64(o, m)
    }
    fn store_u32(&self, o: usize, v: u32, m: Ordering) -> Result<(), ShmAccessError> {
        self.0.store_u32(o, v, m)
    }
    fn store_u64(&self, o: usize, v: u64, m: Ordering) -> Result<(), ShmAccessError> {
        self.0.store_u64(o, v, m)
    }
    fn fetch_add_u32(&self, o: usize, v: u32, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_add_u32(o, v, m)
    }
    fn fetch_sub_u32(&self, o: usize, v: u32, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_sub_u32(o, v, m)
    }
    fn fetch_or_u32(&self, o: usize, v: u32, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_or_u32(o, v, m)
    }
    fn fetch_and_u32(&self, o: usize, v: u32, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_and_u32(o, v, m)
    }
    fn fetch_add_u64(&self, o: usize, v: u64, m: Ordering) -> Result<u64, ShmAccessError> {
        self.0.fetch_add_u64(o, v, m)
    }
    fn fetch_sub_u64(&self, o: usize, v: u64, m: Ordering) -> Result<u64, ShmAccessError> {
        self.0.fetch_sub_u64(o, v, m)
    }
    fn compare_exchange_u32(
        &self,
        o: usize,
        c: u32,
        n: u32,
        s: Ordering,
        f: Ordering,
    ) -> Result<Result<u32, u32>, ShmAccessError> {
        self.0.compare_exchange_u32(o, c, n, s, f)
    }
    fn compare_exchange_u64(
        &self,
        o: usize,
        c: u64,
        n: u64,
        s: Ordering,
        f: Ordering,
    ) -> Result<Result<u64, u64>, ShmAccessError> {
        self.0.compare_exchange_u64(o, c, n, s, f)
    }
    fn read(&self, o: usize, dst: &mut [u8]) -> Result<(), ShmAccessError> {
        self.0.read(o, dst)
    }
    fn write(&self, o: usize, src: &[u8]) -> Result<(), ShmAccessError> {
        self.0.write(o, src)
    }
}
