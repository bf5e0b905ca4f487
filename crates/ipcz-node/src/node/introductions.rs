//! Introductions (§7) and the broker's side of them.
//!
//! A non-broker that needs a link to a node it does not know asks its
//! broker (RequestIntroduction on the link whose remote is a broker, §7.2;
//! in inherit mode that is the original socket, not the referrer link);
//! the routers that wait stay queued in the router table. AcceptIntroduction
//! (requested or not) hands the caller the transport and the memory
//! ([`NodeEvent::IntroductionOffered`]); once mapped,
//! [`Node::accept_introduction`] builds the NodeLink and the waiting work
//! resumes. RejectIntroduction, or the loss of the broker link, fails
//! exactly the routers that waited for that node.
//!
//! A broker answers RequestIntroduction between two of its non-brokers:
//! the caller creates a socket pair and a primary buffer
//! ([`NodeEvent::CreateIntroduction`], [`Node::introduce`]) and the broker
//! sends AcceptIntroduction to both (the requester takes side A); a node it
//! has no link to is rejected.

use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::memory::primary;
use ipcz_wire::message::Message;
use ipcz_wire::messages::{AcceptIntroduction, Body, RejectIntroduction, RequestIntroduction};
use ipcz_wire::types::{DriverObjectIndex, LinkSide as WireSide, NodeName, NodeType};
use mojo_wire_kit::{RegionMode, SharedMemory};

use super::{DriverBox, Node, NodeError, NodeEvent, NodeRole};
use crate::link::{LinkParams, NodeLink};
use crate::memory::NodeLinkMemory;
use crate::router::NodeLinkId;

/// Most introductions a node has in progress at a time: requests sent and
/// offers being mapped (non-broker), or introductions being created
/// (broker). A request beyond it fails at once; an offer beyond it is a
/// failure of the broker link; a broker rejects a request beyond it.
pub const MAX_PENDING_INTRODUCTIONS: usize = 256;

/// An introduction a non-broker has in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Introduction {
    /// RequestIntroduction was sent on `broker`.
    Requested { broker: NodeLinkId },
    /// AcceptIntroduction arrived on `broker`; the caller maps its memory.
    Offered {
        broker: NodeLinkId,
        side: WireSide,
        remote_node_type: NodeType,
        remote_protocol_version: u32,
    },
}

impl Introduction {
    fn broker(&self) -> NodeLinkId {
        match *self {
            Self::Requested { broker } | Self::Offered { broker, .. } => broker,
        }
    }
}

impl<M: SharedMemory> Node<M> {
    /// The link to this node's broker (none for a broker).
    pub fn broker_link(&self) -> Option<NodeLinkId> {
        if self.config.role == NodeRole::Broker {
            return None;
        }
        self.links
            .ids()
            .find(|id| self.links.get(*id).is_some_and(NodeLink::remote_is_broker))
    }

    /// A bypass needs a link to `node` (§7.2).
    pub(super) fn need_node_link(&mut self, node: NodeName) {
        if let Some(link) = self.links.by_name(node) {
            self.routers.add_node_link(link, node, &mut self.links);
            return;
        }
        if self.introductions.contains_key(&node) {
            return;
        }
        if self.config.role == NodeRole::Broker {
            // A broker has a link to every node it could introduce.
            log::debug!("broker {} has no node {node}", self.name);
            self.routers.introduction_failed(node, &mut self.links);
            return;
        }
        let Some(broker) = self.broker_link() else {
            self.events.push(NodeEvent::NeedNodeLink { node });
            return;
        };
        if self.introductions.len() >= MAX_PENDING_INTRODUCTIONS {
            self.routers.introduction_failed(node, &mut self.links);
            return;
        }
        self.introductions
            .insert(node, Introduction::Requested { broker });
        let body = Body::RequestIntroduction(RequestIntroduction { name: node });
        self.queue_message(broker, body, &[], Vec::new());
    }

    /// Whether `link` goes to our broker (and we are not one).
    fn is_broker_link(&self, link: NodeLinkId) -> bool {
        self.config.role != NodeRole::Broker
            && self.links.get(link).is_some_and(NodeLink::remote_is_broker)
    }

    pub(super) fn on_accept_introduction(
        &mut self,
        link: NodeLinkId,
        message: &Message<'_>,
        a: &AcceptIntroduction,
        fds: &mut [Option<std::os::fd::OwnedFd>],
    ) -> Result<(), NodeError> {
        if !self.is_broker_link(link) {
            return Err(NodeError::UnexpectedMessage(message.id()));
        }
        let transport = self.take_box(link, message, a.transport, fds)?;
        let memory = self.take_box(link, message, a.memory, fds)?;
        let usable = matches!(transport.object(), DriverObject::Transport(_))
            && matches!(memory.object(), DriverObject::SharedBuffer(b)
                if b.mode == RegionMode::Unsafe && b.buffer_size as usize == primary::SIZE);
        if !usable {
            return Err(NodeError::BadIntroductionBox);
        }
        if a.name == self.name || !a.name.is_valid() {
            return Err(NodeError::UnexpectedMessage(message.id()));
        }
        // A link that exists (or is being made) wins; the boxes close (§7.3 step 4).
        if self.links.by_name(a.name).is_some()
            || matches!(
                self.introductions.get(&a.name),
                Some(Introduction::Offered { .. })
            )
        {
            return Ok(());
        }
        if !self.introductions.contains_key(&a.name)
            && self.introductions.len() >= MAX_PENDING_INTRODUCTIONS
        {
            return Err(NodeError::TooManyIntroductions {
                limit: MAX_PENDING_INTRODUCTIONS,
            });
        }
        self.introductions.insert(
            a.name,
            Introduction::Offered {
                broker: link,
                side: a.link_side,
                remote_node_type: a.remote_node_type,
                remote_protocol_version: a.remote_protocol_version,
            },
        );
        self.events.push(NodeEvent::IntroductionOffered {
            link,
            name: a.name,
            side: a.link_side,
            remote_protocol_version: a.remote_protocol_version,
            transport,
            memory,
        });
        Ok(())
    }

    pub(super) fn on_reject_introduction(
        &mut self,
        link: NodeLinkId,
        message: &Message<'_>,
        name: NodeName,
    ) -> Result<(), NodeError> {
        if !self.is_broker_link(link) {
            return Err(NodeError::UnexpectedMessage(message.id()));
        }
        // Only a request we made fails; anything else is stale news.
        if self.introductions.get(&name) == Some(&Introduction::Requested { broker: link }) {
            self.introductions.remove(&name);
            self.routers.introduction_failed(name, &mut self.links);
        }
        Ok(())
    }

    pub(super) fn on_request_introduction(
        &mut self,
        link: NodeLinkId,
        message: &Message<'_>,
        target: NodeName,
    ) -> Result<(), NodeError> {
        if self.config.role != NodeRole::Broker {
            return Err(NodeError::UnexpectedMessage(message.id()));
        }
        let requester = self
            .links
            .get(link)
            .map(NodeLink::remote_name)
            .ok_or(NodeError::UnknownLink(link))?;
        let known =
            target != requester && target != self.name && self.links.by_name(target).is_some();
        if !known || self.brokering.len() >= MAX_PENDING_INTRODUCTIONS {
            self.send_reject_introduction(link, target);
            return Ok(());
        }
        // One introduction answers both nodes asking for each other.
        if self.brokering.contains(&(requester, target))
            || self.brokering.contains(&(target, requester))
        {
            return Ok(());
        }
        self.brokering.insert((requester, target));
        self.events
            .push(NodeEvent::CreateIntroduction { requester, target });
        Ok(())
    }

    /// Broker: the caller created what a [`NodeEvent::CreateIntroduction`]
    /// asked for: `memory` maps a zero-filled region of
    /// [`primary::SIZE`] bytes (initialized here as the new link's primary
    /// buffer), `buffers` are two SharedBuffer boxes (mode unsafe) of it,
    /// and `transports` the two ends of a new socket pair as Transport
    /// boxes; the first of each goes to `requester` (side A), the second to
    /// `target` (side B). A box error leaves the introduction pending.
    pub fn introduce(
        &mut self,
        requester: NodeName,
        target: NodeName,
        memory: M,
        buffers: [DriverBox; 2],
        transports: [DriverBox; 2],
    ) -> Result<(), NodeError> {
        if !self.brokering.contains(&(requester, target)) {
            return Err(NodeError::IntroductionNotPending(target));
        }
        let buffers_ok = buffers.iter().all(|b| {
            matches!(b.object(), DriverObject::SharedBuffer(s)
                if s.mode == RegionMode::Unsafe && s.buffer_size as usize == memory.size())
        });
        let transports_ok = transports
            .iter()
            .all(|t| matches!(t.object(), DriverObject::Transport(_)));
        if !buffers_ok || !transports_ok || memory.size() != primary::SIZE {
            return Err(NodeError::BadIntroductionBox);
        }
        self.brokering.remove(&(requester, target));
        let Some(to_requester) = self.links.by_name(requester) else {
            return Ok(());
        };
        let Some(to_target) = self.links.by_name(target) else {
            self.send_reject_introduction(to_requester, target);
            self.pump();
            return Ok(());
        };
        if let Err(e) = NodeLinkMemory::initialize_primary_buffer(&memory) {
            self.send_reject_introduction(to_requester, target);
            self.pump();
            return Err(e.into());
        }
        let [buffer_a, buffer_b] = buffers;
        let [transport_a, transport_b] = transports;
        self.send_accept_introduction(to_requester, target, WireSide::A, transport_a, buffer_a);
        self.send_accept_introduction(to_target, requester, WireSide::B, transport_b, buffer_b);
        self.pump();
        Ok(())
    }

    /// Broker: the caller could not create what a
    /// [`NodeEvent::CreateIntroduction`] asked for; the requester is told
    /// (RejectIntroduction).
    pub fn introduction_impossible(&mut self, requester: NodeName, target: NodeName) {
        if self.brokering.remove(&(requester, target))
            && let Some(link) = self.links.by_name(requester)
        {
            self.send_reject_introduction(link, target);
        }
        self.pump();
    }

    /// The caller mapped the memory of a [`NodeEvent::IntroductionOffered`]
    /// for node `name` and set up its transport: the new NodeLink is added
    /// (no handshake, §7.3 step 5) and whatever waited for it resumes.
    /// Frames of the transport go to [`Self::handle_frame`] with the id
    /// returned. If the link cannot be built, what waited fails.
    pub fn accept_introduction(
        &mut self,
        name: NodeName,
        memory: M,
    ) -> Result<NodeLinkId, NodeError> {
        let Some(Introduction::Offered {
            side,
            remote_node_type,
            remote_protocol_version,
            ..
        }) = self.introductions.get(&name).copied()
        else {
            return Err(NodeError::IntroductionNotPending(name));
        };
        self.introductions.remove(&name);
        let mut params = LinkParams::new(self.name, name, side, memory);
        params.remote_node_type = remote_node_type;
        params.remote_protocol_version = remote_protocol_version;
        let result = self.add_link(params);
        if result.is_err() {
            self.routers.introduction_failed(name, &mut self.links);
            self.pump();
        }
        result
    }

    /// The caller could not map the memory (or use the transport) of a
    /// [`NodeEvent::IntroductionOffered`] for node `name`: a validation
    /// failure of the broker's message (§7.3 steps 1-2), so the broker
    /// link is dropped and what waited fails.
    pub fn introduction_unusable(&mut self, name: NodeName) {
        if let Some(Introduction::Offered { broker, .. }) = self.introductions.get(&name).copied() {
            self.introductions.remove(&name);
            self.routers.introduction_failed(name, &mut self.links);
            self.drop_link(broker, NodeError::UnusableIntroduction(name));
        }
        self.pump();
    }

    /// Introductions in progress: requests and offers (non-broker) or
    /// introductions being created (broker).
    pub fn pending_introduction_count(&self) -> usize {
        self.introductions.len() + self.brokering.len()
    }

    /// Link `link` to `remote` is going away: introductions through it fail.
    pub(super) fn introductions_lost(&mut self, link: NodeLinkId, remote: NodeName) {
        let lost: Vec<NodeName> = self
            .introductions
            .iter()
            .filter(|(_, i)| i.broker() == link)
            .map(|(n, _)| *n)
            .collect();
        for name in lost {
            self.introductions.remove(&name);
            self.routers.introduction_failed(name, &mut self.links);
        }
        let pairs: Vec<(NodeName, NodeName)> = self
            .brokering
            .iter()
            .filter(|(r, t)| *r == remote || *t == remote)
            .copied()
            .collect();
        for (requester, target) in pairs {
            self.brokering.remove(&(requester, target));
            if target == remote
                && let Some(l) = self.links.by_name(requester)
                && l != link
            {
                self.send_reject_introduction(l, target);
            }
        }
    }

    fn send_reject_introduction(&mut self, link: NodeLinkId, name: NodeName) {
        let body = Body::RejectIntroduction(RejectIntroduction { name });
        self.queue_message(link, body, &[], Vec::new());
    }

    fn send_accept_introduction(
        &mut self,
        link: NodeLinkId,
        name: NodeName,
        side: WireSide,
        transport: DriverBox,
        memory: DriverBox,
    ) {
        let (transport, mut fds) = transport.into_parts();
        let (memory, memory_fds) = memory.into_parts();
        fds.extend(memory_fds);
        let body = Body::AcceptIntroduction(AcceptIntroduction {
            name,
            link_side: side,
            remote_node_type: NodeType::NORMAL,
            padding: 0,
            remote_protocol_version: 0,
            transport: DriverObjectIndex(0),
            memory: DriverObjectIndex(1),
            // One features word, none set (as every greeting of ours).
            remote_features: Some(vec![0]),
        });
        self.queue_message(link, body, &[transport, memory], fds);
    }
}
