//! [`CountingAlloc`], a global allocator that counts allocations on top of
//! the system allocator, for the benchmark build (`cargo xtask bench`) only:
//! behind the `alloc-count` feature, so a normal build does not carry it.
//!
//! The count is one relaxed atomic add per `alloc`/`realloc`; frees are not
//! counted. A binary installs it with `#[global_allocator]` and publishes
//! [`CountingAlloc::counter_address`]; the harness reads the counter from
//! `/proc/PID/mem` at two moments and divides by the messages between them,
//! so the process under test does no extra I/O on its message path.
//!
//! A test that wants one component's allocations only uses
//! [`CountingAlloc::gated`]: it then counts only on a thread whose gate is
//! open ([`CountingAlloc::open_gate`]), so a harness calling into the
//! component opens the gate around each call and its own work is left out.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    // Const-initialised without a destructor: reading them never allocates,
    // which an allocator needs.
    static GATE_OPEN: Cell<bool> = const { Cell::new(false) };
    static TRACE: Cell<bool> = const { Cell::new(false) };
    static COUNTED_HERE: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator with an allocation counter.
#[derive(Debug)]
pub struct CountingAlloc {
    count: AtomicU64,
    gated: bool,
}

impl CountingAlloc {
    /// A counter at zero that counts every allocation.
    pub const fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            gated: false,
        }
    }

    /// A counter at zero that counts only on threads whose gate is open.
    pub const fn gated() -> Self {
        Self {
            count: AtomicU64::new(0),
            gated: true,
        }
    }

    /// Opens or shuts the calling thread's gate (for [`CountingAlloc::gated`]).
    pub fn open_gate(open: bool) {
        GATE_OPEN.with(|g| g.set(open));
    }

    /// Allocations this allocator counted on the calling thread (so tests
    /// running in parallel do not see each other's).
    pub fn counted_on_this_thread() -> u64 {
        COUNTED_HERE.with(Cell::get)
    }

    /// While on, every allocation counted on the calling thread prints its
    /// size and a backtrace to stderr (not counted itself): the way to find
    /// where a counted allocation comes from.
    pub fn trace_counted(on: bool) {
        TRACE.with(|t| t.set(on));
    }

    fn note(&self, size: usize) {
        if self.gated && !GATE_OPEN.with(Cell::get) {
            return;
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        COUNTED_HERE.with(|c| c.set(c.get() + 1));
        if TRACE.with(Cell::get) {
            // The report allocates: shut the trace (and so this branch) while
            // it is made.
            TRACE.with(|t| t.set(false));
            let gate = GATE_OPEN.with(|g| g.replace(false));
            eprintln!(
                "counted allocation of {size} B:\n{}",
                std::backtrace::Backtrace::force_capture()
            );
            GATE_OPEN.with(|g| g.set(gate));
            TRACE.with(|t| t.set(true));
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
// upholds the `GlobalAlloc` contract; the bookkeeping is an atomic and two
// const-initialised thread-locals, none of which allocates (the trace report
// does, with the trace shut, so it cannot recurse).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note(layout.size());
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note(new_size);
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

    #[test]
    fn a_gated_counter_counts_only_while_the_threads_gate_is_open() {
        let a = CountingAlloc::gated();
        let layout = Layout::from_size_align(16, 8).unwrap();
        for open in [false, true, false] {
            CountingAlloc::open_gate(open);
            // SAFETY: a non-zero-size layout; the block is freed with it.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                a.dealloc(p, layout);
            }
        }
        assert_eq!(a.allocations(), 1);
        // Another thread's gate is its own (shut), whatever this one's is.
        CountingAlloc::open_gate(true);
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: as above.
                unsafe {
                    let p = a.alloc(layout);
                    a.dealloc(p, layout);
                }
            });
        });
        CountingAlloc::open_gate(false);
        assert_eq!(a.allocations(), 1);
        assert_eq!(CountingAlloc::counted_on_this_thread(), 1);
    }
}
