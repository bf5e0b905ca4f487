//! The legacy system's isolated connections (spec `legacy-core.md` §3.7):
//! each one a socket the runtime's driver adopts as a link of its own, its
//! frames deframed here and handed to the node by
//! [`IsolatedId`](mojo_legacy_node::node::IsolatedId), the node's frames for
//! it written to that link. The node runs the `ACCEPT_PEER` exchange and the
//! merge; this is only the plumbing between its connections and the
//! driver's links, apart from the session's own links.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;

use mojo_driver::{CoreRequest, LinkId, NewLinkError, ReceivedFds, Transmit};
use mojo_legacy_node::LegacyNode;
use mojo_legacy_node::node::{ApiError, IsolatedId, IsolatedOutput, PortRef};
use mojo_legacy_node::session::{Link, MAX_SESSION_FRAME_BYTES, SessionError};
use mojo_legacy_wire::Profile;
use mojo_legacy_wire::channel::Frame;

/// The first adoption tag of an isolated connection's socket (the session's
/// own tags are below it).
const FIRST_TAG: u64 = 1 << 32;

/// The isolated connections of one legacy system and their links.
#[derive(Default)]
pub(super) struct IsolatedLinks {
    next_tag: u64,
    /// Adoption tag -> connection, until the driver answers.
    adopting: HashMap<u64, IsolatedId>,
    /// Frames of connections whose socket is being adopted; no entry once
    /// the node ended the connection.
    waiting: HashMap<IsolatedId, Vec<mojo_legacy_node::node::Transmit>>,
    by_link: HashMap<LinkId, IsolatedId>,
    links: HashMap<IsolatedId, LinkId>,
    /// Fds received per link and not yet claimed by a frame.
    fds: HashMap<LinkId, VecDeque<OwnedFd>>,
    /// Frames whose link was adopted after they were made.
    ready: VecDeque<Transmit>,
}

impl IsolatedLinks {
    /// Starts a connection on `socket`: the node's half of the exchange and
    /// the request to adopt the socket. Returns the pipe end.
    pub(super) fn start(
        &mut self,
        node: &mut LegacyNode,
        profile: Profile,
        socket: OwnedFd,
        requests: &mut VecDeque<CoreRequest>,
    ) -> Result<PortRef, ApiError> {
        let (id, port) = node.connect_isolated(profile)?;
        let tag = FIRST_TAG + self.next_tag;
        self.next_tag += 1;
        self.adopting.insert(tag, id);
        self.waiting.insert(id, Vec::new());
        requests.push_back(CoreRequest::Adopt { fd: socket, tag });
        Ok(port)
    }

    /// The driver's answer to an adoption; false if `tag` is not ours.
    pub(super) fn adopted(
        &mut self,
        node: &mut LegacyNode,
        tag: u64,
        result: Result<LinkId, NewLinkError>,
        requests: &mut VecDeque<CoreRequest>,
    ) -> bool {
        let Some(id) = self.adopting.remove(&tag) else {
            return false;
        };
        let waiting = self.waiting.remove(&id);
        match (result, waiting) {
            (Ok(link), Some(frames)) => {
                self.by_link.insert(link, id);
                self.links.insert(id, link);
                self.ready.extend(frames.into_iter().map(|t| Transmit {
                    link,
                    bytes: t.bytes,
                    fds: t.fds,
                }));
            }
            // The node ended the connection meanwhile.
            (Ok(link), None) => requests.push_back(CoreRequest::Close(link)),
            (Err(e), _) => {
                eprintln!("[mojo] cannot adopt an isolated connection's socket: {e}");
                node.isolated_lost(id);
            }
        }
        true
    }

    /// Input on `link`, if it is an isolated connection's: its whole frames
    /// go to the node; returns the bytes consumed.
    pub(super) fn handle_input(
        &mut self,
        node: &mut LegacyNode,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Option<Result<usize, SessionError>> {
        let id = *self.by_link.get(&link)?;
        let queue = self.fds.entry(link).or_default();
        while let Some(fd) = fds.pop() {
            queue.push_back(fd);
        }
        let mut consumed = 0;
        loop {
            let rest = &input[consumed..];
            let (claimed, len) =
                match Frame::decode_prefix_with_limit(rest, MAX_SESSION_FRAME_BYTES) {
                    Ok(Some((frame, len))) => (usize::from(frame.header.num_handles()), len),
                    Ok(None) => return Some(Ok(consumed)),
                    Err(error) => {
                        node.isolated_lost(id);
                        let link = Link::NodeChannel;
                        return Some(Err(SessionError::Frame { link, error }));
                    }
                };
            if queue.len() < claimed {
                node.isolated_lost(id);
                return Some(Err(SessionError::MissingFds {
                    link: Link::NodeChannel,
                    claimed,
                    received: queue.len(),
                }));
            }
            let frame_fds: Vec<OwnedFd> = queue.drain(..claimed).collect();
            if let Err(e) = node.handle_isolated_frame(id, &rest[..len], frame_fds) {
                return Some(Err(SessionError::Node(e)));
            }
            consumed += len;
        }
    }

    /// `link` closed; false if it is not an isolated connection's.
    pub(super) fn closed(&mut self, node: &mut LegacyNode, link: LinkId) -> bool {
        let Some(id) = self.by_link.remove(&link) else {
            return false;
        };
        self.links.remove(&id);
        self.fds.remove(&link);
        node.isolated_lost(id);
        true
    }

    /// The next frame for an isolated connection's link; a connection the
    /// node ended has its link closed (after what is queued for it).
    pub(super) fn poll_transmit(
        &mut self,
        node: &mut LegacyNode,
        requests: &mut VecDeque<CoreRequest>,
    ) -> Option<Transmit> {
        if let Some(t) = self.ready.pop_front() {
            return Some(t);
        }
        loop {
            match node.poll_isolated()? {
                IsolatedOutput::Transmit { id, transmit } => {
                    if let Some(&link) = self.links.get(&id) {
                        return Some(Transmit {
                            link,
                            bytes: transmit.bytes,
                            fds: transmit.fds,
                        });
                    }
                    if let Some(frames) = self.waiting.get_mut(&id) {
                        frames.push(transmit);
                    }
                }
                IsolatedOutput::Closed { id, error } => {
                    if let Some(e) = error {
                        eprintln!("[mojo] {id}: {e}");
                    }
                    self.waiting.remove(&id);
                    if let Some(link) = self.links.remove(&id) {
                        self.by_link.remove(&link);
                        self.fds.remove(&link);
                        requests.push_back(CoreRequest::Close(link));
                    }
                }
            }
        }
    }
}
