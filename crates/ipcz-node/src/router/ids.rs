//! Identifiers: routers, node links, link sides.

use core::fmt;

/// Names one router of a [`super::Routers`] table. A terminal router that
/// the application holds is a portal; its id is the portal handle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouterId(pub(crate) u64);

impl RouterId {
    /// The raw value (unique within one table, never reused).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for RouterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "router#{}", self.0)
    }
}

/// Names one node link of this node. The caller chooses the values (one per
/// NodeLink it has established) and tells the table about each with
/// [`super::Routers::add_node_link`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct NodeLinkId(pub u64);

/// Which side of a central link (and of its RouterLinkState) a router is on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LinkSide {
    /// Side A (the initiator of a bypass link, the broker on a node link).
    A,
    /// Side B.
    B,
}

impl LinkSide {
    /// The other side.
    pub fn opposite(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}
