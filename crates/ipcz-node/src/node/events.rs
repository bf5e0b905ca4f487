//! The bounded queue behind [`super::Node::poll_event`].
//!
//! Portal notifications are level-triggered facts, so they coalesce: while
//! a `Readable` for a portal waits to be polled, another one for the same
//! portal adds nothing (the caller reads until `get` returns nothing). At
//! most [`MAX_QUEUED_EVENTS`] events wait in the queue; portal
//! notifications that find it full wait, in order and still coalesced, in
//! an overflow that refills the queue as the caller polls, so none is lost
//! and order is kept. Every other event is bounded by its own per-link
//! limit (one `LinkDropped` per link, buffers being mapped, memory requests,
//! introductions) and always queued.

use std::collections::{BTreeSet, VecDeque};

use super::NodeEvent;
use crate::router::RouterId;

/// Most events waiting in a node's queue before portal notifications wait
/// in the overflow (see the module documentation).
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// The queue of one node.
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    queue: VecDeque<NodeEvent>,
    /// Portal notifications that found the queue full, in arrival order.
    overflow: VecDeque<NodeEvent>,
    /// Portals with a `Readable` in `queue` or `overflow`.
    readable_pending: BTreeSet<RouterId>,
}

impl EventQueue {
    /// Queues `event`, coalescing a `Readable` that is already waiting.
    pub(super) fn push(&mut self, event: NodeEvent) {
        match &event {
            NodeEvent::Readable { portal } => {
                if !self.readable_pending.insert(*portal) {
                    return;
                }
                self.push_portal_event(event);
            }
            NodeEvent::PeerClosed { .. } => self.push_portal_event(event),
            _ => self.queue.push_back(event),
        }
    }

    fn push_portal_event(&mut self, event: NodeEvent) {
        // Once anything overflowed, later notifications queue behind it.
        if self.overflow.is_empty() && self.queue.len() < MAX_QUEUED_EVENTS {
            self.queue.push_back(event);
        } else {
            self.overflow.push_back(event);
        }
    }

    /// The next event.
    pub(super) fn pop(&mut self) -> Option<NodeEvent> {
        let event = self.queue.pop_front().or_else(|| self.overflow.pop_front());
        while self.queue.len() < MAX_QUEUED_EVENTS {
            match self.overflow.pop_front() {
                Some(e) => self.queue.push_back(e),
                None => break,
            }
        }
        if let Some(NodeEvent::Readable { portal }) = &event {
            self.readable_pending.remove(portal);
        }
        event
    }

    /// Events in the queue proper (at most [`MAX_QUEUED_EVENTS`] portal
    /// notifications among them).
    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Every event waiting, overflow included.
    pub(super) fn len(&self) -> usize {
        self.queue.len() + self.overflow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(i: u64) -> NodeEvent {
        NodeEvent::Readable {
            portal: RouterId(i),
        }
    }

    #[test]
    fn readable_coalesces_while_waiting_and_again_after_polled() {
        let mut q = EventQueue::default();
        q.push(readable(1));
        q.push(readable(1));
        q.push(readable(2));
        assert_eq!(q.len(), 2);
        assert!(matches!(
            q.pop(),
            Some(NodeEvent::Readable {
                portal: RouterId(1)
            })
        ));
        q.push(readable(1));
        assert!(matches!(
            q.pop(),
            Some(NodeEvent::Readable {
                portal: RouterId(2)
            })
        ));
        assert!(matches!(
            q.pop(),
            Some(NodeEvent::Readable {
                portal: RouterId(1)
            })
        ));
        assert!(q.pop().is_none());
    }

    #[test]
    fn at_the_limit_portal_notifications_overflow_in_order_and_none_is_lost() {
        let mut q = EventQueue::default();
        let n = MAX_QUEUED_EVENTS as u64 + 10;
        for i in 0..n {
            q.push(readable(i));
            q.push(readable(i));
        }
        // Portal 0's closure comes after everything before it.
        q.push(NodeEvent::PeerClosed {
            portal: RouterId(0),
            disconnected: false,
        });
        assert_eq!(q.queued(), MAX_QUEUED_EVENTS);
        assert_eq!(q.len(), n as usize + 1);
        for i in 0..n {
            match q.pop() {
                Some(NodeEvent::Readable { portal }) => assert_eq!(portal, RouterId(i)),
                other => panic!("readable {i} expected, got {other:?}"),
            }
            assert!(q.queued() <= MAX_QUEUED_EVENTS);
        }
        assert!(matches!(
            q.pop(),
            Some(NodeEvent::PeerClosed {
                portal: RouterId(0),
                ..
            })
        ));
        assert!(q.pop().is_none());
        assert!(q.readable_pending.is_empty());
    }

    #[test]
    fn other_events_are_always_queued() {
        let mut q = EventQueue::default();
        for i in 0..MAX_QUEUED_EVENTS as u64 {
            q.push(readable(i));
        }
        q.push(NodeEvent::NeedNodeLink {
            node: ipcz_wire::types::NodeName { high: 1, low: 1 },
        });
        assert_eq!(q.queued(), MAX_QUEUED_EVENTS + 1);
        q.push(readable(MAX_QUEUED_EVENTS as u64));
        assert_eq!(q.len(), MAX_QUEUED_EVENTS + 2);
    }
}
