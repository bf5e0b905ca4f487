//! Shared memory regions as Chromium's `base::subtle::PlatformSharedMemoryRegion`
//! uses them on Linux and ChromeOS, and mappings reached only through
//! [`SharedMemory`](mojo_wire_kit::SharedMemory).
//!
//! One concern per file: `mode` (fd access modes, checked against
//! [`RegionMode`](mojo_wire_kit::RegionMode)), `create` (backing files),
//! `region` (import, conversions, the mapping policy, `pread` copies),
//! `mapping` (every access to mapped memory), `ring` (the one policy for
//! data pipe rings from peers, [`map_peer_ring`]), `random` ([`OsRandom`])
//! and `error`.
//!
//! # What Chromium does (checked against `base/memory/platform_shared_memory_region_posix.cc`)
//!
//! * `Create(mode, size)` refuses size 0, sizes above `INT_MAX`, and
//!   read-only mode (a region born read-only could never be written). It
//!   makes an unlinked file in the shared-memory temp dir (`/dev/shm`), opens
//!   it a second time `O_RDONLY` for writable regions, allocates the whole
//!   size up front and checks both fds name one inode. It never seals.
//! * fds on the wire: writable = 2 (`O_RDWR`, then `O_RDONLY`), read-only = 1
//!   (`O_RDONLY`), unsafe = 1 (`O_RDWR`). `Take` checks size and the access
//!   modes (`fcntl(F_GETFL) & O_ACCMODE`, a `CHECK` that crashes on a
//!   mismatch) and nothing else about the file, so any fd of the right mode
//!   is accepted, memfds included; we check before sending and refuse bad
//!   input with a typed error.
//! * `ConvertToReadOnly` drops the `O_RDWR` fd and keeps the `O_RDONLY` one;
//!   `ConvertToUnsafe` drops the read-only fd; `Duplicate` (`dup`) is refused
//!   for writable regions.
//! * Read-only mappings use `PROT_READ`, others `PROT_READ | PROT_WRITE`,
//!   always `MAP_SHARED`.
//!
//! The OS-level read-only guarantee is that of an `O_RDONLY` file
//! description: `mmap(PROT_WRITE, MAP_SHARED)` fails with `EACCES`, and a
//! `PROT_READ` shared mapping of it cannot be `mprotect`ed to writable. As in
//! Chromium on Linux it does not stop a process that holds the fd from
//! reopening `/proc/self/fd/N` for writing; that is left to the sandbox.
//!
//! # Where we differ: no peer can make us fault
//!
//! A mapped file that another process shrinks makes the next access to the
//! lost pages die with `SIGBUS`, and so does the first write to a hole of a
//! sparse file when memory is full. So:
//!
//! * regions we create are memfds ([`ShmBackend::Memfd`], the default) with
//!   every page allocated and sealed `F_SEAL_SHRINK | F_SEAL_GROW |
//!   F_SEAL_SEAL` (the kernel then refuses a peer's `ftruncate` with `EPERM`);
//! * an imported region records whether its file is sealed
//!   ([`SharedMemoryRegion::is_sealed`]); an unsealed one is not mapped
//!   ([`ShmError::Unsealed`]) unless its sender is declared trusted
//!   ([`SharedMemoryRegion::trust_peer`], for the ipcz host, and for data
//!   pipe rings through [`map_peer_ring`]), and can be
//!   read and written with `pread`/`pwrite`
//!   ([`SharedMemoryRegion::read_at`] / [`write_at`](SharedMemoryRegion::write_at)),
//!   which report a shrunk file as [`ShmError::Truncated`].
//!
//! `docs/ARCHITECTURE.md` gives the policy per kind of region.
//!
//! Unsafe code here: creating mappings (memmap2's `map` is `unsafe` because
//! the file could change under a `&[u8]`; we never make one), the atomic
//! accesses and word-wise atomic copies of `mapping`, and the `getrandom`
//! call of [`OsRandom`].

mod create;
mod error;
mod mapping;
mod mode;
mod random;
mod region;
mod ring;

pub use create::{MEMFD_NAME, SHM_DIR, SHM_NAME_PREFIX, ShmBackend};
pub use error::ShmError;
pub use mapping::Mapping;
pub use mode::{FdAccessMode, fd_access_mode};
pub use random::OsRandom;
pub use region::{SharedMemoryRegion, verify_fd_read_only};
pub use ring::{MAP_UNSEALED_PEER_RINGS, import_peer_ring, map_peer_ring};

/// Largest region size Chromium accepts (`INT_MAX`).
pub const MAX_REGION_SIZE: usize = i32::MAX as usize;

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;
    use std::sync::atomic::Ordering;

    use mojo_wire_kit::{RandomSource, RegionMode, SeededRandom, SharedMemory, ShmAccessError};
    use nix::errno::Errno;
    use nix::unistd::{dup, ftruncate};

    use super::*;

    fn rng() -> SeededRandom {
        SeededRandom::new(7)
    }

    #[test]
    fn create_refuses_bad_sizes_and_read_only() {
        assert_eq!(
            SharedMemoryRegion::create(RegionMode::Unsafe, 0, &mut rng()).unwrap_err(),
            ShmError::ZeroSize
        );
        assert!(matches!(
            SharedMemoryRegion::create(RegionMode::Unsafe, MAX_REGION_SIZE + 1, &mut rng()),
            Err(ShmError::TooLarge { .. })
        ));
        assert!(matches!(
            SharedMemoryRegion::create(RegionMode::ReadOnly, 4096, &mut rng()),
            Err(ShmError::ModeNotAllowed { .. })
        ));
    }

    #[test]
    fn guids_come_from_the_injected_source() {
        let a = SharedMemoryRegion::create(RegionMode::Unsafe, 64, &mut SeededRandom::new(1));
        let b = SharedMemoryRegion::create(RegionMode::Unsafe, 64, &mut SeededRandom::new(1));
        let c = SharedMemoryRegion::create(RegionMode::Unsafe, 64, &mut SeededRandom::new(2));
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        assert_eq!(a.guid(), b.guid());
        assert_ne!(a.guid(), c.guid());
        assert_ne!(a.guid(), 0);
        let (high, low) = SeededRandom::new(1).nonzero_u128();
        assert_eq!(a.guid(), (u128::from(high) << 64) | u128::from(low));
    }

    #[test]
    fn created_memfds_are_sealed_and_fully_allocated() {
        let r = SharedMemoryRegion::create(RegionMode::Writable, 1 << 20, &mut rng()).unwrap();
        assert!(r.is_sealed());
        // The kernel refuses a shrink and a grow through either fd.
        for fd in [r.fd(), r.readonly_fd().unwrap()] {
            let owned = dup(fd).unwrap();
            assert!(ftruncate(&owned, 0).is_err());
        }
        let rw = dup(r.fd()).unwrap();
        assert_eq!(ftruncate(&rw, 0), Err(Errno::EPERM));
        assert_eq!(ftruncate(&rw, 2 << 20), Err(Errno::EPERM));
        let st = nix::sys::stat::fstat(&rw).unwrap();
        // Every page allocated up front (st_blocks counts 512-byte units).
        assert!(st.st_blocks * 512 >= 1 << 20, "{} blocks", st.st_blocks);
    }

    #[test]
    fn dev_shm_regions_are_unsealed_and_mapped_only_when_trusted() {
        let r = SharedMemoryRegion::create_with(
            RegionMode::Unsafe,
            8192,
            ShmBackend::DevShm,
            &mut rng(),
        )
        .unwrap();
        assert!(!r.is_sealed());
        assert_eq!(r.map().unwrap_err(), ShmError::Unsealed);
        assert_eq!(r.map_read_only().unwrap_err(), ShmError::Unsealed);
        r.write_at(8000, b"pwrite").unwrap();
        let mut back = [0u8; 6];
        r.read_at(8000, &mut back).unwrap();
        assert_eq!(&back, b"pwrite");
        let r = r.trust_peer();
        assert!(r.is_peer_trusted());
        let m = r.map().unwrap();
        m.read(8000, &mut back).unwrap();
        assert_eq!(&back, b"pwrite");
    }

    #[test]
    fn pread_copies_report_a_shrunk_file_instead_of_faulting() {
        let r = SharedMemoryRegion::create_with(
            RegionMode::Unsafe,
            3 * 4096,
            ShmBackend::DevShm,
            &mut rng(),
        )
        .unwrap();
        let peer = dup(r.fd()).unwrap();
        ftruncate(&peer, 4096 + 10).unwrap();
        let mut buf = [0u8; 20];
        assert_eq!(
            r.read_at(4096, &mut buf).unwrap_err(),
            ShmError::Truncated {
                offset: 4096,
                len: 20,
                copied: 10
            }
        );
        assert!(matches!(
            r.write_at(2 * 4096, b"x"),
            Err(ShmError::Truncated { .. })
        ));
        assert!(matches!(
            r.read_at(3 * 4096, &mut buf),
            Err(ShmError::OutOfBounds { .. })
        ));
        r.read_at(0, &mut buf).unwrap();
    }

    #[test]
    fn writable_region_has_rw_and_ro_fds_of_same_file() {
        for backend in [ShmBackend::Memfd, ShmBackend::DevShm] {
            let r =
                SharedMemoryRegion::create_with(RegionMode::Writable, 10000, backend, &mut rng())
                    .unwrap()
                    .trust_peer();
            assert_eq!(fd_access_mode(r.fd()).unwrap(), FdAccessMode::ReadWrite);
            assert_eq!(
                fd_access_mode(r.readonly_fd().unwrap()).unwrap(),
                FdAccessMode::ReadOnly
            );
            r.verify_read_only_enforced().unwrap();
            let m = r.map().unwrap();
            m.write(9990, b"0123456789").unwrap();
            assert!(m.write(9991, b"0123456789").is_err());
            let ro = r.duplicate_read_only().unwrap();
            let rm = ro.map().unwrap();
            assert!(!rm.is_writable());
            let mut buf = [0u8; 10];
            rm.read(9990, &mut buf).unwrap();
            assert_eq!(&buf, b"0123456789");
            assert_eq!(
                rm.store_u32(0, 1, Ordering::Relaxed),
                Err(ShmAccessError::ReadOnly)
            );
            assert_eq!(rm.write(0, b"x"), Err(ShmAccessError::ReadOnly));
            assert!(matches!(ro.verify_read_only_enforced(), Ok(())));
            let ro2 = r.convert_to_read_only().unwrap();
            assert_eq!(ro2.mode(), RegionMode::ReadOnly);
            assert_eq!(ro2.into_fds().len(), 1);
        }
    }

    #[test]
    fn read_only_mappings_load_what_the_writer_stored() {
        let r = SharedMemoryRegion::create(RegionMode::Writable, 64, &mut rng()).unwrap();
        let w = r.map().unwrap();
        let ro = r.map_read_only().unwrap();
        w.store_u64(8, 0x1122_3344_5566_7788, Ordering::Release)
            .unwrap();
        w.store_u32(4, 9, Ordering::SeqCst).unwrap();
        for order in [Ordering::Relaxed, Ordering::Acquire, Ordering::SeqCst] {
            assert_eq!(ro.load_u64(8, order), Ok(0x1122_3344_5566_7788));
            assert_eq!(ro.load_u32(4, order), Ok(9));
        }
        assert_eq!(
            ro.compare_exchange_u32(4, 9, 1, Ordering::AcqRel, Ordering::Acquire),
            Err(ShmAccessError::ReadOnly)
        );
    }

    #[test]
    fn atomics_check_bounds_and_alignment_and_never_panic_on_orderings() {
        let r = SharedMemoryRegion::create(RegionMode::Unsafe, 64, &mut rng()).unwrap();
        let m = r.map().unwrap();
        m.store_u32(60, 0xdead_beef, Ordering::Release).unwrap();
        assert_eq!(m.load_u32(60, Ordering::Acquire), Ok(0xdead_beef));
        assert_eq!(
            m.load_u32(33, Ordering::Relaxed),
            Err(ShmAccessError::Misaligned {
                offset: 33,
                align: 4
            })
        );
        assert_eq!(
            m.load_u64(52, Ordering::Relaxed),
            Err(ShmAccessError::Misaligned {
                offset: 52,
                align: 8
            })
        );
        assert_eq!(
            m.load_u64(64, Ordering::Relaxed),
            Err(ShmAccessError::OutOfBounds {
                offset: 64,
                len: 8,
                size: 64
            })
        );
        assert!(matches!(
            m.load_u32(usize::MAX, Ordering::Relaxed),
            Err(ShmAccessError::OutOfBounds { .. })
        ));
        assert_eq!(m.fetch_add_u64(48, 5, Ordering::AcqRel), Ok(0));
        assert_eq!(m.fetch_sub_u64(48, 1, Ordering::AcqRel), Ok(5));
        assert_eq!(m.fetch_or_u32(0, 0b101, Ordering::AcqRel), Ok(0));
        assert_eq!(m.fetch_and_u32(0, 0b100, Ordering::AcqRel), Ok(0b101));
        assert_eq!(m.fetch_add_u32(0, 1, Ordering::AcqRel), Ok(0b100));
        assert_eq!(m.fetch_sub_u32(0, 1, Ordering::AcqRel), Ok(0b101));
        // Orderings std would reject for the operation do not panic.
        assert_eq!(m.load_u32(0, Ordering::Release), Ok(0b100));
        m.store_u32(0, 3, Ordering::Acquire).unwrap();
        assert_eq!(
            m.compare_exchange_u32(0, 3, 4, Ordering::AcqRel, Ordering::AcqRel),
            Ok(Ok(3))
        );
        assert_eq!(
            m.compare_exchange_u64(48, 7, 8, Ordering::SeqCst, Ordering::Release),
            Ok(Err(4))
        );
        let mut bytes = [0u8; 8];
        m.read(48, &mut bytes).unwrap();
        assert_eq!(u64::from_le_bytes(bytes), 4);
    }

    #[test]
    fn map_range_bounds_and_unaligned_offsets() {
        let r = SharedMemoryRegion::create(RegionMode::Unsafe, 3 * 4096, &mut rng()).unwrap();
        let whole = r.map().unwrap();
        whole.write(4096 + 10, b"hello").unwrap();
        let part = r.map_range(4096 + 8, 100).unwrap();
        assert_eq!(part.len(), 100);
        let mut buf = [0u8; 5];
        part.read(2, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        // Alignment is checked on the real address, not the offset.
        assert!(part.load_u64(0, Ordering::Relaxed).is_ok());
        assert!(matches!(
            part.load_u64(2, Ordering::Relaxed),
            Err(ShmAccessError::Misaligned { .. })
        ));
        let odd = r.map_range(4096 + 2, 100).unwrap();
        assert!(matches!(
            odd.load_u32(0, Ordering::Relaxed),
            Err(ShmAccessError::Misaligned { .. })
        ));
        assert!(odd.load_u32(2, Ordering::Relaxed).is_ok());
        assert!(matches!(
            part.read(96, &mut buf),
            Err(ShmAccessError::OutOfBounds { .. })
        ));
        for (off, len) in [(0, 0), (3 * 4096, 1), (1, 3 * 4096), (usize::MAX, 2)] {
            assert!(
                matches!(r.map_range(off, len), Err(ShmError::OutOfBounds { .. })),
                "{off}+{len}"
            );
        }
    }

    #[test]
    fn import_checks() {
        let r = SharedMemoryRegion::create(RegionMode::Writable, 8192, &mut rng()).unwrap();
        let guid = r.guid();
        let fds = r.into_fds();
        // Sealed memfds stay sealed across the import.
        let both: Vec<OwnedFd> = fds.iter().map(|f| dup(f).unwrap()).collect();
        let imported =
            SharedMemoryRegion::from_fds(RegionMode::Writable, 8192, guid, both).unwrap();
        assert!(imported.is_sealed());
        assert!(!imported.is_peer_trusted());
        // Wrong count.
        let mut fds2: Vec<OwnedFd> = fds.iter().map(|f| dup(f).unwrap()).collect();
        fds2.pop();
        assert!(matches!(
            SharedMemoryRegion::from_fds(RegionMode::Writable, 8192, guid, fds2),
            Err(ShmError::WrongFdCount {
                expected: 2,
                found: 1,
                ..
            })
        ));
        // O_RDWR fd presented as read-only.
        let rw = dup(&fds[0]).unwrap();
        assert!(matches!(
            SharedMemoryRegion::from_fds(RegionMode::ReadOnly, 8192, guid, vec![rw]),
            Err(ShmError::WrongAccessMode { index: 0, .. })
        ));
        // Too small a file.
        let rw = dup(&fds[0]).unwrap();
        assert!(matches!(
            SharedMemoryRegion::from_fds(RegionMode::Unsafe, 8193, guid, vec![rw]),
            Err(ShmError::FileTooSmall { .. })
        ));
        // Mismatched inodes.
        let other = SharedMemoryRegion::create(RegionMode::Writable, 8192, &mut rng()).unwrap();
        let ofds = other.into_fds();
        let pair = vec![dup(&fds[0]).unwrap(), dup(&ofds[1]).unwrap()];
        assert_eq!(
            SharedMemoryRegion::from_fds(RegionMode::Writable, 8192, guid, pair).unwrap_err(),
            ShmError::InodeMismatch
        );
        assert_eq!(
            SharedMemoryRegion::from_fds(RegionMode::Writable, 8192, 0, fds).unwrap_err(),
            ShmError::ZeroGuid
        );
        // An unsealed import (a memfd without seals) is refused for mapping.
        let plain =
            nix::sys::memfd::memfd_create("plain", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
        ftruncate(&plain, 4096).unwrap();
        let r = SharedMemoryRegion::from_fds(RegionMode::Unsafe, 4096, 1, vec![plain]).unwrap();
        assert!(!r.is_sealed());
        assert_eq!(r.map().unwrap_err(), ShmError::Unsealed);
    }
}
