//! The audited module for fd ownership: `sendmsg`/`recvmsg` with
//! `SCM_RIGHTS`, control-buffer parsing, and adopting inherited fds by number.
//!
//! Every `unsafe` block of the channel half of this crate lives here. There
//! are exactly three kinds:
//!
//! 1. wrapping fd numbers that the kernel has just installed in our fd table
//!    (from an `SCM_RIGHTS` control message) as [`OwnedFd`];
//! 2. looking at an fd given by number (command line) before we know it is
//!    open ([`libc::fcntl`] on a plain integer) and borrowing it while we
//!    validate it;
//! 3. wrapping that inherited fd as [`OwnedFd`] once it passed validation,
//!    inside [`validate_inherited_fd`], an `unsafe fn` whose caller promises
//!    that nothing else owns the number.
//!
//! The control buffer given to `recvmsg` is a [`CmsgBuffer`], aligned for
//! `struct cmsghdr` because nix builds a `&cmsghdr` from its start.

use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::libc;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockType, SockaddrLike, SockaddrStorage, getsockname,
    getsockopt, recvmsg, send, sendmsg, sockopt,
};
use nix::sys::stat::{SFlag, fstat};

use crate::SysError;
use crate::endpoint::Endpoint;
use crate::queue::{MAX_FDS_PER_SENDMSG, SCM_MAX_FD};

const FD_SIZE: usize = size_of::<RawFd>();
const WORD: usize = size_of::<usize>();
/// Kernel `struct cmsghdr`: `__kernel_size_t cmsg_len; int cmsg_level; int cmsg_type;`.
const CMSG_HDR_LEN: usize = WORD + 2 * size_of::<libc::c_int>();

const fn cmsg_align(n: usize) -> usize {
    (n + WORD - 1) & !(WORD - 1)
}

/// Offset of the data in a control message (`CMSG_LEN(0)`).
const CMSG_DATA_OFFSET: usize = cmsg_align(CMSG_HDR_LEN);

/// `CMSG_SPACE(SCM_MAX_FD * sizeof(int))`: room for the largest `SCM_RIGHTS`
/// message the kernel can send.
pub(crate) const RECV_CMSG_SPACE: usize = CMSG_DATA_OFFSET + cmsg_align(SCM_MAX_FD * FD_SIZE);

/// A `recvmsg` control buffer of `N` bytes, aligned for `struct cmsghdr`
/// wherever it is stored (nix reads the first header through a `&cmsghdr`
/// made from the buffer's start, which needs the header's alignment; a
/// `Vec<u8>` only promises 1).
#[derive(Debug)]
#[repr(C, align(8))]
pub(crate) struct CmsgBuffer<const N: usize>([u8; N]);

const _: () = assert!(align_of::<CmsgBuffer<1>>() >= align_of::<libc::cmsghdr>());

impl<const N: usize> CmsgBuffer<N> {
    /// A zeroed buffer.
    pub(crate) const fn new() -> Self {
        Self([0; N])
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// Result of one `recvmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Bytes written to the data buffer; 0 means end of stream.
    pub(crate) bytes: usize,
    /// The kernel set `MSG_CTRUNC`: some fds were discarded by the kernel.
    pub(crate) truncated: bool,
}

/// One `recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC)` into `buf`; every fd that
/// arrived is pushed to `fds_out` as an [`OwnedFd`] (so none can leak), even
/// when the control data was truncated.
///
/// `cmsg` is a reusable buffer ([`RECV_CMSG_SPACE`] bytes for the largest
/// message); it is zeroed here before every call so that the parser below
/// only ever sees headers the kernel wrote in this call.
pub(crate) fn recv_with_fds<const N: usize>(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    cmsg: &mut CmsgBuffer<N>,
    fds_out: &mut Vec<OwnedFd>,
) -> Result<Received, Errno> {
    let cmsg = cmsg.bytes_mut();
    cmsg.fill(0);
    let (bytes, truncated) = {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut *cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        (msg.bytes, msg.flags.contains(MsgFlags::MSG_CTRUNC))
    };
    // nix refuses to iterate a truncated control buffer, but the kernel has
    // already installed the fds that fit, and they must be closed, so we parse
    // the (zeroed, then kernel-written) buffer ourselves in both cases.
    for_each_received_fd(cmsg, |raw| {
        // SAFETY: `raw` comes from an SCM_RIGHTS control message that the
        // kernel wrote into `cmsg` during the recvmsg call above (the buffer
        // was zeroed first, so no stale header can be parsed). The kernel
        // installed this descriptor in our fd table for us alone; nothing else
        // in the process knows its number yet, so taking ownership is sound
        // and it is closed exactly once, when the OwnedFd drops.
        fds_out.push(unsafe { OwnedFd::from_raw_fd(raw) });
    });
    Ok(Received { bytes, truncated })
}

/// Calls `f` with every fd number in the `SCM_RIGHTS` messages of a control
/// buffer written by `recvmsg`. Parsing stops at the first all-zero or
/// malformed header. Pure byte parsing; no unsafe.
fn for_each_received_fd(cmsg: &[u8], mut f: impl FnMut(RawFd)) {
    let mut off = 0usize;
    loop {
        let Some(hdr) = cmsg.get(off..off.saturating_add(CMSG_HDR_LEN)) else {
            return;
        };
        let (len_bytes, rest) = hdr.split_at(WORD);
        let (level_bytes, type_bytes) = rest.split_at(size_of::<libc::c_int>());
        let cmsg_len = usize::from_ne_bytes(len_bytes.try_into().unwrap_or([0; WORD]));
        let level = libc::c_int::from_ne_bytes(level_bytes.try_into().unwrap_or([0; 4]));
        let ty = libc::c_int::from_ne_bytes(type_bytes.try_into().unwrap_or([0; 4]));
        if cmsg_len < CMSG_DATA_OFFSET {
            return;
        }
        let Some(data) = cmsg.get(off + CMSG_DATA_OFFSET..off.saturating_add(cmsg_len)) else {
            return;
        };
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            for chunk in data.chunks_exact(FD_SIZE) {
                let raw = RawFd::from_ne_bytes(chunk.try_into().unwrap_or([0xff; FD_SIZE]));
                if raw >= 0 {
                    f(raw);
                }
            }
        }
        off = off.saturating_add(cmsg_align(cmsg_len));
    }
}

/// Sends `bytes` with `fds` attached (`SCM_RIGHTS`, at most
/// [`MAX_FDS_PER_SENDMSG`]) or plainly when `fds` is empty, with
/// `MSG_NOSIGNAL | MSG_DONTWAIT`. Does not retry; `EINTR` is returned as is.
/// The fds stay owned by the caller; the kernel duplicates them.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[OwnedFd],
) -> Result<usize, Errno> {
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    if fds.is_empty() {
        return send(sock.as_raw_fd(), bytes, flags);
    }
    if fds.len() > MAX_FDS_PER_SENDMSG {
        return Err(Errno::EINVAL);
    }
    let mut raw = [-1 as RawFd; MAX_FDS_PER_SENDMSG];
    for (slot, fd) in raw.iter_mut().zip(fds) {
        *slot = fd.as_raw_fd();
    }
    let raw = raw.get(..fds.len()).unwrap_or(&[]);
    let iov = [IoSlice::new(bytes)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(raw)],
        flags,
        None,
    )
}

/// What an fd given by number turned out to be, when it is not a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (or memfd).
    RegularFile,
    /// A directory.
    Directory,
    /// A pipe or FIFO.
    Pipe,
    /// A character device (a tty, `/dev/null`, ...).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A symbolic link (only seen with `O_PATH` fds).
    Symlink,
    /// Something else; the raw `st_mode & S_IFMT`.
    Other(u32),
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RegularFile => f.write_str("a regular file"),
            Self::Directory => f.write_str("a directory"),
            Self::Pipe => f.write_str("a pipe"),
            Self::CharDevice => f.write_str("a character device"),
            Self::BlockDevice => f.write_str("a block device"),
            Self::Symlink => f.write_str("a symbolic link"),
            Self::Other(m) => write!(f, "a file of type {m:#o}"),
        }
    }
}

/// Why an fd given by number cannot be used as a channel socket.
///
/// The fd is never closed when validation fails (see [`validate_inherited_fd`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InheritError {
    /// The number is negative.
    InvalidNumber {
        /// The number given.
        fd: i32,
    },
    /// This number was already adopted once in this process.
    AlreadyTaken {
        /// The number given.
        fd: i32,
    },
    /// No open file has this number (`fcntl(F_GETFD)` failed with `EBADF`).
    NotOpen {
        /// The number given.
        fd: i32,
    },
    /// The fd is open but is not a socket.
    NotASocket {
        /// The number given.
        fd: i32,
        /// What it is instead.
        kind: FileKind,
    },
    /// The fd is a socket of another address family than `AF_UNIX`.
    WrongFamily {
        /// The number given.
        fd: i32,
        /// The family found, as its `AF_*` number (`None` if it is not one
        /// the system library names).
        family: Option<i32>,
    },
    /// The fd is an `AF_UNIX` socket but not `SOCK_STREAM`.
    WrongType {
        /// The number given.
        fd: i32,
        /// The type found (`None` if nix does not know it).
        sock_type: Option<i32>,
    },
    /// A system call failed while checking or configuring the fd.
    Sys {
        /// The number given.
        fd: i32,
        /// The failing call and its errno.
        error: SysError,
    },
}

impl fmt::Display for InheritError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidNumber { fd } => write!(f, "fd {fd} is not a valid descriptor number"),
            Self::NotOpen { fd } => write!(f, "fd {fd} is not open"),
            Self::AlreadyTaken { fd } => {
                write!(f, "fd {fd} was already taken over once by this process")
            }
            Self::NotASocket { fd, kind } => {
                write!(f, "fd {fd} is {kind}, not a unix stream socket")
            }
            Self::WrongFamily { fd, family } => match family {
                Some(fam) => write!(
                    f,
                    "fd {fd} is a socket of family {}, not AF_UNIX",
                    family_name(*fam)
                ),
                None => write!(f, "fd {fd} is a socket of an unknown family, not AF_UNIX"),
            },
            Self::WrongType { fd, sock_type } => match sock_type {
                Some(t) => write!(
                    f,
                    "fd {fd} is an AF_UNIX socket of type {}, not SOCK_STREAM",
                    type_name(*t)
                ),
                None => write!(
                    f,
                    "fd {fd} is an AF_UNIX socket of unknown type, not SOCK_STREAM"
                ),
            },
            Self::Sys { fd, error } => write!(f, "fd {fd}: {error}"),
        }
    }
}

impl std::error::Error for InheritError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sys { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// `AF_INET` etc. for the families a wrong fd is likely to have.
fn family_name(family: i32) -> String {
    match family {
        libc::AF_INET => "AF_INET".into(),
        libc::AF_INET6 => "AF_INET6".into(),
        libc::AF_NETLINK => "AF_NETLINK".into(),
        libc::AF_PACKET => "AF_PACKET".into(),
        libc::AF_VSOCK => "AF_VSOCK".into(),
        other => other.to_string(),
    }
}

/// `SOCK_DGRAM` etc.
fn type_name(sock_type: i32) -> String {
    match sock_type {
        libc::SOCK_DGRAM => "SOCK_DGRAM".into(),
        libc::SOCK_SEQPACKET => "SOCK_SEQPACKET".into(),
        libc::SOCK_RAW => "SOCK_RAW".into(),
        other => other.to_string(),
    }
}

fn sys_err(fd: i32, op: &'static str) -> impl FnOnce(Errno) -> InheritError {
    move |errno| InheritError::Sys {
        fd,
        error: SysError::new(op, errno),
    }
}

/// Checks that `fd` is a unix stream socket without taking ownership.
pub(crate) fn check_unix_stream(fd: BorrowedFd<'_>) -> Result<(), InheritError> {
    let n = fd.as_raw_fd();
    let st = fstat(fd).map_err(sys_err(n, "fstat"))?;
    let fmt_bits = st.st_mode & SFlag::S_IFMT.bits();
    let kind = match SFlag::from_bits_truncate(fmt_bits) {
        k if k == SFlag::S_IFSOCK => None,
        k if k == SFlag::S_IFREG => Some(FileKind::RegularFile),
        k if k == SFlag::S_IFDIR => Some(FileKind::Directory),
        k if k == SFlag::S_IFIFO => Some(FileKind::Pipe),
        k if k == SFlag::S_IFCHR => Some(FileKind::CharDevice),
        k if k == SFlag::S_IFBLK => Some(FileKind::BlockDevice),
        k if k == SFlag::S_IFLNK => Some(FileKind::Symlink),
        _ => Some(FileKind::Other(fmt_bits)),
    };
    if let Some(kind) = kind {
        return Err(InheritError::NotASocket { fd: n, kind });
    }
    let addr: SockaddrStorage = getsockname(n).map_err(sys_err(n, "getsockname"))?;
    let family = addr.family();
    if family != Some(AddressFamily::Unix) {
        return Err(InheritError::WrongFamily {
            fd: n,
            family: family.map(|f| f as i32),
        });
    }
    match getsockopt(&fd, sockopt::SockType) {
        Ok(SockType::Stream) => Ok(()),
        Ok(other) => Err(InheritError::WrongType {
            fd: n,
            sock_type: Some(other as i32),
        }),
        Err(Errno::EINVAL) => Err(InheritError::WrongType {
            fd: n,
            sock_type: None,
        }),
        Err(errno) => Err(sys_err(n, "getsockopt(SO_TYPE)")(errno)),
    }
}

/// Sets `O_NONBLOCK` and `FD_CLOEXEC`.
pub(crate) fn set_nonblock_cloexec(fd: BorrowedFd<'_>) -> Result<(), InheritError> {
    let n = fd.as_raw_fd();
    let wrap = |error| InheritError::Sys { fd: n, error };
    set_nonblocking(fd, true).map_err(wrap)?;
    set_cloexec(fd, true).map_err(wrap)
}

/// Turns `O_NONBLOCK` on or off for an fd's open file description.
pub fn set_nonblocking(fd: impl AsFd, nonblocking: bool) -> Result<(), SysError> {
    let fd = fd.as_fd();
    let bits = fcntl(fd, FcntlArg::F_GETFL).map_err(SysError::of("fcntl(F_GETFL)"))?;
    let mut fl = OFlag::from_bits_retain(bits);
    fl.set(OFlag::O_NONBLOCK, nonblocking);
    fcntl(fd, FcntlArg::F_SETFL(fl))
        .map(drop)
        .map_err(SysError::of("fcntl(F_SETFL)"))
}

/// Turns `FD_CLOEXEC` on or off for an fd.
pub fn set_cloexec(fd: impl AsFd, cloexec: bool) -> Result<(), SysError> {
    let fd = fd.as_fd();
    let bits = fcntl(fd, FcntlArg::F_GETFD).map_err(SysError::of("fcntl(F_GETFD)"))?;
    let mut fl = FdFlag::from_bits_retain(bits);
    fl.set(FdFlag::FD_CLOEXEC, cloexec);
    fcntl(fd, FcntlArg::F_SETFD(fl))
        .map(drop)
        .map_err(SysError::of("fcntl(F_SETFD)"))
}

/// Takes ownership of an inherited fd given by number (e.g. from
/// `--host-ipcz-transport-fd=N`) after checking that it is an open `AF_UNIX`
/// `SOCK_STREAM` socket, and sets `O_NONBLOCK` and `FD_CLOEXEC` on it.
/// (`O_NONBLOCK` belongs to the open file description, so a process that
/// shares it, e.g. a parent that kept a duplicate, sees it too; Chromium
/// sets it the same way.)
///
/// Checks, in order: `fcntl(F_GETFD)` (open?), `fstat` (`S_ISSOCK`?),
/// `getsockname` (`AF_UNIX`?), `getsockopt(SO_TYPE)` (`SOCK_STREAM`?).
///
/// Ownership policy: the fd is adopted only when every check passed. When a
/// check fails it is left open and unowned: a wrong number may name a
/// descriptor the process uses for something else (a log file, stdin), and
/// closing it would turn a clear startup error into action at a distance.
/// A caller that exits on the error loses nothing.
///
/// The same open socket is handed out at most once per process: a second
/// call for a number that still names the socket adopted before gives
/// [`InheritError::AlreadyTaken`] (the socket is recognised by its inode, so
/// a number the kernel reused for a new socket is not confused with it).
/// That registry is a second line of defence only: it cannot know about
/// owners outside this function, hence the contract below.
///
/// # Safety
///
/// As for [`OwnedFd::from_raw_fd`]: if `n` names an `AF_UNIX` stream socket,
/// nothing else in the process may own it or close it, now or later (no
/// `OwnedFd`, `File`, `UnixStream` or raw-number user holds it); otherwise
/// two owners would each close it, and the second close would hit whatever
/// unrelated file reused the number. Any other open `n` must stay open for
/// the duration of the call (it is only inspected, never adopted); a number
/// that is not open is fine (it gives [`InheritError::NotOpen`]). Call it
/// only with numbers the process inherited for this purpose, typically once
/// while parsing the command line, as `listenfd`-style APIs do.
///
/// Safe code cannot call it (that was how one socket could get two owners):
///
/// ```compile_fail,E0133
/// let socket = mojo_platform_channel::validate_inherited_fd(3);
/// ```
pub unsafe fn validate_inherited_fd(n: i32) -> Result<OwnedFd, InheritError> {
    if n < 0 {
        return Err(InheritError::InvalidNumber { fd: n });
    }
    // Hold the registry for the whole check so two threads cannot both adopt n.
    let mut taken = TAKEN_INHERITED_FDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // SAFETY: fcntl(F_GETFD) on an arbitrary integer is sound: it only reads
    // the fd table and reports EBADF for numbers that are not open.
    let r = unsafe { libc::fcntl(n, libc::F_GETFD) };
    if r < 0 {
        return match Errno::last() {
            Errno::EBADF => Err(InheritError::NotOpen { fd: n }),
            errno => Err(sys_err(n, "fcntl(F_GETFD)")(errno)),
        };
    }
    // SAFETY: the fd was open just above, and the caller promised (# Safety)
    // that an open `n` stays open for the whole call, so it outlives this
    // borrow (the rest of this function).
    let borrowed = unsafe { BorrowedFd::borrow_raw(n) };
    check_unix_stream(borrowed)?;
    let identity = fstat(borrowed)
        .map(|st| (n, st.st_dev, st.st_ino))
        .map_err(sys_err(n, "fstat"))?;
    if taken.contains(&identity) {
        return Err(InheritError::AlreadyTaken { fd: n });
    }
    set_nonblock_cloexec(borrowed)?;
    taken.insert(identity);
    // SAFETY: the fd is open and is a unix stream socket; the caller promised
    // (# Safety) that no other code owns it, and the registry above shows
    // this function has not handed it out before; from here on the returned
    // OwnedFd is its only owner and closes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Takes ownership of an inherited fd given by number and wraps it as an
/// [`Endpoint`]; see [`crate::validate_inherited_fd`] for the checks and the
/// ownership policy.
///
/// # Safety
///
/// That of [`crate::validate_inherited_fd`]: nothing else in the process may
/// own the socket `n` names, and any other open `n` stays open during the
/// call.
pub unsafe fn from_inherited_fd(n: i32) -> Result<Endpoint, InheritError> {
    // SAFETY: the caller's promise is exactly the one validate_inherited_fd
    // requires.
    unsafe { validate_inherited_fd(n) }.map(Endpoint::from_socket)
}

/// `(number, st_dev, st_ino)` of every socket adopted by [`validate_inherited_fd`].
type AdoptedSocket = (i32, u64, u64);
static TAKEN_INHERITED_FDS: std::sync::Mutex<std::collections::BTreeSet<AdoptedSocket>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmsg_space_matches_libc() {
        assert_eq!(RECV_CMSG_SPACE, nix::cmsg_space!([RawFd; SCM_MAX_FD]).len());
        assert_eq!(CMSG_DATA_OFFSET, nix::cmsg_space!([RawFd; 0]).len());
    }

    fn pair() -> (OwnedFd, OwnedFd) {
        nix::sys::socket::socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    #[test]
    fn truncated_control_data_yields_the_fds_that_arrived() {
        let (a, b) = pair();
        let (r, w) = nix::unistd::pipe().unwrap();
        let fds = [r, w, nix::unistd::dup(&a).unwrap()];
        assert_eq!(send_with_fds(a.as_fd(), b"xyz", &fds).unwrap(), 3);
        // Room for one fd only (CMSG_SPACE(sizeof(int))).
        const ONE_FD: usize = CMSG_DATA_OFFSET + cmsg_align(FD_SIZE);
        assert_eq!(ONE_FD, nix::cmsg_space!([RawFd; 1]).len());
        let mut cmsg = CmsgBuffer::<ONE_FD>::new();
        let mut buf = [0u8; 16];
        let mut got = vec![];
        let res = recv_with_fds(b.as_fd(), &mut buf, &mut cmsg, &mut got).unwrap();
        assert_eq!(res.bytes, 3);
        assert!(res.truncated);
        // CMSG_SPACE rounds up: as many fds as fit arrived, the rest were
        // discarded by the kernel.
        assert_eq!(got.len(), (ONE_FD - CMSG_DATA_OFFSET) / FD_SIZE);
        assert!(got.len() < fds.len());
        // Close-on-exec was set on receipt.
        let flags = FdFlag::from_bits_retain(fcntl(&got[0], FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
    }

    #[test]
    fn full_control_buffer_receives_scm_max_fd() {
        let (a, b) = pair();
        let fds: Vec<OwnedFd> = (0..MAX_FDS_PER_SENDMSG)
            .map(|_| nix::unistd::dup(&a).unwrap())
            .collect();
        assert_eq!(send_with_fds(a.as_fd(), b"q", &fds).unwrap(), 1);
        assert_eq!(
            send_with_fds(a.as_fd(), b"q", &[]).unwrap(),
            1,
            "plain send works"
        );
        let mut cmsg = Box::new(CmsgBuffer::<RECV_CMSG_SPACE>::new());
        let mut buf = [0u8; 16];
        let mut got = vec![];
        let res = recv_with_fds(b.as_fd(), &mut buf, &mut cmsg, &mut got).unwrap();
        // The kernel stops a read after an fd-carrying write.
        assert_eq!((res.bytes, res.truncated, got.len()), (1, false, 128));
        let too_many: Vec<OwnedFd> = (0..=MAX_FDS_PER_SENDMSG)
            .map(|_| nix::unistd::dup(&a).unwrap())
            .collect();
        assert_eq!(
            send_with_fds(a.as_fd(), b"q", &too_many),
            Err(Errno::EINVAL)
        );
    }

    /// Issue 14, defect 4: the buffer used to be a `&mut [u8]` of any
    /// alignment (a test could pass one at an odd address and nix built a
    /// misaligned `&cmsghdr` from it). Now the type carries the alignment,
    /// wherever the buffer is stored.
    #[test]
    fn control_buffers_are_aligned_for_cmsghdr_wherever_they_live() {
        #[repr(C)]
        struct Odd {
            pad: u8,
            cmsg: CmsgBuffer<RECV_CMSG_SPACE>,
        }
        let mut odd = Odd {
            pad: 1,
            cmsg: CmsgBuffer::new(),
        };
        let addr = odd.cmsg.bytes_mut().as_ptr() as usize;
        assert_eq!(addr % align_of::<libc::cmsghdr>(), 0);
        assert_eq!(odd.pad, 1);
        let mut in_vec: Vec<(u8, CmsgBuffer<24>)> =
            (0..3).map(|i| (i, CmsgBuffer::new())).collect();
        for (_, c) in &mut in_vec {
            assert_eq!(
                c.bytes_mut().as_ptr() as usize % align_of::<libc::cmsghdr>(),
                0
            );
        }
        let (a, b) = pair();
        send_with_fds(a.as_fd(), b"x", &[nix::unistd::dup(&a).unwrap()]).unwrap();
        let mut buf = [0u8; 4];
        let mut got = vec![];
        let res = recv_with_fds(b.as_fd(), &mut buf, &mut odd.cmsg, &mut got).unwrap();
        assert_eq!((res.bytes, res.truncated, got.len()), (1, false, 1));
    }

    #[test]
    fn parser_stops_on_zeroed_or_malformed_headers() {
        let mut seen = vec![];
        for_each_received_fd(&[0u8; 64], |fd| seen.push(fd));
        assert!(seen.is_empty());
        // A header claiming more bytes than the buffer holds is ignored.
        let mut buf = vec![0u8; 32];
        buf[..WORD].copy_from_slice(&1000usize.to_ne_bytes());
        buf[WORD..WORD + 4].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        buf[WORD + 4..WORD + 8].copy_from_slice(&libc::SCM_RIGHTS.to_ne_bytes());
        for_each_received_fd(&buf, |fd| seen.push(fd));
        assert!(seen.is_empty());
        // A well-formed one with two fds, followed by zeros.
        let len = CMSG_DATA_OFFSET + 2 * FD_SIZE;
        buf[..WORD].copy_from_slice(&len.to_ne_bytes());
        buf[CMSG_DATA_OFFSET..CMSG_DATA_OFFSET + 4].copy_from_slice(&7i32.to_ne_bytes());
        buf[CMSG_DATA_OFFSET + 4..CMSG_DATA_OFFSET + 8].copy_from_slice(&9i32.to_ne_bytes());
        for_each_received_fd(&buf, |fd| seen.push(fd));
        assert_eq!(seen, vec![7, 9]);
    }
}
