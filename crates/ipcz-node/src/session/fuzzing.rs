//! Oracle for the cargo-fuzz target `fuzz/fuzz_targets/ipcz_session_streams.rs`
//! (and for the tests that run it under stable): a non-broker or a broker
//! [`Session`] fed an arbitrary stream, fds and a closure on its socket, as
//! a driver feeds it, so the session's own deframing (frames split
//! anywhere, fds that do or do not arrive, input held behind the primary
//! buffer's mapping) and the node behind it see hostile input.
//!
//! The contract checked: nothing panics; a session never consumes more than
//! it was given; every frame it emits is non-empty; once it failed, every
//! later call fails too (the error is sticky).
//!
//! The oracle answers the session as a driver would: a non-broker's primary
//! buffer is mapped as zeroed heap memory (at most
//! [`MAX_MAPPED_PRIMARY_BYTES`]); block buffers and memory requests are
//! refused.
//!
//! Input layout: byte 0 picks the role (bit 0: non-broker or broker); then
//! records of one selector byte (`% 2`: 0 stream bytes, 1 the socket
//! closes), a `u16` LE length, that many bytes, and one byte giving the
//! number of fds (at most [`MAX_FDS_PER_RECORD`]) that arrive with them.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::NodeName;
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_wire_kit::{Guid, SeededRandom};

use super::{Session, SessionConfig, SessionEvent};
use crate::node::NodeEvent;
use crate::sim::SharedHeap;

/// Most fds the oracle passes with one record.
pub const MAX_FDS_PER_RECORD: usize = 8;

/// The largest primary buffer the oracle maps for a non-broker.
pub const MAX_MAPPED_PRIMARY_BYTES: usize = 1 << 20;

/// Most bytes the oracle keeps unconsumed before it stops.
pub const MAX_PENDING_BYTES: usize = 1 << 20;

/// Runs `data` (see the module docs); `make_fd` makes the fds (the fuzz
/// target opens `/dev/null`). Returns whether the session failed.
pub fn session_streams(data: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> bool {
    let Some((&mode, mut rest)) = data.split_first() else {
        return false;
    };
    let config = SessionConfig {
        initial_portals: 3,
        ..SessionConfig::default()
    };
    let session = if mode & 1 == 0 {
        Session::<SharedHeap>::non_broker(config)
    } else {
        let primary = PrimaryBuffer::new(
            PRIMARY_BUFFER_SIZE as u32,
            Guid { high: 7, low: 7 },
            make_fd(),
        );
        Session::broker(
            NodeName { high: 7, low: 1 },
            config,
            primary,
            SharedHeap::new(PRIMARY_BUFFER_SIZE),
            &mut SeededRandom::new(7),
        )
    };
    let Ok(mut session) = session else {
        return false;
    };
    let mut buffer = Vec::new();
    let mut queue = VecDeque::new();
    drain(&mut session);
    while let Some((&selector, after)) = rest.split_first() {
        let Some((len, after)) = after.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(after.len());
        let (bytes, after) = after.split_at(len);
        let (fds, after) = match after.split_first() {
            Some((&n, after)) => (usize::from(n).min(MAX_FDS_PER_RECORD), after),
            None => (0, after),
        };
        rest = after;
        if selector % 2 == 1 {
            let closed = session.handle_closed();
            drain(&mut session);
            return closed.is_err();
        }
        buffer.extend_from_slice(bytes);
        queue.extend((0..fds).map(|_| make_fd()));
        loop {
            match session.handle_stream(&buffer, &mut queue) {
                Ok(used) => {
                    assert!(used <= buffer.len(), "consumed more than given");
                    buffer.drain(..used.min(buffer.len()));
                }
                Err(_) => {
                    assert!(
                        session.handle_stream(&[], &mut VecDeque::new()).is_err(),
                        "the error is sticky"
                    );
                    drain(&mut session);
                    return true;
                }
            }
            // A mapping just made lets the input behind the greeting in.
            if !drain(&mut session) {
                break;
            }
        }
        if buffer.len() > MAX_PENDING_BYTES {
            break;
        }
    }
    false
}

/// Answers the session's events and writes its frames; returns whether the
/// primary buffer was just mapped.
fn drain(session: &mut Session<SharedHeap>) -> bool {
    let mut mapped = false;
    loop {
        let mut moved = false;
        while let Some(t) = session.poll_transmit() {
            assert!(!t.bytes.is_empty(), "an empty frame");
            moved = true;
        }
        while let Some(event) = session.poll_event() {
            moved = true;
            match event {
                SessionEvent::MapPrimaryBuffer { buffer, .. } => {
                    let size = buffer.buffer_size as usize;
                    if size <= MAX_MAPPED_PRIMARY_BYTES
                        && session.primary_buffer_mapped(SharedHeap::new(size)).is_ok()
                    {
                        mapped = true;
                    }
                }
                SessionEvent::Node(NodeEvent::CreateBlockBuffer {
                    link, block_size, ..
                }) => {
                    if let Some(node) = session.node_mut() {
                        node.block_buffer_failed(link, block_size);
                    }
                }
                SessionEvent::Node(NodeEvent::MapBlockBuffer { link, id, .. }) => {
                    if let Some(node) = session.node_mut() {
                        node.block_buffer_unmappable(link, id);
                    }
                }
                _ => {}
            }
        }
        if !moved {
            return mapped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dev_null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    fn record(out: &mut Vec<u8>, selector: u8, bytes: &[u8], fds: u8) {
        out.push(selector);
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
        out.push(fds);
    }

    #[test]
    fn garbage_fails_either_role_and_stays_failed() {
        for role in [0, 1] {
            let mut data = vec![role];
            record(&mut data, 0, &[8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 0);
            assert!(session_streams(&data, &mut dev_null), "role {role}");
        }
    }

    #[test]
    fn a_closure_before_the_handshake_is_an_error() {
        for role in [0, 1] {
            let mut data = vec![role];
            record(&mut data, 1, &[], 0);
            assert!(session_streams(&data, &mut dev_null), "role {role}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_streams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            session_streams(&data, &mut dev_null);
        }
    }
}
