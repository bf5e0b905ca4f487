//! A broker session and a client session wired in memory, stepped until
//! idle: the handshake, attachments both ways, a message each way, a
//! buffer request, and nothing left at the end.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use mojo_invitation::legacy::FdAccess;
use mojo_legacy_wire::Profile;
use mojo_wire_kit::{Guid, SeededRandom};

use super::*;
use crate::ports::names;

/// One direction of one link: bytes and fds not yet consumed.
#[derive(Default)]
struct Stream {
    bytes: Vec<u8>,
    fds: VecDeque<OwnedFd>,
}

struct Pair {
    broker: BrokerSession,
    client: ClientSession,
    /// To the client: [bootstrap, node channel]; to the broker: the same.
    to_client: [Stream; 2],
    to_broker: [Stream; 2],
}

fn index(link: Link) -> usize {
    match link {
        Link::Bootstrap => 0,
        Link::NodeChannel => 1,
    }
}

const LINKS: [Link; 2] = [Link::Bootstrap, Link::NodeChannel];

impl Pair {
    fn new(profile: Profile, attachments: Vec<AttachmentName>, ro_raw: i32) -> Self {
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let broker = BrokerSession::new(
            BrokerConfig {
                profile,
                local_name: names::node_name(1, 1),
                attachments: attachments.clone(),
            },
            OwnedFd::from(theirs),
            SeededRandom::new(1),
        )
        .unwrap();
        let probe: AccessProbe = Box::new(move |fd| {
            Some(if fd.as_raw_fd() == ro_raw {
                FdAccess::ReadOnly
            } else {
                FdAccess::ReadWrite
            })
        });
        let client = ClientSession::new(
            ClientConfig {
                profile,
                local_name: names::node_name(2, 2),
                attachments,
            },
            SeededRandom::new(2),
            probe,
        )
        .unwrap();
        Self {
            broker,
            client,
            to_client: Default::default(),
            to_broker: Default::default(),
        }
    }

    /// Moves everything until neither side has anything to say.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.broker.poll_transmit() {
                let s = &mut self.to_client[index(t.link)];
                s.bytes.extend_from_slice(&t.bytes);
                s.fds.extend(t.fds);
                moved = true;
            }
            while let Some(t) = self.client.poll_transmit() {
                let s = &mut self.to_broker[index(t.link)];
                s.bytes.extend_from_slice(&t.bytes);
                s.fds.extend(t.fds);
                moved = true;
            }
            for link in LINKS {
                let s = &mut self.to_client[index(link)];
                let n = self
                    .client
                    .handle_stream(link, &s.bytes, &mut s.fds)
                    .unwrap();
                s.bytes.drain(..n);
                moved |= n > 0;
                let s = &mut self.to_broker[index(link)];
                let n = self
                    .broker
                    .handle_stream(link, &s.bytes, &mut s.fds)
                    .unwrap();
                s.bytes.drain(..n);
                moved |= n > 0;
            }
            // The in-memory links stand for the node-channel socket.
            moved |= self.client.poll_adopt().is_some();
            if !moved {
                return;
            }
        }
    }

    fn assert_nothing_left(&mut self) {
        for s in self.to_client.iter().chain(&self.to_broker) {
            assert!(s.bytes.is_empty() && s.fds.is_empty());
        }
        for node in [self.broker.node_ref(), self.client.node_ref()] {
            assert_eq!(node.port_count(), 0, "ports left");
            assert_eq!(node.queued_fd_count(), 0, "fds left");
            assert_eq!(node.pending_transmit_count(), 0, "frames left");
        }
    }
}

fn attachments() -> Vec<AttachmentName> {
    let mut names = vec![AttachmentName::from_str_name("pipe!").unwrap()];
    names.extend(AttachmentName::numeric_range(3));
    names
}

fn exchange_in(profile: Profile) {
    let mut pair = Pair::new(profile, attachments(), -1);
    let b_ends = pair.broker.attachments().to_vec();
    assert_eq!(b_ends.len(), 4);
    // The broker may write before the client even exists.
    for (i, p) in b_ends.iter().enumerate() {
        pair.broker
            .node()
            .write_message(*p, &[i as u8; 3], vec![])
            .unwrap();
    }
    assert!(pair.client.attachments().is_none());
    pair.pump();
    assert!(pair.broker.is_established() && pair.client.is_established());
    let c_ends = pair.client.attachments().unwrap().to_vec();
    for (i, p) in c_ends.iter().enumerate() {
        let (bytes, handles) = pair.client.node().read_message(*p).unwrap().unwrap();
        assert_eq!((bytes, handles.len()), (vec![i as u8; 3], 0));
        pair.client
            .node()
            .write_message(*p, b"back", vec![])
            .unwrap();
    }
    pair.pump();
    for p in &b_ends {
        let (bytes, _) = pair.broker.node().read_message(*p).unwrap().unwrap();
        assert_eq!(bytes, b"back");
    }
    assert_eq!(pair.broker.node_ref().reserved_attachment_count(), 0);
    for p in b_ends {
        pair.broker.node().close_port(p).unwrap();
    }
    pair.pump();
    for p in c_ends {
        assert!(pair.client.node().port_status(p).unwrap().peer_closed);
        pair.client.node().close_port(p).unwrap();
    }
    pair.pump();
    pair.assert_nothing_left();
}

#[test]
fn attachments_and_a_message_each_way_libchrome() {
    exchange_in(Profile::Libchrome);
}

#[test]
fn attachments_and_a_message_each_way_desktop() {
    exchange_in(Profile::Desktop);
}

#[test]
fn client_gets_a_region_from_the_broker() {
    let path = std::env::temp_dir().join(format!("session-region-{}", std::process::id()));
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    rw.set_len(4096).unwrap();
    let ro = OpenOptions::new().read(true).open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let mut pair = Pair::new(Profile::Libchrome, attachments(), ro.as_raw_fd());
    pair.pump();
    pair.client.request_buffer(4096).unwrap();
    assert!(pair.client.buffer_request_outstanding());
    pair.pump();
    let request = pair.broker.poll_region_request().unwrap();
    assert_eq!(request.size, 4096);
    let ro_raw = ro.as_raw_fd();
    let probe = move |fd: std::os::fd::BorrowedFd<'_>| {
        Some(if fd.as_raw_fd() == ro_raw {
            FdAccess::ReadOnly
        } else {
            FdAccess::ReadWrite
        })
    };
    pair.broker
        .answer_region(
            request.id,
            RegionFds {
                guid: Guid::new(7, 9),
                read_write: rw.into(),
                read_only: ro.into(),
            },
            &probe,
        )
        .unwrap();
    pair.pump();
    let grant = pair.client.poll_buffer_grant().unwrap().unwrap();
    assert_eq!((grant.size, grant.guid), (4096, Guid::new(7, 9)));
    assert!(!pair.client.buffer_request_outstanding());
    assert!(pair.client.poll_buffer_grant().is_none());
    // Nothing else is pending; the attachments close from both sides.
    let ends: Vec<_> = pair.broker.attachments().to_vec();
    for p in ends {
        pair.broker.node().close_port(p).unwrap();
    }
    let ends: Vec<_> = pair.client.attachments().unwrap().to_vec();
    for p in ends {
        pair.client.node().close_port(p).unwrap();
    }
    pair.pump();
    pair.assert_nothing_left();
}

#[test]
fn losing_the_node_channel_makes_attachments_peer_closed() {
    let mut pair = Pair::new(Profile::Libchrome, attachments(), -1);
    pair.pump();
    pair.broker.handle_link_closed(Link::NodeChannel);
    pair.client.handle_link_closed(Link::NodeChannel);
    let ends: Vec<_> = pair.broker.attachments().to_vec();
    for p in ends {
        assert!(pair.broker.node().port_status(p).unwrap().peer_closed);
        pair.broker.node().close_port(p).unwrap();
    }
    let ends: Vec<_> = pair.client.attachments().unwrap().to_vec();
    for p in ends {
        assert!(pair.client.node().port_status(p).unwrap().peer_closed);
        pair.client.node().close_port(p).unwrap();
    }
    while pair.broker.poll_transmit().is_some() || pair.client.poll_transmit().is_some() {}
    assert_eq!(pair.broker.node_ref().port_count(), 0);
    assert_eq!(pair.client.node_ref().port_count(), 0);
}

#[test]
fn a_frame_without_its_fds_is_refused() {
    let mut pair = Pair::new(Profile::Libchrome, attachments(), -1);
    pair.pump();
    let mut bytes = Vec::new();
    // A broken stream: a header claiming one fd, with none.
    let frame = mojo_legacy_wire::node::NodeMessage::RequestPortMerge(
        mojo_legacy_wire::node::RequestPortMerge {
            connector_port_name: names::port_name(5, 5),
            token: b"pipe!",
        },
    );
    frame
        .encode_frame(Profile::Libchrome, 1, &mut bytes)
        .unwrap();
    let err = pair
        .broker
        .handle_stream(Link::NodeChannel, &bytes, &mut VecDeque::new())
        .unwrap_err();
    assert!(
        matches!(err, SessionError::MissingFds { claimed: 1, .. }),
        "{err}"
    );
}
