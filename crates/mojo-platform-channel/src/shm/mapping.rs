//! [`Mapping`]: a `MAP_SHARED` mapping, reached only through
//! [`SharedMemory`] (checked atomics and word-wise atomic copies).
//!
//! Every access to mapped memory in the crate is here, and every one of them
//! is atomic: the memory is shared with another process that may write any
//! byte at any moment, so a plain load could be torn, fetched twice by the
//! compiler, or (if it raced with an atomic in this process) be undefined
//! behaviour. Byte copies are word-wise relaxed atomic loads and stores
//! (the approach of the "atomic memcpy" RFC 3301): a copy is a snapshot of
//! words that may each come from a different moment, nothing more.

use std::cell::Cell;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

use memmap2::{MmapOptions, MmapRaw};
use mojo_wire_kit::{SharedMemory, ShmAccessError, check_access};

use super::ShmError;
use crate::SysError;

const WORD: usize = size_of::<usize>();

/// A `MAP_SHARED` mapping of (part of) a region, unmapped on drop.
///
/// The memory may change at any time (the peer maps it too), so a mapping
/// hands out no reference into it, ever: every access is a [`SharedMemory`]
/// method that checks bounds (and alignment, for atomics) and copies a value
/// in or out. Protocol code takes `&impl SharedMemory`, so tests substitute
/// [`mojo_wire_kit::HeapMemory`].
///
/// A `Mapping` is `Send` but not `Sync`: it may move to another thread, but
/// two threads never use one mapping at the same time, so its word-sized
/// copies can never overlap a differently sized atomic made through the same
/// addresses from another thread (mixed-size racing atomics are undefined in
/// Rust's memory model). Writers in other processes, or through other
/// mappings of the same file, use other addresses and are outside the model;
/// every access tolerates any bytes they leave.
///
/// Orderings: on a read-only mapping a load is a relaxed load, followed by an
/// acquire fence when more than `Relaxed` was asked for (Rust allows only
/// small relaxed atomic loads on read-only memory). An ordering that std
/// would reject for an operation (a `Release` load, an `Acquire` store, a
/// `Release` compare-exchange failure) is replaced by the nearest valid one
/// instead of panicking.
///
/// Nothing borrowed from a mapping can outlive it or reach another thread:
///
/// ```compile_fail,E0277
/// use mojo_platform_channel::{Mapping, SharedMemory};
/// use std::sync::atomic::Ordering;
/// fn race(m: &Mapping) {
///     // `&Mapping` is not `Send` because `Mapping` is not `Sync`.
///     std::thread::scope(|s| {
///         s.spawn(|| m.store_u32(0, 1, Ordering::Relaxed));
///         let mut buf = [0u8; 8];
///         m.read(0, &mut buf)
///     });
/// }
/// ```
///
/// ```compile_fail,E0277
/// use mojo_platform_channel::Mapping;
/// fn share(m: Mapping) -> std::sync::Arc<Mapping> {
///     let shared = std::sync::Arc::new(m);
///     // `Arc<Mapping>` is not `Send` either.
///     let clone = shared.clone();
///     std::thread::spawn(move || drop(clone));
///     shared
/// }
/// ```
#[derive(Debug)]
pub struct Mapping {
    map: MmapRaw,
    writable: bool,
    /// Makes the type `!Sync` (see above) while keeping it `Send`.
    _not_sync: PhantomData<Cell<()>>,
}

impl Mapping {
    /// Maps `len` bytes of `fd` from `offset` (any offset; memmap2 maps from
    /// the page boundary below it), read-write or read-only.
    pub(super) fn new(
        fd: BorrowedFd<'_>,
        offset: usize,
        len: usize,
        writable: bool,
    ) -> Result<Self, ShmError> {
        let mut opts = MmapOptions::new();
        opts.offset(offset as u64).len(len);
        let map = if writable {
            opts.map_raw(fd.as_raw_fd())
        } else {
            opts.map_raw_read_only(fd.as_raw_fd())
        }
        .map_err(|e| SysError::from_io("mmap", &e))?;
        Ok(Self {
            map,
            writable,
            _not_sync: PhantomData,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false (regions and mappings are never empty).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// True for `PROT_READ | PROT_WRITE` mappings.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The address of the naturally aligned `T`-sized word at `offset`,
    /// after checking bounds, the real address's alignment (a mapping may
    /// start at any offset of the file) and, for `write`, writability.
    fn word<T>(&self, offset: usize, write: bool) -> Result<*mut T, ShmAccessError> {
        let size = size_of::<T>();
        check_access(offset, size, 1, self.map.len())?;
        let addr = self.map.as_mut_ptr().wrapping_add(offset);
        if (addr as usize) % align_of::<T>() != 0 {
            return Err(ShmAccessError::Misaligned {
                offset,
                align: align_of::<T>(),
            });
        }
        if write && !self.writable {
            return Err(ShmAccessError::ReadOnly);
        }
        Ok(addr.cast())
    }

    fn u32_at(&self, offset: usize, write: bool) -> Result<&AtomicU32, ShmAccessError> {
        let p = self.word::<u32>(offset, write)?;
        // SAFETY: `p` is in bounds, aligned for u32 and mapped for as long as
        // `&self` lives, to which the returned reference is tied; it stays
        // inside this module and dies with the calling method. Any bit
        // pattern is a valid u32. Every access this crate makes to mapped
        // memory is atomic, and `Mapping` is `!Sync`, so no access through
        // these addresses can happen on another thread meanwhile (no data
        // race, no mixed-size overlap). For read-only mappings (`write` is
        // false) callers only make relaxed loads, which Rust allows on
        // read-only memory for this size.
        Ok(unsafe { AtomicU32::from_ptr(p) })
    }

    fn u64_at(&self, offset: usize, write: bool) -> Result<&AtomicU64, ShmAccessError> {
        let p = self.word::<u64>(offset, write)?;
        #[cfg(target_pointer_width = "32")]
        if !self.writable {
            // A 64-bit atomic load from read-only memory is not allowed on
            // 32-bit targets (it may be a compare-exchange).
            return Err(ShmAccessError::ReadOnly);
        }
        // SAFETY: as in `u32_at`, for an aligned u64; on 64-bit targets
        // relaxed 8-byte loads are allowed on read-only memory.
        Ok(unsafe { AtomicU64::from_ptr(p) })
    }

    /// Loads with `order` from a writable mapping; from a read-only mapping a
    /// relaxed load followed by an acquire fence (the only atomic load Rust
    /// allows on read-only memory).
    fn load_with<T>(&self, order: Ordering, load: impl FnOnce(Ordering) -> T) -> T {
        if self.writable {
            load(load_order(order))
        } else {
            let v = load(Ordering::Relaxed);
            if order != Ordering::Relaxed {
                fence(Ordering::Acquire);
            }
            v
        }
    }
}

/// A load ordering std accepts (`Release`/`AcqRel` would panic): the
/// acquire half. Orderings come from our own code, but a wrong one must
/// not become a panic.
fn load_order(o: Ordering) -> Ordering {
    match o {
        Ordering::Release | Ordering::AcqRel => Ordering::Acquire,
        o => o,
    }
}

/// A store ordering std accepts (`Acquire`/`AcqRel` would panic).
fn store_order(o: Ordering) -> Ordering {
    match o {
        Ordering::Acquire | Ordering::AcqRel => Ordering::Release,
        o => o,
    }
}

/// A compare-exchange failure ordering std accepts (no release part).
fn failure_order(o: Ordering) -> Ordering {
    match o {
        Ordering::Release => Ordering::Relaxed,
        Ordering::AcqRel => Ordering::Acquire,
        o => o,
    }
}

/// Copies `dst.len()` bytes from shared memory at `src` into `dst`:
/// relaxed atomic byte loads up to the first word boundary, relaxed atomic
/// word loads, then bytes again.
///
/// # Safety
///
/// `src..src + dst.len()` must be mapped and readable for the whole call, and
/// every other access to it in this process must be atomic (or happen before
/// or after the call).
pub(crate) unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
    let mut i = 0;
    let len = dst.len();
    let src = src.cast_mut();
    while i < len {
        let p = src.wrapping_add(i);
        let rest = dst.get_mut(i..).unwrap_or_default();
        if (p as usize) % WORD == 0 && rest.len() >= WORD {
            // SAFETY: `p` is word-aligned and the word lies inside the
            // source range (the caller's contract); relaxed word-sized loads
            // are allowed on read-only memory; all concurrent accesses are
            // atomic (the caller's contract).
            let w = unsafe { AtomicUsize::from_ptr(p.cast()) }.load(Ordering::Relaxed);
            rest[..WORD].copy_from_slice(&w.to_ne_bytes());
            i += WORD;
        } else {
            // SAFETY: as above, for one byte (always aligned).
            rest[0] = unsafe { AtomicU8::from_ptr(p) }.load(Ordering::Relaxed);
            i += 1;
        }
    }
}

/// Copies `src` into shared memory at `dst`, word-wise with relaxed
/// atomic stores (bytes at the unaligned ends).
///
/// # Safety
///
/// `dst..dst + src.len()` must be mapped writable for the whole call, and
/// every other access to it in this process must be atomic (or happen before
/// or after the call).
pub(crate) unsafe fn copy_to_shared(src: &[u8], dst: *mut u8) {
    let mut i = 0;
    while let Some(rest) = src.get(i..).filter(|r| !r.is_empty()) {
        let p = dst.wrapping_add(i);
        if let (0, Some(word)) = ((p as usize) % WORD, rest.first_chunk::<WORD>()) {
            // SAFETY: `p` is word-aligned, the word lies inside the writable
            // destination range and concurrent accesses are atomic (the
            // caller's contract).
            unsafe { AtomicUsize::from_ptr(p.cast()) }
                .store(usize::from_ne_bytes(*word), Ordering::Relaxed);
            i += WORD;
        } else {
            // SAFETY: as above, for one byte.
            unsafe { AtomicU8::from_ptr(p) }.store(rest[0], Ordering::Relaxed);
            i += 1;
        }
    }
}

impl SharedMemory for Mapping {
    fn size(&self) -> usize {
        self.map.len()
    }

    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, ShmAccessError> {
        let a = self.u32_at(offset, false)?;
        Ok(self.load_with(order, |o| a.load(o)))
    }

    fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, ShmAccessError> {
        let a = self.u64_at(offset, false)?;
        Ok(self.load_with(order, |o| a.load(o)))
    }

    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), ShmAccessError> {
        self.u32_at(offset, true)?.store(value, store_order(order));
        Ok(())
    }

    fn store_u64(&self, offset: usize, value: u64, order: Ordering) -> Result<(), ShmAccessError> {
        self.u64_at(offset, true)?.store(value, store_order(order));
        Ok(())
    }

    fn fetch_add_u32(&self, offset: usize, v: u32, order: Ordering) -> Result<u32, ShmAccessError> {
        Ok(self.u32_at(offset, true)?.fetch_add(v, order))
    }

    fn fetch_sub_u32(&self, offset: usize, v: u32, order: Ordering) -> Result<u32, ShmAccessError> {
        Ok(self.u32_at(offset, true)?.fetch_sub(v, order))
    }

    fn fetch_or_u32(&self, offset: usize, v: u32, order: Ordering) -> Result<u32, ShmAccessError> {
        Ok(self.u32_at(offset, true)?.fetch_or(v, order))
    }

    fn fetch_and_u32(&self, offset: usize, v: u32, order: Ordering) -> Result<u32, ShmAccessError> {
        Ok(self.u32_at(offset, true)?.fetch_and(v, order))
    }

    fn fetch_add_u64(&self, offset: usize, v: u64, order: Ordering) -> Result<u64, ShmAccessError> {
        Ok(self.u64_at(offset, true)?.fetch_add(v, order))
    }

    fn fetch_sub_u64(&self, offset: usize, v: u64, order: Ordering) -> Result<u64, ShmAccessError> {
        Ok(self.u64_at(offset, true)?.fetch_sub(v, order))
    }

    fn compare_exchange_u32(
        &self,
        offset: usize,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u32, u32>, ShmAccessError> {
        Ok(self.u32_at(offset, true)?.compare_exchange(
            current,
            new,
            success,
            failure_order(failure),
        ))
    }

    fn compare_exchange_u64(
        &self,
        offset: usize,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u64, u64>, ShmAccessError> {
        Ok(self.u64_at(offset, true)?.compare_exchange(
            current,
            new,
            success,
            failure_order(failure),
        ))
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ShmAccessError> {
        check_access(offset, dst.len(), 1, self.map.len())?;
        // SAFETY: the range lies inside the mapping (checked), which stays
        // mapped and readable while `&self` lives; every access this crate
        // makes to mapped memory is atomic and `Mapping` is `!Sync`, which is
        // the contract of `copy_from_shared`.
        unsafe { copy_from_shared(self.map.as_ptr().wrapping_add(offset), dst) };
        Ok(())
    }

    fn write(&self, offset: usize, src: &[u8]) -> Result<(), ShmAccessError> {
        check_access(offset, src.len(), 1, self.map.len())?;
        if !self.writable {
            return Err(ShmAccessError::ReadOnly);
        }
        // SAFETY: as in `read`; the mapping is `PROT_WRITE` (checked).
        unsafe { copy_to_shared(src, self.map.as_mut_ptr().wrapping_add(offset)) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Compiles only while `Mapping` is not `Sync`: with a `Sync` impl both
    /// impls below apply and the call is ambiguous. (The usual stable-Rust
    /// negative-impl assertion.)
    #[test]
    fn mapping_is_send_but_not_sync() {
        trait AmbiguousIfSync<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
        <Mapping as AmbiguousIfSync<_>>::check();
        fn assert_send<T: Send>() {}
        assert_send::<Mapping>();
    }

    #[test]
    fn word_copies_handle_every_alignment_and_length() {
        let words: Vec<AtomicU64> = (0..8u64)
            .map(|i| AtomicU64::new(0x0101_0101_0101_0101 * i))
            .collect();
        let base = words.as_ptr().cast::<u8>().cast_mut();
        let all: Vec<u8> = (0..8u64)
            .flat_map(|i| (0x0101_0101_0101_0101 * i).to_ne_bytes())
            .collect();
        for start in 0..17 {
            for len in 0..(64 - start) {
                let mut out = vec![0xaa; len];
                // SAFETY: inside `words`, accessed only atomically.
                unsafe { copy_from_shared(base.wrapping_add(start), &mut out) };
                assert_eq!(out, all[start..start + len], "{start}+{len}");
            }
        }
        let pattern: Vec<u8> = (0..64u8).collect();
        for start in 0..17 {
            for len in 0..(64 - start) {
                // SAFETY: as above.
                unsafe { copy_to_shared(&pattern[..len], base.wrapping_add(start)) };
                let mut out = vec![0; len];
                // SAFETY: as above.
                unsafe { copy_from_shared(base.wrapping_add(start), &mut out) };
                assert_eq!(out, pattern[..len], "{start}+{len}");
            }
        }
    }

    /// The copies race with atomic stores from another thread on the same
    /// addresses. Run under ThreadSanitizer (docs/ARCHITECTURE.md, "Testing"):
    /// with plain `copy_nonoverlapping` copies it reports a data race here;
    /// with the atomic word copies it is clean.
    #[test]
    fn copies_racing_with_atomic_stores_are_race_free() {
        let words: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());
        let writer = {
            let words = Arc::clone(&words);
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    words[(i % 4) as usize].store(i, Ordering::Relaxed);
                }
            })
        };
        let base = words.as_ptr().cast::<u8>().cast_mut();
        let mut out = [0u8; 32];
        for _ in 0..20_000 {
            // SAFETY: inside `words`, which every thread accesses atomically.
            unsafe { copy_from_shared(base, &mut out) };
            // SAFETY: as above.
            unsafe { copy_to_shared(&out[..16], base.wrapping_add(16)) };
        }
        writer.join().unwrap();
    }
}
