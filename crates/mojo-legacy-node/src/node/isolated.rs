//! Isolated connections (spec §3.7): one message pipe between this node and
//! a node of another network, over a channel of its own, with no broker
//! protocol. Mojo's `OutgoingInvitation::SendIsolated` and
//! `IncomingInvitation::AcceptIsolated` run the same exchange on both
//! sides, so one call serves both: [`LegacyNode::connect_isolated`].
//!
//! Each side makes a pipe (the caller's end and a merge connector), sends
//! `ACCEPT_PEER {random token, own node name, connector}` as the channel's
//! first frame and waits for the other's. On it the sender becomes a peer
//! ([`PeerRole::Peer`]) and the side whose connector name is smaller runs
//! the merge (`MergePort`, as a broker answers `REQUEST_PORT_MERGE`,
//! §4.7.6); the other side's connector takes it. Then the two ends are one
//! pipe, and handles travel on it as on any link.
//!
//! The connection is known by an [`IsolatedId`] throughout: its frames come
//! in through [`LegacyNode::handle_isolated_frame`] and go out through
//! [`LegacyNode::poll_isolated`], apart from the node's other links, so a
//! node that already belongs to a network (with a broker or clients) keeps
//! that traffic where it was. Before `ACCEPT_PEER` any other frame is an
//! error ([`NodeError::NotAcceptPeer`]); afterwards the link is an ordinary
//! peer link, on which `ACCEPT_PEER` is unexpected as on every link.
//!
//! As in Chromium, a newer isolated connection to a node replaces the older
//! one (its pipes observe peer loss). Unlike Chromium, a connection whose
//! peer is already this node's broker or client is refused
//! ([`NodeError::IsolatedPeerInUse`]) rather than replacing the network
//! link, and a connection to this node itself is refused
//! ([`NodeError::InvalidIsolatedPeer`]).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::os::fd::OwnedFd;

use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::node::{AcceptPeer, NodeChannelContent, NodeFrame, NodeMessage};
use mojo_legacy_wire::{NodeName, PortName, Profile, Token};

use super::dispatch::malformed;
use super::error::{ApiError, Layer, NodeError};
use super::{LegacyNode, PeerRole, PortRef, Transmit};
use crate::ports::names;

/// The attachment name of an isolated invitation's one pipe (four zero
/// bytes): what Mojo's `AcceptIsolated` extracts. The wire never carries
/// it; it only names the pipe to the application.
pub const ISOLATED_ATTACHMENT_NAME: [u8; 4] = [0; 4];

/// An isolated connection of one node, by the node's number for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsolatedId(u64);

impl IsolatedId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for IsolatedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "isolated connection {}", self.0)
    }
}

/// What an isolated connection asks of the caller
/// ([`LegacyNode::poll_isolated`]).
#[derive(Debug)]
pub enum IsolatedOutput {
    /// A frame to write to the connection's channel. Its `peer` is the
    /// invalid name until the peer's `ACCEPT_PEER` arrived.
    Transmit {
        /// The connection.
        id: IsolatedId,
        /// The frame and its fds.
        transmit: Transmit,
    },
    /// The node ended the connection on its own (bad input, or a newer
    /// connection to the same node replaced it): close its channel. Not
    /// reported for [`LegacyNode::isolated_lost`].
    Closed {
        /// The connection.
        id: IsolatedId,
        /// Why, if for bad input.
        error: Option<NodeError>,
    },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Our `ACCEPT_PEER` is out; the peer's is awaited.
    Pending {
        connector: PortName,
        profile: Profile,
    },
    /// The peer is linked.
    Connected { peer: NodeName },
}

/// The node's isolated connections and their output.
#[derive(Debug, Default)]
pub(super) struct Connections {
    next: u64,
    states: BTreeMap<IsolatedId, State>,
    out: VecDeque<IsolatedOutput>,
    /// `Transmit`s in `out`.
    transmits: usize,
}

impl Connections {
    pub(super) fn push_transmit(&mut self, id: IsolatedId, transmit: Transmit) {
        self.transmits += 1;
        self.out
            .push_back(IsolatedOutput::Transmit { id, transmit });
    }

    pub(super) fn pending_transmit_count(&self) -> usize {
        self.transmits
    }

    /// Drops the frames not yet polled for `id` (with their fds).
    fn drop_output(&mut self, id: IsolatedId) {
        let before = self.out.len();
        self.out
            .retain(|o| !matches!(o, IsolatedOutput::Transmit { id: i, .. } if *i == id));
        self.transmits -= before - self.out.len();
    }
}

impl LegacyNode {
    /// Starts an isolated connection (§3.7) over a new channel whose frames
    /// are in `profile`: Mojo's `SendIsolated` and `AcceptIsolated` alike.
    /// Returns the connection and the local end of its pipe, usable at once
    /// (messages wait until the peer is there; if the connection fails
    /// first, the end observes peer closure). The `ACCEPT_PEER` to write
    /// first is already queued in [`poll_isolated`](Self::poll_isolated).
    pub fn connect_isolated(
        &mut self,
        profile: Profile,
    ) -> Result<(IsolatedId, PortRef), ApiError> {
        let (end, connector) = self.ports.create_merge_pipe()?;
        let (high, low) = self.ports.random_u128();
        let message = NodeMessage::AcceptPeer(AcceptPeer {
            token: Token::new(high, low),
            peer_name: self.name(),
            port_name: connector,
            trailing: &[],
        });
        let mut bytes = self.buffer();
        if let Err(e) = message.encode_frame(profile, 0, &mut bytes) {
            let _ = self.ports.close_port(end);
            let _ = self.ports.close_port(connector);
            self.flush();
            return Err(ApiError::Encode(e));
        }
        self.isolated.next += 1;
        let id = IsolatedId(self.isolated.next);
        self.isolated
            .states
            .insert(id, State::Pending { connector, profile });
        self.isolated.push_transmit(
            id,
            Transmit {
                peer: names::INVALID_NODE,
                bytes,
                fds: Vec::new(),
            },
        );
        Ok((id, PortRef::new(end)))
    }

    /// Handles one complete channel frame of isolated connection `id`, as
    /// [`handle_frame`](Self::handle_frame) does for a peer. On error the
    /// connection is over (and reported [`IsolatedOutput::Closed`]):
    /// before `ACCEPT_PEER` its pipe end observes peer closure, afterwards
    /// the peer is dropped as for any link. An unknown `id` is
    /// [`NodeError::UnknownIsolatedConnection`] and changes nothing.
    pub fn handle_isolated_frame(
        &mut self,
        id: IsolatedId,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        match self.isolated.states.get(&id).copied() {
            None => Err(NodeError::UnknownIsolatedConnection { id }),
            Some(State::Connected { peer }) => self.handle_frame(peer, bytes, fds),
            Some(State::Pending { connector, profile }) => {
                let result = self.accept_peer(id, connector, profile, bytes, fds);
                if let Err(e) = &result {
                    match self.isolated_peer(id) {
                        // Linked, then refused (the merge): drop the peer.
                        Some(peer) => self.remove_peer(peer, Some(e.clone())),
                        None => {
                            self.end_isolated(id, Some(e.clone()));
                            if self.is_unmerged_connector(connector) {
                                let _ = self.ports.close_port(connector);
                            }
                        }
                    }
                }
                self.flush();
                result
            }
        }
    }

    /// The peer's `ACCEPT_PEER`: links the peer and merges (or waits for
    /// the peer's merge).
    fn accept_peer(
        &mut self,
        id: IsolatedId,
        connector: PortName,
        profile: Profile,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        let frame = Frame::decode_whole(bytes).map_err(malformed(Layer::Frame))?;
        let declared = usize::from(frame.header.num_handles());
        if declared != fds.len() {
            return Err(NodeError::FdCountMismatch {
                declared,
                received: fds.len(),
            });
        }
        let frame = NodeFrame::from_frame(&frame).map_err(malformed(Layer::NodeMessage))?;
        // Fds sent with it are closed (Chromium ignores them too).
        drop(fds);
        let NodeChannelContent::Message(NodeMessage::AcceptPeer(accept)) = frame.content else {
            return Err(NodeError::NotAcceptPeer);
        };
        let (peer, port) = (accept.peer_name, accept.port_name);
        if peer == self.name() || !names::node_is_valid(peer) {
            return Err(NodeError::InvalidIsolatedPeer { name: peer });
        }
        // Equal names would leave both sides waiting for the other's merge.
        if !names::port_is_valid(port) || port == connector {
            return Err(NodeError::InvalidMerge { port });
        }
        if let Some(link) = self.links.get(&peer) {
            if link.isolated.is_none() {
                return Err(NodeError::IsolatedPeerInUse { peer });
            }
            // A newer isolated connection to the node replaces the older.
            self.remove_peer(peer, None);
        }
        self.add_link(peer, profile, PeerRole::Peer, Some(id))
            .map_err(|_| NodeError::InvalidIsolatedPeer { name: peer })?;
        self.isolated.states.insert(id, State::Connected { peer });
        // Name order picks the side that merges, as in Chromium.
        if connector < port {
            self.ports
                .merge_with_remote(connector, peer, port)
                .map_err(|_| NodeError::InvalidMerge { port })?;
        } else {
            self.pending_merges.entry(peer).or_default().push(connector);
        }
        Ok(())
    }

    /// The channel of isolated connection `id` closed (or the caller gives
    /// it up): as [`peer_lost`](Self::peer_lost) once the peer is linked;
    /// before, the pipe end observes peer closure. Unknown ids are ignored.
    pub fn isolated_lost(&mut self, id: IsolatedId) {
        let Some(state) = self.isolated.states.remove(&id) else {
            return;
        };
        self.isolated.drop_output(id);
        match state {
            State::Pending { connector, .. } => {
                if self.is_unmerged_connector(connector) {
                    let _ = self.ports.close_port(connector);
                }
            }
            State::Connected { peer } => self.remove_peer(peer, None),
        }
        self.flush();
    }

    /// The next frame to write to an isolated connection, or the news that
    /// the node ended one.
    pub fn poll_isolated(&mut self) -> Option<IsolatedOutput> {
        let output = self.isolated.out.pop_front();
        if let Some(IsolatedOutput::Transmit { .. }) = output {
            self.isolated.transmits -= 1;
        }
        output
    }

    /// The peer of isolated connection `id`, once its `ACCEPT_PEER` came.
    pub fn isolated_peer(&self, id: IsolatedId) -> Option<NodeName> {
        match self.isolated.states.get(&id)? {
            State::Connected { peer } => Some(*peer),
            State::Pending { .. } => None,
        }
    }

    /// Isolated connections open (waiting for the peer or linked).
    pub fn isolated_connection_count(&self) -> usize {
        self.isolated.states.len()
    }

    /// Forgets connection `id` if it is still known, dropping its unpolled
    /// frames, and reports it [`IsolatedOutput::Closed`].
    pub(super) fn end_isolated(&mut self, id: IsolatedId, error: Option<NodeError>) {
        if self.isolated.states.remove(&id).is_some() {
            self.isolated.drop_output(id);
            self.isolated
                .out
                .push_back(IsolatedOutput::Closed { id, error });
        }
    }
}
