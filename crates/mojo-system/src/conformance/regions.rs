//! Conformance checks of `MojoWrapPlatformSharedMemoryRegion`: unwrap and
//! wrap keep a buffer's bytes, mode and guid; bad regions are refused with
//! the reason and their fds closed; a wrapped buffer crosses a link.

use std::os::fd::{AsFd, OwnedFd};

use crate::region::ShmError;
use crate::{
    BufferMapping, MessagePipe, MojoError, MojoSystem, RegionAccessMode, SharedBuffer,
    UnwrappedRegion, WrapRegionError, read_one,
};

use super::deadline;

const SIZE: u64 = 4096;

fn write_at<S: MojoSystem + ?Sized>(sys: &S, b: &SharedBuffer, at: usize, bytes: &[u8]) {
    let mut m = sys.map_buffer(b, 0, SIZE).expect("map");
    assert!(m.is_writable(), "a writable mapping");
    m.write(at, bytes).expect("write");
}

fn read_at<S: MojoSystem + ?Sized>(sys: &S, b: &SharedBuffer, at: usize, len: usize) -> Vec<u8> {
    let m = sys.map_buffer(b, 0, SIZE).expect("map");
    let mut out = vec![0; len];
    m.read(at, &mut out).expect("read");
    out
}

/// Unwraps `b`, checks its mode and fd count, and wraps it back.
fn round_trip<S: MojoSystem + ?Sized>(
    sys: &S,
    b: SharedBuffer,
    mode: RegionAccessMode,
    fds: usize,
) -> SharedBuffer {
    let u = sys.unwrap_shared_buffer(b).expect("unwrap");
    assert_eq!((u.access_mode, u.fds.len(), u.size), (mode, fds, SIZE));
    let guid = u.guid;
    let b = sys.wrap_shared_buffer(u).expect("wrap what unwrap gave");
    assert_eq!(sys.buffer_size(&b), Ok(SIZE));
    let dup = sys.duplicate_buffer(&b, mode == RegionAccessMode::ReadOnly);
    let again = sys
        .unwrap_shared_buffer(dup.expect("duplicate"))
        .expect("unwrap");
    assert_eq!(again.guid, guid, "the guid is kept");
    sys.wrap_shared_buffer(again).expect("wrap again")
}

/// Writable, read-only and unsafe buffers survive unwrap and wrap with
/// their bytes and their mode (the duplication rules still hold after).
pub fn wrap_round_trip<S: MojoSystem + ?Sized>(sys: &S) {
    let w = sys.create_shared_buffer(SIZE).expect("create");
    write_at(sys, &w, 100, b"wrapped");
    let u = sys.unwrap_shared_buffer(w).expect("unwrap");
    assert_eq!(
        (u.access_mode, u.fds.len()),
        (RegionAccessMode::Writable, 2)
    );
    let w = sys.wrap_shared_buffer(u).expect("wrap writable");
    assert_eq!(read_at(sys, &w, 100, 7), b"wrapped");
    write_at(sys, &w, 0, b"still writable");

    // A writable region can still become read-only: its twin fd came back.
    let ro = sys.duplicate_buffer(&w, true).expect("read-only duplicate");
    let ro = round_trip(sys, ro, RegionAccessMode::ReadOnly, 1);
    let mut m = sys.map_buffer(&ro, 0, SIZE).expect("map read-only");
    assert!(!m.is_writable(), "read-only after the round trip");
    assert_eq!(m.write(0, b"x"), Err(MojoError::PermissionDenied));
    assert_eq!(read_at(sys, &ro, 0, 14), b"still writable");
    assert_eq!(
        sys.duplicate_buffer(&ro, false).map(|_| ()),
        Err(MojoError::FailedPrecondition),
        "a wrapped read-only buffer never becomes writable"
    );

    let w = sys.create_shared_buffer(SIZE).expect("create");
    let unsafe_dup = sys.duplicate_buffer(&w, false).expect("writable duplicate");
    let unsafe_dup = round_trip(sys, unsafe_dup, RegionAccessMode::Unsafe, 1);
    write_at(sys, &unsafe_dup, 9, b"shared");
    assert_eq!(read_at(sys, &w, 9, 6), b"shared", "the same memory");
    assert_eq!(
        sys.duplicate_buffer(&unsafe_dup, true).map(|_| ()),
        Err(MojoError::FailedPrecondition),
        "an unsafe buffer stays unsafe"
    );
}

/// The unwrapped fds of a fresh writable buffer: read-write, read-only.
fn fresh_fds<S: MojoSystem + ?Sized>(sys: &S) -> (OwnedFd, OwnedFd, u128) {
    let b = sys.create_shared_buffer(SIZE).expect("create");
    let u = sys.unwrap_shared_buffer(b).expect("unwrap");
    let mut fds = u.fds.into_iter();
    let (Some(rw), Some(ro)) = (fds.next(), fds.next()) else {
        panic!("a writable buffer unwraps to two fds");
    };
    (rw, ro, u.guid)
}

fn refused<S: MojoSystem + ?Sized>(sys: &S, region: UnwrappedRegion, what: &str) -> ShmError {
    match sys.wrap_shared_buffer(region) {
        Err(e @ WrapRegionError::Rejected(_)) => {
            assert_eq!(e.error(), MojoError::InvalidArgument, "{what}");
            let WrapRegionError::Rejected(reason) = e else {
                unreachable!()
            };
            reason
        }
        Err(e) => panic!("{what}: refused for another reason: {e}"),
        Ok(_) => panic!("{what}: wrapped"),
    }
}

/// Regions Mojo refuses are refused with their reason, and their fds are
/// closed (a pipe's write end among them reaches EOF on its read end).
pub fn wrap_refusals<S: MojoSystem + ?Sized>(sys: &S) {
    let region = |fds, size, guid, access_mode| UnwrappedRegion {
        fds,
        size,
        guid,
        access_mode,
    };
    let (rw, ro, guid) = fresh_fds(sys);
    let dup = |fd: &OwnedFd| fd.try_clone().expect("dup");
    use RegionAccessMode::{ReadOnly, Unsafe, Writable};

    let e = refused(sys, region(vec![dup(&rw)], SIZE, guid, Writable), "one fd");
    assert!(
        matches!(
            e,
            ShmError::WrongFdCount {
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = refused(
        sys,
        region(vec![dup(&rw)], SIZE, guid, ReadOnly),
        "rw as ro",
    );
    assert!(
        matches!(e, ShmError::WrongAccessMode { index: 0, .. }),
        "{e}"
    );
    let e = refused(
        sys,
        region(vec![dup(&ro)], SIZE, guid, Unsafe),
        "ro as unsafe",
    );
    assert!(
        matches!(e, ShmError::WrongAccessMode { index: 0, .. }),
        "{e}"
    );
    let swapped = vec![dup(&ro), dup(&rw)];
    let e = refused(sys, region(swapped, SIZE, guid, Writable), "swapped fds");
    assert!(
        matches!(e, ShmError::WrongAccessMode { index: 0, .. }),
        "{e}"
    );
    let big = region(vec![dup(&rw), dup(&ro)], 2 * SIZE, guid, Writable);
    let e = refused(sys, big, "larger than the file");
    assert!(matches!(e, ShmError::FileTooSmall { .. }), "{e}");
    let e = refused(
        sys,
        region(vec![dup(&rw), dup(&ro)], 0, guid, Writable),
        "size 0",
    );
    assert_eq!(e, ShmError::ZeroSize);
    let huge = crate::runtime::MAX_BUFFER_SIZE + 1;
    let e = refused(
        sys,
        region(vec![dup(&ro)], huge, guid, ReadOnly),
        "too large",
    );
    assert!(matches!(e, ShmError::TooLarge { .. }), "{e}");
    let e = refused(sys, region(vec![dup(&ro)], SIZE, 0, ReadOnly), "zero guid");
    assert_eq!(e, ShmError::ZeroGuid);
    let (other_rw, _, _) = fresh_fds(sys);
    let mixed = region(vec![other_rw, dup(&ro)], SIZE, guid, Writable);
    let e = refused(sys, mixed, "two files");
    assert_eq!(e, ShmError::InodeMismatch);

    // No fd of a refused region stays open.
    let (eof, writer) = nix::unistd::pipe().expect("pipe");
    nix::fcntl::fcntl(
        eof.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .expect("non-blocking");
    let leaky = region(vec![dup(&rw), writer], SIZE, guid, Unsafe);
    let e = refused(sys, leaky, "two fds for unsafe");
    assert!(
        matches!(
            e,
            ShmError::WrongFdCount {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
    let mut byte = [0u8; 1];
    assert_eq!(
        nix::unistd::read(&eof, &mut byte),
        Ok(0),
        "the refused region's pipe fd was closed"
    );

    // The fds themselves were fine all along.
    let b = sys
        .wrap_shared_buffer(region(vec![rw, ro], SIZE, guid, Writable))
        .expect("the good region wraps");
    assert_eq!(sys.buffer_size(&b), Ok(SIZE));
}

/// A buffer wrapped on `a` (writable, and a read-only one) sent over
/// `pipe_a` arrives on `b` (at `pipe_b`) with its bytes and its mode.
pub fn wrapped_region_across<A: MojoSystem + ?Sized, B: MojoSystem + ?Sized>(
    a: &A,
    pipe_a: &MessagePipe,
    b: &B,
    pipe_b: &MessagePipe,
) {
    let wrap = |buf| {
        a.wrap_shared_buffer(a.unwrap_shared_buffer(buf).expect("unwrap"))
            .expect("wrap")
    };
    let w = a.create_shared_buffer(SIZE).expect("create");
    write_at(a, &w, 40, b"across");
    let w = wrap(w);
    let other = a.create_shared_buffer(SIZE).expect("create");
    write_at(a, &other, 40, b"read me");
    let ro = wrap(
        a.duplicate_buffer(&other, true)
            .expect("read-only duplicate"),
    );
    a.write_message(pipe_a, b"regions", vec![w.into(), ro.into()])
        .expect("send the buffers");
    let m = read_one(b, pipe_b, deadline()).expect("the buffers arrive");
    let mut got = m.handles.into_iter().map(|h| h.into_shared_buffer().ok());
    let (Some(Some(w)), Some(Some(ro))) = (got.next(), got.next()) else {
        panic!("two buffers");
    };
    assert_eq!(read_at(b, &w, 40, 6), b"across");
    write_at(b, &w, 0, b"writable there");
    assert_eq!(read_at(b, &ro, 40, 7), b"read me");
    let m = b.map_buffer(&ro, 0, SIZE).expect("map");
    assert!(!m.is_writable(), "the read-only buffer stays read-only");
    let modes = [w, ro].map(|buf| b.unwrap_shared_buffer(buf).expect("unwrap").access_mode);
    assert_eq!(
        modes,
        [RegionAccessMode::Writable, RegionAccessMode::ReadOnly]
    );
    drop(other);
}
