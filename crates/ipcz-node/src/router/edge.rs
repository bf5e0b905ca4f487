//! Links and route edges (§6.1, §6.8.6): an edge holds a primary link and at
//! most one decaying link with the sequence limits that end its decay.

use ipcz_wire::types::{FragmentDescriptor, SublinkId};

use super::{LinkSide, NodeLinkId, RouterId};

/// What a remote link is to the router holding it (§6.1 `LinkType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkType {
    /// The route's central link (has a RouterLinkState).
    Central,
    /// Leads toward the central link; what arrives on it is inbound.
    PeripheralOutward,
    /// Leads toward our own terminal (proxies only).
    PeripheralInward,
}

/// One router-to-router link as a router holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// A sublink of a node link.
    Remote {
        node_link: NodeLinkId,
        sublink: SublinkId,
        link_type: LinkType,
        side: LinkSide,
        /// The RouterLinkState of a central link.
        state: Option<FragmentDescriptor>,
    },
    /// A central link to another router of this node; `state` names the
    /// in-process link state both ends share.
    Local {
        peer: RouterId,
        side: LinkSide,
        state: u64,
    },
}

impl Link {
    pub(crate) fn is_central(&self) -> bool {
        match self {
            Self::Remote { link_type, .. } => *link_type == LinkType::Central,
            Self::Local { .. } => true,
        }
    }

    pub(crate) fn local_peer(&self) -> Option<RouterId> {
        match self {
            Self::Local { peer, .. } => Some(*peer),
            Self::Remote { .. } => None,
        }
    }

    pub(crate) fn remote(&self) -> Option<(NodeLinkId, SublinkId)> {
        match self {
            Self::Remote {
                node_link, sublink, ..
            } => Some((*node_link, *sublink)),
            Self::Local { .. } => None,
        }
    }

    /// Whether messages arriving on this link come from the outward side.
    pub(crate) fn is_outward(&self) -> bool {
        match self {
            Self::Remote { link_type, .. } => *link_type != LinkType::PeripheralInward,
            Self::Local { .. } => true,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Edge {
    pub(crate) primary: Option<Link>,
    pub(crate) decaying: Option<Link>,
    /// Parcels below this go on the decaying link.
    pub(crate) length_to_decaying: Option<u64>,
    /// Parcels below this may still come from the decaying link.
    pub(crate) length_from_decaying: Option<u64>,
    /// Decay began before the edge had a primary link: the next primary
    /// link set becomes the decaying link at once.
    decay_deferred: bool,
}

impl Edge {
    pub(crate) fn set_primary(&mut self, link: Link) {
        if self.decay_deferred {
            self.decay_deferred = false;
            self.decaying = Some(link);
        } else {
            self.primary = Some(link);
        }
    }

    /// Moves the primary link to decaying with unknown limits; `false` if a
    /// link is already decaying.
    pub(crate) fn begin_primary_decay(&mut self) -> bool {
        if self.decaying.is_some() || self.decay_deferred {
            return false;
        }
        self.length_to_decaying = None;
        self.length_from_decaying = None;
        match self.primary.take() {
            Some(link) => self.decaying = Some(link),
            None => self.decay_deferred = true,
        }
        true
    }

    pub(crate) fn is_stable(&self) -> bool {
        self.decaying.is_none() && !self.decay_deferred
    }

    pub(crate) fn is_decaying(&self) -> bool {
        !self.is_stable()
    }

    /// The link for the parcel with sequence number `seq`, `None` to wait.
    pub(crate) fn link_for(&self, seq: u64) -> Option<Link> {
        if let Some(d) = self.decaying
            && self.length_to_decaying.is_none_or(|to| seq < to)
        {
            return Some(d);
        }
        if self.decay_deferred {
            return None;
        }
        self.primary
    }

    /// Ends the decay when both limits are known and reached; returns the
    /// link to deactivate.
    pub(crate) fn maybe_finish_decay(&mut self, sent: u64, received: u64) -> Option<Link> {
        self.decaying?;
        let (Some(to), Some(from)) = (self.length_to_decaying, self.length_from_decaying) else {
            return None;
        };
        if sent < to || received < from {
            return None;
        }
        self.length_to_decaying = None;
        self.length_from_decaying = None;
        self.decaying.take()
    }

    pub(crate) fn release_primary(&mut self) -> Option<Link> {
        self.primary.take()
    }

    /// Removes every link (disconnection).
    pub(crate) fn release_all(&mut self) -> Vec<Link> {
        self.decay_deferred = false;
        self.length_to_decaying = None;
        self.length_from_decaying = None;
        self.primary
            .take()
            .into_iter()
            .chain(self.decaying.take())
            .collect()
    }

    /// Removes `link` wherever it is held; whether it was held.
    pub(crate) fn remove(&mut self, link: &Link) -> bool {
        if self.primary.as_ref() == Some(link) {
            self.primary = None;
            true
        } else if self.decaying.as_ref() == Some(link) {
            self.decaying = None;
            self.length_to_decaying = None;
            self.length_from_decaying = None;
            true
        } else {
            false
        }
    }

    pub(crate) fn has_links(&self) -> bool {
        self.primary.is_some() || self.decaying.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(n: u64) -> Link {
        Link::Local {
            peer: RouterId(n),
            side: LinkSide::A,
            state: n,
        }
    }

    #[test]
    fn decaying_link_carries_parcels_below_the_limit() {
        let mut e = Edge::default();
        e.set_primary(local(1));
        assert!(e.begin_primary_decay());
        assert!(!e.begin_primary_decay());
        e.set_primary(local(2));
        assert_eq!(e.link_for(5), Some(local(1)));
        e.length_to_decaying = Some(3);
        assert_eq!(e.link_for(2), Some(local(1)));
        assert_eq!(e.link_for(3), Some(local(2)));
        assert_eq!(e.maybe_finish_decay(3, 0), None);
        e.length_from_decaying = Some(1);
        assert_eq!(e.maybe_finish_decay(2, 1), None);
        assert_eq!(e.maybe_finish_decay(3, 1), Some(local(1)));
        assert!(e.is_stable());
    }

    #[test]
    fn deferred_decay_waits_for_a_link() {
        let mut e = Edge::default();
        assert!(e.begin_primary_decay());
        assert_eq!(e.link_for(0), None);
        e.set_primary(local(1));
        assert_eq!(e.decaying, Some(local(1)));
        assert_eq!(e.primary, None);
    }
}
