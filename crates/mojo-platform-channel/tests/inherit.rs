//! Validation of fds given by number (`from_inherited_fd`,
//! `validate_inherited_fd`): each wrong kind gets its own error, the fd is
//! left open (not adopted) on failure, and a good unix stream socket is
//! adopted with O_NONBLOCK and FD_CLOEXEC set.
//!
//! Both functions are `unsafe` (the caller promises nobody else owns the
//! socket); every call goes through [`validate`] / [`adopt`] below.

#![allow(missing_docs, unsafe_code)]

mod common;

use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};

use common::*;
use mojo_platform_channel::test_support::{set_cloexec, set_nonblocking};
use mojo_platform_channel::{
    Endpoint, FileKind, InheritError, ReadOutcome, from_inherited_fd, validate_inherited_fd,
};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

/// `validate_inherited_fd(n)` as the command line would call it.
fn validate(n: i32) -> Result<OwnedFd, InheritError> {
    // SAFETY: the tests pass numbers that are not open, numbers of files
    // that are not unix stream sockets (only inspected; their owners keep
    // them open across the call), and sockets whose owner gave them up with
    // `into_raw_fd`. The one exception, in
    // `the_same_socket_is_adopted_only_once`, breaks the contract on purpose
    // to check the second line of defence, and is refused by the registry,
    // so no second owner comes into being.
    unsafe { validate_inherited_fd(n) }
}

/// `from_inherited_fd(n)`, for a socket given up with `into_raw_fd`.
fn adopt(n: i32) -> Result<Endpoint, InheritError> {
    // SAFETY: callers pass a socket number nothing else owns.
    unsafe { from_inherited_fd(n) }
}

fn still_open(fd: &impl AsFd) -> bool {
    fcntl(fd.as_fd(), FcntlArg::F_GETFD).is_ok()
}

#[test]
fn negative_number() {
    let e = validate(-1).unwrap_err();
    assert_eq!(e, InheritError::InvalidNumber { fd: -1 });
    assert!(e.to_string().contains("-1"));
}

#[test]
fn closed_fd_is_not_open() {
    // Far above any fd this process has (RLIMIT_NOFILE is 20000 here; the
    // number just needs to be unused, which a closed number may not stay
    // under parallel tests).
    let n = 999_999;
    let e = validate(n).unwrap_err();
    assert_eq!(e, InheritError::NotOpen { fd: n });
    assert_eq!(e.to_string(), "fd 999999 is not open");
}

#[test]
fn regular_file_is_not_a_socket() {
    assert_no_fd_leak(|| {
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        let n = f.as_raw_fd();
        let e = validate(n).unwrap_err();
        assert_eq!(
            e,
            InheritError::NotASocket {
                fd: n,
                kind: FileKind::RegularFile
            }
        );
        assert!(e.to_string().contains(&format!("fd {n} ")), "{e}");
        // Not adopted: still open and ours to close.
        assert!(still_open(&f));
    });
}

#[test]
fn pipe_is_not_a_socket() {
    assert_no_fd_leak(|| {
        let (r, w) = nix::unistd::pipe().unwrap();
        for fd in [&r, &w] {
            let n = fd.as_raw_fd();
            let e = validate(n).unwrap_err();
            assert_eq!(
                e,
                InheritError::NotASocket {
                    fd: n,
                    kind: FileKind::Pipe
                }
            );
            assert!(e.to_string().contains("a pipe"), "{e}");
            assert!(still_open(fd));
        }
    });
}

#[test]
fn char_device_is_not_a_socket() {
    assert_no_fd_leak(|| {
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = validate(f.as_raw_fd()).unwrap_err();
        assert!(matches!(
            e,
            InheritError::NotASocket {
                kind: FileKind::CharDevice,
                ..
            }
        ));
    });
}

#[test]
fn unix_datagram_socket_is_wrong_type() {
    assert_no_fd_leak(|| {
        let (a, _b) = UnixDatagram::pair().unwrap();
        let n = a.as_raw_fd();
        let e = validate(n).unwrap_err();
        assert_eq!(
            e,
            InheritError::WrongType {
                fd: n,
                sock_type: Some(nix::libc::SOCK_DGRAM)
            }
        );
        assert!(e.to_string().contains("of type SOCK_DGRAM"), "{e}");
        assert!(e.to_string().contains(&format!("fd {n} ")), "{e}");
        assert!(still_open(&a));
    });
}

#[test]
fn unix_seqpacket_socket_is_wrong_type() {
    assert_no_fd_leak(|| {
        let (a, _b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let e = validate(a.as_raw_fd()).unwrap_err();
        assert!(matches!(
            e,
            InheritError::WrongType {
                sock_type: Some(nix::libc::SOCK_SEQPACKET),
                ..
            }
        ));
    });
}

#[test]
fn inet_sockets_are_wrong_family() {
    assert_no_fd_leak(|| {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let n = udp.as_raw_fd();
        let e = validate(n).unwrap_err();
        assert_eq!(
            e,
            InheritError::WrongFamily {
                fd: n,
                family: Some(nix::libc::AF_INET)
            }
        );
        assert!(e.to_string().contains("family AF_INET, not AF_UNIX"), "{e}");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(matches!(
            validate(tcp.as_raw_fd()),
            Err(InheritError::WrongFamily { .. })
        ));
    });
}

#[test]
fn good_unix_stream_socket_is_adopted_and_configured() {
    assert_no_fd_leak(|| {
        let (a, b) = UnixStream::pair().unwrap();
        // Simulate an inherited fd: blocking, not close-on-exec.
        set_nonblocking(&a, false).unwrap();
        set_cloexec(&a, false).unwrap();
        let n = a.into_raw_fd();
        let mut ep = adopt(n).unwrap();
        assert_eq!(ep.as_raw_fd(), n);
        let fl = OFlag::from_bits_retain(fcntl(ep.as_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(fl.contains(OFlag::O_NONBLOCK));
        let fdfl = FdFlag::from_bits_retain(fcntl(ep.as_fd(), FcntlArg::F_GETFD).unwrap());
        assert!(fdfl.contains(FdFlag::FD_CLOEXEC));
        // Non-blocking for real: nothing to read yet.
        assert_eq!(ep.read_available().unwrap(), ReadOutcome::WouldBlock);
        drop(b);
        assert_eq!(ep.read_available().unwrap(), ReadOutcome::Eof);
        // Dropping the endpoint closes fd n.
        drop(ep);
    });
}

#[test]
fn listening_unix_socket_is_accepted_as_stream_type() {
    assert_no_fd_leak(|| {
        // A listening AF_UNIX SOCK_STREAM socket passes the type checks (the
        // checks are about what the fd is, not its connection state).
        let dir = std::env::temp_dir().join(format!("mpc-listen-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let l = std::os::unix::net::UnixListener::bind(&dir).unwrap();
        let fd: OwnedFd = l.into();
        let n = fd.into_raw_fd();
        let owned = validate(n).unwrap();
        drop(owned);
        std::fs::remove_file(&dir).unwrap();
    });
}

#[test]
fn the_same_socket_is_adopted_only_once() {
    assert_no_fd_leak(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        let n = a.into_raw_fd();
        let owned = validate(n).unwrap();
        // A second take of the same open socket would make two owners.
        let e = validate(n).unwrap_err();
        assert_eq!(e, InheritError::AlreadyTaken { fd: n });
        assert!(e.to_string().contains(&format!("fd {n} ")), "{e}");
        drop(owned);
        // Once closed, the number may be reused by a new socket, which is a
        // different file and can be adopted.
        let (c, _d) = UnixStream::pair().unwrap();
        let m = c.into_raw_fd();
        let again = validate(m).unwrap();
        drop(again);
    });
}
