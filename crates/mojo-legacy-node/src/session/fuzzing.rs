//! Oracle for the cargo-fuzz target `fuzz/fuzz_targets/legacy_session_streams.rs`
//! (and for the tests that run it under stable): a [`ClientSession`] or a
//! [`BrokerSession`] fed arbitrary stream bytes, fds and closures on its two
//! links, as a driver feeds it, so the sessions' own deframing (the exact-size
//! `INIT` read, frames split anywhere, fds that do or do not arrive) and
//! everything behind it see hostile input.
//!
//! The contract checked: nothing panics; a session never consumes more than
//! it was given; every frame it emits is non-empty. A [`SessionError`] ends
//! the input (the driver would drop the link).
//!
//! Input layout: byte 0 picks the role (bit 0: client or broker) and the
//! profile (bit 1: libchrome or desktop); then records of one selector byte
//! (`% 4`: 0 the bootstrap link, 1 the node channel, 2 closes the link named
//! by the record's first data byte, 3 asks the broker for a buffer as a
//! client), a `u16` LE length, that many bytes, and one byte giving the
//! number of fds (at most [`MAX_FDS_PER_RECORD`]) that arrive with them.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use mojo_invitation::legacy::FdAccess;
use mojo_legacy_wire::Profile;
use mojo_wire_kit::SeededRandom;

use super::{
    AttachmentName, BrokerConfig, BrokerSession, ClientConfig, ClientSession, Link, SessionError,
    Transmit,
};
use crate::ports::names;

/// Most fds the oracle passes with one record.
pub const MAX_FDS_PER_RECORD: usize = 8;

/// Most bytes the oracle keeps unconsumed per link before it stops.
pub const MAX_PENDING_BYTES: usize = 1 << 20;

enum Role {
    /// The client, and whether it handed out the node-channel socket yet
    /// (a driver reads that socket only once it adopted it).
    Client(Box<ClientSession>, bool),
    Broker(Box<BrokerSession>),
}

impl Role {
    fn handle_stream(
        &mut self,
        link: Link,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        match self {
            Self::Client(c, _) => c.handle_stream(link, input, fds),
            Self::Broker(b) => b.handle_stream(link, input, fds),
        }
    }

    fn handle_link_closed(&mut self, link: Link) {
        match self {
            Self::Client(c, _) => c.handle_link_closed(link),
            Self::Broker(b) => b.handle_link_closed(link),
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Self::Client(c, _) => c.poll_transmit(),
            Self::Broker(b) => b.poll_transmit(),
        }
    }

    /// Answers what the session asks of its driver.
    fn serve(&mut self) {
        match self {
            Self::Client(c, adopted) => {
                while c.poll_adopt().is_some() {
                    *adopted = true;
                }
                while c.poll_buffer_grant().is_some() {}
                while c.node().poll_event().is_some() {}
            }
            Self::Broker(b) => {
                while let Some(request) = b.poll_region_request() {
                    let _ = b.fail_region(request.id);
                }
                while b.node().poll_event().is_some() {}
            }
        }
    }
}

fn attachments() -> Vec<AttachmentName> {
    [b"pipe!".to_vec(), 0u64.to_le_bytes().to_vec()]
        .into_iter()
        .filter_map(AttachmentName::from_bytes)
        .collect()
}

/// Runs `data` (see the module docs); `make_fd` makes the fds (the fuzz
/// target opens `/dev/null`). Returns whether the session refused input.
pub fn session_streams(data: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> bool {
    let Some((&mode, mut rest)) = data.split_first() else {
        return false;
    };
    let profile = if mode & 2 == 0 {
        Profile::Libchrome
    } else {
        Profile::Desktop
    };
    let session = if mode & 1 == 0 {
        let probe: super::AccessProbe = Box::new(|_| Some(FdAccess::ReadWrite));
        let config = ClientConfig {
            profile,
            local_name: names::node_name(0xC1, 1),
            attachments: attachments(),
        };
        ClientSession::new(config, SeededRandom::new(5), probe)
            .map(|c| Role::Client(Box::new(c), false))
    } else {
        let config = BrokerConfig {
            profile,
            local_name: names::node_name(0xB1, 1),
            attachments: attachments(),
        };
        BrokerSession::new(config, make_fd(), SeededRandom::new(6))
            .map(|b| Role::Broker(Box::new(b)))
    };
    let Ok(mut session) = session else {
        return false;
    };
    let mut inputs: [(Vec<u8>, VecDeque<OwnedFd>, bool); 2] = Default::default();
    for input in &mut inputs {
        input.2 = true;
    }
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
        match selector % 4 {
            3 => {
                if let Role::Client(c, _) = &mut session {
                    let size = u32::from(bytes.first().copied().unwrap_or(1)) * 4096;
                    let _ = c.request_buffer(size);
                }
            }
            2 => {
                let index = usize::from(bytes.first().copied().unwrap_or(0) % 2);
                if let Some(input) = inputs.get_mut(index) {
                    *input = (Vec::new(), VecDeque::new(), false);
                }
                session.handle_link_closed(link_of(index));
            }
            which => {
                let index = usize::from(which);
                let Some((buffer, queue, open)) = inputs.get_mut(index) else {
                    continue;
                };
                if !*open {
                    continue;
                }
                buffer.extend_from_slice(bytes);
                queue.extend((0..fds).map(|_| make_fd()));
                if index == 1 && matches!(session, Role::Client(_, false)) {
                    continue;
                }
                match session.handle_stream(link_of(index), buffer, queue) {
                    Ok(used) => {
                        assert!(used <= buffer.len(), "consumed more than given");
                        buffer.drain(..used.min(buffer.len()));
                    }
                    Err(_) => {
                        drain(&mut session);
                        return true;
                    }
                }
                if buffer.len() > MAX_PENDING_BYTES {
                    break;
                }
            }
        }
        drain(&mut session);
    }
    false
}

fn link_of(index: usize) -> Link {
    if index == 0 {
        Link::Bootstrap
    } else {
        Link::NodeChannel
    }
}

fn drain(session: &mut Role) {
    session.serve();
    while let Some(t) = session.poll_transmit() {
        assert!(!t.bytes.is_empty(), "an empty frame for {}", t.link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dev_null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    /// One record of the input layout.
    fn record(out: &mut Vec<u8>, selector: u8, bytes: &[u8], fds: u8) {
        out.push(selector);
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
        out.push(fds);
    }

    #[test]
    fn a_client_refuses_an_init_without_its_socket() {
        // A libchrome INIT-sized frame with no fd: the exact-size read takes
        // it, and the missing socket is an error.
        let mut data = vec![0];
        record(
            &mut data,
            0,
            &[16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            0,
        );
        assert!(session_streams(&data, &mut dev_null));
    }

    #[test]
    fn garbage_on_the_broker_node_channel_is_refused() {
        let mut data = vec![1];
        record(&mut data, 1, &[4, 0, 0, 0, 0, 0, 0, 0], 0);
        assert!(session_streams(&data, &mut dev_null));
    }

    #[test]
    fn closures_and_buffer_requests_without_a_broker_are_harmless() {
        for mode in 0..4u8 {
            let mut data = vec![mode];
            record(&mut data, 3, &[1], 0);
            record(&mut data, 2, &[0], 0);
            record(&mut data, 2, &[1], 0);
            record(&mut data, 0, &[1, 2, 3], 1);
            session_streams(&data, &mut dev_null);
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
