//! The client side of a legacy invitation (spec §2.1–2.4, §3.5), as a
//! libchrome daemon accepts one: `INIT` from the bootstrap socket, then
//! `ACCEPT_INVITEE` → `ACCEPT_INVITATION`, then `ACCEPT_BROKER_CLIENT`; the
//! bootstrap socket stays as the synchronous broker channel.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};

use mojo_legacy_wire::broker::{
    BrokerMessage, BrokerMessageType, check_client_read, expected_frame_len,
};
use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitation, AcceptInvitee, NodeCapabilities, NodeChannelContent,
    NodeMessage,
};
use mojo_legacy_wire::{NodeName, Profile, Token};
use mojo_wire_kit::Guid;

use super::error::{BufferError, FrameKind, HandshakeError};
use super::frames::{answer_control, close_fds, decode_node_frame, node_transmit};
use super::{
    ADVERTISED_CAPABILITIES, AttachmentName, Established, FdAccess, FdAccessProbe, Link,
    MAX_ATTACHMENTS, Role, Transmit,
};

/// What the client accepts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Wire profile to emit and whose header form fixes the exact sizes of
    /// the bootstrap reads (libchrome by default).
    pub profile: Profile,
    /// This node's name (CN); must not be zero.
    pub local_name: NodeName,
    /// Names the client means to extract, passed through to
    /// [`Established::attachments`]; at most [`MAX_ATTACHMENTS`].
    pub attachments: Vec<AttachmentName>,
}

#[derive(Debug)]
enum State {
    AwaitingInit,
    AwaitingInvitee,
    AwaitingBrokerClient {
        inviter: NodeName,
        inviter_capabilities: NodeCapabilities,
        token: Token,
    },
    Established(Established),
    Failed(HandshakeError),
}

impl State {
    fn waiting_for(&self) -> &'static str {
        match self {
            Self::AwaitingInit => "INIT",
            Self::AwaitingInvitee => "ACCEPT_INVITEE",
            Self::AwaitingBrokerClient { .. } => "ACCEPT_BROKER_CLIENT",
            Self::Established(_) | Self::Failed(_) => "nothing",
        }
    }
}

/// The accepting client, sans-IO.
///
/// Read `INIT` from the bootstrap socket with one read of
/// [`ClientConnector::bootstrap_read_len`] bytes (as Chromium's blocking
/// `recvmsg`) and pass it to [`ClientConnector::handle_bootstrap_read`],
/// which returns the node-channel socket to adopt. Then pass node-channel
/// frames (one whole frame each, with the fds its header claims) to
/// [`ClientConnector::handle_node_frame`] and write what
/// [`ClientConnector::poll_transmit`] returns, until
/// [`ClientConnector::established`] is `Some`; then
/// [`ClientConnector::finish`].
#[derive(Debug)]
pub struct ClientConnector {
    profile: Profile,
    local_name: NodeName,
    attachments: Vec<AttachmentName>,
    state: State,
    node_transmits: VecDeque<Transmit>,
    broker: Option<SyncBrokerClient>,
}

impl ClientConnector {
    /// A client waiting for `INIT`.
    pub fn new(config: ClientConfig) -> Result<Self, HandshakeError> {
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
        Ok(Self {
            profile: config.profile,
            local_name: config.local_name,
            attachments: config.attachments,
            state: State::AwaitingInit,
            node_transmits: VecDeque::new(),
            broker: None,
        })
    }

    /// This client's node name.
    pub fn local_name(&self) -> NodeName {
        self.local_name
    }

    /// Bytes of the read that must return `INIT`: 16 in the libchrome
    /// profile, 24 in the desktop one (spec §2.3).
    pub fn bootstrap_read_len(&self) -> usize {
        expected_frame_len(self.profile.header_form(), BrokerMessageType::INIT).unwrap_or(0)
    }

    /// Takes the one read of the bootstrap socket that must hold `INIT`:
    /// exactly [`ClientConnector::bootstrap_read_len`] bytes, exactly one fd,
    /// broker type `INIT` (the channel header is not checked, as in
    /// Chromium). Returns that fd: the node-channel socket, to be adopted as
    /// [`Link::NodeChannel`]. Any failure cancels the invitation (sticky);
    /// the fds handed in are closed.
    pub fn handle_bootstrap_read(
        &mut self,
        bytes: &[u8],
        mut fds: Vec<OwnedFd>,
    ) -> Result<OwnedFd, HandshakeError> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::AwaitingInit => {}
            _ => {
                return Err(HandshakeError::UnexpectedMessage {
                    link: Link::Bootstrap,
                    expected: "nothing (INIT already read; use the SyncBrokerClient)",
                    found: FrameKind::Broker(BrokerMessageType::INIT),
                });
            }
        }
        let checked = check_client_read(
            bytes,
            fds.len(),
            self.profile.header_form(),
            BrokerMessageType::INIT,
            1,
        );
        let node_channel = match (checked, fds.pop()) {
            (Ok(()), Some(fd)) => fd,
            (Err(e), _) => return Err(self.fail(HandshakeError::BadBootstrapRead(e))),
            (Ok(()), None) => {
                return Err(self.fail(HandshakeError::FdCount {
                    link: Link::Bootstrap,
                    what: "INIT",
                    expected: 1,
                    actual: 0,
                }));
            }
        };
        self.broker = Some(SyncBrokerClient::new(self.profile));
        self.state = State::AwaitingInvitee;
        Ok(node_channel)
    }

    fn fail(&mut self, e: HandshakeError) -> HandshakeError {
        self.state = State::Failed(e.clone());
        e
    }

    /// The bootstrap socket closed. Before `INIT` this cancels the invitation
    /// ([`HandshakeError::PeerClosed`]); afterwards only buffer requests
    /// fail from then on.
    pub fn handle_bootstrap_closed(&mut self) -> Result<(), HandshakeError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::AwaitingInit => Err(self.fail(HandshakeError::PeerClosed {
                link: Link::Bootstrap,
                waiting_for: "INIT",
            })),
            _ => {
                if let Some(b) = &mut self.broker {
                    b.handle_closed();
                }
                Ok(())
            }
        }
    }

    /// Takes one frame from the node channel: `bytes` is exactly one channel
    /// message, `fds` exactly the fds its header claims (closed: the
    /// handshake keeps none).
    ///
    /// `ACCEPT_INVITEE` (valid inviter name, not ours) is answered with
    /// `ACCEPT_INVITATION {token, CN, 0}`; `ACCEPT_BROKER_CLIENT` must name
    /// the inviter as broker (the only setup supported) and establishes the
    /// connection. `UPGRADE_OFFER` is refused, unknown NodeChannel types are
    /// ignored, anything else is a [`HandshakeError::UnexpectedMessage`].
    pub fn handle_node_frame(
        &mut self,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), HandshakeError> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Established(_) => return Err(HandshakeError::AlreadyEstablished),
            _ => {}
        }
        let result = self.on_node_frame(bytes, fds.len());
        close_fds(fds);
        result.map_err(|e| self.fail(e))
    }

    fn on_node_frame(&mut self, bytes: &[u8], num_fds: usize) -> Result<(), HandshakeError> {
        let waiting_for = self.state.waiting_for();
        let frame = decode_node_frame(bytes, num_fds)?;
        let message = match frame.content {
            NodeChannelContent::Control(control) => {
                if let Some(reply) = answer_control(&control, waiting_for)? {
                    self.node_transmits.push_back(reply);
                }
                return Ok(());
            }
            NodeChannelContent::Message(message) => message,
        };
        match (&self.state, message) {
            (State::AwaitingInvitee, NodeMessage::AcceptInvitee(invitee)) => {
                self.on_accept_invitee(&invitee)
            }
            (State::AwaitingBrokerClient { .. }, NodeMessage::AcceptBrokerClient(accept)) => {
                self.on_accept_broker_client(&accept)
            }
            (_, NodeMessage::Unknown { message_type, .. }) => {
                log::debug!("ignoring NodeChannel message {message_type:?} during the handshake");
                Ok(())
            }
            (_, other) => Err(HandshakeError::UnexpectedMessage {
                link: Link::NodeChannel,
                expected: waiting_for,
                found: FrameKind::Node(other.message_type()),
            }),
        }
    }

    fn on_accept_invitee(&mut self, invitee: &AcceptInvitee<'_>) -> Result<(), HandshakeError> {
        let inviter = invitee.inviter_name;
        if !inviter.is_valid() || inviter == self.local_name {
            return Err(HandshakeError::InvalidName {
                field: "accept_invitee.inviter_name",
                name: inviter,
            });
        }
        let reply = NodeMessage::AcceptInvitation(AcceptInvitation {
            token: invitee.token,
            invitee_name: self.local_name,
            capabilities: Some(ADVERTISED_CAPABILITIES),
            trailing: &[],
        });
        self.node_transmits
            .push_back(node_transmit(self.profile, &reply)?);
        self.state = State::AwaitingBrokerClient {
            inviter,
            inviter_capabilities: invitee.capabilities.unwrap_or(NodeCapabilities::NONE),
            token: invitee.token,
        };
        Ok(())
    }

    fn on_accept_broker_client(
        &mut self,
        accept: &AcceptBrokerClient<'_>,
    ) -> Result<(), HandshakeError> {
        let State::AwaitingBrokerClient {
            inviter,
            inviter_capabilities,
            token,
        } = self.state
        else {
            return Ok(());
        };
        let broker = accept.broker_name;
        if !broker.is_valid() {
            return Err(HandshakeError::InvalidName {
                field: "accept_broker_client.broker_name",
                name: broker,
            });
        }
        if broker != inviter {
            return Err(HandshakeError::BrokerIsNotInviter { inviter, broker });
        }
        let broker_capabilities = accept
            .capabilities
            .map_or(NodeCapabilities::NONE, |c| c.broker_capabilities);
        self.state = State::Established(Established {
            role: Role::Client,
            local_name: self.local_name,
            peer_name: broker,
            peer_capabilities: inviter_capabilities | broker_capabilities,
            token,
            profile: self.profile,
            attachments: self.attachments.clone(),
        });
        Ok(())
    }

    /// The node channel closed: before the handshake completed, a sticky
    /// [`HandshakeError::PeerClosed`]; afterwards `Ok`.
    pub fn handle_node_closed(&mut self) -> Result<(), HandshakeError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::Established(_) => Ok(()),
            state => {
                let waiting_for = state.waiting_for();
                Err(self.fail(HandshakeError::PeerClosed {
                    link: Link::NodeChannel,
                    waiting_for,
                }))
            }
        }
    }

    /// The synchronous broker channel, once `INIT` has been read (a client
    /// may allocate shared memory before the handshake completes).
    pub fn sync_broker(&mut self) -> Option<&mut SyncBrokerClient> {
        self.broker.as_mut()
    }

    /// The next frame to write: bootstrap frames (`BUFFER_REQUEST`) first,
    /// then node-channel frames.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.broker
            .as_mut()
            .and_then(SyncBrokerClient::poll_transmit)
            .or_else(|| self.node_transmits.pop_front())
    }

    /// The established connection, once `ACCEPT_BROKER_CLIENT` was accepted.
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
    /// synchronous broker channel. Gives `self` back (boxed) unless established with
    /// every node-channel frame polled.
    pub fn finish(self) -> Result<(Established, SyncBrokerClient), Box<Self>> {
        if !self.node_transmits.is_empty() {
            return Err(Box::new(self));
        }
        match (self.state, self.broker) {
            (State::Established(established), Some(broker)) => Ok((established, broker)),
            (state, broker) => Err(Box::new(Self {
                state,
                broker,
                ..self
            })),
        }
    }
}

/// A writable region granted by the broker (spec §2.4).
#[derive(Debug)]
pub struct BufferGrant {
    /// The region's id (never zero).
    pub guid: Guid,
    /// The size asked for; the file is at least this long.
    pub size: u32,
    /// fd 0, `O_RDWR`.
    pub read_write: OwnedFd,
    /// fd 1, `O_RDONLY`, the same file.
    pub read_only: OwnedFd,
}

/// The synchronous broker protocol, client side: one `BUFFER_REQUEST` at a
/// time (Chromium's client holds a lock), each answered by a
/// `BUFFER_RESPONSE` the caller reads with one read of exactly
/// [`SyncBrokerClient::response_read_len`] bytes.
#[derive(Debug)]
pub struct SyncBrokerClient {
    profile: Profile,
    outstanding: Option<u32>,
    transmits: VecDeque<Transmit>,
    closed: bool,
}

impl SyncBrokerClient {
    /// A broker channel speaking `profile`.
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            outstanding: None,
            transmits: VecDeque::new(),
            closed: false,
        }
    }

    /// Queues `BUFFER_REQUEST {size}` (20 bytes in the libchrome profile, 28
    /// in the desktop one). One at a time.
    pub fn request_buffer(&mut self, size: u32) -> Result<(), BufferError> {
        if self.closed {
            return Err(BufferError::Closed);
        }
        if self.outstanding.is_some() {
            return Err(BufferError::RequestOutstanding);
        }
        let mut bytes = Vec::new();
        BrokerMessage::BufferRequest {
            size,
            trailing: &[],
        }
        .encode_frame(self.profile, &mut bytes)
        .map_err(BufferError::Encode)?;
        self.transmits.push_back(Transmit {
            link: Link::Bootstrap,
            bytes,
            fds: Vec::new(),
        });
        self.outstanding = Some(size);
        Ok(())
    }

    /// True while a request waits for its response.
    pub fn is_outstanding(&self) -> bool {
        self.outstanding.is_some()
    }

    /// Bytes of the read that must return `BUFFER_RESPONSE`: 32 or 40.
    pub fn response_read_len(&self) -> usize {
        expected_frame_len(
            self.profile.header_form(),
            BrokerMessageType::BUFFER_RESPONSE,
        )
        .unwrap_or(0)
    }

    /// Takes the read that must hold the response to the outstanding request.
    /// Success needs exactly [`SyncBrokerClient::response_read_len`] bytes,
    /// type `BUFFER_RESPONSE`, a non-zero guid and exactly two fds, the
    /// first `O_RDWR` and the second `O_RDONLY` (checked with `probe`; a
    /// Chromium client would abort on a wrong mode). The failure response
    /// (zero guid, no fds) is [`BufferError::AllocationFailed`]. Either way
    /// the request is over; on error every fd handed in is closed.
    pub fn handle_response_read(
        &mut self,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
        probe: &impl FdAccessProbe,
    ) -> Result<BufferGrant, BufferError> {
        if self.closed {
            return Err(BufferError::Closed);
        }
        let size = self
            .outstanding
            .take()
            .ok_or(BufferError::NoRequestOutstanding)?;
        let form = self.profile.header_form();
        let t = BrokerMessageType::BUFFER_RESPONSE;
        // Size and type first, whatever the fd count, to tell the failure
        // response (no fds) from a broken one.
        check_client_read(bytes, fds.len(), form, t, fds.len())
            .map_err(BufferError::BadResponse)?;
        let payload = bytes.get(form.len()..).unwrap_or(&[]);
        let guid = match BrokerMessage::decode(payload) {
            Ok(BrokerMessage::BufferResponse { guid, .. }) => guid,
            Ok(other) => {
                return Err(BufferError::BadResponse(
                    mojo_legacy_wire::Error::Mismatch {
                        field: "broker.type",
                        expected: u64::from(t.0),
                        actual: u64::from(other.message_type().0),
                    },
                ));
            }
            Err(e) => return Err(BufferError::BadResponse(e)),
        };
        if fds.is_empty() && !guid.is_valid() {
            return Err(BufferError::AllocationFailed);
        }
        check_client_read(bytes, fds.len(), form, t, 2).map_err(BufferError::BadResponse)?;
        if !guid.is_valid() {
            return Err(BufferError::ZeroGuid);
        }
        let mut it = fds.into_iter();
        let (Some(read_write), Some(read_only)) = (it.next(), it.next()) else {
            return Err(BufferError::BadResponse(
                mojo_legacy_wire::Error::Mismatch {
                    field: "broker read fds",
                    expected: 2,
                    actual: 0,
                },
            ));
        };
        for (index, fd, expected) in [
            (0, &read_write, FdAccess::ReadWrite),
            (1, &read_only, FdAccess::ReadOnly),
        ] {
            let found = probe.access_mode(fd.as_fd());
            if found != Some(expected) {
                return Err(BufferError::WrongFdMode {
                    index,
                    expected,
                    found,
                });
            }
        }
        Ok(BufferGrant {
            guid,
            size,
            read_write,
            read_only,
        })
    }

    /// The next frame to write on the bootstrap socket.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The bootstrap socket closed: the outstanding request (if any) and
    /// every later one fail with [`BufferError::Closed`].
    pub fn handle_closed(&mut self) {
        self.closed = true;
        self.outstanding = None;
        self.transmits.clear();
    }

    /// True when nothing is outstanding or queued.
    pub fn is_idle(&self) -> bool {
        self.outstanding.is_none() && self.transmits.is_empty()
    }
}
