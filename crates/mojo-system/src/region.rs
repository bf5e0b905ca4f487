//! `MojoWrapPlatformSharedMemoryRegion`'s checks, the same in every system:
//! [`check_region`] turns an [`UnwrappedRegion`] into the fds a buffer
//! holds, or says why the region is refused ([`WrapRegionError`]).

use std::fmt;

use mojo_platform_channel::{RegionMode, SharedMemoryRegion};

pub use mojo_platform_channel::ShmError;

use crate::runtime::RegionObject;
use crate::{MojoError, RegionAccessMode, UnwrappedRegion};

/// A failed [`MojoSystem::wrap_shared_buffer`](crate::MojoSystem::wrap_shared_buffer).
/// The region's fds are closed either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapRegionError {
    /// The region is not one Mojo accepts (`INVALID_ARGUMENT`): a size of 0
    /// or above the largest buffer, a zero guid, an fd count its mode does
    /// not have, an fd whose access mode is not the one its place needs
    /// (a writable fd claimed read-only), fds that are not one regular file
    /// or a file smaller than the size.
    Rejected(ShmError),
    /// The region was fine but the system could not make a handle for it
    /// (`RESOURCE_EXHAUSTED` and the like).
    System(MojoError),
}

impl WrapRegionError {
    /// The Mojo result of the call.
    pub fn error(&self) -> MojoError {
        match self {
            Self::Rejected(ShmError::Sys(_)) => MojoError::Internal,
            Self::Rejected(_) => MojoError::InvalidArgument,
            Self::System(e) => *e,
        }
    }
}

impl fmt::Display for WrapRegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(e) => write!(f, "region refused: {e}"),
            Self::System(e) => write!(f, "region not wrapped: {e}"),
        }
    }
}

impl std::error::Error for WrapRegionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Rejected(e) => Some(e),
            Self::System(e) => Some(e),
        }
    }
}

impl From<MojoError> for WrapRegionError {
    fn from(e: MojoError) -> Self {
        Self::System(e)
    }
}

impl From<WrapRegionError> for MojoError {
    fn from(e: WrapRegionError) -> Self {
        e.error()
    }
}

/// The platform crate's mode of an access mode (the same three).
fn region_mode(mode: RegionAccessMode) -> RegionMode {
    match mode {
        RegionAccessMode::ReadOnly => RegionMode::ReadOnly,
        RegionAccessMode::Writable => RegionMode::Writable,
        RegionAccessMode::Unsafe => RegionMode::Unsafe,
    }
}

/// Checks `region` as Mojo's wrap does (base's `PlatformSharedMemoryRegion`
/// import: size, guid, fd count for the mode, each fd's access mode) plus
/// the platform crate's import checks (regular files of at least `size`
/// bytes, one file for both fds of a writable region), and gives its fds
/// in the places a buffer keeps them. On error every fd is closed.
pub fn check_region(region: UnwrappedRegion) -> Result<RegionObject, ShmError> {
    let UnwrappedRegion {
        fds,
        size,
        guid,
        access_mode,
    } = region;
    // Above usize (never on 64 bits) is too large all the same.
    let len = usize::try_from(size).map_err(|_| ShmError::TooLarge { size })?;
    let checked = SharedMemoryRegion::from_fds(region_mode(access_mode), len, guid, fds)?;
    let mut fds = checked.into_fds().into_iter();
    let (first, second) = (fds.next(), fds.next());
    let (rw, ro) = match access_mode {
        RegionAccessMode::Writable => (first, second),
        RegionAccessMode::Unsafe => (first, None),
        RegionAccessMode::ReadOnly => (None, first),
    };
    Ok(RegionObject {
        rw,
        ro,
        mode: access_mode,
        size,
        guid,
    })
}
