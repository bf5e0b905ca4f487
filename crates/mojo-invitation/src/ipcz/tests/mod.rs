//! Tests of the ipcz connectors: in-memory handshakes stepped until idle
//! (`sim`), fault injection (`faults`), and property tests over arbitrary
//! input (`props`).

mod brokers;
mod faults;
mod props;
mod sim;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use ipcz_wire::frame::{Frame, FrameHeader};
use ipcz_wire::message::Message;
use ipcz_wire::types::NodeName;
use mojo_wire_kit::{Guid, HeapMemory};

use super::{PrimaryBuffer, Transmit};

const BROKER_NAME: NodeName = NodeName {
    high: 0xb0b0_b0b0,
    low: 0x1111,
};
const REFERRER_NAME: NodeName = NodeName {
    high: 0x4e4e_4e4e,
    low: 0x2222,
};
const BUFFER_GUID: Guid = Guid {
    high: 0x6a6a,
    low: 0x7b7b,
};

/// A real fd that is nothing in particular.
fn dev_null() -> OwnedFd {
    File::open("/dev/null").expect("open /dev/null").into()
}

/// An fd whose closing can be observed: the returned probe reads EOF once
/// every copy of the fd is closed.
fn watched_fd() -> (OwnedFd, FdProbe) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    b.set_nonblocking(true).expect("nonblocking");
    (a.into(), FdProbe(b))
}

/// The far end of a [`watched_fd`].
struct FdProbe(UnixStream);

impl FdProbe {
    /// Whether the watched fd has been closed.
    fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        match self.0.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("probe read: {e}"),
        }
    }
}

/// Checks that `fd` is (a copy of) the socket whose other end is `peer`.
fn assert_same_socket(fd: &OwnedFd, peer: &mut FdProbe) {
    let mut stream = UnixStream::from(fd.try_clone().expect("dup"));
    stream.write_all(b"x").expect("write");
    let mut buf = [0u8; 1];
    peer.0.set_nonblocking(false).expect("blocking");
    peer.0.read_exact(&mut buf).expect("read");
    peer.0.set_nonblocking(true).expect("nonblocking");
    assert_eq!(&buf, b"x");
}

/// A primary buffer description with a dummy fd, and its heap mapping.
fn primary_buffer(fd: OwnedFd) -> (PrimaryBuffer, HeapMemory) {
    (
        PrimaryBuffer::new(131072, BUFFER_GUID, fd),
        HeapMemory::new(131072),
    )
}

/// Checks that a frame we send is one frame, claims exactly its fds, and
/// is in Chrome's canonical layout (`decode_exact`); returns its message.
fn check_canonical(t: &Transmit) -> Message<'_> {
    let (frame, used) = Frame::decode(&t.bytes).expect("frame");
    assert_eq!(used, t.bytes.len());
    assert_eq!(usize::from(frame.header.num_handles), t.fds.len());
    let message = Message::decode_exact(frame.payload, t.fds.len()).expect("canonical message");
    assert_eq!(message.num_fds(), t.fds.len());
    message
}

/// A frame around `message` claiming `num_fds` fds.
fn frame_of(message: &Message<'_>, num_fds: u16) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader::new(num_fds, 0)
        .encode_frame(&[], message, &mut out)
        .expect("encode");
    out
}

/// `n` dummy fds.
fn dummies(n: usize) -> Vec<OwnedFd> {
    (0..n).map(|_| dev_null()).collect()
}
