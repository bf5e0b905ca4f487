//! Helpers shared by the legacy integration tests: the production fd probe
//! and real writable regions from the platform crate.

#![allow(dead_code)]

use std::os::fd::{BorrowedFd, OwnedFd};

use mojo_invitation::legacy::{FdAccess, RegionFds};
use mojo_platform_channel::{FdAccessMode, RegionMode, SharedMemoryRegion, fd_access_mode};
use mojo_wire_kit::{Guid, SeededRandom};

/// `fcntl(F_GETFL)` through the platform crate, as production code does.
pub(crate) fn probe(fd: BorrowedFd<'_>) -> Option<FdAccess> {
    Some(match fd_access_mode(fd).ok()? {
        FdAccessMode::ReadOnly => FdAccess::ReadOnly,
        FdAccessMode::WriteOnly => FdAccess::WriteOnly,
        FdAccessMode::ReadWrite => FdAccess::ReadWrite,
    })
}

/// A fresh sealed memfd region of `size` bytes: `[read_write, read_only]`
/// and its guid.
pub(crate) fn writable_region(size: usize, seed: u64) -> (Guid, OwnedFd, OwnedFd) {
    let region =
        SharedMemoryRegion::create(RegionMode::Writable, size, &mut SeededRandom::new(seed))
            .expect("create region");
    let g = region.guid();
    let guid = Guid::new((g >> 64) as u64, g as u64);
    let mut fds = region.into_fds().into_iter();
    let (Some(rw), Some(ro)) = (fds.next(), fds.next()) else {
        panic!("a writable region has two fds")
    };
    (guid, rw, ro)
}

/// The same as [`RegionFds`], with the guid given.
pub(crate) fn region_fds(guid: Guid, size: usize, seed: u64) -> RegionFds {
    let (_, read_write, read_only) = writable_region(size, seed);
    RegionFds {
        guid,
        read_write,
        read_only,
    }
}
