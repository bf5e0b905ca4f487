//! The two other parties of an inherited-broker handshake (spec `ipcz.md`
//! §4.3): the non-broker host that refers a node to its broker (Chrome's
//! `NodeConnectorForReferrer`) and the broker that serves the referral
//! (`NodeConnectorForBrokerReferral`). The proxy plays neither; the test
//! peers' inherit mode and library users need both.
//!
//! ```text
//! referred P                 referrer H                      broker B
//!   |                          |-- ReferNonBroker(id, n_H, socket to P) -->|   ReferrerConnector
//!   |-- ConnectToReferredBroker ------------------------------------------>|   BrokerReferralConnector
//!   |<-- ConnectToReferredNonBroker (B's buffer, socket to H, H-P buffer) -|
//!   |                          |<-- NonBrokerReferralAccepted (socket, H-P buffer)
//!   |<====== new socket: the referrer link, no handshake =====>|
//! ```

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::{DriverObject, SharedBuffer, Transport, TransportEndpointType};
use ipcz_wire::limits::PROTOCOL_VERSION;
use ipcz_wire::messages::{
    Body, ConnectToReferredNonBroker, NonBrokerReferralAccepted, NonBrokerReferralRejected,
    ReferNonBroker,
};
use ipcz_wire::types::{LinkSide, NodeName, NodeType, ReferralId};
use mojo_wire_kit::{RandomSource, SharedMemory};

use super::frames::{
    check_name, decode_frame, encode_transmit, features_word, object_index, take_primary_buffer,
    take_transport,
};
use super::memory::initialize_primary_buffer;
use super::state::Phase;
use super::{
    EstablishedLink, HandshakeError, Link, LinkTransport, MAX_INITIAL_PORTALS, PortalCounts,
    PrimaryBuffer, Transmit, fresh_name,
};

const EXPECTED_REPLY: &str = "NonBrokerReferralAccepted or NonBrokerReferralRejected";
const EXPECTED_GREETING: &str = "ConnectToReferredBroker";

/// The Transport header the broker puts on both ends of a referrer link:
/// the other end is a non-broker; the trust hints are those Chrome's broker
/// sent in the recordings (§1.6.1).
const REFERRER_LINK_TRANSPORT: Transport = Transport {
    destination_type: TransportEndpointType::NON_BROKER,
    is_same_remote_process: false,
    is_peer_trusted: false,
    is_trusted_by_peer: true,
};

/// The referring side, sans-IO: a non-broker that already has a link to
/// its broker and hands it the socket of a node it launched.
///
/// [`ReferrerConnector::new`] queues ReferNonBroker on [`Link::Broker`]
/// (with that link's next sequence number, which the caller supplies and
/// then counts as used). The caller passes the broker's answer, a
/// NonBrokerReferralAccepted or NonBrokerReferralRejected with our
/// referral id, to [`ReferrerConnector::handle_frame`]; accepted, it yields
/// the link to the referred node: side A, over the new socket in the
/// answer, with the buffer the broker made for it.
#[derive(Debug)]
pub struct ReferrerConnector {
    local_name: NodeName,
    referral_id: ReferralId,
    num_initial_portals: u32,
    phase: Phase<EstablishedLink>,
    transmits: VecDeque<Transmit>,
}

impl ReferrerConnector {
    /// Refers the node at the other end of `referred_socket` to our broker:
    /// `local_name` is ours (non-zero), `referral_id` names this referral on
    /// the broker link (Chrome counts them per link from 0),
    /// `num_initial_portals` our initial portals for the new link (at most
    /// [`MAX_INITIAL_PORTALS`]), `sequence_number` the broker link's next
    /// outgoing NodeLink sequence number.
    pub fn new(
        local_name: NodeName,
        referral_id: ReferralId,
        num_initial_portals: u32,
        referred_socket: OwnedFd,
        sequence_number: u64,
    ) -> Result<Self, HandshakeError> {
        if !local_name.is_valid() {
            return Err(HandshakeError::InvalidConfig {
                field: "local_name (zero)",
            });
        }
        if num_initial_portals > MAX_INITIAL_PORTALS {
            return Err(HandshakeError::InvalidConfig {
                field: "num_initial_portals (more than MAX_INITIAL_PORTALS)",
            });
        }
        let refer = encode_transmit(
            Link::Broker,
            sequence_number,
            Body::ReferNonBroker(ReferNonBroker {
                referral_id,
                num_initial_portals,
                transport: object_index(0),
            }),
            vec![(
                DriverObject::Transport(Transport {
                    destination_type: TransportEndpointType::NON_BROKER,
                    ..Transport::default()
                }),
                vec![referred_socket],
            )],
        )?;
        Ok(Self {
            local_name,
            referral_id,
            num_initial_portals,
            phase: Phase::Waiting(EXPECTED_REPLY),
            transmits: VecDeque::from([refer]),
        })
    }

    /// The referral id the broker's answer must carry.
    pub fn referral_id(&self) -> ReferralId {
        self.referral_id
    }

    /// The next frame to write (on [`Link::Broker`]).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Takes the broker's answer: one whole frame from the broker link with
    /// exactly the fds its header claims. Unknown message ids are ignored;
    /// any other known message (the node's to handle, not this
    /// connector's) and an answer for another referral fail it.
    pub fn handle_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), HandshakeError> {
        self.phase.check_waiting(Link::Broker)?;
        let outcome = self.accept(bytes, fds);
        self.phase.record(outcome)
    }

    /// The broker link closed before the answer.
    pub fn handle_closed(&mut self) -> Result<(), HandshakeError> {
        self.phase.closed(Link::Broker)
    }

    /// Whether the referral was accepted.
    pub fn is_established(&self) -> bool {
        self.phase.is_done()
    }

    /// The link to the referred node, once established and until
    /// [`Self::finish`].
    pub fn established(&self) -> Option<&EstablishedLink> {
        self.phase.done()
    }

    /// The error the referral failed with, if it did.
    pub fn error(&self) -> Option<&HandshakeError> {
        self.phase.error()
    }

    /// Takes the link ([`HandshakeError::Incomplete`] before).
    pub fn finish(&mut self) -> Result<EstablishedLink, HandshakeError> {
        self.phase.finish()
    }

    fn accept(
        &self,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<Option<EstablishedLink>, HandshakeError> {
        let (message, mut fds) = decode_frame(Link::Broker, bytes, fds)?;
        let accepted = match &message.body {
            Body::NonBrokerReferralAccepted(a) => a,
            Body::NonBrokerReferralRejected(r) => {
                self.check_id(r.referral_id)?;
                return Err(HandshakeError::ReferralRejected {
                    referral_id: r.referral_id,
                });
            }
            Body::Unknown(_) => return Ok(None),
            _ => {
                return Err(HandshakeError::UnexpectedMessage {
                    link: Link::Broker,
                    expected: EXPECTED_REPLY,
                    found: message.id(),
                });
            }
        };
        self.check_id(accepted.referral_id)?;
        let name = "NonBrokerReferralAccepted";
        check_name(accepted.name, &[self.local_name], name, "name")?;
        let (transport, socket) =
            take_transport(&message, &mut fds, accepted.transport, "transport")?;
        let buffer = take_primary_buffer(&message, &mut fds, accepted.buffer, "buffer")?;
        Ok(Some(EstablishedLink {
            transport: LinkTransport::Socket {
                fd: socket,
                transport,
            },
            side: LinkSide::A,
            local_name: self.local_name,
            remote_name: accepted.name,
            remote_type: NodeType::NORMAL,
            remote_protocol_version: accepted.protocol_version,
            remote_features: features_word(accepted.features.as_ref()),
            primary_buffer: buffer.buffer,
            primary_buffer_fd: Some(buffer.fd),
            portal_counts: PortalCounts {
                local: self.num_initial_portals,
                remote: accepted.num_initial_portals,
            },
        }))
    }

    fn check_id(&self, found: ReferralId) -> Result<(), HandshakeError> {
        if found == self.referral_id {
            Ok(())
        } else {
            Err(HandshakeError::ReferralMismatch {
                expected: self.referral_id,
                found,
            })
        }
    }
}

/// A ReferNonBroker as the broker received it, without its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Referral {
    /// The referrer's id for it.
    pub referral_id: ReferralId,
    /// The referrer's initial portal count.
    pub num_initial_portals: u32,
    /// The Transport header of the referred node's socket.
    pub transport: Transport,
}

impl Referral {
    /// Decodes a ReferNonBroker frame (with exactly the fds its header
    /// claims) that arrived on the broker's link to the referrer. Returns
    /// the referral and the referred node's socket, which the caller adopts
    /// as the [`BrokerReferralConnector`]'s [`Link::Handshake`].
    pub fn from_frame(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(Self, OwnedFd), HandshakeError> {
        let (message, mut fds) = decode_frame(Link::Referrer, bytes, fds)?;
        let Body::ReferNonBroker(refer) = &message.body else {
            return Err(HandshakeError::UnexpectedMessage {
                link: Link::Referrer,
                expected: "ReferNonBroker",
                found: message.id(),
            });
        };
        let (transport, socket) = take_transport(&message, &mut fds, refer.transport, "transport")?;
        Ok((
            Self {
                referral_id: refer.referral_id,
                num_initial_portals: refer.num_initial_portals,
                transport,
            },
            socket,
        ))
    }
}

/// What the broker knows about the referrer from its link to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferrerInfo {
    /// The referrer's name.
    pub name: NodeName,
    /// The protocol version it announced.
    pub protocol_version: u32,
    /// Element 0 of its features.
    pub features: u64,
    /// The next outgoing NodeLink sequence number on the link to it; the
    /// answer (accepted or rejected) uses it, and the caller then counts it
    /// as used.
    pub sequence_number: u64,
}

/// What the broker supplies for a referral: two fresh primary buffers and
/// a socket pair, all made by the caller (the connector never calls the OS).
#[derive(Debug)]
pub struct ReferralResources<'a, M> {
    /// Primary buffer of the broker's new link to the referred node.
    pub broker_link_buffer: PrimaryBuffer,
    /// Its mapping (initialized here).
    pub broker_link_mapping: &'a M,
    /// Primary buffer of the referrer link, the fd for the referred node.
    pub referrer_link_buffer: PrimaryBuffer,
    /// A second fd of the same region, for the referrer (Chrome sends the
    /// referred node a clone and the referrer the original).
    pub referrer_link_buffer_for_referrer: OwnedFd,
    /// The referrer link buffer's mapping (initialized here; the broker
    /// itself never uses that link).
    pub referrer_link_mapping: &'a M,
    /// One end of a fresh socket pair, for the referred node.
    pub referred_socket: OwnedFd,
    /// The other end, for the referrer.
    pub referrer_socket: OwnedFd,
}

/// The fds a pending referral holds until the referred node greets.
#[derive(Debug)]
struct Pending {
    broker_link_buffer: PrimaryBuffer,
    referrer_link_buffer: PrimaryBuffer,
    referrer_link_buffer_for_referrer: OwnedFd,
    referred_socket: OwnedFd,
    referrer_socket: OwnedFd,
}

/// The broker's side of a referral, sans-IO.
///
/// Build it from the [`Referral`] the referrer sent and adopt the referred
/// node's socket as [`Link::Handshake`]. [`BrokerReferralConnector::new`]
/// initializes both primary buffers and draws the referred node's name;
/// nothing is sent until the node greets. Its ConnectToReferredBroker
/// queues ConnectToReferredNonBroker on [`Link::Handshake`] (sequence
/// number 0) and then, in that order so the referrer cannot reach the node
/// first, NonBrokerReferralAccepted on [`Link::Referrer`];
/// [`BrokerReferralConnector::finish`] yields the broker's link to the
/// referred node (side A, no initial portals). If the node's socket closes
/// or its greeting is bad, NonBrokerReferralRejected is queued instead:
/// drain `poll_transmit` after a failure too.
#[derive(Debug)]
pub struct BrokerReferralConnector {
    local_name: NodeName,
    referred_name: NodeName,
    referrer: ReferrerInfo,
    referral: Referral,
    broker_link_buffer: SharedBuffer,
    pending: Option<Pending>,
    phase: Phase<EstablishedLink>,
    transmits: VecDeque<Transmit>,
}

impl BrokerReferralConnector {
    /// Serves `referral` from `referrer` as the broker named `local_name`
    /// with `resources`, naming the referred node from `random`.
    pub fn new<M: SharedMemory>(
        local_name: NodeName,
        referrer: ReferrerInfo,
        referral: Referral,
        resources: ReferralResources<'_, M>,
        random: &mut dyn RandomSource,
    ) -> Result<Self, HandshakeError> {
        if !local_name.is_valid() {
            return Err(HandshakeError::InvalidConfig {
                field: "local_name (zero)",
            });
        }
        if !referrer.name.is_valid() || referrer.name == local_name {
            return Err(HandshakeError::InvalidConfig {
                field: "referrer.name (zero or the broker's)",
            });
        }
        let ReferralResources {
            broker_link_buffer,
            broker_link_mapping,
            referrer_link_buffer,
            referrer_link_buffer_for_referrer,
            referrer_link_mapping,
            referred_socket,
            referrer_socket,
        } = resources;
        broker_link_buffer
            .check_own("broker_link_buffer (an unsafe region of 128 KiB to 1 MiB)")?;
        referrer_link_buffer
            .check_own("referrer_link_buffer (an unsafe region of 128 KiB to 1 MiB)")?;
        initialize_primary_buffer(broker_link_mapping)?;
        initialize_primary_buffer(referrer_link_mapping)?;
        let referred_name = fresh_name(random, &[local_name, referrer.name])?;
        Ok(Self {
            local_name,
            referred_name,
            referrer,
            referral,
            broker_link_buffer: broker_link_buffer.buffer,
            pending: Some(Pending {
                broker_link_buffer,
                referrer_link_buffer,
                referrer_link_buffer_for_referrer,
                referred_socket,
                referrer_socket,
            }),
            phase: Phase::Waiting(EXPECTED_GREETING),
            transmits: VecDeque::new(),
        })
    }

    /// The name assigned to the referred node.
    pub fn referred_name(&self) -> NodeName {
        self.referred_name
    }

    /// The next frame to write, on [`Link::Handshake`] or [`Link::Referrer`].
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Takes one whole frame from the referred node's socket with exactly
    /// the fds its header claims. Unknown message ids are ignored; anything
    /// else but ConnectToReferredBroker fails the referral.
    pub fn handle_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), HandshakeError> {
        self.phase.check_waiting(Link::Handshake)?;
        let outcome = self.accept(bytes, fds);
        if outcome.is_err() {
            self.reject();
        }
        self.phase.record(outcome)
    }

    /// The referred node's socket closed before its greeting: the referral
    /// fails and the referrer is told.
    pub fn handle_closed(&mut self) -> Result<(), HandshakeError> {
        let waiting = !self.phase.is_done() && self.phase.error().is_none();
        let result = self.phase.closed(Link::Handshake);
        if waiting {
            self.reject();
        }
        result
    }

    /// Whether the referred node has been accepted.
    pub fn is_established(&self) -> bool {
        self.phase.is_done()
    }

    /// The link to the referred node, once established and until
    /// [`Self::finish`].
    pub fn established(&self) -> Option<&EstablishedLink> {
        self.phase.done()
    }

    /// The error the referral failed with, if it did.
    pub fn error(&self) -> Option<&HandshakeError> {
        self.phase.error()
    }

    /// Takes the link ([`HandshakeError::Incomplete`] before).
    pub fn finish(&mut self) -> Result<EstablishedLink, HandshakeError> {
        self.phase.finish()
    }

    /// Queues NonBrokerReferralRejected once and closes the held fds.
    fn reject(&mut self) {
        if self.pending.take().is_none() {
            return;
        }
        let rejected = encode_transmit(
            Link::Referrer,
            self.referrer.sequence_number,
            Body::NonBrokerReferralRejected(NonBrokerReferralRejected {
                referral_id: self.referral.referral_id,
            }),
            Vec::new(),
        );
        // A fixed-size message without objects always encodes.
        if let Ok(t) = rejected {
            self.transmits.push_back(t);
        }
    }

    fn accept(
        &mut self,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<Option<EstablishedLink>, HandshakeError> {
        // The greeting has no driver objects; any that come are closed.
        let (message, _fds) = decode_frame(Link::Handshake, bytes, fds)?;
        let connect = match &message.body {
            Body::ConnectToReferredBroker(c) => c,
            Body::Unknown(_) => return Ok(None),
            _ => {
                return Err(HandshakeError::UnexpectedMessage {
                    link: Link::Handshake,
                    expected: EXPECTED_GREETING,
                    found: message.id(),
                });
            }
        };
        let Some(pending) = self.pending.take() else {
            return Err(HandshakeError::Incomplete {
                waiting_for: "nothing (the referral's resources are gone)",
            });
        };
        let referred_features = features_word(connect.features.as_ref());
        let to_referred = encode_transmit(
            Link::Handshake,
            0,
            Body::ConnectToReferredNonBroker(ConnectToReferredNonBroker {
                name: self.referred_name,
                broker_name: self.local_name,
                referrer_name: self.referrer.name,
                // Chrome sends min(theirs, ours); ours is 0.
                broker_protocol_version: PROTOCOL_VERSION,
                referrer_protocol_version: self.referrer.protocol_version,
                num_initial_portals: self.referral.num_initial_portals,
                broker_link_buffer: object_index(0),
                referrer_link_transport: object_index(1),
                referrer_link_buffer: object_index(2),
                broker_features: Some(vec![super::ADVERTISED_FEATURES]),
                referrer_features: Some(vec![self.referrer.features]),
            }),
            vec![
                (
                    DriverObject::SharedBuffer(pending.broker_link_buffer.buffer),
                    vec![pending.broker_link_buffer.fd],
                ),
                (
                    DriverObject::Transport(REFERRER_LINK_TRANSPORT),
                    vec![pending.referred_socket],
                ),
                (
                    DriverObject::SharedBuffer(pending.referrer_link_buffer.buffer),
                    vec![pending.referrer_link_buffer.fd],
                ),
            ],
        )?;
        let to_referrer = encode_transmit(
            Link::Referrer,
            self.referrer.sequence_number,
            Body::NonBrokerReferralAccepted(NonBrokerReferralAccepted {
                referral_id: self.referral.referral_id,
                protocol_version: connect.protocol_version,
                num_initial_portals: connect.num_initial_portals,
                name: self.referred_name,
                transport: object_index(0),
                buffer: object_index(1),
                features: Some(vec![referred_features]),
            }),
            vec![
                (
                    DriverObject::Transport(REFERRER_LINK_TRANSPORT),
                    vec![pending.referrer_socket],
                ),
                (
                    DriverObject::SharedBuffer(pending.referrer_link_buffer.buffer),
                    vec![pending.referrer_link_buffer_for_referrer],
                ),
            ],
        )?;
        self.transmits.push_back(to_referred);
        self.transmits.push_back(to_referrer);
        Ok(Some(EstablishedLink {
            transport: LinkTransport::Handshake,
            side: LinkSide::A,
            local_name: self.local_name,
            remote_name: self.referred_name,
            remote_type: NodeType::NORMAL,
            remote_protocol_version: connect.protocol_version,
            remote_features: referred_features,
            primary_buffer: self.broker_link_buffer,
            primary_buffer_fd: None,
            portal_counts: PortalCounts::default(),
        }))
    }
}
