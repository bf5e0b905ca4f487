//! [`ClientSession`]: a legacy non-broker's acceptance of an invitation
//! and its node as one sans-IO value.

use std::collections::VecDeque;
use std::os::fd::{BorrowedFd, OwnedFd};

use mojo_invitation::legacy::{
    AttachmentName, BufferError, ClientConnector, FdAccess, SyncBrokerClient,
};
use mojo_legacy_wire::NodeName;
use mojo_legacy_wire::channel::Frame;
use mojo_wire_kit::RandomSource;

use super::{
    BufferGrant, ClientConfig, Link, MAX_QUEUED_BUFFER_GRANTS, SessionError, Transmit, next_frame,
    node_transmit, take_fds,
};
use crate::node::{LegacyNode, PeerRole, PortRef};

/// How the session learns an fd's access mode (a system call, so the caller
/// injects it; `mojo_platform_channel::fd_access_mode` in production).
pub type AccessProbe = Box<dyn Fn(BorrowedFd<'_>) -> Option<FdAccess> + Send>;

#[derive(Debug)]
enum Phase {
    /// Waiting for `INIT`, then for the handshake on the node channel.
    Connecting(Box<ClientConnector>),
    /// Established; the bootstrap socket serves buffer requests.
    Running(SyncBrokerClient),
}

/// The accepting client: [`ClientConnector`] until established, then the
/// [`LegacyNode`] with the broker as its one peer; the bootstrap socket
/// stays a [`SyncBrokerClient`].
pub struct ClientSession {
    phase: Phase,
    node: LegacyNode,
    peer: Option<NodeName>,
    names: Vec<AttachmentName>,
    attachments: Option<Vec<PortRef>>,
    adopt: Option<OwnedFd>,
    init_read: bool,
    grants: VecDeque<Result<BufferGrant, BufferError>>,
    probe: AccessProbe,
    out: VecDeque<Transmit>,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("phase", &self.phase)
            .field("peer", &self.peer)
            .field("attachments", &self.attachments)
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A client waiting for `INIT` on [`Link::Bootstrap`]; the node is named
    /// `config.local_name` and draws port names from `rng`; `probe` checks
    /// the modes of the fds a `BUFFER_RESPONSE` brings.
    pub fn new(
        config: ClientConfig,
        rng: impl RandomSource + Send + 'static,
        probe: AccessProbe,
    ) -> Result<Self, SessionError> {
        let names = config.attachments.clone();
        let node = LegacyNode::new(config.local_name, rng);
        let connector = ClientConnector::new(config)?;
        Ok(Self {
            phase: Phase::Connecting(Box::new(connector)),
            node,
            peer: None,
            names,
            attachments: None,
            adopt: None,
            init_read: false,
            grants: VecDeque::new(),
            probe,
            out: VecDeque::new(),
        })
    }

    /// The attachment ends, in the configured order, once established (the
    /// merges are requested then; messages written wait for them).
    pub fn attachments(&self) -> Option<&[PortRef]> {
        self.attachments.as_deref()
    }

    /// The broker's node name, once established.
    pub fn peer(&self) -> Option<NodeName> {
        self.peer
    }

    /// True once the broker accepted us as its client.
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

    /// The node-channel socket from `INIT`, to run as [`Link::NodeChannel`].
    pub fn poll_adopt(&mut self) -> Option<OwnedFd> {
        self.adopt.take()
    }

    /// Takes `link`'s received stream (see
    /// [`BrokerSession::handle_stream`](super::BrokerSession::handle_stream)).
    /// The bootstrap link is read as Chromium reads it, in exact sizes:
    /// `INIT` first, then one `BUFFER_RESPONSE` per request.
    pub fn handle_stream(
        &mut self,
        link: Link,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        match link {
            Link::Bootstrap => self.handle_bootstrap(input, fds),
            Link::NodeChannel => {
                let mut consumed = 0;
                while let Some((len, frame_fds)) = next_frame(link, &input[consumed..], fds)? {
                    let bytes = &input[consumed..consumed + len];
                    consumed += len;
                    self.handle_node_frame(bytes, frame_fds)?;
                }
                Ok(consumed)
            }
        }
    }

    fn handle_bootstrap(
        &mut self,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        let link = Link::Bootstrap;
        if input.is_empty() {
            return Ok(0);
        }
        if !self.init_read {
            let Phase::Connecting(c) = &mut self.phase else {
                return Ok(0);
            };
            let need = c.bootstrap_read_len();
            let Some(bytes) = input.get(..need) else {
                return Ok(0);
            };
            let fd: Vec<OwnedFd> = fds.pop_front().into_iter().collect();
            let channel = c.handle_bootstrap_read(bytes, fd)?;
            self.adopt = Some(channel);
            self.init_read = true;
            return Ok(need);
        }
        let Some(sync) = self.sync_broker() else {
            return Err(SessionError::Unexpected { link });
        };
        if !sync.is_outstanding() {
            return Err(SessionError::Unexpected { link });
        }
        let need = sync.response_read_len();
        let Some(bytes) = input.get(..need) else {
            return Ok(0);
        };
        let claimed = match Frame::decode_prefix_with_limit(bytes, super::MAX_SESSION_FRAME_BYTES) {
            Ok(Some((frame, _))) => usize::from(frame.header.num_handles()),
            Ok(None) => 0,
            Err(error) => return Err(SessionError::Frame { link, error }),
        };
        let taken = take_fds(link, fds, claimed)?;
        if self.grants.len() >= MAX_QUEUED_BUFFER_GRANTS {
            return Err(SessionError::TooManyGrants);
        }
        let probe = &self.probe;
        let result = match &mut self.phase {
            Phase::Connecting(c) => match c.sync_broker() {
                Some(s) => s.handle_response_read(bytes, taken, probe),
                None => return Err(SessionError::Unexpected { link }),
            },
            Phase::Running(s) => s.handle_response_read(bytes, taken, probe),
        };
        self.grants.push_back(result);
        Ok(need)
    }

    fn sync_broker(&mut self) -> Option<&mut SyncBrokerClient> {
        match &mut self.phase {
            Phase::Connecting(c) => c.sync_broker(),
            Phase::Running(s) => Some(s),
        }
    }

    fn handle_node_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), SessionError> {
        if let Phase::Connecting(c) = &mut self.phase {
            c.handle_node_frame(bytes, fds)?;
            while let Some(t) = c.poll_transmit() {
                self.out.push_back(t);
            }
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
        let Phase::Connecting(c) = &self.phase else {
            return Ok(());
        };
        let Some(profile) = c.established().map(|e| e.profile) else {
            return Ok(());
        };
        let placeholder = Phase::Running(SyncBrokerClient::new(profile));
        let Phase::Connecting(c) = std::mem::replace(&mut self.phase, placeholder) else {
            return Ok(());
        };
        let (established, sync) = match c.finish() {
            Ok(done) => done,
            Err(back) => {
                self.phase = Phase::Connecting(back);
                return Ok(());
            }
        };
        self.phase = Phase::Running(sync);
        let peer = established.peer_name;
        self.node
            .add_peer(peer, established.profile, PeerRole::Broker)
            .map_err(SessionError::Api)?;
        self.peer = Some(peer);
        let mut ends = Vec::with_capacity(self.names.len());
        for name in &self.names {
            ends.push(
                self.node
                    .request_port_merge(peer, name.as_bytes())
                    .map_err(SessionError::Api)?,
            );
        }
        self.attachments = Some(ends);
        Ok(())
    }

    /// A link closed. Losing the node channel makes the broker's ports
    /// peer-lost; losing the bootstrap socket fails buffer requests.
    pub fn handle_link_closed(&mut self, link: Link) {
        match link {
            Link::Bootstrap => {
                if let Some(s) = self.sync_broker() {
                    if s.is_outstanding() && self.grants.len() < MAX_QUEUED_BUFFER_GRANTS {
                        self.grants.push_back(Err(BufferError::Closed));
                    }
                }
                match &mut self.phase {
                    Phase::Connecting(c) => {
                        let _ = c.handle_bootstrap_closed();
                    }
                    Phase::Running(s) => s.handle_closed(),
                }
            }
            Link::NodeChannel => {
                if let Phase::Connecting(c) = &mut self.phase {
                    let _ = c.handle_node_closed();
                }
                if let Some(peer) = self.peer {
                    self.node.peer_lost(peer);
                }
            }
        }
    }

    /// Asks the broker for a writable region of `size` bytes (one request
    /// at a time, as Chromium's client); the answer arrives through
    /// [`poll_buffer_grant`](Self::poll_buffer_grant).
    pub fn request_buffer(&mut self, size: u32) -> Result<(), SessionError> {
        let Some(sync) = self.sync_broker() else {
            return Err(SessionError::Buffer(BufferError::Closed));
        };
        sync.request_buffer(size)?;
        Ok(())
    }

    /// True while a buffer request waits for its response.
    pub fn buffer_request_outstanding(&mut self) -> bool {
        self.sync_broker().is_some_and(|s| s.is_outstanding())
    }

    /// The answer to the oldest buffer request.
    pub fn poll_buffer_grant(&mut self) -> Option<Result<BufferGrant, BufferError>> {
        self.grants.pop_front()
    }

    /// The next frame to write, for either link.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.out.pop_front() {
            return Some(t);
        }
        match &mut self.phase {
            Phase::Connecting(c) => c.poll_transmit(),
            Phase::Running(s) => s
                .poll_transmit()
                .or_else(|| self.node.poll_transmit().map(node_transmit)),
        }
    }
}
