//! The access mode of a shared-memory region, one definition for every layer.

use std::fmt;

/// Access mode of a shared-memory region (Chromium's
/// `PlatformSharedMemoryRegion::Mode`). Both wire protocols carry it as a u32
/// with these values, and the platform crate creates and maps regions by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RegionMode {
    /// 0: one `O_RDONLY` fd; maps read-only, can never become writable.
    ReadOnly,
    /// 1: an `O_RDWR` fd plus an `O_RDONLY` fd of the same file, the second
    /// kept so the region can later be converted to read-only.
    #[default]
    Writable,
    /// 2: one `O_RDWR` fd (ipcz NodeLinkMemory buffers, and regions that are
    /// shared writable without a read-only twin).
    Unsafe,
}

impl RegionMode {
    /// The mode for a wire value (0, 1, 2), or `None`.
    pub const fn from_wire(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::ReadOnly),
            1 => Some(Self::Writable),
            2 => Some(Self::Unsafe),
            _ => None,
        }
    }

    /// The wire value.
    pub const fn to_wire(self) -> u32 {
        match self {
            Self::ReadOnly => 0,
            Self::Writable => 1,
            Self::Unsafe => 2,
        }
    }

    /// Number of fds a region of this mode travels with on Linux.
    pub const fn num_fds(self) -> usize {
        match self {
            Self::Writable => 2,
            Self::ReadOnly | Self::Unsafe => 1,
        }
    }

    /// Chromium's lower-case name of the mode.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::Writable => "writable",
            Self::Unsafe => "unsafe",
        }
    }
}

impl fmt::Display for RegionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip_and_unknown_values_are_refused() {
        for mode in [
            RegionMode::ReadOnly,
            RegionMode::Writable,
            RegionMode::Unsafe,
        ] {
            assert_eq!(RegionMode::from_wire(mode.to_wire()), Some(mode));
        }
        assert_eq!(RegionMode::from_wire(3), None);
        assert_eq!(RegionMode::from_wire(u32::MAX), None);
        assert_eq!(RegionMode::Writable.num_fds(), 2);
        assert_eq!(RegionMode::ReadOnly.num_fds(), 1);
        assert_eq!(RegionMode::Unsafe.to_string(), "unsafe");
    }
}
