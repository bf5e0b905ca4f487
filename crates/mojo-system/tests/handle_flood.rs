//! A sender may queue many more handles than a slow reader has read: the
//! reader's node must hold them (bounded by the process's fd limit, as in
//! Chromium's Mojo), not drop the link. Before `fd_budget`, a legacy node
//! dropped its peer once 4,096 received fds were waiting, and the test
//! peers' `throughput_extra` runs (10,000 handles) failed now and then.

use std::os::fd::OwnedFd;
use std::time::Duration;

use mojo_legacy_wire::Profile;
use mojo_system::conformance::{self as pairs, deadline};
use mojo_system::{Handle, MessagePipe, MojoSystem, read_one};
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Messages, each with one fd: well above the nodes' default of 4,096.
const FLOOD: usize = 6_000;

/// Raises this process's soft fd limit to its hard one; whether that
/// leaves room for the flood (both ends of the pair live in this process).
fn room_for_the_flood() -> bool {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return false;
    };
    if soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    hard >= (2 * FLOOD + 1_000) as u64
}

/// Writes the whole flood before reading anything, then reads it all back
/// (skipped, saying so, where the fd limit has no room for it).
fn flood<A: MojoSystem, B: MojoSystem>(a: &A, pa: &MessagePipe, b: &B, pb: &MessagePipe) {
    if !room_for_the_flood() {
        eprintln!("skipped: the hard fd limit is below {}", 2 * FLOOD + 1_000);
        return;
    }
    let devnull = OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
    for i in 0..FLOOD {
        let fd = devnull.try_clone().expect("dup");
        let handle = Handle::from(a.wrap_platform_handle(fd).expect("wrap"));
        let bytes = (i as u32).to_le_bytes();
        a.write_message(pa, &bytes, vec![handle])
            .unwrap_or_else(|e| panic!("write {i}: {e:?}"));
    }
    // Let the reader's I/O thread queue what has arrived before it reads.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..FLOOD {
        let m = read_one(b, pb, deadline()).unwrap_or_else(|e| panic!("read {i}: {e:?}"));
        assert_eq!(m.bytes, (i as u32).to_le_bytes(), "message {i}");
        let [h] = <[Handle; 1]>::try_from(m.handles).expect("one handle");
        let platform = h.into_platform_handle().expect("a platform handle");
        b.unwrap_platform_handle(platform).expect("an fd");
    }
}

#[test]
fn a_legacy_reader_holds_a_flood_of_handles() {
    let ((a, mut pa), (b, mut pb)) = pairs::legacy_pair(Profile::Libchrome);
    flood(&a, &pa.remove(0), &b, &pb.remove(0));
}

#[test]
fn an_ipcz_reader_holds_a_flood_of_handles() {
    let ((a, mut pa), (b, mut pb)) = pairs::ipcz_pair();
    flood(&a, &pa.remove(0), &b, &pb.remove(0));
}

/// Small messages without handles: more than the 16,384 parcels an ipcz
/// router used to hold before the reader took any (the bench's direct
/// `throughput_64` of 20,000 failed on it).
const SMALL_FLOOD: u32 = 20_000;

fn small_flood<A: MojoSystem, B: MojoSystem>(a: &A, pa: &MessagePipe, b: &B, pb: &MessagePipe) {
    for i in 0..SMALL_FLOOD {
        a.write_message(pa, &i.to_le_bytes(), Vec::new())
            .unwrap_or_else(|e| panic!("write {i}: {e:?}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..SMALL_FLOOD {
        let m = read_one(b, pb, deadline()).unwrap_or_else(|e| panic!("read {i}: {e:?}"));
        assert_eq!(m.bytes, i.to_le_bytes(), "message {i}");
    }
}

#[test]
fn readers_hold_a_flood_of_small_messages() {
    let ((a, mut pa), (b, mut pb)) = pairs::ipcz_pair();
    small_flood(&a, &pa.remove(0), &b, &pb.remove(0));
    let ((a, mut pa), (b, mut pb)) = pairs::legacy_pair(Profile::Libchrome);
    small_flood(&a, &pa.remove(0), &b, &pb.remove(0));
}
