//! [`CountingAlloc`], a global allocator that counts allocations on top of
//! the system allocator, for the benchmark build (`cargo xtask bench`) only:
//! behind the `alloc-count` feature, so a normal build does not carry it.
//!
//! The count is one relaxed atomic add per `alloc`/`realloc`; frees are not
//! counted. A binary installs it with `#[global_allocator]` and publishes
//! [`CountingAlloc::counter_address`]; the harness reads the counter from
//! `/proc/PID/mem` at two moments and divides by the messages between them,
//! so the process under test does no extra I/O on its message path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator with an allocation counter.
#[derive(Debug)]
pub struct CountingAlloc {
    count: AtomicU64,
}

impl CountingAlloc {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
        }
    }

    /// Allocations (`alloc`, `alloc_zeroed`, `realloc`) so far.
    pub fn allocations(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The address of the counter (a native-endian `u64`), for a reader of
    /// `/proc/PID/mem`.
    pub fn counter_address(&self) -> usize {
        std::ptr::from_ref(&self.count) as usize
    }
}

impl Default for CountingAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; the counter is an atomic that never
// allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` and `layout` come from this allocator, which is
        // `System` underneath; the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator)
        // with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_allocations_through_it() {
        let a = CountingAlloc::new();
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: a non-zero-size layout; the block is freed with it.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            let p = a.realloc(p, layout, 128);
            assert!(!p.is_null());
            a.dealloc(p, Layout::from_size_align(128, 8).unwrap());
        }
        assert_eq!(a.allocations(), 2);
        assert_ne!(a.counter_address(), 0);
    }
}
