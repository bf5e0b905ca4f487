//! A broker connecting to another broker (Chrome's
//! `NodeConnectorForBrokerToBroker`, spec `ipcz.md` §4.1 with
//! `IPCZ_CONNECT_NODE_TO_BROKER` on a broker): what MojoIpcz runs for an
//! isolated invitation (`MOJO_SEND_INVITATION_FLAG_ISOLATED` /
//! `MOJO_ACCEPT_INVITATION_FLAG_ISOLATED`), which it allows only between
//! two brokers.
//!
//! Both sides are alike: each allocates and initializes a primary buffer
//! and greets with ConnectFromBrokerToBroker (its name, initial portal
//! count and that buffer). On the other's greeting, the broker with the
//! greater name (pair order `(high, low)`) takes side A and keeps its own
//! buffer; the other takes side B and maps the buffer it received, so both
//! run the link over side A's buffer. The buffer side B allocated is never
//! used.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::limits::PROTOCOL_VERSION;
use ipcz_wire::messages::{Body, ConnectFromBrokerToBroker};
use ipcz_wire::types::{LinkSide, NodeName, NodeType};
use mojo_wire_kit::SharedMemory;

use super::frames::{
    advertised_features, check_name, decode_frame, encode_transmit, features_word, object_index,
    take_primary_buffer,
};
use super::memory::initialize_primary_buffer;
use super::state::Phase;
use super::{
    EstablishedLink, HandshakeError, Link, LinkTransport, MAX_INITIAL_PORTALS, PortalCounts,
    PrimaryBuffer, Transmit,
};

const EXPECTED: &str = "ConnectFromBrokerToBroker";

/// One broker's side of the broker-to-broker handshake, sans-IO.
///
/// The caller creates a primary buffer as for a [`super::BrokerConnector`]
/// (an unsafe region of 128 KiB), maps it and passes fd, description and
/// mapping to [`BrokerToBrokerConnector::new`], which initializes it
/// (§5.1) and queues the greeting with its fd. The other broker's greeting
/// completes the handshake; [`BrokerToBrokerConnector::finish`] yields the
/// link. If it is side A, the caller runs it over the mapping it passed in
/// ([`EstablishedLink::primary_buffer_fd`] is `None`); if side B, over the
/// buffer received (its fd in the link), and drops its own mapping.
#[derive(Debug)]
pub struct BrokerToBrokerConnector {
    local_name: NodeName,
    num_initial_portals: u32,
    own_buffer: SharedBuffer,
    phase: Phase<EstablishedLink>,
    transmits: VecDeque<Transmit>,
}

impl BrokerToBrokerConnector {
    /// A broker named `local_name` (non-zero) with `num_initial_portals`
    /// initial portals (at most [`MAX_INITIAL_PORTALS`]) greeting another
    /// broker with `primary` (mapped as `mapping`), its greeting queued.
    pub fn new<M: SharedMemory>(
        local_name: NodeName,
        num_initial_portals: u32,
        primary: PrimaryBuffer,
        mapping: &M,
    ) -> Result<Self, HandshakeError> {
        if !local_name.is_valid() {
            return Err(HandshakeError::InvalidConfig {
                field: "local_name (zero)",
            });
        }
        if num_initial_portals > MAX_INITIAL_PORTALS {
            return Err(HandshakeError::InvalidConfig {
                field: "num_initial_portals (more than MAX_INITIAL_PORTALS)",
            });
        }
        primary.check_own("primary (an unsafe region of 128 KiB to 1 MiB, non-zero GUID)")?;
        initialize_primary_buffer(mapping)?;
        let buffer = primary.buffer;
        let greeting = encode_transmit(
            Link::Handshake,
            0,
            Body::ConnectFromBrokerToBroker(ConnectFromBrokerToBroker {
                name: local_name,
                protocol_version: PROTOCOL_VERSION,
                num_initial_portals,
                buffer: object_index(0),
                padding: 0,
                features: advertised_features(),
            }),
            vec![(DriverObject::SharedBuffer(buffer), vec![primary.fd])],
        )?;
        Ok(Self {
            local_name,
            num_initial_portals,
            own_buffer: buffer,
            phase: Phase::Waiting(EXPECTED),
            transmits: VecDeque::from([greeting]),
        })
    }

    /// The next frame to write on the socket.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Takes one whole frame read from the socket with exactly the fds its
    /// header claims. Unknown message ids are ignored; anything else but
    /// ConnectFromBrokerToBroker fails the handshake, as does a greeting
    /// naming the zero name or ours, or without a usable primary buffer.
    pub fn handle_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), HandshakeError> {
        self.phase.check_waiting(Link::Handshake)?;
        let outcome = self.accept(bytes, fds);
        self.phase.record(outcome)
    }

    /// The socket reached end of stream or failed: before the greeting this
    /// fails the handshake.
    pub fn handle_closed(&mut self) -> Result<(), HandshakeError> {
        self.phase.closed(Link::Handshake)
    }

    /// Whether the other broker's greeting has been accepted.
    pub fn is_established(&self) -> bool {
        self.phase.is_done()
    }

    /// The link, once established and until [`Self::finish`].
    pub fn established(&self) -> Option<&EstablishedLink> {
        self.phase.done()
    }

    /// The error the handshake failed with, if it did.
    pub fn error(&self) -> Option<&HandshakeError> {
        self.phase.error()
    }

    /// Takes the established link ([`HandshakeError::Incomplete`] before).
    pub fn finish(&mut self) -> Result<EstablishedLink, HandshakeError> {
        self.phase.finish()
    }

    fn accept(
        &self,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<Option<EstablishedLink>, HandshakeError> {
        let (message, mut fds) = decode_frame(Link::Handshake, bytes, fds)?;
        let connect = match &message.body {
            Body::ConnectFromBrokerToBroker(c) => c,
            Body::Unknown(_) => return Ok(None),
            _ => {
                return Err(HandshakeError::UnexpectedMessage {
                    link: Link::Handshake,
                    expected: EXPECTED,
                    found: message.id(),
                });
            }
        };
        check_name(connect.name, &[self.local_name], EXPECTED, "name")?;
        // Taken (and checked) on both sides, as Chrome deserializes it;
        // side A closes it unused.
        let theirs = take_primary_buffer(&message, &mut fds, connect.buffer, "buffer")?;
        let (side, primary_buffer, primary_buffer_fd) = if connect.name < self.local_name {
            (LinkSide::A, self.own_buffer, None)
        } else {
            (LinkSide::B, theirs.buffer, Some(theirs.fd))
        };
        Ok(Some(EstablishedLink {
            transport: LinkTransport::Handshake,
            side,
            local_name: self.local_name,
            remote_name: connect.name,
            remote_type: NodeType::BROKER,
            remote_protocol_version: connect.protocol_version,
            remote_features: features_word(connect.features.as_ref()),
            primary_buffer,
            primary_buffer_fd,
            portal_counts: PortalCounts {
                local: self.num_initial_portals,
                remote: connect.num_initial_portals,
            },
        }))
    }
}
