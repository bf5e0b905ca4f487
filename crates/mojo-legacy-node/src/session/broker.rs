//! [`BrokerSession`]: the legacy broker's invitation and node as one
//! sans-IO value.

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

/// The inviting broker: [`BrokerConnector`] until established, then the
/// [`LegacyNode`] with the client as its one peer; a [`BrokerHost`] serves
/// the bootstrap link throughout.
#[derive(Debug)]
pub struct BrokerSession {
    phase: Phase,
    node: LegacyNode,
    peer: Option<NodeName>,
    attachments: Vec<PortRef>,
    out: VecDeque<Transmit>,
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
        let connector = BrokerConnector::new(config, node_channel_client_end, &mut rng)?;
        let mut node = LegacyNode::new(name, rng);
        let mut attachments = Vec::with_capacity(names.len());
        for n in &names {
            attachments.push(
                node.reserve_attachment(n.as_bytes())
                    .map_err(SessionError::Api)?,
            );
        }
        let mut session = Self {
            phase: Phase::Connecting(Box::new(connector)),
            node,
            peer: None,
            attachments,
            out: VecDeque::new(),
        };
        session.drain_connector();
        Ok(session)
    }

    /// The local ends of the attachments, in the configured order.
    pub fn attachments(&self) -> &[PortRef] {
        &self.attachments
    }

    /// The client's node name, once the handshake is done.
    pub fn peer(&self) -> Option<NodeName> {
        self.peer
    }

    /// True once the client accepted the invitation.
    pub fn is_established(&self) -> bool {
        self.peer.is_some()
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
        let mut consumed = 0;
        while let Some((len, frame_fds)) = next_frame(link, &input[consumed..], fds)? {
            let bytes = &input[consumed..consumed + len];
            consumed += len;
            match link {
                Link::Bootstrap => self.handle_bootstrap_frame(bytes, frame_fds)?,
                Link::NodeChannel => self.handle_node_frame(bytes, frame_fds)?,
            }
        }
        Ok(consumed)
    }

    fn handle_bootstrap_frame(
        &mut self,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), SessionError> {
        self.host_mut().handle_frame(bytes, fds)?;
        Ok(())
    }

    fn handle_node_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), SessionError> {
        if let Phase::Connecting(connector) = &mut self.phase {
            connector.handle_node_frame(bytes, fds)?;
            self.drain_connector();
            return self.finish_if_established();
        }
        let Some(peer) = self.peer else {
            return Err(SessionError::Unexpected {
                link: Link::NodeChannel,
            });
        };
        self.node.handle_frame(peer, bytes, fds)?;
        Ok(())
    }

    fn finish_if_established(&mut self) -> Result<(), SessionError> {
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
                self.node
                    .add_peer(established.peer_name, established.profile, PeerRole::Client)
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

    /// A link closed (hang-up, error, or the caller dropped it after a
    /// [`SessionError`]). The node channel's loss makes the client's ports
    /// peer-lost and cancels attachments it never merged.
    pub fn handle_link_closed(&mut self, link: Link) {
        match link {
            Link::Bootstrap => self.host_mut().handle_closed(),
            Link::NodeChannel => {
                if let Phase::Connecting(c) = &mut self.phase {
                    let _ = c.handle_node_closed();
                }
                self.node.cancel_attachments();
                if let Some(peer) = self.peer {
                    self.node.peer_lost(peer);
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

    /// The next frame to write, for either link: the connector's first
    /// (`ACCEPT_BROKER_CLIENT` precedes every node frame), then the broker
    /// host's, then the node's.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.out.pop_front() {
            return Some(t);
        }
        match &mut self.phase {
            Phase::Connecting(c) => c.poll_transmit(),
            Phase::Running(h) => h
                .poll_transmit()
                .or_else(|| self.node.poll_transmit().map(node_transmit)),
        }
    }
}
