//! A broker and a client connector wired to each other in memory, the way
//! a driver would: each socket direction is a byte stream deframed by the
//! receiver (the client's bootstrap side with exact-size reads), with an
//! fd FIFO beside it.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use mojo_legacy_wire::broker::BrokerFrame;
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame};
use mojo_legacy_wire::{Deframer, Profile};
use mojo_wire_kit::{Guid, SeededRandom};

use super::super::{
    AttachmentName, BrokerConfig, BrokerConnector, BufferGrant, ClientConfig, ClientConnector,
    FrameKind, Link, RegionFds, Role, Transmit,
};
use super::{BROKER_NAME, CLIENT_NAME, dev_null, dev_null_rw, probe};

/// What a frame was, as the test log records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Logged {
    pub(super) from: Role,
    pub(super) link: Link,
    pub(super) kind: FrameKind,
    pub(super) len: usize,
    pub(super) fds: usize,
}

/// Every frame a connector emits must be canonical: it decodes with the wire
/// crate's `decode_exact` to exactly its own bytes.
pub(super) fn kind_of(t: &Transmit) -> FrameKind {
    match t.link {
        Link::NodeChannel => {
            let (f, used) = NodeFrame::decode_exact(&t.bytes).expect("canonical node frame");
            assert_eq!(used, t.bytes.len());
            assert_eq!(usize::from(f.header.num_handles()), t.fds.len());
            match f.content {
                NodeChannelContent::Message(m) => FrameKind::Node(m.message_type()),
                NodeChannelContent::Control(c) => FrameKind::Control(c.message_type()),
            }
        }
        Link::Bootstrap => {
            let (f, used) = BrokerFrame::decode_exact(&t.bytes).expect("canonical broker frame");
            assert_eq!(used, t.bytes.len());
            assert_eq!(usize::from(f.header.num_handles()), t.fds.len());
            assert_eq!(usize::from(f.message.expected_handles()), t.fds.len());
            FrameKind::Broker(f.message.message_type())
        }
    }
}

/// One direction of a stream socket: bytes deframed by the receiver, fds
/// in a FIFO.
#[derive(Default)]
pub(super) struct Stream {
    deframer: Deframer,
    fds: VecDeque<OwnedFd>,
}

impl Stream {
    fn push(&mut self, t: Transmit) {
        self.deframer.push(&t.bytes).expect("push");
        self.fds.extend(t.fds);
    }

    fn next(&mut self) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
        let f = self.deframer.next_frame().expect("deframe")?;
        let bytes = f.bytes.to_vec();
        let n = usize::from(f.frame.header.num_handles());
        assert!(self.fds.len() >= n, "fds ride with their frame");
        Some((bytes, self.fds.drain(..n).collect()))
    }

    fn is_empty(&self) -> bool {
        self.deframer.buffered() == 0 && self.fds.is_empty()
    }
}

pub(super) struct Sim {
    pub(super) broker: BrokerConnector,
    pub(super) client: ClientConnector,
    /// Broker to client on the bootstrap socket: whole `sendmsg`s, read
    /// with exact-size reads.
    boot_to_client: VecDeque<Transmit>,
    boot_to_broker: Stream,
    node_to_client: Stream,
    node_to_broker: Stream,
    /// The node-channel socket the client took out of `INIT`.
    pub(super) client_node_socket: Option<OwnedFd>,
    /// Frames that arrived after the handshake (the node layer's).
    pub(super) for_broker_node: Vec<Vec<u8>>,
    pub(super) for_client_node: Vec<Vec<u8>>,
    pub(super) grants: Vec<Result<BufferGrant, super::super::BufferError>>,
    pub(super) log: Vec<Logged>,
}

impl Sim {
    pub(super) fn new(profile: Profile, attachments: Vec<AttachmentName>) -> Self {
        let broker = BrokerConnector::new(
            BrokerConfig {
                profile,
                local_name: BROKER_NAME,
                attachments: attachments.clone(),
            },
            dev_null(),
            &mut SeededRandom::new(7),
        )
        .expect("broker");
        let client = ClientConnector::new(ClientConfig {
            profile,
            local_name: CLIENT_NAME,
            attachments,
        })
        .expect("client");
        Self {
            broker,
            client,
            boot_to_client: VecDeque::new(),
            boot_to_broker: Stream::default(),
            node_to_client: Stream::default(),
            node_to_broker: Stream::default(),
            client_node_socket: None,
            for_broker_node: Vec::new(),
            for_client_node: Vec::new(),
            grants: Vec::new(),
            log: Vec::new(),
        }
    }

    fn record(&mut self, from: Role, t: &Transmit) {
        let kind = kind_of(t);
        self.log.push(Logged {
            from,
            link: t.link,
            kind,
            len: t.bytes.len(),
            fds: t.fds.len(),
        });
    }

    /// One round: every queued frame is delivered and every region request
    /// fulfilled (with real `/dev/null` fds of the right modes). Returns
    /// whether anything moved.
    pub(super) fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(t) = self.broker.poll_transmit() {
            self.record(Role::Broker, &t);
            match t.link {
                Link::Bootstrap => self.boot_to_client.push_back(t),
                Link::NodeChannel => self.node_to_client.push(t),
            }
            moved = true;
        }
        while let Some(t) = self.client.poll_transmit() {
            self.record(Role::Client, &t);
            match t.link {
                Link::Bootstrap => self.boot_to_broker.push(t),
                Link::NodeChannel => self.node_to_broker.push(t),
            }
            moved = true;
        }
        if let Some(t) = self.boot_to_client.pop_front() {
            moved = true;
            if self.client.sync_broker().is_none() {
                let len = self.client.bootstrap_read_len();
                let rest = self.exact_read(t, len);
                let fd = self
                    .client
                    .handle_bootstrap_read(&rest.0, rest.1)
                    .expect("INIT accepted");
                self.client_node_socket = Some(fd);
            } else if let Some(sb) = self.client.sync_broker() {
                let len = sb.response_read_len();
                let (bytes, fds) = self.exact_read(t, len);
                if let Some(sb) = self.client.sync_broker() {
                    let grant = sb.handle_response_read(&bytes, fds, &probe);
                    self.grants.push(grant);
                }
            }
        }
        while let Some((bytes, fds)) = self.boot_to_broker.next() {
            self.broker
                .handle_bootstrap_frame(&bytes, fds)
                .expect("bootstrap frame");
            moved = true;
        }
        while let Some(request) = self.broker.host().poll_region_request() {
            let region = RegionFds {
                guid: Guid::new(0x5eed, u64::from(request.size)),
                read_write: dev_null_rw(),
                read_only: dev_null(),
            };
            self.broker
                .host()
                .answer_buffer_request(request.id, region, &probe)
                .expect("answer");
            moved = true;
        }
        if self.client_node_socket.is_some() {
            while let Some((bytes, fds)) = self.node_to_client.next() {
                if self.client.established().is_some() {
                    self.for_client_node.push(bytes);
                } else {
                    self.client.handle_node_frame(&bytes, fds).expect("client");
                }
                moved = true;
            }
        }
        while let Some((bytes, fds)) = self.node_to_broker.next() {
            if self.broker.established().is_some() {
                self.for_broker_node.push(bytes);
            } else {
                self.broker.handle_node_frame(&bytes, fds).expect("broker");
            }
            moved = true;
        }
        moved
    }

    /// A blocking `recvmsg` of `len` bytes on the client's bootstrap end:
    /// at most `len` bytes of the next `sendmsg`, with its fds; the rest of
    /// that write stays for the next read.
    fn exact_read(&mut self, mut t: Transmit, len: usize) -> (Vec<u8>, Vec<OwnedFd>) {
        if t.bytes.len() > len {
            let rest = t.bytes.split_off(len);
            self.boot_to_client.push_front(Transmit {
                link: t.link,
                bytes: rest,
                fds: Vec::new(),
            });
        }
        (t.bytes, t.fds)
    }

    pub(super) fn run(&mut self) {
        for _ in 0..100 {
            if !self.step() {
                return;
            }
        }
        panic!("the pair never went idle");
    }

    /// Nothing is left in flight on any socket.
    pub(super) fn assert_nothing_left(&mut self) {
        assert!(self.boot_to_client.is_empty());
        assert!(self.boot_to_broker.is_empty());
        assert!(self.node_to_client.is_empty());
        assert!(self.node_to_broker.is_empty());
        assert!(self.broker.poll_transmit().is_none());
        assert!(self.client.poll_transmit().is_none());
        assert!(self.broker.host().is_idle());
        assert!(self.client.sync_broker().is_none_or(|s| s.is_idle()));
    }
}

fn kinds(log: &[Logged]) -> Vec<(Role, Link, FrameKind, usize, usize)> {
    log.iter()
        .map(|l| (l.from, l.link, l.kind, l.len, l.fds))
        .collect()
}

#[test]
fn broker_and_client_establish_in_both_profiles() {
    use mojo_legacy_wire::broker::BrokerMessageType as B;
    use mojo_legacy_wire::node::NodeMessageType as N;
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let mut attachments = vec![AttachmentName::from_str_name("pipe!").unwrap()];
        attachments.extend(AttachmentName::numeric_range(3));
        let mut sim = Sim::new(profile, attachments.clone());
        sim.run();
        let b = sim
            .broker
            .established()
            .cloned()
            .expect("broker established");
        let c = sim
            .client
            .established()
            .cloned()
            .expect("client established");
        assert_eq!((b.local_name, b.peer_name), (BROKER_NAME, CLIENT_NAME));
        assert_eq!((c.local_name, c.peer_name), (CLIENT_NAME, BROKER_NAME));
        assert_eq!(b.token, c.token);
        assert_eq!(b.token, sim.broker.token());
        assert_eq!((b.role, c.role), (Role::Broker, Role::Client));
        assert_eq!(b.attachments, attachments);
        assert_eq!(c.attachments, attachments);
        assert_eq!((b.profile, c.profile), (profile, profile));
        assert!(b.peer_capabilities.is_empty() && c.peer_capabilities.is_empty());
        let h = profile.channel_header_len();
        assert_eq!(
            kinds(&sim.log),
            [
                (
                    Role::Broker,
                    Link::Bootstrap,
                    FrameKind::Broker(B::INIT),
                    h + 8,
                    1
                ),
                (
                    Role::Broker,
                    Link::NodeChannel,
                    FrameKind::Node(N::ACCEPT_INVITEE),
                    h + 48,
                    0
                ),
                (
                    Role::Client,
                    Link::NodeChannel,
                    FrameKind::Node(N::ACCEPT_INVITATION),
                    h + 48,
                    0
                ),
                (
                    Role::Broker,
                    Link::NodeChannel,
                    FrameKind::Node(N::ACCEPT_BROKER_CLIENT),
                    h + 40,
                    0
                ),
            ]
        );
        assert!(sim.client_node_socket.is_some());
        assert!(sim.for_broker_node.is_empty() && sim.for_client_node.is_empty());
        sim.assert_nothing_left();
        let (_, host) = sim.broker.finish().expect("finish broker");
        assert!(host.is_idle());
        let (_, sync) = sim.client.finish().expect("finish client");
        assert!(sync.is_idle());
    }
}

#[test]
fn buffer_request_round_trip_in_memory() {
    use mojo_legacy_wire::broker::BrokerMessageType as B;
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let mut sim = Sim::new(profile, AttachmentName::numeric_range(1));
        sim.run();
        sim.log.clear();
        for size in [4096, 65536] {
            let sb = sim.client.sync_broker().expect("INIT read");
            sb.request_buffer(size).unwrap();
            assert!(sb.is_outstanding());
            assert_eq!(
                sb.request_buffer(1),
                Err(super::super::BufferError::RequestOutstanding)
            );
            sim.run();
        }
        let h = profile.channel_header_len();
        let got: Vec<_> = kinds(&sim.log);
        let request = (
            Role::Client,
            Link::Bootstrap,
            FrameKind::Broker(B::BUFFER_REQUEST),
            h + 12,
            0,
        );
        let response = (
            Role::Broker,
            Link::Bootstrap,
            FrameKind::Broker(B::BUFFER_RESPONSE),
            h + 24,
            2,
        );
        assert_eq!(got, [request, response, request, response]);
        let grants: Vec<_> = sim.grants.drain(..).map(|g| g.expect("granted")).collect();
        assert_eq!(grants.len(), 2);
        assert_eq!(
            (grants[0].size, grants[0].guid),
            (4096, Guid::new(0x5eed, 4096))
        );
        assert_eq!(grants[1].size, 65536);
        sim.assert_nothing_left();
    }
}

#[test]
fn frames_after_the_handshake_are_the_node_layers() {
    let mut sim = Sim::new(Profile::Libchrome, vec![]);
    sim.run();
    // A REQUEST_PORT_MERGE the node layer would send.
    let mut bytes = Vec::new();
    mojo_legacy_wire::node::NodeMessage::RequestPortMerge(
        mojo_legacy_wire::node::RequestPortMerge {
            connector_port_name: mojo_legacy_wire::PortName::new(1, 2),
            token: b"x",
        },
    )
    .encode_frame(Profile::Libchrome, 0, &mut bytes)
    .unwrap();
    assert_eq!(
        sim.broker.handle_node_frame(&bytes, vec![]),
        Err(super::super::HandshakeError::AlreadyEstablished)
    );
    // Still established: that refusal is not a failure.
    assert!(sim.broker.established().is_some());
    assert!(sim.broker.handle_node_closed().is_ok());
}
