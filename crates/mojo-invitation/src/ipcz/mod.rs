//! ipcz connectors (spec `ipcz.md` §4): the handshakes that give an ipcz
//! node its first NodeLinks and the initial portals on them, one sans-IO
//! state machine per role.
//!
//! # Roles
//!
//! | connector | role (Chrome's connector) | sends | expects | yields |
//! |---|---|---|---|---|
//! | [`NonBrokerConnector`] | non-broker to a broker host (`NonBrokerToBroker`, §4.2; what `mojo_proxy` does) | ConnectFromNonBrokerToBroker | ConnectFromBrokerToNonBroker + primary buffer | one [`EstablishedLink`], side B |
//! | [`BrokerConnector`] | broker accepting a non-broker (`BrokerToNonBroker`) | ConnectFromBrokerToNonBroker + primary buffer | ConnectFromNonBrokerToBroker | one [`EstablishedLink`], side A |
//! | [`BrokerToBrokerConnector`] | broker connecting to a broker (`BrokerToBroker`; MojoIpcz's isolated invitations) | ConnectFromBrokerToBroker + primary buffer | the same | one [`EstablishedLink`], side A for the greater name (over its own buffer), else B |
//! | [`ReferredConnector`] | non-broker inheriting the broker of a non-broker host (`ReferredNonBroker`, §4.3; `mojo_proxy --inherit-ipcz-broker`) | ConnectToReferredBroker | ConnectToReferredNonBroker + 2 buffers + 1 socket | [`Inherited`]: broker link and referrer link, side B |
//! | [`ReferrerConnector`] | non-broker host sharing its broker (`Referrer`) | ReferNonBroker on its broker link | NonBrokerReferralAccepted / Rejected | one [`EstablishedLink`] to the referred node, side A |
//! | [`BrokerReferralConnector`] | the broker serving a referral (`BrokerReferral`) | ConnectToReferredNonBroker, then NonBrokerReferralAccepted | ConnectToReferredBroker | one [`EstablishedLink`] to the referred node, side A |
//!
//! # What goes in and out (sans-IO)
//!
//! - **In: one whole frame at a time**, the `IpczHeader` included, with
//!   exactly the fds its `num_handles` claims (popped from the socket's fd
//!   FIFO, spec §1.3); deframe with `ipcz_wire::frame::Frame::decode_prefix`
//!   or `ipcz_wire::frame::Deframer`. The connector decodes it with
//!   `ipcz_wire`'s `Message::decode` (every receiver check of §2.7), so a bad
//!   frame is a [`HandshakeError`] naming what was wrong. Unknown message ids
//!   are ignored, as Chrome's receiver does (§2.7 rule 8); any other known
//!   message is [`HandshakeError::UnexpectedMessage`] (rule 9). fds the
//!   result does not keep (unclaimed, surplus, or of a rejected frame) are
//!   closed before the call returns.
//! - **Out: [`Transmit`]s** from `poll_transmit`: one frame each, for one
//!   [`Link`], with its fds, to be written in order. Greetings are queued by
//!   the constructor: both sides greet at once, neither waits (§4.2).
//!   Frames carry a zero `creation_timeticks_us` (Chrome's receiver only
//!   feeds a histogram with it); [`Transmit::set_timestamp`] stamps a clock
//!   reading.
//! - **Memory and sockets come from the caller.** A connector never calls
//!   the OS: whoever creates a primary buffer (the broker) makes the region
//!   with the platform crate, hands the connector its fd and description
//!   ([`PrimaryBuffer`]) and its mapping (any [`mojo_wire_kit::SharedMemory`]),
//!   which the connector initializes (§5.1) before the fd is sent. Whoever
//!   receives one gets its fd and description in [`EstablishedLink`] and
//!   maps it. Names come from an injected [`mojo_wire_kit::RandomSource`].
//! - **Failures are sticky**: after an error every call returns it again
//!   (except that a [`BrokerReferralConnector`] still yields its
//!   NonBrokerReferralRejected).
//!
//! # After the handshake: initial portals (§4.4, §4.5)
//!
//! [`EstablishedLink::initial_portals`] lists, for `i` in `0..n` with
//! `n = min(ours, theirs)`: sublink `i`, a central link whose
//! RouterLinkState is the unmanaged slot `i` of the primary buffer (offset
//! `256 + 64 i`), our NodeLink side as the link side, sequence numbers from
//! 0 both ways. The node then marks its side stable in each slot and sends
//! `FlushRouter{i}` where the other side is waiting (§4.4 steps 1-2).
//! [`EstablishedLink::surplus_portals`] are ours beyond `n`: they are
//! peer-closed at once with inbound sequence length 0, nothing is sent.
//! Mojo reserves portal 0 ([`MOJO_RESERVED_PORTAL`]) for its shared-memory
//! service, which a proxy closes at once (`RouteClosed{0, 0}`), and maps
//! attachment names to portals 1..=7 ([`attachment_portal`]).

mod attachments;
mod broker;
mod broker_to_broker;
mod error;
mod frames;
#[doc(hidden)]
pub mod fuzzing;
mod memory;
mod non_broker;
mod referral;
mod referred;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::{SharedBuffer, Transport};
use ipcz_wire::limits::{FRAME_HEADER_SIZE, PRIMARY_BUFFER_SIZE, ROUTER_LINK_STATE_SIZE};
use ipcz_wire::memory::primary;
use ipcz_wire::types::{FragmentDescriptor, LinkSide, NodeName, NodeType, SublinkId};
use mojo_wire_kit::{Guid, RegionMode};

pub use attachments::{
    MAX_ATTACHMENTS, MAX_MOJO_INITIAL_PORTALS, MOJO_RESERVED_PORTAL, attachment_index,
    attachment_portal,
};
pub use broker::BrokerConnector;
pub use broker_to_broker::BrokerToBrokerConnector;
pub use error::HandshakeError;
pub use non_broker::NonBrokerConnector;
pub use referral::{
    BrokerReferralConnector, Referral, ReferralResources, ReferrerConnector, ReferrerInfo,
};
pub use referred::{Inherited, ReferredConnector};

/// Most initial portals a connector opens on its side: ipcz reserves
/// sublinks `0..12` and their RouterLinkState slots for them
/// (`kMaxInitialPortals`, §5.1-5.2). A peer may announce more; only
/// `min(ours, theirs)` are established.
pub const MAX_INITIAL_PORTALS: u32 = ipcz_wire::limits::MAX_INITIAL_PORTALS as u32;

/// Largest primary buffer accepted from a peer. Chrome's are exactly
/// [`PRIMARY_BUFFER_SIZE`] (128 KiB) and only that much is ever used; the
/// bound keeps a peer from making the receiver map a huge region.
pub const MAX_PRIMARY_BUFFER_SIZE: u32 = 1024 * 1024;

/// The features this crate advertises in every greeting: none (in
/// particular not mem_v2, so both sides use the shared id counters of
/// §5.2). Sent as a one-element array, as Chrome does.
pub const ADVERTISED_FEATURES: u64 = 0;

/// Most attempts at drawing a fresh node name before giving up (each
/// attempt fails only if the random source returns zero or a name already
/// in use).
pub const MAX_NAME_ATTEMPTS: usize = 16;

/// Which socket a [`Transmit`] goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// The socket the connector handshakes on (for a
    /// [`BrokerReferralConnector`]: the referred node's socket, which came in
    /// ReferNonBroker).
    Handshake,
    /// The sender's already established NodeLink to its broker (only a
    /// [`ReferrerConnector`]'s ReferNonBroker).
    Broker,
    /// The broker's already established NodeLink to the referrer (only a
    /// [`BrokerReferralConnector`]'s NonBrokerReferralAccepted/Rejected).
    Referrer,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Handshake => "handshake socket",
            Self::Broker => "broker link",
            Self::Referrer => "referrer link",
        })
    }
}

/// One frame to send: `bytes` (IpczHeader and message) with `fds`, which the
/// writer attaches to the frame's first `sendmsg` and closes once sent.
#[derive(Debug)]
pub struct Transmit {
    /// Which socket.
    pub link: Link,
    /// The whole frame.
    pub bytes: Vec<u8>,
    /// Its fds, as many as the header's `num_handles`, in driver-object order.
    pub fds: Vec<OwnedFd>,
}

impl Transmit {
    /// Stamps the header's `creation_timeticks_us` (Chrome sends
    /// `CLOCK_MONOTONIC` in microseconds; connectors leave it 0).
    pub fn set_timestamp(&mut self, timestamp_us: i64) {
        if let Some(field) = self.bytes.get_mut(8..FRAME_HEADER_SIZE) {
            field.copy_from_slice(&timestamp_us.to_le_bytes());
        }
    }
}

/// A primary buffer (BufferId 0 of a NodeLinkMemory) as it travels: the
/// SharedBuffer description and its one fd. Always an unsafe (mode 2)
/// region of at least 128 KiB: Chrome allocates every NodeLinkMemory buffer
/// so and maps it read-write (§1.6.2).
#[derive(Debug)]
pub struct PrimaryBuffer {
    /// Size, mode ([`RegionMode::Unsafe`]) and GUID.
    pub buffer: SharedBuffer,
    /// The region's one `O_RDWR` fd.
    pub fd: OwnedFd,
}

impl PrimaryBuffer {
    /// A buffer the caller created: `fd` must be an `O_RDWR` fd of a region
    /// of `buffer_size` bytes whose pages exist (Chrome maps them; a shorter
    /// file would kill it with SIGBUS, §11.3), `guid` its non-zero GUID.
    pub fn new(buffer_size: u32, guid: Guid, fd: OwnedFd) -> Self {
        Self {
            buffer: SharedBuffer {
                buffer_size,
                mode: RegionMode::Unsafe,
                guid,
            },
            fd,
        }
    }

    /// Checks what a creator must get right before sending (§1.6.2, §5.1).
    fn check_own(&self, field: &'static str) -> Result<(), HandshakeError> {
        let b = self.buffer;
        if b.mode != RegionMode::Unsafe {
            return Err(HandshakeError::InvalidConfig { field });
        }
        if (b.buffer_size as usize) < PRIMARY_BUFFER_SIZE || b.buffer_size > MAX_PRIMARY_BUFFER_SIZE
        {
            return Err(HandshakeError::InvalidConfig { field });
        }
        if !b.guid.is_valid() {
            return Err(HandshakeError::InvalidConfig { field });
        }
        Ok(())
    }
}

/// Which socket an [`EstablishedLink`] runs over.
#[derive(Debug)]
pub enum LinkTransport {
    /// The socket the connector handshook on (its [`Link::Handshake`]).
    Handshake,
    /// A new socket that arrived in the handshake as a Transport driver
    /// object: adopt `fd` (non-blocking) and read it at once; this link has
    /// no handshake of its own, its first frames may be route traffic.
    Socket {
        /// The socket.
        fd: OwnedFd,
        /// The Transport header it came with (what the other end is).
        transport: Transport,
    },
}

/// Everything the node needs to run one NodeLink a handshake produced.
#[derive(Debug)]
pub struct EstablishedLink {
    /// The socket.
    pub transport: LinkTransport,
    /// This node's side of the link (§4.1: the non-broker, referred or not,
    /// is B; the broker, and the referrer, are A).
    pub side: LinkSide,
    /// This node's name (for a non-broker: the one the broker assigned).
    pub local_name: NodeName,
    /// The other node's name.
    pub remote_name: NodeName,
    /// Whether the other node is the broker.
    pub remote_type: NodeType,
    /// The protocol version the other node announced (0 from every Chrome;
    /// recorded, not checked, as Chrome does).
    pub remote_protocol_version: u32,
    /// Element 0 of the other node's features array (0 if it sent none;
    /// later elements name no feature this crate knows). Bit 0 is mem_v2,
    /// which only matters if both sides advertise it; this crate never does.
    pub remote_features: u64,
    /// The link's primary buffer (BufferId 0).
    pub primary_buffer: SharedBuffer,
    /// Its fd, for the side that received it: map it (read-write, at least
    /// [`PRIMARY_BUFFER_SIZE`] bytes) for the link's NodeLinkMemory; never
    /// initialize it, the creator did. `None` on the creating side, which
    /// sent its fd and keeps the mapping it passed to the connector.
    pub primary_buffer_fd: Option<OwnedFd>,
    /// Initial portal counts on each side.
    pub portal_counts: PortalCounts,
}

/// How many initial portals each side of a link opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortalCounts {
    /// Ours (at most [`MAX_INITIAL_PORTALS`]).
    pub local: u32,
    /// What the other side announced (any value).
    pub remote: u32,
}

impl PortalCounts {
    /// `n = min(local, remote)`: the portals established on the link.
    pub fn established(self) -> u32 {
        self.local.min(self.remote)
    }
}

/// One established initial portal (§4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitialPortal {
    /// Portal index `i`, as the application numbers its initial portals.
    pub index: u32,
    /// The sublink of its central link: `i`.
    pub sublink: SublinkId,
    /// Its RouterLinkState: slot `i` of the primary buffer, unmanaged (never
    /// reference counted or freed).
    pub link_state: FragmentDescriptor,
    /// Our side of that central link (the NodeLink side).
    pub side: LinkSide,
}

impl EstablishedLink {
    /// The initial portals established on this link, `0..n`.
    pub fn initial_portals(&self) -> impl Iterator<Item = InitialPortal> + '_ {
        let side = self.side;
        (0..self.portal_counts.established()).filter_map(move |index| {
            let slot = primary::initial_link_state(index as usize)?;
            Some(InitialPortal {
                index,
                sublink: SublinkId(u64::from(index)),
                link_state: FragmentDescriptor::new(
                    0,
                    u32::try_from(slot.start).ok()?,
                    ROUTER_LINK_STATE_SIZE as u32,
                ),
                side,
            })
        })
    }

    /// Our initial portals beyond `n`: peer-closed at once with inbound
    /// sequence length 0; nothing is sent for them.
    pub fn surplus_portals(&self) -> Range<u32> {
        self.portal_counts.established()
            ..self
                .portal_counts
                .local
                .max(self.portal_counts.established())
    }
}

/// Draws a fresh non-zero name that differs from every name in `taken`.
fn fresh_name(
    random: &mut dyn mojo_wire_kit::RandomSource,
    taken: &[NodeName],
) -> Result<NodeName, HandshakeError> {
    for _ in 0..MAX_NAME_ATTEMPTS {
        let name = NodeName {
            high: random.next_u64(),
            low: random.next_u64(),
        };
        if name.is_valid() && !taken.contains(&name) {
            return Ok(name);
        }
    }
    Err(HandshakeError::NameGeneration)
}
