//! The optional [`Tap`]: every chunk a [`Driver`](crate::Driver) reads or
//! hands to a socket, with its fds, for a program that records its links.
//!
//! The driver only reports; what a recording looks like (and any file it
//! goes to) is the tap's business. With no tap installed the cost is one
//! branch per chunk.

use std::os::fd::{BorrowedFd, OwnedFd};

use crate::core::{CloseReason, LinkId};

/// How a link came to be ([`Tap::link_added`]).
#[derive(Debug, Clone, Copy)]
pub enum LinkOrigin<'a> {
    /// Given to [`Driver::add_link`](crate::Driver::add_link) (an inherited
    /// socket, say).
    Added,
    /// A socket that arrived in a message, adopted
    /// ([`CoreRequest::Adopt`](crate::CoreRequest::Adopt),
    /// [`Driver::adopt_fd`](crate::Driver::adopt_fd)): this is that socket,
    /// so a tap can match it with the fd it saw arrive.
    Adopted(BorrowedFd<'a>),
    /// Our end of a new socket pair
    /// ([`CoreRequest::NewLinkPair`](crate::CoreRequest::NewLinkPair),
    /// [`Driver::new_link_pair`](crate::Driver::new_link_pair)); `other_end`
    /// is the end the core will send in a message, so a tap can match it
    /// with the fd it sees leave.
    Pair {
        /// The end given to the core.
        other_end: BorrowedFd<'a>,
    },
}

/// Sees what a driver reads and sends ([`Driver::set_tap`](crate::Driver::set_tap)).
///
/// While a tap is installed every link reads one `recvmsg` at a time
/// ([`Endpoint::set_one_recvmsg_per_read`](mojo_platform_channel::Endpoint::set_one_recvmsg_per_read)),
/// so each [`received`](Self::received) chunk is one kernel read, whose fds
/// belong to the last message starting in it.
pub trait Tap {
    /// `link` was added; it is reported before any of its chunks.
    fn link_added(&mut self, link: LinkId, origin: LinkOrigin<'_>) {
        let _ = (link, origin);
    }

    /// One read from `link`: its bytes and the fds that came with them,
    /// before the core sees them.
    fn received(&mut self, link: LinkId, bytes: &[u8], fds: &[OwnedFd]);

    /// One frame the core handed over for `link` (a whole
    /// [`Transmit`](crate::Transmit)), as it is queued for sending.
    fn sent(&mut self, link: LinkId, bytes: &[u8], fds: &[OwnedFd]);

    /// The peer of `link` ended its stream (everything it sent has been
    /// reported).
    fn end_of_stream(&mut self, link: LinkId) {
        let _ = link;
    }

    /// `link` is gone: nothing more is read from it or sent on it.
    fn link_removed(&mut self, link: LinkId, reason: &CloseReason) {
        let _ = (link, reason);
    }
}
