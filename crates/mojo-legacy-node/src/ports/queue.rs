//! A port's incoming message queue: ordered by sequence number, delivering
//! only the next expected one, holding back at most a bounded window of
//! messages that arrived ahead of a gap.

use mojo_legacy_wire::PortName;
use mojo_wire_kit::ReorderBuffer;

/// A queued user message (its attached ports already exist on this node).
#[derive(Debug)]
pub(crate) struct QueuedMessage<M> {
    pub(crate) sequence_num: u64,
    pub(crate) ports: Vec<PortName>,
    pub(crate) payload: M,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Stale { next_expected: u64 },
    Duplicate,
    TooFarAhead,
}

#[derive(Debug)]
pub(crate) struct MessageQueue<M> {
    /// The messages; its front is the next number to take.
    messages: ReorderBuffer<QueuedMessage<M>>,
}

impl<M> MessageQueue<M> {
    /// `next_seq` must be at least 1.
    pub(crate) fn new(next_seq: u64) -> Self {
        Self {
            messages: ReorderBuffer::new(next_seq),
        }
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.messages.front_seq()
    }

    /// The last number of the in-order run that starts at `next_seq`
    /// (`next_seq - 1` if that message is not here).
    pub(crate) fn contiguous_end(&self) -> u64 {
        self.messages.run_end().saturating_sub(1)
    }

    pub(crate) fn has_next(&self) -> bool {
        self.messages.front().is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    /// Why a message numbered `seq` would be refused as already seen
    /// (stale or duplicate), if it would; says nothing about the window.
    pub(crate) fn already_seen(&self, seq: u64) -> Option<Refused> {
        if seq < self.next_seq() {
            Some(Refused::Stale {
                next_expected: self.next_seq(),
            })
        } else if self.messages.contains(seq) {
            Some(Refused::Duplicate)
        } else {
            None
        }
    }

    /// Queues `message`; `Ok(true)` if it made a new message takeable. A
    /// refused message comes back to the caller with the reason.
    pub(crate) fn insert(
        &mut self,
        message: QueuedMessage<M>,
        window: u64,
    ) -> Result<bool, (Refused, QueuedMessage<M>)> {
        let seq = message.sequence_num;
        if seq < self.next_seq() {
            let next_expected = self.next_seq();
            return Err((Refused::Stale { next_expected }, message));
        }
        if self.messages.contains(seq) {
            return Err((Refused::Duplicate, message));
        }
        if seq > self.contiguous_end().saturating_add(window) {
            return Err((Refused::TooFarAhead, message));
        }
        let run_end = self.messages.run_end();
        self.messages
            .insert(seq, message)
            .map_err(|message| (Refused::Duplicate, message))?;
        Ok(self.messages.run_end() > run_end)
    }

    /// Takes the next in-order message, if it is here.
    pub(crate) fn take_next(&mut self) -> Option<QueuedMessage<M>> {
        self.messages.pop_front()
    }

    /// Empties the queue (in sequence order).
    pub(crate) fn take_all(&mut self) -> Vec<QueuedMessage<M>> {
        self.messages.drain_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64) -> QueuedMessage<u64> {
        QueuedMessage {
            sequence_num: seq,
            ports: Vec::new(),
            payload: seq,
        }
    }

    #[test]
    fn delivers_in_order_despite_arrival_order() {
        let mut q = MessageQueue::new(1);
        assert!(!q.insert(msg(3), 8).unwrap());
        assert!(!q.insert(msg(2), 8).unwrap());
        assert!(!q.has_next());
        assert!(q.insert(msg(1), 8).unwrap());
        let got: Vec<u64> = std::iter::from_fn(|| q.take_next().map(|m| m.payload)).collect();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(q.next_seq(), 4);
    }

    #[test]
    fn refuses_stale_duplicate_and_far_ahead() {
        let mut q = MessageQueue::new(5);
        assert_eq!(
            q.insert(msg(4), 8).unwrap_err().0,
            Refused::Stale { next_expected: 5 }
        );
        q.insert(msg(6), 8).unwrap();
        assert_eq!(q.insert(msg(6), 8).unwrap_err().0, Refused::Duplicate);
        // Window counts from the last in-order message (4): 12 is the edge.
        q.insert(msg(12), 8).unwrap();
        assert_eq!(q.insert(msg(13), 8).unwrap_err().0, Refused::TooFarAhead);
        // Unread in-order messages do not eat into the window.
        for s in 5..=11 {
            if s != 6 {
                q.insert(msg(s), 8).unwrap();
            }
        }
        q.insert(msg(20), 8).unwrap();
        assert_eq!(q.len(), 9);
        assert_eq!(q.take_all().len(), 9);
    }

    #[test]
    fn numbers_near_the_top_do_not_overflow() {
        let mut q = MessageQueue::new(u64::MAX - 1);
        assert!(q.insert(msg(u64::MAX - 1), u64::MAX).unwrap());
        assert!(q.take_next().is_some());
        assert!(q.take_next().is_none());
    }
}
