//! The referrer's and the broker's parts of an inherited-broker handshake
//! (spec `ipcz.md` §4.3) on an established [`Session`]: referring a node
//! to our broker ([`Session::refer`]), serving a referral as the broker
//! ([`Session::serve_referral`]), and the adopted sockets those make.
//!
//! The referral messages (ReferNonBroker, NonBrokerReferralAccepted,
//! NonBrokerReferralRejected) travel on a running NodeLink but are not the
//! node's: the session takes them out of the link's stream before the node
//! sees it, and sends its own through the node's queue with the link's
//! sequence numbers ([`crate::node::Node::take_sequence_number`]).

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_wire::frame::Frame;
use ipcz_wire::messages::{Body, NonBrokerReferralRejected};
use ipcz_wire::types::{NodeType, ReferralId};
use mojo_invitation::ipcz::{
    BrokerReferralConnector, EstablishedLink, Link, PrimaryBuffer, Referral, ReferralResources,
    ReferrerConnector, ReferrerInfo, Transmit,
};
use mojo_wire_kit::{RandomSource, SharedMemory};

use super::{
    MAX_PENDING_REFERRALS, Phase, Purpose, Session, SessionError, SessionEvent, SessionTransmit,
    Socket, SocketId, frame_prefix,
};
use crate::link::LinkParams;
use crate::node::NodeRole;
use crate::router::NodeLinkId;

/// ReferNonBroker's message id.
const REFER_NON_BROKER: u8 = 2;
/// NonBrokerReferralAccepted's message id.
const REFERRAL_ACCEPTED: u8 = 5;
/// NonBrokerReferralRejected's message id.
const REFERRAL_REJECTED: u8 = 6;
/// Where both answers carry the referral id: the params' first field
/// (message header 24 bytes, params header 8).
const REFERRAL_ID_OFFSET: usize = 32;

/// Whether a message with this id is a referral message the session
/// handles itself.
pub(super) fn is_referral_message(id: u8) -> bool {
    matches!(id, REFER_NON_BROKER | REFERRAL_ACCEPTED | REFERRAL_REJECTED)
}

/// What a broker supplies to serve one referral, all made by the caller
/// (a session never calls the OS).
#[derive(Debug)]
pub struct BrokerReferralMemory<M> {
    /// Primary buffer of our new link to the referred node.
    pub broker_link_buffer: PrimaryBuffer,
    /// Its mapping (initialized by the session; the link keeps it).
    pub broker_link_mapping: M,
    /// Primary buffer of the referrer link (the fd for the referred node).
    pub referrer_link_buffer: PrimaryBuffer,
    /// A second fd of that region, for the referrer.
    pub referrer_link_buffer_for_referrer: OwnedFd,
    /// The referrer link buffer's mapping (initialized, then dropped: the
    /// broker never uses that link).
    pub referrer_link_mapping: M,
    /// One end of a fresh socket pair, for the referred node.
    pub referred_socket: OwnedFd,
    /// The other end, for the referrer.
    pub referrer_socket: OwnedFd,
}

impl<M: SharedMemory> Session<M> {
    /// Refers the node at the other end of `socket` (a node we launched,
    /// which connects with `--inherit-ipcz-broker`) to our broker, over the
    /// established link of this session, which must be a non-broker's link
    /// to its broker. `num_initial_portals` is our portal count for the new
    /// link (as [`super::SessionConfig::initial_portals`]). The answer comes
    /// as [`SessionEvent::ReferralAccepted`] (after one more
    /// [`SessionEvent::MapPrimaryBuffer`] and an
    /// [`SessionEvent::AdoptSocket`]) or [`SessionEvent::ReferralFailed`].
    pub fn refer(
        &mut self,
        socket: OwnedFd,
        num_initial_portals: u32,
    ) -> Result<ReferralId, SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.referrals.len() >= MAX_PENDING_REFERRALS {
            return Err(SessionError::TooManyReferrals {
                limit: MAX_PENDING_REFERRALS,
            });
        }
        let Phase::Running { node, link } = &mut self.phase else {
            return Err(SessionError::WrongPhase);
        };
        if !node.link(*link).is_some_and(|l| l.remote_is_broker()) {
            return Err(SessionError::NotTowardBroker);
        }
        let referral_id = ReferralId(self.next_referral);
        let sequence_number = node.take_sequence_number(*link)?;
        let mut connector = ReferrerConnector::new(
            node.name(),
            referral_id,
            num_initial_portals,
            socket,
            sequence_number,
        )?;
        while let Some(t) = connector.poll_transmit() {
            node.queue_encoded(*link, t.bytes, t.fds)?;
        }
        self.next_referral = self.next_referral.wrapping_add(1);
        self.referrals.push(connector);
        Ok(referral_id)
    }

    /// Broker: serves the referral of [`SessionEvent::ReferralRequested`]
    /// on `socket` with `memory`, naming the referred node from `random`.
    /// The referred node's socket is then handed over
    /// ([`SessionEvent::AdoptSocket`]); its greeting completes the referral
    /// ([`SessionEvent::ReferralServed`]).
    pub fn serve_referral(
        &mut self,
        socket: SocketId,
        memory: BrokerReferralMemory<M>,
        random: &mut dyn RandomSource,
    ) -> Result<(), SessionError> {
        let Some(Socket::ReferralRequested {
            referrer,
            referral,
            fd,
        }) = self.sockets.remove(&socket)
        else {
            return Err(SessionError::UnknownSocket(socket));
        };
        let Phase::Running { node, .. } = &mut self.phase else {
            return Err(SessionError::WrongPhase);
        };
        let Some(link) = node.link(referrer) else {
            return Err(SessionError::UnknownSocket(socket));
        };
        let info = ReferrerInfo {
            name: link.remote_name(),
            protocol_version: link.remote_protocol_version(),
            // The link does not keep its peer's features; none are known.
            features: 0,
            sequence_number: 0,
        };
        let info = ReferrerInfo {
            sequence_number: node.take_sequence_number(referrer)?,
            ..info
        };
        let BrokerReferralMemory {
            broker_link_buffer,
            broker_link_mapping,
            referrer_link_buffer,
            referrer_link_buffer_for_referrer,
            referrer_link_mapping,
            referred_socket,
            referrer_socket,
        } = memory;
        let connector = BrokerReferralConnector::new(
            node.name(),
            info,
            referral,
            ReferralResources {
                broker_link_buffer,
                broker_link_mapping: &broker_link_mapping,
                referrer_link_buffer,
                referrer_link_buffer_for_referrer,
                referrer_link_mapping: &referrer_link_mapping,
                referred_socket,
                referrer_socket,
            },
            random,
        )?;
        self.referral_mappings.insert(socket, broker_link_mapping);
        self.sockets.insert(
            socket,
            Socket::Referral {
                referrer,
                connector: Box::new(connector),
            },
        );
        self.events
            .push_back(SessionEvent::AdoptSocket { socket, fd });
        Ok(())
    }

    /// Broker: refuses the referral of [`SessionEvent::ReferralRequested`]
    /// on `socket` (its resources could not be made): the referred node's
    /// socket is closed and the referrer told (NonBrokerReferralRejected).
    pub fn refuse_referral(&mut self, socket: SocketId) -> Result<(), SessionError> {
        let Some(Socket::ReferralRequested {
            referrer, referral, ..
        }) = self.sockets.remove(&socket)
        else {
            return Err(SessionError::UnknownSocket(socket));
        };
        if let Phase::Running { node, .. } = &mut self.phase {
            node.queue_message(
                referrer,
                Body::NonBrokerReferralRejected(NonBrokerReferralRejected {
                    referral_id: referral.referral_id,
                }),
                &[],
                Vec::new(),
            );
        }
        Ok(())
    }

    /// A referral message on running link `link` (of the handshake socket).
    pub(super) fn referral_frame(
        &mut self,
        link: NodeLinkId,
        id: u8,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), SessionError> {
        if id == REFER_NON_BROKER {
            return self.referral_requested(link, bytes, fds);
        }
        let referral_id = referral_id_of(bytes);
        let Some(index) = self
            .referrals
            .iter()
            .position(|c| Some(c.referral_id()) == referral_id)
        else {
            // Not an answer to a referral of ours: the node refuses it.
            return self.frame_to_node(link, bytes, fds);
        };
        let mut connector = self.referrals.swap_remove(index);
        let outcome = connector
            .handle_frame(bytes, fds)
            .and_then(|()| connector.finish());
        match outcome {
            Ok(mut established) => {
                let fd = established
                    .primary_buffer_fd
                    .take()
                    .ok_or(SessionError::MissingPrimaryBuffer)?;
                self.events.push_back(SessionEvent::MapPrimaryBuffer {
                    buffer: established.primary_buffer,
                    fd,
                });
                self.awaiting
                    .push_back((established, Purpose::Referral(connector.referral_id())));
            }
            Err(e) => self.events.push_back(SessionEvent::ReferralFailed {
                referral_id: connector.referral_id(),
                error: SessionError::Handshake(e),
            }),
        }
        Ok(())
    }

    pub(super) fn frame_to_node(
        &mut self,
        link: NodeLinkId,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), SessionError> {
        let result = match &mut self.phase {
            Phase::Running { node, .. } => node.handle_frame(link, bytes, fds),
            _ => return Err(SessionError::WrongPhase),
        };
        self.drain_node();
        result.map_err(SessionError::Node)
    }

    /// Broker: a ReferNonBroker on `link`.
    fn referral_requested(
        &mut self,
        link: NodeLinkId,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), SessionError> {
        if self.config.node.role != NodeRole::Broker {
            // Only a broker serves referrals: the node refuses the message.
            return self.frame_to_node(link, bytes, fds);
        }
        let pending = self
            .sockets
            .values()
            .filter(|s| !matches!(s, Socket::Link(_)))
            .count();
        if pending >= MAX_PENDING_REFERRALS {
            return Err(SessionError::TooManyReferrals {
                limit: MAX_PENDING_REFERRALS,
            });
        }
        let (referral, fd) = Referral::from_frame(bytes, fds)?;
        let socket = self.new_socket()?;
        self.sockets.insert(
            socket,
            Socket::ReferralRequested {
                referrer: link,
                referral,
                fd,
            },
        );
        self.events
            .push_back(SessionEvent::ReferralRequested { socket });
        Ok(())
    }

    /// The primary buffer of the link a referral of ours produced is mapped:
    /// the link joins the node with its initial portals.
    pub(super) fn referral_link_mapped(
        &mut self,
        referral_id: ReferralId,
        established: EstablishedLink,
        mapping: M,
    ) -> Result<(), SessionError> {
        let Phase::Running { mut node, link } = std::mem::replace(&mut self.phase, Phase::Ended)
        else {
            return Err(SessionError::WrongPhase);
        };
        let remote_name = established.remote_name;
        let added = self.add_link(&mut node, established, mapping).and_then(
            |((new_link, counts), socket)| {
                let portals = self.open_portals(&mut node, new_link, counts)?;
                Ok((socket, portals))
            },
        );
        self.phase = Phase::Running { node, link };
        match added {
            Ok((Some(socket), portals)) => {
                self.events.push_back(SessionEvent::ReferralAccepted {
                    referral_id,
                    socket,
                    remote_name,
                    portals,
                });
            }
            Ok((None, _)) => return Err(SessionError::WrongPhase),
            Err(error) => self
                .events
                .push_back(SessionEvent::ReferralFailed { referral_id, error }),
        }
        self.drain_node();
        Ok(())
    }

    /// Input of an adopted socket.
    pub(super) fn consume_adopted(
        &mut self,
        socket: SocketId,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            match self.sockets.get_mut(&socket) {
                None => return Err(SessionError::UnknownSocket(socket)),
                Some(Socket::ReferralRequested { .. } | Socket::BrokerPeerMapping) => {
                    return Ok(consumed);
                }
                Some(Socket::Link(link)) => {
                    let link = *link;
                    let result = match &mut self.phase {
                        Phase::Running { node, .. } => node.handle_stream(link, rest, fds),
                        _ => return Err(SessionError::WrongPhase),
                    };
                    self.drain_node();
                    return result
                        .map(|used| consumed + used)
                        .map_err(SessionError::Node);
                }
                Some(Socket::Referral { .. } | Socket::BrokerPeer(_)) => {}
            }
            let prefix = match frame_prefix(rest) {
                Ok(p) => p,
                Err(e) => {
                    self.fail_referral(socket, e.clone());
                    return Err(e);
                }
            };
            let Some((used, num_handles, _)) = prefix else {
                return Ok(consumed);
            };
            if fds.len() < num_handles {
                // As on the session's own socket: its fds would have come
                // with the frame's first byte.
                let e = SessionError::FdCount {
                    header: num_handles,
                    received: fds.len(),
                };
                self.fail_referral(socket, e.clone());
                return Err(e);
            }
            let frame_fds: Vec<OwnedFd> = fds.drain(..num_handles).collect();
            let bytes = rest.get(..used).unwrap_or_default();
            let (outcome, broker_peer) = match self.sockets.get_mut(&socket) {
                Some(Socket::Referral { connector, .. }) => (
                    connector
                        .handle_frame(bytes, frame_fds)
                        .map(|()| connector.is_established()),
                    false,
                ),
                Some(Socket::BrokerPeer(connector)) => (
                    connector
                        .handle_frame(bytes, frame_fds)
                        .map(|()| connector.is_established()),
                    true,
                ),
                _ => (Ok(false), false),
            };
            consumed += used;
            match outcome {
                Ok(true) if broker_peer => self.broker_peer_greeted(socket)?,
                Ok(true) => self.referral_served(socket)?,
                Ok(false) => {}
                Err(e) => {
                    let e = SessionError::Handshake(e);
                    self.fail_referral(socket, e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// Broker: the referred node on `socket` greeted; its link joins the node.
    fn referral_served(&mut self, socket: SocketId) -> Result<(), SessionError> {
        let Some(Socket::Referral {
            referrer,
            mut connector,
        }) = self.sockets.remove(&socket)
        else {
            return Err(SessionError::UnknownSocket(socket));
        };
        self.route_referral_transmits(socket, referrer, &mut connector);
        let mapping = self.referral_mappings.remove(&socket);
        let result = connector
            .finish()
            .map_err(SessionError::Handshake)
            .and_then(|established| {
                let mapping = mapping.ok_or(SessionError::MissingPrimaryBuffer)?;
                let remote_name = established.remote_name;
                let mut params = LinkParams::new(
                    established.local_name,
                    remote_name,
                    established.side,
                    mapping,
                );
                params.remote_protocol_version = established.remote_protocol_version;
                params.remote_node_type = NodeType::NORMAL;
                params.memory_options = self.config.memory;
                let link = match &mut self.phase {
                    Phase::Running { node, .. } => node.add_link(params)?,
                    _ => return Err(SessionError::WrongPhase),
                };
                Ok((link, remote_name))
            });
        match result {
            Ok((link, remote_name)) => {
                self.sockets.insert(socket, Socket::Link(link));
                self.events.push_back(SessionEvent::ReferralServed {
                    socket,
                    remote_name,
                });
                self.drain_node();
                Ok(())
            }
            Err(e) => {
                self.events.push_back(SessionEvent::SocketFailed {
                    socket,
                    error: e.clone(),
                });
                Err(e)
            }
        }
    }

    /// Sends a broker referral connector's frames: to the referred node on
    /// `socket` first (so the referrer cannot reach it before it knows of
    /// the link, §4.3 step 2), then to the referrer through the node.
    fn route_referral_transmits(
        &mut self,
        socket: SocketId,
        referrer: NodeLinkId,
        connector: &mut BrokerReferralConnector,
    ) {
        let mut to_referrer: Vec<Transmit> = Vec::new();
        while let Some(t) = connector.poll_transmit() {
            match t.link {
                Link::Handshake => self.transmits.push_back(SessionTransmit {
                    socket,
                    bytes: t.bytes,
                    fds: t.fds,
                }),
                Link::Referrer | Link::Broker => to_referrer.push(t),
            }
        }
        if let Phase::Running { node, .. } = &mut self.phase {
            for t in to_referrer {
                // A referrer link already gone: the answer has no reader.
                let _ = node.queue_encoded(referrer, t.bytes, t.fds);
            }
        }
    }

    /// Broker: the referral on `socket` failed; the referrer is told
    /// (the connector queued NonBrokerReferralRejected).
    pub(super) fn fail_referral(&mut self, socket: SocketId, error: SessionError) {
        if let Some(Socket::Referral {
            referrer,
            mut connector,
        }) = self.sockets.remove(&socket)
        {
            self.route_referral_transmits(socket, referrer, &mut connector);
        }
        self.referral_mappings.remove(&socket);
        self.broker_peer_mappings.remove(&socket);
        self.events
            .push_back(SessionEvent::SocketFailed { socket, error });
    }

    /// An adopted socket closed.
    pub(super) fn adopted_closed(&mut self, socket: SocketId) {
        match self.sockets.remove(&socket) {
            Some(Socket::Link(link)) => {
                if let Phase::Running { node, .. } = &mut self.phase {
                    node.link_lost(link);
                }
            }
            Some(Socket::Referral {
                referrer,
                mut connector,
            }) => {
                let _ = connector.handle_closed();
                self.route_referral_transmits(socket, referrer, &mut connector);
                self.referral_mappings.remove(&socket);
            }
            Some(Socket::BrokerPeer(_) | Socket::BrokerPeerMapping) => {
                self.broker_peer_mappings.remove(&socket);
            }
            Some(Socket::ReferralRequested { .. }) | None => {}
        }
    }
}

/// The referral id at the start of a referral answer's params.
fn referral_id_of(bytes: &[u8]) -> Option<ReferralId> {
    let (frame, _) = Frame::decode_prefix(bytes).ok()??;
    let field = frame
        .payload
        .get(REFERRAL_ID_OFFSET..REFERRAL_ID_OFFSET + 8)?;
    let mut word = [0; 8];
    word.copy_from_slice(field);
    Some(ReferralId(u64::from_le_bytes(word)))
}
