//! The sublinks registered on each node link, with a count per node link
//! so that per-link limits are checked without walking the map.

use std::collections::{BTreeMap, HashMap};

use super::table::SublinkEntry;
use ipcz_wire::types::SublinkId;

use super::NodeLinkId;

/// `(node link, sublink) -> router and link`, plus how many entries each
/// node link has. Every change goes through here so the counts stay exact.
#[derive(Debug, Default)]
pub(crate) struct SublinkIndex {
    entries: BTreeMap<(NodeLinkId, SublinkId), SublinkEntry>,
    per_link: HashMap<NodeLinkId, usize>,
}

impl SublinkIndex {
    pub(crate) fn get(&self, key: &(NodeLinkId, SublinkId)) -> Option<&SublinkEntry> {
        self.entries.get(key)
    }

    pub(crate) fn contains_key(&self, key: &(NodeLinkId, SublinkId)) -> bool {
        self.entries.contains_key(key)
    }

    /// Registers `entry` at `key`, replacing (and returning) an old one.
    pub(crate) fn insert(
        &mut self,
        key: (NodeLinkId, SublinkId),
        entry: SublinkEntry,
    ) -> Option<SublinkEntry> {
        let old = self.entries.insert(key, entry);
        if old.is_none() {
            *self.per_link.entry(key.0).or_default() += 1;
        }
        old
    }

    pub(crate) fn remove(&mut self, key: &(NodeLinkId, SublinkId)) -> Option<SublinkEntry> {
        let old = self.entries.remove(key)?;
        if let Some(n) = self.per_link.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.per_link.remove(&key.0);
            }
        }
        Some(old)
    }

    /// The entries of node link `link`, in sublink order.
    pub(crate) fn on_link(
        &self,
        link: NodeLinkId,
    ) -> impl Iterator<Item = (&(NodeLinkId, SublinkId), &SublinkEntry)> {
        self.entries
            .range((link, SublinkId(0))..=(link, SublinkId(u64::MAX)))
    }

    /// How many entries node link `link` has.
    pub(crate) fn count_on(&self, link: NodeLinkId) -> usize {
        self.per_link.get(&link).copied().unwrap_or(0)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::RouterId;
    use crate::router::edge::Link;

    fn entry(router: u64) -> SublinkEntry {
        SublinkEntry {
            router: RouterId(router),
            link: Link::Local {
                peer: RouterId(router),
                side: crate::router::LinkSide::A,
                state: router,
            },
        }
    }

    #[test]
    fn counts_follow_inserts_and_removes() {
        let (a, b) = (NodeLinkId(1), NodeLinkId(2));
        let mut index = SublinkIndex::default();
        assert!(index.insert((a, SublinkId(0)), entry(1)).is_none());
        assert!(index.insert((a, SublinkId(5)), entry(2)).is_none());
        assert!(index.insert((a, SublinkId(5)), entry(3)).is_some());
        index.insert((b, SublinkId(0)), entry(4));
        assert_eq!(
            (index.count_on(a), index.count_on(b), index.len()),
            (2, 1, 3)
        );
        assert_eq!(index.on_link(a).count(), 2);
        assert!(index.remove(&(a, SublinkId(7))).is_none());
        index.remove(&(a, SublinkId(0)));
        index.remove(&(a, SublinkId(5)));
        assert_eq!((index.count_on(a), index.count_on(b)), (0, 1));
        assert!(!index.per_link.contains_key(&a));
    }
}
