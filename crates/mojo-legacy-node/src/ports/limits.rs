//! Resource limits of a [`Node`](super::Node): what a peer may make it hold.

/// Default for [`Limits::max_ports`].
pub const DEFAULT_MAX_PORTS: usize = 65_536;
/// Default for [`Limits::max_ports_per_message`].
pub const DEFAULT_MAX_PORTS_PER_MESSAGE: usize = 1_024;
/// Default for [`Limits::max_reorder_window`].
pub const DEFAULT_MAX_REORDER_WINDOW: u64 = 4_096;
/// Default for [`Limits::max_queued_messages`].
pub const DEFAULT_MAX_QUEUED_MESSAGES: usize = 262_144;
/// Default for [`Limits::max_control_queue`].
pub const DEFAULT_MAX_CONTROL_QUEUE: usize = 256;

/// Bounds on what one node holds. Input from a peer that would exceed one is
/// refused with a typed [`Error`](super::Error), never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most ports (of every state) the node holds ([`DEFAULT_MAX_PORTS`]).
    pub max_ports: usize,
    /// Most ports one incoming user message may carry
    /// ([`DEFAULT_MAX_PORTS_PER_MESSAGE`]).
    pub max_ports_per_message: usize,
    /// How far ahead of the last in-order message a user message may be
    /// numbered, i.e. the most messages a port holds back waiting for a gap
    /// ([`DEFAULT_MAX_REORDER_WINDOW`]).
    pub max_reorder_window: u64,
    /// Most user messages queued in all ports together
    /// ([`DEFAULT_MAX_QUEUED_MESSAGES`]).
    pub max_queued_messages: usize,
    /// Most control events one Buffering port defers until it is accepted
    /// ([`DEFAULT_MAX_CONTROL_QUEUE`]).
    pub max_control_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ports: DEFAULT_MAX_PORTS,
            max_ports_per_message: DEFAULT_MAX_PORTS_PER_MESSAGE,
            max_reorder_window: DEFAULT_MAX_REORDER_WINDOW,
            max_queued_messages: DEFAULT_MAX_QUEUED_MESSAGES,
            max_control_queue: DEFAULT_MAX_CONTROL_QUEUE,
        }
    }
}
