//! Shared memory regions as Chromium's `base::subtle::PlatformSharedMemoryRegion`
//! uses them on Linux and ChromeOS, plus mappings with bounds-checked byte
//! access and atomic views.
//!
//! # What Chromium does (checked against `base/memory/platform_shared_memory_region_posix.cc`)
//!
//! * `Create(mode, size)` refuses size 0, sizes above `INT_MAX`, and
//!   [`ShmMode::ReadOnly`] (a region born read-only could never be written).
//! * The backing object is a file in the shared-memory temp dir (`/dev/shm`,
//!   or `/tmp` with `--disable-dev-shm-usage`), created with `mkstemp`
//!   (`O_RDWR`), then, for [`ShmMode::Writable`] only, opened a second time by
//!   path with `O_RDONLY`, then unlinked and `ftruncate`d to the size; the two
//!   fds must name the same inode. The recordings in `shared/vectors` show
//!   exactly this: writable buffers arrive as two fds both described as
//!   `file:/dev/shm/.org.chromium.Chromium.XXXXXX (deleted)`, other buffers as
//!   one such fd. Chromium does not use `memfd_create` here.
//! * fds on the wire: writable = 2 (`O_RDWR`, then `O_RDONLY`), read-only = 1
//!   (`O_RDONLY`), unsafe = 1 (`O_RDWR`). `Take` checks the access modes with
//!   `fcntl(F_GETFL) & O_ACCMODE` and `CHECK`-fails (crashes) on a mismatch,
//!   so we check before sending and refuse bad input with a typed error.
//! * `ConvertToReadOnly` drops the `O_RDWR` fd and keeps the `O_RDONLY` one;
//!   `ConvertToUnsafe` drops the read-only fd; `Duplicate` (`dup`) is refused
//!   for writable regions.
//! * Read-only mappings use `PROT_READ`, others `PROT_READ | PROT_WRITE`,
//!   always `MAP_SHARED`.
//!
//! The OS-level read-only guarantee therefore is that of an `O_RDONLY` file
//! description: `mmap(PROT_WRITE, MAP_SHARED)` fails with `EACCES`, and a
//! `PROT_READ` shared mapping of it cannot be `mprotect`ed to writable
//! (`VM_MAYWRITE` is clear). As in Chromium on Linux it does not stop a
//! process that holds the fd from reopening `/proc/self/fd/N` for writing
//! (the file belongs to the same user); that is left to the sandbox.
//! [`SharedMemoryRegion::verify_read_only_enforced`] checks the two mmap facts.
//!
//! We create regions the same way ([`ShmBackend::DevShm`]), with our own name
//! prefix [`SHM_NAME_PREFIX`] and `O_CLOEXEC`, and fall back to a memfd
//! ([`ShmBackend::Memfd`], read-only fd by reopening `/proc/self/fd/N` with
//! `O_RDONLY`, size sealed with `F_SEAL_SHRINK | F_SEAL_GROW`) when `/dev/shm`
//! is unusable. Receivers must not care which (`ipcz.md` 1.6.2).
//!
//! This module holds the `unsafe` of the memory half of the crate: creating
//! mappings (memmap2's `map` is `unsafe` because the file could change under
//! a `&[u8]`; we never hand out such slices) and the atomic views.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64};

use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl, open};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::{dup, ftruncate, unlink};

/// Largest region size Chromium accepts (`INT_MAX`).
pub const MAX_REGION_SIZE: usize = i32::MAX as usize;

/// Directory of the [`ShmBackend::DevShm`] backend (Chromium's default
/// shared-memory temp dir on Linux).
pub const SHM_DIR: &str = "/dev/shm";

/// Prefix of the (immediately unlinked) files we create in [`SHM_DIR`].
/// Chromium's own files are named `.org.chromium.Chromium.XXXXXX`; ours are
/// distinguishable in `/proc/PID/fd` listings.
pub const SHM_NAME_PREFIX: &str = ".org.chromium.mojo_proxy_rs.";

/// Name given to memfds of the [`ShmBackend::Memfd`] backend.
pub const MEMFD_NAME: &str = "mojo_proxy_rs_shm";

/// Access mode of a region, with Chromium's wire values
/// (`PlatformSharedMemoryRegion::Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShmMode {
    /// `kReadOnly` (0): one `O_RDONLY` fd; maps read-only.
    ReadOnly,
    /// `kWritable` (1): an `O_RDWR` fd plus an `O_RDONLY` fd of the same
    /// file, kept so that the region can later be converted to read-only.
    Writable,
    /// `kUnsafe` (2): one `O_RDWR` fd (all NodeLinkMemory buffers).
    Unsafe,
}

impl ShmMode {
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
}

/// How [`SharedMemoryRegion::create_with`] makes the backing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShmBackend {
    /// An unlinked file in [`SHM_DIR`], as Chromium does.
    DevShm,
    /// `memfd_create`, read-only fd via `/proc/self/fd/N`.
    Memfd,
    /// [`DevShm`](Self::DevShm), falling back to [`Memfd`](Self::Memfd) when
    /// the directory cannot be used.
    Auto,
}

/// An fd access mode (`fcntl(F_GETFL) & O_ACCMODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// `O_RDONLY`.
    ReadOnly,
    /// `O_WRONLY`.
    WriteOnly,
    /// `O_RDWR`.
    ReadWrite,
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadOnly => "O_RDONLY",
            Self::WriteOnly => "O_WRONLY",
            Self::ReadWrite => "O_RDWR",
        })
    }
}

/// Errors creating, importing, converting or mapping a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShmError {
    /// Size 0 (Chromium refuses it).
    ZeroSize,
    /// Size above [`MAX_REGION_SIZE`].
    TooLarge {
        /// The size asked for.
        size: u64,
    },
    /// The guid is zero (Chromium refuses a zero `UnguessableToken`).
    ZeroGuid,
    /// The operation is not allowed for this mode (e.g. creating a read-only
    /// region, duplicating a writable one).
    ModeNotAllowed {
        /// The operation.
        op: &'static str,
        /// The region's mode.
        mode: ShmMode,
    },
    /// Wrong number of fds for the mode.
    WrongFdCount {
        /// The mode.
        mode: ShmMode,
        /// Fds the mode needs.
        expected: usize,
        /// Fds given.
        found: usize,
    },
    /// An fd has the wrong access mode for its place.
    WrongAccessMode {
        /// Index of the fd (0 or 1).
        index: usize,
        /// What the mode requires.
        expected: AccessMode,
        /// What the fd has.
        found: AccessMode,
    },
    /// An fd is not a regular file (shared memory files and memfds are).
    NotARegularFile {
        /// Index of the fd.
        index: usize,
    },
    /// The file is smaller than the region size (mapping it would SIGBUS).
    FileTooSmall {
        /// Index of the fd.
        index: usize,
        /// The file's size.
        file_size: u64,
        /// The region size.
        region_size: u64,
    },
    /// The two fds of a writable region name different files.
    InodeMismatch,
    /// A mapping range lies outside the region.
    OutOfBounds {
        /// Start of the range.
        offset: usize,
        /// Its length.
        len: usize,
        /// The region size.
        size: usize,
    },
    /// The OS did not refuse a writable mapping of a read-only fd.
    ReadOnlyNotEnforced {
        /// Which check succeeded when it should have failed.
        check: &'static str,
    },
    /// A system call failed.
    Sys {
        /// The call.
        op: &'static str,
        /// Its error.
        errno: Errno,
    },
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSize => f.write_str("shared memory size is 0"),
            Self::TooLarge { size } => {
                write!(f, "shared memory size {size} exceeds {MAX_REGION_SIZE}")
            }
            Self::ZeroGuid => f.write_str("shared memory guid is zero"),
            Self::ModeNotAllowed { op, mode } => write!(f, "{op} is not allowed in mode {mode:?}"),
            Self::WrongFdCount {
                mode,
                expected,
                found,
            } => write!(f, "a {mode:?} region needs {expected} fds, {found} given"),
            Self::WrongAccessMode {
                index,
                expected,
                found,
            } => write!(f, "fd[{index}] is {found}, {expected} required"),
            Self::NotARegularFile { index } => write!(f, "fd[{index}] is not a regular file"),
            Self::FileTooSmall {
                index,
                file_size,
                region_size,
            } => write!(
                f,
                "fd[{index}] file has {file_size} bytes, region needs {region_size}"
            ),
            Self::InodeMismatch => {
                f.write_str("the two fds of a writable region name different files")
            }
            Self::OutOfBounds { offset, len, size } => write!(
                f,
                "range {offset}+{len} is outside the region of {size} bytes"
            ),
            Self::ReadOnlyNotEnforced { check } => {
                write!(
                    f,
                    "read-only fd is not enforced by the OS: {check} succeeded"
                )
            }
            Self::Sys { op, errno } => write!(f, "{op} failed: {errno}"),
        }
    }
}

impl std::error::Error for ShmError {}

fn sys(op: &'static str) -> impl FnOnce(Errno) -> ShmError {
    move |errno| ShmError::Sys { op, errno }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc_eio()))
}

const fn libc_eio() -> i32 {
    nix::libc::EIO
}

/// Fills `buf` from `/dev/urandom`.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), ShmError> {
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| ShmError::Sys {
            op: "read /dev/urandom",
            errno: io_errno(&e),
        })
}

/// A random non-zero 128-bit guid (Chromium's `UnguessableToken::Create`).
pub fn random_guid() -> Result<u128, ShmError> {
    loop {
        let mut b = [0u8; 16];
        random_bytes(&mut b)?;
        let g = u128::from_le_bytes(b);
        if g != 0 {
            return Ok(g);
        }
    }
}

/// The access mode of an fd.
pub fn access_mode(fd: impl AsFd) -> Result<AccessMode, ShmError> {
    let bits = fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(sys("fcntl(F_GETFL)"))?;
    let acc = OFlag::from_bits_retain(bits) & OFlag::O_ACCMODE;
    Ok(if acc == OFlag::O_RDWR {
        AccessMode::ReadWrite
    } else if acc == OFlag::O_WRONLY {
        AccessMode::WriteOnly
    } else {
        AccessMode::ReadOnly
    })
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

/// Removes a path when dropped (the created file must never outlive
/// creation, even on error paths).
struct Unlinker<'a>(&'a Path);

impl Drop for Unlinker<'_> {
    fn drop(&mut self) {
        if let Err(e) = unlink(self.0) {
            log::warn!("unlink {}: {e}", self.0.display());
        }
    }
}

/// A shared memory region: its fd(s), mode, size and guid.
///
/// Dropping it closes the fds; mappings made from it stay valid.
#[derive(Debug)]
pub struct SharedMemoryRegion {
    mode: ShmMode,
    size: usize,
    guid: u128,
    fd: OwnedFd,
    readonly_fd: Option<OwnedFd>,
}

impl SharedMemoryRegion {
    /// Creates a zero-filled region of `size` bytes, [`ShmMode::Writable`] or
    /// [`ShmMode::Unsafe`], with a random guid, using [`ShmBackend::Auto`].
    pub fn create(mode: ShmMode, size: usize) -> Result<Self, ShmError> {
        Self::create_with(mode, size, ShmBackend::Auto)
    }

    /// [`create`](Self::create) with an explicit backend.
    pub fn create_with(mode: ShmMode, size: usize, backend: ShmBackend) -> Result<Self, ShmError> {
        check_size(size)?;
        if mode == ShmMode::ReadOnly {
            return Err(ShmError::ModeNotAllowed { op: "create", mode });
        }
        let guid = random_guid()?;
        let (fd, readonly_fd) = match backend {
            ShmBackend::DevShm => create_dev_shm(Path::new(SHM_DIR), mode, size)?,
            ShmBackend::Memfd => create_memfd(mode, size)?,
            ShmBackend::Auto => match create_dev_shm(Path::new(SHM_DIR), mode, size) {
                Ok(fds) => fds,
                Err(e) => {
                    log::debug!("{SHM_DIR} unusable ({e}); using memfd");
                    create_memfd(mode, size)?
                }
            },
        };
        let mut fds = vec![fd];
        fds.extend(readonly_fd);
        Self::from_fds(mode, size, guid, fds)
    }

    /// Imports a region from received fds (in wire order) after Chromium's
    /// checks: size in `1..=`[`MAX_REGION_SIZE`], non-zero guid, exactly
    /// [`ShmMode::num_fds`] fds, access modes as the mode requires, regular
    /// files at least `size` bytes long, and for writable regions both fds
    /// naming the same file. On error the fds are closed.
    pub fn from_fds(
        mode: ShmMode,
        size: usize,
        guid: u128,
        fds: Vec<OwnedFd>,
    ) -> Result<Self, ShmError> {
        check_size(size)?;
        if guid == 0 {
            return Err(ShmError::ZeroGuid);
        }
        if fds.len() != mode.num_fds() {
            return Err(ShmError::WrongFdCount {
                mode,
                expected: mode.num_fds(),
                found: fds.len(),
            });
        }
        let expected = [
            if mode == ShmMode::ReadOnly {
                AccessMode::ReadOnly
            } else {
                AccessMode::ReadWrite
            },
            AccessMode::ReadOnly,
        ];
        let mut inodes = Vec::with_capacity(2);
        for (index, (fd, want)) in fds.iter().zip(expected).enumerate() {
            let found = access_mode(fd)?;
            if found != want {
                return Err(ShmError::WrongAccessMode {
                    index,
                    expected: want,
                    found,
                });
            }
            let st = fstat(fd).map_err(sys("fstat"))?;
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
                expected: mode.num_fds(),
                found: 0,
            });
        };
        Ok(Self {
            mode,
            size,
            guid,
            fd,
            readonly_fd,
        })
    }

    /// The fds to send, in wire order (writable: read-write then read-only).
    pub fn into_fds(self) -> Vec<OwnedFd> {
        let mut v = vec![self.fd];
        v.extend(self.readonly_fd);
        v
    }

    /// The mode.
    pub fn mode(&self) -> ShmMode {
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

    /// A second handle to the same region (`dup`). Refused for writable
    /// regions, as in Chromium (a writable region has a single owner so that
    /// converting it to read-only means something).
    pub fn duplicate(&self) -> Result<Self, ShmError> {
        if self.mode == ShmMode::Writable {
            return Err(ShmError::ModeNotAllowed {
                op: "duplicate",
                mode: self.mode,
            });
        }
        Ok(Self {
            mode: self.mode,
            size: self.size,
            guid: self.guid,
            fd: dup(&self.fd).map_err(sys("dup"))?,
            readonly_fd: None,
        })
    }

    /// A read-only region of the same memory (same guid), from a `dup` of a
    /// writable region's read-only fd; the writable region stays usable.
    pub fn duplicate_read_only(&self) -> Result<Self, ShmError> {
        match (&self.readonly_fd, self.mode) {
            (Some(ro), ShmMode::Writable) => Ok(Self {
                mode: ShmMode::ReadOnly,
                size: self.size,
                guid: self.guid,
                fd: dup(ro).map_err(sys("dup"))?,
                readonly_fd: None,
            }),
            _ => Err(ShmError::ModeNotAllowed {
                op: "duplicate_read_only",
                mode: self.mode,
            }),
        }
    }

    /// Chromium's `ConvertToReadOnly`: a writable region becomes read-only by
    /// closing its read-write fd.
    pub fn convert_to_read_only(self) -> Result<Self, ShmError> {
        match (self.readonly_fd, self.mode) {
            (Some(ro), ShmMode::Writable) => Ok(Self {
                mode: ShmMode::ReadOnly,
                size: self.size,
                guid: self.guid,
                fd: ro,
                readonly_fd: None,
            }),
            _ => Err(ShmError::ModeNotAllowed {
                op: "convert_to_read_only",
                mode: self.mode,
            }),
        }
    }

    /// Chromium's `ConvertToUnsafe`: a writable region becomes unsafe by
    /// closing its read-only fd.
    pub fn convert_to_unsafe(self) -> Result<Self, ShmError> {
        if self.mode != ShmMode::Writable {
            return Err(ShmError::ModeNotAllowed {
                op: "convert_to_unsafe",
                mode: self.mode,
            });
        }
        Ok(Self {
            mode: ShmMode::Unsafe,
            size: self.size,
            guid: self.guid,
            fd: self.fd,
            readonly_fd: None,
        })
    }

    /// Maps the whole region: read-write unless the mode is read-only.
    pub fn map(&self) -> Result<Mapping, ShmError> {
        self.map_range(0, self.size)
    }

    /// Maps `len` bytes from `offset` (any offset; memmap2 aligns the
    /// underlying mapping): read-write unless the mode is read-only.
    pub fn map_range(&self, offset: usize, len: usize) -> Result<Mapping, ShmError> {
        self.map_range_as(offset, len, self.mode != ShmMode::ReadOnly)
    }

    /// Maps the whole region read-only, whatever the mode.
    pub fn map_read_only(&self) -> Result<Mapping, ShmError> {
        self.map_range_as(0, self.size, false)
    }

    fn map_range_as(&self, offset: usize, len: usize, writable: bool) -> Result<Mapping, ShmError> {
        let end = offset.checked_add(len);
        if len == 0 || end.is_none_or(|e| e > self.size) {
            return Err(ShmError::OutOfBounds {
                offset,
                len,
                size: self.size,
            });
        }
        let mut opts = MmapOptions::new();
        opts.offset(offset as u64).len(len);
        let map = if writable {
            opts.map_raw(&self.fd)
        } else {
            opts.map_raw_read_only(&self.fd)
        }
        .map_err(|e| ShmError::Sys {
            op: "mmap",
            errno: io_errno(&e),
        })?;
        Ok(Mapping {
            map,
            writable,
            _not_sync: PhantomData,
        })
    }

    /// Checks that the OS refuses write access through this region's
    /// read-only fd (the main fd of a read-only region, the second fd of a
    /// writable one): `mmap(PROT_READ | PROT_WRITE, MAP_SHARED)` must fail,
    /// and a `PROT_READ` shared mapping must not be `mprotect`able to
    /// `PROT_WRITE`. The broker calls this before sending a read-only region.
    pub fn verify_read_only_enforced(&self) -> Result<(), ShmError> {
        let ro = match (self.mode, &self.readonly_fd) {
            (ShmMode::ReadOnly, _) => &self.fd,
            (ShmMode::Writable, Some(ro)) => ro,
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

/// The checks of [`SharedMemoryRegion::verify_read_only_enforced`] on any fd
/// of a file at least `len` bytes long.
pub fn verify_fd_read_only(fd: BorrowedFd<'_>, len: usize) -> Result<(), ShmError> {
    let found = access_mode(fd)?;
    if found != AccessMode::ReadOnly {
        return Err(ShmError::WrongAccessMode {
            index: 0,
            expected: AccessMode::ReadOnly,
            found,
        });
    }
    if MmapOptions::new().len(len).map_raw(fd.as_raw_fd()).is_ok() {
        return Err(ShmError::ReadOnlyNotEnforced {
            check: "mmap(PROT_WRITE, MAP_SHARED)",
        });
    }
    // SAFETY: the mapping is read-only and shared; no reference into it is
    // created (we only try to change its protection and drop it), so a
    // concurrent change of the file cannot invalidate anything we read.
    let ro =
        unsafe { MmapOptions::new().len(len).map(fd.as_raw_fd()) }.map_err(|e| ShmError::Sys {
            op: "mmap(PROT_READ)",
            errno: io_errno(&e),
        })?;
    if ro.make_mut().is_ok() {
        return Err(ShmError::ReadOnlyNotEnforced {
            check: "mprotect(PROT_WRITE)",
        });
    }
    Ok(())
}

fn create_dev_shm(
    dir: &Path,
    mode: ShmMode,
    size: usize,
) -> Result<(OwnedFd, Option<OwnedFd>), ShmError> {
    let mut attempt = 0;
    let (fd, path) = loop {
        let mut r = [0u8; 8];
        random_bytes(&mut r)?;
        let path: PathBuf = dir.join(format!("{SHM_NAME_PREFIX}{:016x}", u64::from_le_bytes(r)));
        match open(
            &path,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::S_IRUSR | Mode::S_IWUSR,
        ) {
            Ok(fd) => break (fd, path),
            Err(Errno::EEXIST) if attempt < 16 => attempt += 1,
            Err(errno) => {
                return Err(ShmError::Sys {
                    op: "open shared memory file",
                    errno,
                });
            }
        }
    };
    let unlinker = Unlinker(&path);
    let readonly_fd = if mode == ShmMode::Writable {
        Some(
            open(
                &path,
                OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(sys("reopen shared memory file O_RDONLY"))?,
        )
    } else {
        None
    };
    drop(unlinker);
    truncate_to(&fd, size)?;
    Ok((fd, readonly_fd))
}

fn create_memfd(mode: ShmMode, size: usize) -> Result<(OwnedFd, Option<OwnedFd>), ShmError> {
    let fd = memfd_create(
        MEMFD_NAME,
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(sys("memfd_create"))?;
    truncate_to(&fd, size)?;
    fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW),
    )
    .map_err(sys("fcntl(F_ADD_SEALS)"))?;
    let readonly_fd = if mode == ShmMode::Writable {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        Some(
            open(
                path.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys("reopen memfd O_RDONLY"))?,
        )
    } else {
        None
    };
    Ok((fd, readonly_fd))
}

fn truncate_to(fd: &OwnedFd, size: usize) -> Result<(), ShmError> {
    let len = i64::try_from(size).map_err(|_| ShmError::TooLarge { size: size as u64 })?;
    loop {
        match ftruncate(fd, len) {
            Ok(()) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(errno) => {
                return Err(ShmError::Sys {
                    op: "ftruncate",
                    errno,
                });
            }
        }
    }
}

/// Errors of [`Mapping`] accessors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewError {
    /// The field does not fit inside the mapping.
    OutOfBounds {
        /// Requested offset.
        offset: usize,
        /// Bytes requested.
        len: usize,
        /// Mapping length.
        mapping_len: usize,
    },
    /// The field's address is not aligned for its type.
    Misaligned {
        /// Requested offset.
        offset: usize,
        /// Alignment the type needs.
        align: usize,
    },
    /// Writing (or an atomic view, which permits stores) needs a writable
    /// mapping.
    ReadOnly,
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfBounds {
                offset,
                len,
                mapping_len,
            } => write!(
                f,
                "{len} bytes at offset {offset} exceed the mapping of {mapping_len} bytes"
            ),
            Self::Misaligned { offset, align } => {
                write!(f, "offset {offset} is not {align}-byte aligned")
            }
            Self::ReadOnly => f.write_str("the mapping is read-only"),
        }
    }
}

impl std::error::Error for ViewError {}

mod sealed {
    pub trait Sealed {}
}

/// Atomic integer types that may be viewed inside a [`Mapping`]: they have
/// the size and alignment of their integer and no invalid bit patterns.
pub trait SharedAtomic: sealed::Sealed + Sync {}

macro_rules! shared_atomic {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl SharedAtomic for $t {}
    )*};
}
shared_atomic!(
    AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicI32, AtomicI64
);

/// A `MAP_SHARED` mapping of (part of) a region.
///
/// The memory may change at any time (the peer maps it too), so the mapping
/// hands out no `&[u8]`: bytes are copied in and out with
/// [`read`](Self::read) / [`write`](Self::write), and shared words are
/// accessed through atomic views ([`atomic`](Self::atomic)), as ipcz's
/// NodeLinkMemory requires. Unmapped on drop.
///
/// A `Mapping` is `Send` but not `Sync`: all access to its addresses comes
/// from one thread at a time, so a byte copy by [`read`](Self::read) can
/// never race with a store through an atomic view handed out by the same
/// mapping in another thread (that would be a data race, undefined
/// behaviour). Writers in other processes, or through other mappings, use
/// other addresses and are outside Rust's memory model; the copies and the
/// atomics tolerate any bytes they leave.
#[derive(Debug)]
pub struct Mapping {
    map: MmapRaw,
    writable: bool,
    /// Makes the type `!Sync` (see above) while keeping it `Send`.
    _not_sync: PhantomData<Cell<()>>,
}

impl Mapping {
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

    /// Address of the first byte (for diagnostics and FFI).
    pub fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), ViewError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.map.len() => Ok(()),
            _ => Err(ViewError::OutOfBounds {
                offset,
                len,
                mapping_len: self.map.len(),
            }),
        }
    }

    /// Copies `dst.len()` bytes starting at `offset` out of the mapping.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ViewError> {
        self.check(offset, dst.len())?;
        // SAFETY: `offset + dst.len() <= len` was checked, so the source lies
        // inside the live mapping (kept alive by `&self`); `dst` is a distinct
        // Rust buffer, so the ranges do not overlap. The bytes are plain
        // `u8`s, valid for any value a peer may have written. No other thread
        // can store to these addresses meanwhile: `Mapping` is `!Sync`, and
        // atomic views borrow this mapping, so they live on this thread.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
        Ok(())
    }

    /// Copies `src` into the mapping at `offset` (writable mappings only).
    pub fn write(&mut self, offset: usize, src: &[u8]) -> Result<(), ViewError> {
        if !self.writable {
            return Err(ViewError::ReadOnly);
        }
        self.check(offset, src.len())?;
        // SAFETY: bounds checked above; the mapping is PROT_WRITE; `src` is a
        // distinct Rust buffer so the ranges do not overlap; `&mut self`
        // excludes every other access through this Mapping (no atomic view is
        // alive), and `!Sync` keeps other threads out.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.map.as_mut_ptr().add(offset),
                src.len(),
            );
        }
        Ok(())
    }

    /// An atomic view of the `T` at `offset`, for writable mappings. Fails
    /// when the field is out of bounds or its address is misaligned.
    pub fn atomic<T: SharedAtomic>(&self, offset: usize) -> Result<&T, ViewError> {
        if !self.writable {
            return Err(ViewError::ReadOnly);
        }
        let size = size_of::<T>();
        let align = align_of::<T>();
        self.check(offset, size)?;
        let addr = (self.map.as_ptr() as usize).wrapping_add(offset);
        if addr % align != 0 {
            return Err(ViewError::Misaligned { offset, align });
        }
        // SAFETY: the `size_of::<T>()` bytes at `addr` lie inside the mapping
        // (checked), `addr` is aligned for `T` (checked), the mapping is
        // readable and writable (checked) and stays mapped for the lifetime
        // of `&self`, to which the returned reference is tied. `T` is an
        // atomic integer (sealed `SharedAtomic`), valid for every bit
        // pattern. Its interior mutability allows the plain copies of `read`
        // on the same thread while the reference lives (`write` needs
        // `&mut self`, so it cannot overlap); other threads cannot reach this
        // mapping (`!Sync`), and the peer process is outside the Rust memory
        // model.
        Ok(unsafe { &*(addr as *const T) })
    }

    /// [`atomic`](Self::atomic) for an `AtomicU32`.
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32, ViewError> {
        self.atomic(offset)
    }

    /// [`atomic`](Self::atomic) for an `AtomicU64`.
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64, ViewError> {
        self.atomic(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

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
    fn mode_wire_values() {
        for m in [ShmMode::ReadOnly, ShmMode::Writable, ShmMode::Unsafe] {
            assert_eq!(ShmMode::from_wire(m.to_wire()), Some(m));
        }
        assert_eq!(ShmMode::from_wire(3), None);
        assert_eq!(ShmMode::Writable.num_fds(), 2);
    }

    #[test]
    fn create_refuses_bad_sizes_and_read_only() {
        assert_eq!(
            SharedMemoryRegion::create(ShmMode::Unsafe, 0).unwrap_err(),
            ShmError::ZeroSize
        );
        assert!(matches!(
            SharedMemoryRegion::create(ShmMode::Unsafe, MAX_REGION_SIZE + 1),
            Err(ShmError::TooLarge { .. })
        ));
        assert!(matches!(
            SharedMemoryRegion::create(ShmMode::ReadOnly, 4096),
            Err(ShmError::ModeNotAllowed { .. })
        ));
    }

    #[test]
    fn writable_region_has_rw_and_ro_fds_of_same_file() {
        for backend in [ShmBackend::DevShm, ShmBackend::Memfd] {
            let r = SharedMemoryRegion::create_with(ShmMode::Writable, 10000, backend).unwrap();
            assert_eq!(access_mode(r.fd()).unwrap(), AccessMode::ReadWrite);
            assert_eq!(
                access_mode(r.readonly_fd().unwrap()).unwrap(),
                AccessMode::ReadOnly
            );
            r.verify_read_only_enforced().unwrap();
            let mut m = r.map().unwrap();
            m.write(9990, b"0123456789").unwrap();
            assert!(m.write(9991, b"0123456789").is_err());
            let ro = r.duplicate_read_only().unwrap();
            let rm = ro.map().unwrap();
            assert!(!rm.is_writable());
            let mut buf = [0u8; 10];
            rm.read(9990, &mut buf).unwrap();
            assert_eq!(&buf, b"0123456789");
            assert_eq!(rm.atomic_u32(0).err(), Some(ViewError::ReadOnly));
            assert!(matches!(ro.verify_read_only_enforced(), Ok(())));
            let ro2 = r.convert_to_read_only().unwrap();
            assert_eq!(ro2.mode(), ShmMode::ReadOnly);
            assert_eq!(ro2.into_fds().len(), 1);
        }
    }

    #[test]
    fn atomics_views_check_bounds_and_alignment() {
        let r = SharedMemoryRegion::create(ShmMode::Unsafe, 64).unwrap();
        let m = r.map().unwrap();
        let a = m.atomic_u32(60).unwrap();
        a.store(0xdead_beef, Ordering::Release);
        assert_eq!(
            m.atomic_u32(60).unwrap().load(Ordering::Acquire),
            0xdead_beef
        );
        assert_eq!(
            m.atomic_u32(33).err(),
            Some(ViewError::Misaligned {
                offset: 33,
                align: 4
            })
        );
        assert_eq!(
            m.atomic_u64(52).err(),
            Some(ViewError::Misaligned {
                offset: 52,
                align: 8
            })
        );
        assert_eq!(
            m.atomic_u64(64).err(),
            Some(ViewError::OutOfBounds {
                offset: 64,
                len: 8,
                mapping_len: 64
            })
        );
        assert!(matches!(
            m.atomic_u32(usize::MAX),
            Err(ViewError::OutOfBounds { .. })
        ));
        let b = m.atomic_u64(48).unwrap();
        b.fetch_add(5, Ordering::AcqRel);
        let mut bytes = [0u8; 8];
        m.read(48, &mut bytes).unwrap();
        assert_eq!(u64::from_ne_bytes(bytes), 5);
    }

    #[test]
    fn map_range_bounds_and_unaligned_offsets() {
        let r = SharedMemoryRegion::create(ShmMode::Unsafe, 3 * 4096).unwrap();
        let mut whole = r.map().unwrap();
        whole.write(4096 + 10, b"hello").unwrap();
        let part = r.map_range(4096 + 8, 100).unwrap();
        assert_eq!(part.len(), 100);
        let mut buf = [0u8; 5];
        part.read(2, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        // Alignment is checked on the real address, not the offset.
        assert!(part.atomic_u64(0).is_ok());
        assert!(matches!(
            part.atomic_u64(2),
            Err(ViewError::Misaligned { .. })
        ));
        assert!(matches!(
            part.read(96, &mut buf),
            Err(ViewError::OutOfBounds { .. })
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
        let r = SharedMemoryRegion::create(ShmMode::Writable, 8192).unwrap();
        let guid = r.guid();
        let fds = r.into_fds();
        // Wrong count.
        let mut fds2: Vec<OwnedFd> = fds.iter().map(|f| dup(f).unwrap()).collect();
        fds2.pop();
        assert!(matches!(
            SharedMemoryRegion::from_fds(ShmMode::Writable, 8192, guid, fds2),
            Err(ShmError::WrongFdCount {
                expected: 2,
                found: 1,
                ..
            })
        ));
        // O_RDWR fd presented as read-only.
        let rw = dup(&fds[0]).unwrap();
        assert!(matches!(
            SharedMemoryRegion::from_fds(ShmMode::ReadOnly, 8192, guid, vec![rw]),
            Err(ShmError::WrongAccessMode { index: 0, .. })
        ));
        // Too small a file.
        let rw = dup(&fds[0]).unwrap();
        assert!(matches!(
            SharedMemoryRegion::from_fds(ShmMode::Unsafe, 8193, guid, vec![rw]),
            Err(ShmError::FileTooSmall { .. })
        ));
        // Mismatched inodes.
        let other = SharedMemoryRegion::create(ShmMode::Writable, 8192).unwrap();
        let ofds = other.into_fds();
        let pair = vec![dup(&fds[0]).unwrap(), dup(&ofds[1]).unwrap()];
        assert_eq!(
            SharedMemoryRegion::from_fds(ShmMode::Writable, 8192, guid, pair).unwrap_err(),
            ShmError::InodeMismatch
        );
        assert_eq!(
            SharedMemoryRegion::from_fds(ShmMode::Writable, 8192, 0, fds).unwrap_err(),
            ShmError::ZeroGuid
        );
    }
}
