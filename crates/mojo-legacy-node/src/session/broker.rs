//! [`BrokerSession`]: the legacy broker's invitation and node as one
//! sans-IO value, and [`BrokerInvitation`], the same invitation for a
//! caller that keeps the node elsewhere (the proxy's bridge owns it).

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use mojo_invitation::legacy::{BrokerConnector, BrokerHost, FdAccessProbe};
use mojo_legacy_wire::NodeName;
use mojo_wire_kit::RandomSource;

use super::{
    BrokerConfig, Link, RegionFds, RegionRequest, RequestId, SessionError, Transmit, next_frame,
    node_transmit,
};
use crate::node::{LegacyNode, PeerRole, PortRef};

#[derive(Debug)]
enum Phase {
    Connecting(Box<BrokerConnector>),
    Running(BrokerHost),
}

/// The inviting broker's two links without the node: the
/// [`BrokerConnector`] until established, then node-channel frames go to
/// the node the caller passes in; a [`BrokerHost`] serves the bootstrap
/// link throughout. The node must have the attachments reserved (in
/// order) before the client can ask for them.
#[derive(Debug)]
pub struct BrokerInvitation {
    phase: Phase,
    peer: Option<NodeName>,
    out: VecDeque<Transmit>,
}

impl BrokerInvitation {
    /// Starts an invitation with `config` (see [`BrokerConnector::new`],
    /// which draws the token from `rng`): `node_channel_client_end` is the
    /// client's end of a non-blocking socket pair whose other end the
    /// caller runs as [`Link::NodeChannel`].
    pub fn new(
        config: BrokerConfig,
        node_channel_client_end: OwnedFd,
        rng: &mut impl RandomSource,
    ) -> Result<Self, SessionError> {
        let connector = BrokerConnector::new(config, node_channel_client_end, rng)?;
        let mut invitation = Self {
            phase: Phase::Connecting(Box::new(connector)),
            peer: None,
            out: VecDeque::new(),
        };
        invitation.drain_connector();
        Ok(invitation)
    }

    /// The client's node name, once the handshake is done.
    pub fn peer(&self) -> Option<NodeName> {
        self.peer
    }

    /// True once the client accepted the invitation.
    pub fn is_established(&self) -> bool {
        self.peer.is_some()
    }

    /// Takes `link`'s received stream, as [`BrokerSession::handle_stream`];
    /// once established, node-channel frames go to `node` (which gets the
    /// client as its peer at that moment).
    pub fn handle_stream(
        &mut self,
        node: &mut LegacyNode,
        link: Link,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        let mut consumed = 0;
        while let Some((len, frame_fds)) = next_frame(link, &input[consumed..], fds)? {
            let bytes = &input[consumed..consumed + len];
            consumed += len;
            match link {
                Link::Bootstrap => self.host_mut().handle_frame(bytes, frame_fds)?,
                Link::NodeChannel => self.handle_node_frame(node, bytes, frame_fds)?,
            }
        }
        Ok(consumed)
    }

    fn handle_node_frame(
        &mut self,
        node: &mut LegacyNode,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), SessionError> {
        if let Phase::Connecting(connector) = &mut self.phase {
            connector.handle_node_frame(bytes, fds)?;
            self.drain_connector();
            return self.finish_if_established(node);
        }
        let Some(peer) = self.peer else {
            return Err(SessionError::Unexpected {
                link: Link::NodeChannel,
            });
        };
        node.handle_frame(peer, bytes, fds)?;
        Ok(())
    }

    fn finish_if_established(&mut self, node: &mut LegacyNode) -> Result<(), SessionError> {
        let Phase::Connecting(connector) = &self.phase else {
            return Ok(());
        };
        let Some(profile) = connector.established().map(|e| e.profile) else {
            return Ok(());
        };
        let placeholder = Phase::Running(BrokerHost::new(profile));
        let Phase::Connecting(connector) = std::mem::replace(&mut self.phase, placeholder) else {
            return Ok(());
        };
        match connector.finish() {
            Ok((established, host)) => {
                self.phase = Phase::Running(host);
                node.add_peer(established.peer_name, established.profile, PeerRole::Client)
                    .map_err(SessionError::Api)?;
                self.peer = Some(established.peer_name);
            }
            Err(back) => self.phase = Phase::Connecting(back),
        }
        Ok(())
    }

    fn drain_connector(&mut self) {
        if let Phase::Connecting(c) = &mut self.phase {
            while let Some(t) = c.poll_transmit() {
                self.out.push_back(t);
            }
        }
    }

    fn host_mut(&mut self) -> &mut BrokerHost {
        match &mut self.phase {
            Phase::Connecting(c) => c.host(),
            Phase::Running(h) => h,
        }
    }

    /// A link closed, as [`BrokerSession::handle_link_closed`], for the
    /// invitation's `node`.
    pub fn handle_link_closed(&mut self, node: &mut LegacyNode, link: Link) {
        match link {
            Link::Bootstrap => self.host_mut().handle_closed(),
            Link::NodeChannel => {
                if let Phase::Connecting(c) = &mut self.phase {
                    let _ = c.handle_node_closed();
                }
                node.cancel_attachments();
                if let Some(peer) = self.peer {
                    node.peer_lost(peer);
                }
            }
        }
    }

    /// The next region the caller must create for a client's
    /// `BUFFER_REQUEST`.
    pub fn poll_region_request(&mut self) -> Option<RegionRequest> {
        self.host_mut().poll_region_request()
    }

    /// Answers a region request with a fresh region's fds (checked with
    /// `probe`; see [`BrokerHost::answer_buffer_request`]).
    pub fn answer_region(
        &mut self,
        id: RequestId,
        region: RegionFds,
        probe: &impl FdAccessProbe,
    ) -> Result<(), SessionError> {
        self.host_mut()
            .answer_buffer_request(id, region, probe)
            .map_err(SessionError::Buffer)
    }

    /// Answers a region request with the failure response.
    pub fn fail_region(&mut self, id: RequestId) -> Result<(), SessionError> {
        self.host_mut()
            .fail_buffer_request(id)
            .map_err(SessionError::Buffer)
    }

    /// The invitation's next frame, for either link: the connector's, then
    /// the broker host's. The node's frames are the caller's to poll, after
    /// these (`ACCEPT_BROKER_CLIENT` precedes every node frame).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.out.pop_front() {
            return Some(t);
        }
        match &mut self.phase {
            Phase::Connecting(c) => c.poll_transmit(),
            Phase::Running(h) => h.poll_transmit(),
        }
    }
}

/// The inviting broker: a [`BrokerInvitation`] and the [`LegacyNode`] it
/// gives the client to as its one peer.
#[derive(Debug)]
pub struct BrokerSession {
    invitation: BrokerInvitation,
    node: LegacyNode,
    attachments: Vec<PortRef>,
}

impl BrokerSession {
    /// Starts an invitation with `config` (see [`BrokerConnector::new`]):
    /// `node_channel_client_end` is the client's end of a non-blocking
    /// socket pair whose other end the caller runs as [`Link::NodeChannel`].
    /// Every attachment is reserved at once, in order: see
    /// [`attachments`](Self::attachments). The node draws its port names
    /// from `rng` after the connector drew the token.
    pub fn new(
        config: BrokerConfig,
        node_channel_client_end: OwnedFd,
        mut rng: impl RandomSource + Send + 'static,
    ) -> Result<Self, SessionError> {
        let names = config.attachments.clone();
        let name = config.local_name;
        let invitation = BrokerInvitation::new(config, node_channel_client_end, &mut rng)?;
        let mut node = LegacyNode::new(name, rng);
        let mut attachments = Vec::with_capacity(names.len());
        for n in &names {
            attachments.push(
                node.reserve_attachment(n.as_bytes())
                    .map_err(SessionError::Api)?,
            );
        }
        Ok(Self {
            invitation,
            node,
            attachments,
        })
    }

    /// The local ends of the attachments, in the configured order.
    pub fn attachments(&self) -> &[PortRef] {
        &self.attachments
    }

    /// The client's node name, once the handshake is done.
    pub fn peer(&self) -> Option<NodeName> {
        self.invitation.peer()
    }

    /// True once the client accepted the invitation.
    pub fn is_established(&self) -> bool {
        self.invitation.is_established()
    }

    /// The node, for the application's pipes and messages.
    pub fn node(&mut self) -> &mut LegacyNode {
        &mut self.node
    }

    /// The node, read-only.
    pub fn node_ref(&self) -> &LegacyNode {
        &self.node
    }

    /// Takes `link`'s received stream: every whole frame at the start of
    /// `input` with its fds from the front of `fds`. Returns the bytes
    /// consumed (the rest waits for more input). On error the link should
    /// be dropped ([`handle_link_closed`](Self::handle_link_closed)).
    pub fn handle_stream(
        &mut self,
        link: Link,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        self.invitation
            .handle_stream(&mut self.node, link, input, fds)
    }

    /// A link closed (hang-up, error, or the caller dropped it after a
    /// [`SessionError`]). The node channel's loss makes the client's ports
    /// peer-lost and cancels attachments it never merged.
    pub fn handle_link_closed(&mut self, link: Link) {
        self.invitation.handle_link_closed(&mut self.node, link);
    }

    /// The next region the caller must create for a client's
    /// `BUFFER_REQUEST`.
    pub fn poll_region_request(&mut self) -> Option<RegionRequest> {
        self.invitation.poll_region_request()
    }

    /// Answers a region request with a fresh region's fds (checked with
    /// `probe`; see [`BrokerHost::answer_buffer_request`]).
    pub fn answer_region(
        &mut self,
        id: RequestId,
        region: RegionFds,
        probe: &impl FdAccessProbe,
    ) -> Result<(), SessionError> {
        self.invitation.answer_region(id, region, probe)
    }

    /// Answers a region request with the failure response.
    pub fn fail_region(&mut self, id: RequestId) -> Result<(), SessionError> {
        self.invitation.fail_region(id)
    }

    /// The next frame to write, for either link: the connector's first
    /// (`ACCEPT_BROKER_CLIENT` precedes every node frame), then the broker
    /// host's, then the node's.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.invitation
            .poll_transmit()
            .or_else(|| self.node.poll_transmit().map(node_transmit))
    }
}
