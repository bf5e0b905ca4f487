//! The broker side of a legacy invitation (spec §2.1, §3.5): `INIT` on the
//! bootstrap socket, `ACCEPT_INVITEE`, then `ACCEPT_BROKER_CLIENT` once the
//! client's `ACCEPT_INVITATION` arrives.

use std::collections::{BTreeSet, VecDeque};
use std::os::fd::OwnedFd;

use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitation, AcceptInvitee, BrokerClientCapabilities,
    NodeCapabilities, NodeChannelContent, NodeMessage,
};
use mojo_legacy_wire::{NodeName, Profile, Token};
use mojo_wire_kit::RandomSource;

use super::error::{BufferError, FrameKind, HandshakeError};
use super::frames::{answer_control, close_fds, decode_node_frame, node_transmit};
use super::host::BrokerHost;
use super::{
    ADVERTISED_CAPABILITIES, AttachmentName, Established, Link, MAX_ATTACHMENTS, Role, Transmit,
};

/// What the broker invites with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Wire profile to emit (libchrome by default).
    pub profile: Profile,
    /// This node's name (BN); must not be zero.
    pub local_name: NodeName,
    /// The attachment names (distinct), e.g.
    /// [`AttachmentName::numeric_range`]; at most [`MAX_ATTACHMENTS`].
    pub attachments: Vec<AttachmentName>,
}

#[derive(Debug)]
enum State {
    AwaitingInvitation,
    Established(Established),
    Failed(HandshakeError),
}

/// The inviting broker, sans-IO.
///
/// [`BrokerConnector::new`] takes the client's end of a node-channel socket
/// pair the caller made (both ends `O_NONBLOCK`, spec §1.1) and queues
/// `INIT` with it for [`Link::Bootstrap`] and `ACCEPT_INVITEE` for
/// [`Link::NodeChannel`]. Node-channel frames go to
/// [`BrokerConnector::handle_node_frame`], bootstrap frames to
/// [`BrokerConnector::handle_bootstrap_frame`] (the [`BrokerHost`] serves
/// `BUFFER_REQUEST` from the start: a client may allocate before the
/// handshake ends). Once [`BrokerConnector::established`] is `Some`, drain
/// [`BrokerConnector::poll_transmit`] and [`BrokerConnector::finish`].
#[derive(Debug)]
pub struct BrokerConnector {
    profile: Profile,
    local_name: NodeName,
    token: Token,
    attachments: Vec<AttachmentName>,
    state: State,
    node_transmits: VecDeque<Transmit>,
    host: BrokerHost,
}

impl BrokerConnector {
    /// Starts an invitation: checks `config`, draws the token from `rng`
    /// (non-zero, and not the broker's own name, since the C++ broker also
    /// uses it as the invitee's temporary name), and queues `INIT` (carrying
    /// `node_channel_client_end`) and `ACCEPT_INVITEE {BN, token, 0}`.
    pub fn new(
        config: BrokerConfig,
        node_channel_client_end: OwnedFd,
        rng: &mut impl RandomSource,
    ) -> Result<Self, HandshakeError> {
        if !config.local_name.is_valid() {
            return Err(HandshakeError::InvalidConfig {
                field: "local_name (zero)",
            });
        }
        if config.attachments.len() > MAX_ATTACHMENTS {
            return Err(HandshakeError::InvalidConfig {
                field: "attachments (more than MAX_ATTACHMENTS)",
            });
        }
        let distinct: BTreeSet<&AttachmentName> = config.attachments.iter().collect();
        if distinct.len() != config.attachments.len() {
            return Err(HandshakeError::InvalidConfig {
                field: "attachments (duplicate name)",
            });
        }
        let token = loop {
            let (high, low) = rng.nonzero_u128();
            let token = Token::new(high, low);
            if token.as_node_name() != config.local_name {
                break token;
            }
        };
        let mut host = BrokerHost::new(config.profile);
        host.queue_init(node_channel_client_end)?;
        let invitee = NodeMessage::AcceptInvitee(AcceptInvitee {
            inviter_name: config.local_name,
            token,
            capabilities: Some(ADVERTISED_CAPABILITIES),
            trailing: &[],
        });
        let mut node_transmits = VecDeque::new();
        node_transmits.push_back(node_transmit(config.profile, &invitee)?);
        Ok(Self {
            profile: config.profile,
            local_name: config.local_name,
            token,
            attachments: config.attachments,
            state: State::AwaitingInvitation,
            node_transmits,
            host,
        })
    }

    /// The invitation token sent in `ACCEPT_INVITEE`.
    pub fn token(&self) -> Token {
        self.token
    }

    /// This broker's node name.
    pub fn local_name(&self) -> NodeName {
        self.local_name
    }

    /// Takes one frame from the node channel: `bytes` is exactly one channel
    /// message, `fds` exactly the fds its header claims (they are closed:
    /// nothing in the handshake carries fds the broker keeps).
    ///
    /// `ACCEPT_INVITATION` must echo the token and name a valid client
    /// (non-zero, not the broker's name); it is answered with
    /// `ACCEPT_BROKER_CLIENT {BN, 0, 0}` without fd and establishes the
    /// connection. `UPGRADE_OFFER` is refused with `UPGRADE_REJECT`; unknown
    /// NodeChannel types are ignored (spec §3.2); any other message is a
    /// [`HandshakeError::UnexpectedMessage`]. After the handshake every
    /// frame belongs to the node layer: [`HandshakeError::AlreadyEstablished`].
    pub fn handle_node_frame(
        &mut self,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), HandshakeError> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Established(_) => return Err(HandshakeError::AlreadyEstablished),
            State::AwaitingInvitation => {}
        }
        let result = self.on_node_frame(bytes, fds.len());
        close_fds(fds);
        if let Err(e) = &result {
            self.state = State::Failed(e.clone());
        }
        result
    }

    fn on_node_frame(&mut self, bytes: &[u8], num_fds: usize) -> Result<(), HandshakeError> {
        const WAITING_FOR: &str = "ACCEPT_INVITATION";
        let frame = decode_node_frame(bytes, num_fds)?;
        let message = match frame.content {
            NodeChannelContent::Control(control) => {
                if let Some(reply) = answer_control(&control, WAITING_FOR)? {
                    self.node_transmits.push_back(reply);
                }
                return Ok(());
            }
            NodeChannelContent::Message(message) => message,
        };
        match message {
            NodeMessage::AcceptInvitation(invitation) => self.on_accept_invitation(&invitation),
            NodeMessage::Unknown { message_type, .. } => {
                log::debug!("ignoring NodeChannel message {message_type:?} during the handshake");
                Ok(())
            }
            other => Err(HandshakeError::UnexpectedMessage {
                link: Link::NodeChannel,
                expected: WAITING_FOR,
                found: FrameKind::Node(other.message_type()),
            }),
        }
    }

    fn on_accept_invitation(
        &mut self,
        invitation: &AcceptInvitation<'_>,
    ) -> Result<(), HandshakeError> {
        if invitation.token != self.token {
            return Err(HandshakeError::TokenMismatch {
                expected: self.token,
                found: invitation.token,
            });
        }
        let client = invitation.invitee_name;
        if !client.is_valid() || client == self.local_name {
            return Err(HandshakeError::InvalidName {
                field: "accept_invitation.invitee_name",
                name: client,
            });
        }
        let reply = NodeMessage::AcceptBrokerClient(AcceptBrokerClient {
            broker_name: self.local_name,
            capabilities: Some(BrokerClientCapabilities {
                capabilities: ADVERTISED_CAPABILITIES,
                broker_capabilities: ADVERTISED_CAPABILITIES,
            }),
            trailing: &[],
        });
        self.node_transmits
            .push_back(node_transmit(self.profile, &reply)?);
        self.state = State::Established(Established {
            role: Role::Broker,
            local_name: self.local_name,
            peer_name: client,
            peer_capabilities: invitation.capabilities.unwrap_or(NodeCapabilities::NONE),
            token: self.token,
            profile: self.profile,
            attachments: self.attachments.clone(),
        });
        Ok(())
    }

    /// The node channel closed. Before the handshake completed this is
    /// [`HandshakeError::PeerClosed`] (sticky); afterwards it is the node
    /// layer's business and `Ok`.
    pub fn handle_node_closed(&mut self) -> Result<(), HandshakeError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::Established(_) => Ok(()),
            State::AwaitingInvitation => {
                let e = HandshakeError::PeerClosed {
                    link: Link::NodeChannel,
                    waiting_for: "ACCEPT_INVITATION",
                };
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// Takes one frame from the bootstrap socket (see
    /// [`BrokerHost::handle_frame`]).
    pub fn handle_bootstrap_frame(
        &mut self,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), BufferError> {
        self.host.handle_frame(bytes, fds)
    }

    /// The bootstrap socket closed (see [`BrokerHost::handle_closed`]). Not a
    /// handshake failure: Chromium's client reads it only to allocate.
    pub fn handle_bootstrap_closed(&mut self) {
        self.host.handle_closed();
    }

    /// The broker host, to answer [`super::RegionRequest`]s.
    pub fn host(&mut self) -> &mut BrokerHost {
        &mut self.host
    }

    /// The next frame to write: bootstrap frames first (the C++ broker
    /// writes `INIT` before `ACCEPT_INVITEE`), then node-channel frames.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.host
            .poll_transmit()
            .or_else(|| self.node_transmits.pop_front())
    }

    /// The established connection, once `ACCEPT_INVITATION` was accepted.
    pub fn established(&self) -> Option<&Established> {
        match &self.state {
            State::Established(e) => Some(e),
            _ => None,
        }
    }

    /// The sticky error, if the handshake failed.
    pub fn error(&self) -> Option<&HandshakeError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Hands over to the node layer: the [`Established`] value and the
    /// [`BrokerHost`] that keeps serving the bootstrap socket. Gives `self`
    /// back (boxed) unless established with every node-channel frame polled
    /// (`ACCEPT_BROKER_CLIENT` must be written before the node's first event).
    pub fn finish(self) -> Result<(Established, BrokerHost), Box<Self>> {
        if !self.node_transmits.is_empty() {
            return Err(Box::new(self));
        }
        match self.state {
            State::Established(established) => Ok((established, self.host)),
            state => Err(Box::new(Self { state, ..self })),
        }
    }
}
