//! [`SharedMemoryRegion`]: creation, import with Chromium's checks plus the
//! seal check, mode conversions, mapping (sealed or trusted only) and
//! `pread`/`pwrite` copies that never fault.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use memmap2::MmapOptions;
use mojo_wire_kit::{RandomSource, RegionMode};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::stat::{SFlag, fstat};
use nix::sys::statfs::{TMPFS_MAGIC, fstatfs};
use nix::sys::uio::{pread, pwrite};
use nix::unistd::dup;

use super::create::{SHM_DIR, ShmBackend, create_dev_shm, create_memfd};
use super::mode::{fd_access_mode, required_fd_modes};
use super::{FdAccessMode, MAX_REGION_SIZE, Mapping, ShmError};
use crate::SysError;

/// A shared memory region as Chromium's `PlatformSharedMemoryRegion` holds
/// it on Linux: mode, size, guid and one or two fds (see [`RegionMode`]).
///
/// A region also knows whether its file is *sealed* (see
/// [`is_sealed`](Self::is_sealed)); only sealed regions, and regions whose
/// peer was declared trusted with [`trust_peer`](Self::trust_peer), can be
/// mapped. The fds close on drop.
#[derive(Debug)]
pub struct SharedMemoryRegion {
    mode: RegionMode,
    size: usize,
    guid: u128,
    fd: OwnedFd,
    readonly_fd: Option<OwnedFd>,
    sealed: bool,
    peer_trusted: bool,
}

fn check_size(size: usize) -> Result<(), ShmError> {
    if size == 0 {
        return Err(ShmError::ZeroSize);
    }
    if size > MAX_REGION_SIZE {
        return Err(ShmError::TooLarge { size: size as u64 });
    }
    Ok(())
}

/// True when a peer holding the file can never make it smaller: it carries
/// `F_SEAL_SHRINK` and lives on tmpfs/shmem (a memfd), where a hole is filled
/// on demand without a size limit. (A sealed hugetlbfs memfd is not
/// accepted: a fault there fails with `SIGBUS` when huge pages run out.)
fn file_is_sealed(fd: BorrowedFd<'_>) -> Result<bool, ShmError> {
    let seals = match fcntl(fd, FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_retain(bits),
        // Not a file that supports sealing (an ordinary /dev/shm file).
        Err(Errno::EINVAL) => return Ok(false),
        Err(errno) => return Err(SysError::new("fcntl(F_GET_SEALS)", errno).into()),
    };
    if !seals.contains(SealFlag::F_SEAL_SHRINK) {
        return Ok(false);
    }
    let fs = fstatfs(fd).map_err(SysError::of("fstatfs"))?;
    Ok(fs.filesystem_type() == TMPFS_MAGIC)
}

impl SharedMemoryRegion {
    /// Chromium's `Create(mode, size)` with the default backend
    /// ([`ShmBackend::Memfd`]): a sealed memfd with all pages allocated, and
    /// a guid from `rng` (production code passes
    /// [`OsRandom`](super::OsRandom)). Read-only creation, size 0 and sizes
    /// above [`MAX_REGION_SIZE`] are refused.
    pub fn create<R: RandomSource + ?Sized>(
        mode: RegionMode,
        size: usize,
        rng: &mut R,
    ) -> Result<Self, ShmError> {
        Self::create_with(mode, size, ShmBackend::default(), rng)
    }

    /// [`create`](Self::create) with an explicit backend.
    pub fn create_with<R: RandomSource + ?Sized>(
        mode: RegionMode,
        size: usize,
        backend: ShmBackend,
        rng: &mut R,
    ) -> Result<Self, ShmError> {
        check_size(size)?;
        if mode == RegionMode::ReadOnly {
            return Err(ShmError::ModeNotAllowed { op: "create", mode });
        }
        let (fd, readonly_fd) = match backend {
            ShmBackend::Memfd => create_memfd(mode, size)?,
            ShmBackend::DevShm => create_dev_shm(Path::new(SHM_DIR), mode, size, rng)?,
        };
        let (high, low) = rng.nonzero_u128();
        Ok(Self {
            mode,
            size,
            guid: (u128::from(high) << 64) | u128::from(low),
            sealed: file_is_sealed(fd.as_fd())?,
            fd,
            readonly_fd,
            peer_trusted: false,
        })
    }

    /// Chromium's `Take`: a region received from a peer. Checks what
    /// Chromium checks (size, guid, fd count, access modes) and also that the
    /// fds are regular files at least `size` bytes long, and for writable
    /// regions both name the same file; records whether the file is sealed.
    /// On error the fds are closed.
    pub fn from_fds(
        mode: RegionMode,
        size: usize,
        guid: u128,
        fds: Vec<OwnedFd>,
    ) -> Result<Self, ShmError> {
        check_size(size)?;
        if guid == 0 {
            return Err(ShmError::ZeroGuid);
        }
        let wanted = required_fd_modes(mode);
        if fds.len() != wanted.len() {
            return Err(ShmError::WrongFdCount {
                mode,
                expected: wanted.len(),
                found: fds.len(),
            });
        }
        let mut inodes = Vec::with_capacity(2);
        for (index, (fd, &want)) in fds.iter().zip(wanted).enumerate() {
            let found = fd_access_mode(fd)?;
            if found != want {
                return Err(ShmError::WrongAccessMode {
                    index,
                    expected: want,
                    found,
                });
            }
            let st = fstat(fd).map_err(SysError::of("fstat"))?;
            if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
                return Err(ShmError::NotARegularFile { index });
            }
            let file_size = u64::try_from(st.st_size).unwrap_or(0);
            if file_size < size as u64 {
                return Err(ShmError::FileTooSmall {
                    index,
                    file_size,
                    region_size: size as u64,
                });
            }
            inodes.push((st.st_dev, st.st_ino));
        }
        if let [a, b] = inodes.as_slice() {
            if a != b {
                return Err(ShmError::InodeMismatch);
            }
        }
        let mut it = fds.into_iter();
        let (Some(fd), readonly_fd) = (it.next(), it.next()) else {
            return Err(ShmError::WrongFdCount {
                mode,
                expected: wanted.len(),
                found: 0,
            });
        };
        Ok(Self {
            mode,
            size,
            guid,
            sealed: file_is_sealed(fd.as_fd())?,
            fd,
            readonly_fd,
            peer_trusted: false,
        })
    }

    /// True when no holder of the file can shrink it (a memfd with
    /// `F_SEAL_SHRINK`, as [`create`](Self::create) makes): mapping it can
    /// never fault. Chromium's own regions are unsealed `/dev/shm` files.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Declares that the process this region came from is trusted not to
    /// shrink it, which lets [`map`](Self::map) map an unsealed file. A peer
    /// that breaks that trust kills this process with `SIGBUS`, so use it
    /// only for a peer that could end this process anyway: the ipcz host
    /// (the broker that launched us), for its NodeLinkMemory buffers.
    #[must_use]
    pub fn trust_peer(mut self) -> Self {
        self.peer_trusted = true;
        self
    }

    /// Whether [`trust_peer`](Self::trust_peer) was called.
    pub fn is_peer_trusted(&self) -> bool {
        self.peer_trusted
    }

    /// The fds to send, in wire order (writable: read-write then read-only).
    pub fn into_fds(self) -> Vec<OwnedFd> {
        let mut v = vec![self.fd];
        v.extend(self.readonly_fd);
        v
    }

    /// The mode.
    pub fn mode(&self) -> RegionMode {
        self.mode
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The guid (`UnguessableToken`; high half is `guid >> 64`).
    pub fn guid(&self) -> u128 {
        self.guid
    }

    /// The main fd (`O_RDWR`, or `O_RDONLY` for read-only regions).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The extra read-only fd of a writable region.
    pub fn readonly_fd(&self) -> Option<BorrowedFd<'_>> {
        self.readonly_fd.as_ref().map(|f| f.as_fd())
    }

    fn with_fds(&self, mode: RegionMode, fd: OwnedFd, readonly_fd: Option<OwnedFd>) -> Self {
        Self {
            mode,
            size: self.size,
            guid: self.guid,
            fd,
            readonly_fd,
            sealed: self.sealed,
            peer_trusted: self.peer_trusted,
        }
    }

    /// A second handle to the same region (`dup`). Refused for writable
    /// regions, as in Chromium (a writable region has a single owner so that
    /// converting it to read-only means something).
    pub fn duplicate(&self) -> Result<Self, ShmError> {
        if self.mode == RegionMode::Writable {
            return Err(ShmError::ModeNotAllowed {
                op: "duplicate",
                mode: self.mode,
            });
        }
        let fd = dup(&self.fd).map_err(SysError::of("dup"))?;
        Ok(self.with_fds(self.mode, fd, None))
    }

    /// A read-only region of the same memory (same guid), from a `dup` of a
    /// writable region's read-only fd; the writable region stays usable.
    pub fn duplicate_read_only(&self) -> Result<Self, ShmError> {
        match (&self.readonly_fd, self.mode) {
            (Some(ro), RegionMode::Writable) => {
                let fd = dup(ro).map_err(SysError::of("dup"))?;
                Ok(self.with_fds(RegionMode::ReadOnly, fd, None))
            }
            _ => Err(ShmError::ModeNotAllowed {
                op: "duplicate_read_only",
                mode: self.mode,
            }),
        }
    }

    /// Chromium's `ConvertToReadOnly`: a writable region becomes read-only by
    /// closing its read-write fd.
    pub fn convert_to_read_only(self) -> Result<Self, ShmError> {
        match (self.mode, self.readonly_fd) {
            (RegionMode::Writable, Some(ro)) => Ok(Self {
                mode: RegionMode::ReadOnly,
                fd: ro,
                readonly_fd: None,
                ..self
            }),
            (mode, _) => Err(ShmError::ModeNotAllowed {
                op: "convert_to_read_only",
                mode,
            }),
        }
    }

    /// Chromium's `ConvertToUnsafe`: a writable region becomes unsafe by
    /// closing its read-only fd.
    pub fn convert_to_unsafe(self) -> Result<Self, ShmError> {
        if self.mode != RegionMode::Writable {
            return Err(ShmError::ModeNotAllowed {
                op: "convert_to_unsafe",
                mode: self.mode,
            });
        }
        Ok(Self {
            mode: RegionMode::Unsafe,
            readonly_fd: None,
            ..self
        })
    }

    /// Maps the whole region: read-write unless the mode is read-only.
    /// Refused with [`ShmError::Unsealed`] unless the region is sealed or its
    /// peer trusted.
    pub fn map(&self) -> Result<Mapping, ShmError> {
        self.map_range(0, self.size)
    }

    /// Maps `len` bytes from `offset` (any offset): read-write unless the
    /// mode is read-only; sealed or trusted regions only, as [`map`](Self::map).
    pub fn map_range(&self, offset: usize, len: usize) -> Result<Mapping, ShmError> {
        self.map_range_as(offset, len, self.mode != RegionMode::ReadOnly)
    }

    /// Maps the whole region read-only, whatever the mode; sealed or trusted
    /// regions only, as [`map`](Self::map).
    pub fn map_read_only(&self) -> Result<Mapping, ShmError> {
        self.map_range_as(0, self.size, false)
    }

    fn check_range(&self, offset: usize, len: usize) -> Result<(), ShmError> {
        let end = offset.checked_add(len);
        if len == 0 || end.is_none_or(|e| e > self.size) {
            return Err(ShmError::OutOfBounds {
                offset,
                len,
                size: self.size,
            });
        }
        Ok(())
    }

    fn map_range_as(&self, offset: usize, len: usize, writable: bool) -> Result<Mapping, ShmError> {
        self.check_range(offset, len)?;
        if !self.sealed && !self.peer_trusted {
            return Err(ShmError::Unsealed);
        }
        Mapping::new(self.fd.as_fd(), offset, len, writable)
    }

    /// Copies `dst.len()` bytes at `offset` out of the file with `pread`,
    /// without mapping it: the way to read an unsealed region from an
    /// untrusted peer. A file the peer shrank gives
    /// [`ShmError::Truncated`], never a signal.
    pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<(), ShmError> {
        let len = dst.len();
        self.check_copy(offset, len)?;
        let mut done = 0;
        while let Some(rest) = dst.get_mut(done..).filter(|r| !r.is_empty()) {
            match pread(&self.fd, rest, file_offset(offset, done)?) {
                Ok(0) => {
                    return Err(ShmError::Truncated {
                        offset,
                        len,
                        copied: done,
                    });
                }
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(SysError::new("pread", errno).into()),
            }
        }
        Ok(())
    }

    /// Copies `src` into the file at `offset` with `pwrite`, without mapping
    /// it (writable and unsafe regions only). Refused with
    /// [`ShmError::Truncated`] when the file no longer covers the range. (A
    /// peer that shrinks it between that check and the write gets its file
    /// grown back by the write, which harms nobody but that peer.)
    pub fn write_at(&self, offset: usize, src: &[u8]) -> Result<(), ShmError> {
        if self.mode == RegionMode::ReadOnly {
            return Err(ShmError::ModeNotAllowed {
                op: "write_at",
                mode: self.mode,
            });
        }
        let len = src.len();
        self.check_copy(offset, len)?;
        let st = fstat(&self.fd).map_err(SysError::of("fstat"))?;
        if u64::try_from(st.st_size).unwrap_or(0) < (offset + len) as u64 {
            return Err(ShmError::Truncated {
                offset,
                len,
                copied: 0,
            });
        }
        let mut done = 0;
        while let Some(rest) = src.get(done..).filter(|r| !r.is_empty()) {
            match pwrite(&self.fd, rest, file_offset(offset, done)?) {
                Ok(0) => {
                    return Err(ShmError::Truncated {
                        offset,
                        len,
                        copied: done,
                    });
                }
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(SysError::new("pwrite", errno).into()),
            }
        }
        Ok(())
    }

    fn check_copy(&self, offset: usize, len: usize) -> Result<(), ShmError> {
        if offset.checked_add(len).is_none_or(|e| e > self.size) {
            return Err(ShmError::OutOfBounds {
                offset,
                len,
                size: self.size,
            });
        }
        Ok(())
    }

    /// Checks that the OS refuses write access through this region's
    /// read-only fd (the main fd of a read-only region, the second fd of a
    /// writable one): `mmap(PROT_READ | PROT_WRITE, MAP_SHARED)` must fail,
    /// and a `PROT_READ` shared mapping must not be `mprotect`able to
    /// `PROT_WRITE`. The broker calls this before sending a read-only region.
    pub fn verify_read_only_enforced(&self) -> Result<(), ShmError> {
        let ro = match (self.mode, &self.readonly_fd) {
            (RegionMode::ReadOnly, _) => &self.fd,
            (RegionMode::Writable, Some(ro)) => ro,
            _ => {
                return Err(ShmError::ModeNotAllowed {
                    op: "verify_read_only_enforced",
                    mode: self.mode,
                });
            }
        };
        verify_fd_read_only(ro.as_fd(), self.size)
    }
}

fn file_offset(offset: usize, done: usize) -> Result<i64, ShmError> {
    offset
        .checked_add(done)
        .and_then(|o| i64::try_from(o).ok())
        .ok_or(ShmError::TooLarge {
            size: offset as u64,
        })
}

/// The checks of [`SharedMemoryRegion::verify_read_only_enforced`] on any fd
/// of a file at least `len` bytes long. The test mappings are never
/// accessed, so a file that shrinks meanwhile cannot make this fault.
pub fn verify_fd_read_only(fd: BorrowedFd<'_>, len: usize) -> Result<(), ShmError> {
    let found = fd_access_mode(fd)?;
    if found != FdAccessMode::ReadOnly {
        return Err(ShmError::WrongAccessMode {
            index: 0,
            expected: FdAccessMode::ReadOnly,
            found,
        });
    }
    if MmapOptions::new().len(len).map_raw(fd.as_raw_fd()).is_ok() {
        return Err(ShmError::ReadOnlyNotEnforced {
            check: "mmap(PROT_WRITE, MAP_SHARED)",
        });
    }
    // SAFETY: memmap2's `map` is unsafe because the returned `Mmap` derefs
    // to a `&[u8]` over memory another process may change. We never deref
    // it: we only try to change its protection and drop it.
    let ro = unsafe { MmapOptions::new().len(len).map(fd.as_raw_fd()) }
        .map_err(|e| SysError::from_io("mmap(PROT_READ)", &e))?;
    if ro.make_mut().is_ok() {
        return Err(ShmError::ReadOnlyNotEnforced {
            check: "mprotect(PROT_WRITE)",
        });
    }
    Ok(())
}
