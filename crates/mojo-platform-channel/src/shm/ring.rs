//! The one policy for mapping a data pipe ring that arrived from a peer
//! ([`import_peer_ring`], [`map_peer_ring`]): whether an unsealed ring file
//! may be mapped, and the mapping itself.
//!
//! A data pipe's ring is the one shared region whose bytes must be read in
//! place, and real peers make it an unsealed `/dev/shm` file (libchrome and
//! Chromium's `PlatformSharedMemoryRegion` never seal). Refusing unsealed
//! rings would refuse every real data pipe, so a ring is always mapped,
//! sealed or not ([`MAP_UNSEALED_PEER_RINGS`]). The cost: a sender that
//! shrinks its ring file after sending it kills the mapping process with
//! `SIGBUS` on its next access. Both users of this policy take that risk
//! only from peers that launched them, that they launched, or that their
//! launcher launched with them (the mojo_proxy's host and client; a test
//! peer's broker; a test host's proxy and client), which could end them
//! anyway or are theirs to end. Every index read from a ring is still validated
//! by the data pipe state machines before use.

use std::os::fd::OwnedFd;

use mojo_wire_kit::RegionMode;

use super::{Mapping, SharedMemoryRegion, ShmError};

/// Whether a data pipe ring that arrived unsealed from a peer is mapped
/// (`true`: it is, see the module doc for the `SIGBUS` trade-off).
pub const MAP_UNSEALED_PEER_RINGS: bool = true;

/// Imports a data pipe ring of `size` bytes from a peer: an unsafe-mode
/// region (one `O_RDWR` fd), checked as [`SharedMemoryRegion::from_fds`]
/// checks any region, and marked mappable when unsealed as
/// [`MAP_UNSEALED_PEER_RINGS`] says. The region keeps its fds, to send on.
pub fn import_peer_ring(
    size: usize,
    guid: u128,
    fds: Vec<OwnedFd>,
) -> Result<SharedMemoryRegion, ShmError> {
    let region = SharedMemoryRegion::from_fds(RegionMode::Unsafe, size, guid, fds)?;
    Ok(if MAP_UNSEALED_PEER_RINGS && !region.is_sealed() {
        region.trust_peer()
    } else {
        region
    })
}

/// Imports a data pipe ring from a peer ([`import_peer_ring`]) and maps
/// all `size` bytes read-write; the fds close once the mapping is made.
pub fn map_peer_ring(size: usize, guid: u128, fds: Vec<OwnedFd>) -> Result<Mapping, ShmError> {
    import_peer_ring(size, guid, fds)?.map()
}

#[cfg(test)]
mod tests {
    use mojo_wire_kit::{SeededRandom, SharedMemory};
    use nix::unistd::dup;

    use super::super::ShmBackend;
    use super::*;

    fn dev_shm_ring(size: usize) -> SharedMemoryRegion {
        SharedMemoryRegion::create_with(
            RegionMode::Unsafe,
            size,
            ShmBackend::DevShm,
            &mut SeededRandom::new(3),
        )
        .unwrap()
    }

    #[test]
    fn an_unsealed_dev_shm_ring_is_mapped_and_shares_its_bytes() {
        let ours = dev_shm_ring(4096);
        assert!(!ours.is_sealed());
        // The platform default still refuses it; only the ring policy maps it.
        let plain = SharedMemoryRegion::from_fds(
            RegionMode::Unsafe,
            4096,
            ours.guid(),
            vec![dup(ours.fd()).unwrap()],
        )
        .unwrap();
        assert_eq!(plain.map().unwrap_err(), ShmError::Unsealed);
        let ring = import_peer_ring(4096, ours.guid(), vec![dup(ours.fd()).unwrap()]).unwrap();
        assert!(ring.is_peer_trusted());
        let m = map_peer_ring(4096, ours.guid(), vec![dup(ours.fd()).unwrap()]).unwrap();
        ours.write_at(4000, b"ring").unwrap();
        let mut back = [0u8; 4];
        m.read(4000, &mut back).unwrap();
        assert_eq!(&back, b"ring");
    }

    #[test]
    fn a_sealed_ring_needs_no_trust() {
        let ours = SharedMemoryRegion::create(RegionMode::Unsafe, 4096, &mut SeededRandom::new(4))
            .unwrap();
        let ring = import_peer_ring(4096, ours.guid(), vec![dup(ours.fd()).unwrap()]).unwrap();
        assert!(ring.is_sealed());
        assert!(!ring.is_peer_trusted());
        ring.map().unwrap();
    }

    #[test]
    fn rings_are_still_checked_like_any_region() {
        let ours = dev_shm_ring(4096);
        // A ring larger than its file would fault past the end: refused.
        let err = map_peer_ring(8192, ours.guid(), vec![dup(ours.fd()).unwrap()]).unwrap_err();
        assert!(matches!(err, ShmError::FileTooSmall { .. }), "{err:?}");
        // An unsafe ring carries exactly one fd.
        let two = vec![dup(ours.fd()).unwrap(), dup(ours.fd()).unwrap()];
        assert!(map_peer_ring(4096, ours.guid(), two).is_err());
        assert!(map_peer_ring(0, ours.guid(), vec![dup(ours.fd()).unwrap()]).is_err());
    }
}
