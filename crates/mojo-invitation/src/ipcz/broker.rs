//! A broker accepting a non-broker (Chrome's
//! `NodeConnectorForBrokerToNonBroker`, spec `ipcz.md` §4.2 from the other
//! side): for test peers and library users; the proxy never plays it.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::limits::PROTOCOL_VERSION;
use ipcz_wire::messages::{Body, ConnectFromBrokerToNonBroker};
use ipcz_wire::types::{LinkSide, NodeName, NodeType};
use mojo_wire_kit::{RandomSource, SharedMemory};

use super::frames::{
    advertised_features, decode_frame, encode_transmit, features_word, object_index,
};
use super::memory::initialize_primary_buffer;
use super::state::Phase;
use super::{
    EstablishedLink, HandshakeError, Link, LinkTransport, MAX_INITIAL_PORTALS, PortalCounts,
    PrimaryBuffer, Transmit, fresh_name,
};

const EXPECTED: &str = "ConnectFromNonBrokerToBroker";

/// The broker side of the direct handshake, sans-IO.
///
/// The caller creates the link's primary buffer (an unsafe region of 128
/// KiB: with the platform crate, a sealed memfd), maps it and passes its fd
/// and description ([`PrimaryBuffer`]) and the mapping to
/// [`BrokerConnector::new`], which initializes the buffer through the
/// mapping (§5.1), draws the non-broker's name from the random source, and
/// queues ConnectFromBrokerToNonBroker with the buffer's fd (sequence
/// number 0). The non-broker's ConnectFromNonBrokerToBroker completes the
/// handshake; [`BrokerConnector::finish`] yields the link as side A.
#[derive(Debug)]
pub struct BrokerConnector {
    local_name: NodeName,
    remote_name: NodeName,
    num_initial_portals: u32,
    primary_buffer: SharedBuffer,
    phase: Phase<EstablishedLink>,
    transmits: VecDeque<Transmit>,
}

impl BrokerConnector {
    /// A broker named `local_name` (non-zero) with `num_initial_portals`
    /// initial portals (at most [`MAX_INITIAL_PORTALS`]) greeting a new
    /// non-broker over `primary` (mapped as `mapping`), its greeting queued.
    pub fn new<M: SharedMemory>(
        local_name: NodeName,
        num_initial_portals: u32,
        primary: PrimaryBuffer,
        mapping: &M,
        random: &mut dyn RandomSource,
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
        let remote_name = fresh_name(random, &[local_name])?;
        let buffer = primary.buffer;
        let greeting = encode_transmit(
            Link::Handshake,
            0,
            Body::ConnectFromBrokerToNonBroker(ConnectFromBrokerToNonBroker {
                broker_name: local_name,
                receiver_name: remote_name,
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
            remote_name,
            num_initial_portals,
            primary_buffer: buffer,
            phase: Phase::Waiting(EXPECTED),
            transmits: VecDeque::from([greeting]),
        })
    }

    /// The name this broker assigned to the non-broker.
    pub fn remote_name(&self) -> NodeName {
        self.remote_name
    }

    /// The next frame to write on the socket.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Takes one whole frame read from the socket with exactly the fds its
    /// header claims. Unknown message ids are ignored; anything else but
    /// ConnectFromNonBrokerToBroker fails the handshake.
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

    /// Whether the non-broker's greeting has been accepted.
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
        // The greeting has no driver objects; any that come are closed.
        let (message, _fds) = decode_frame(Link::Handshake, bytes, fds)?;
        let connect = match &message.body {
            Body::ConnectFromNonBrokerToBroker(c) => c,
            Body::Unknown(_) => return Ok(None),
            _ => {
                return Err(HandshakeError::UnexpectedMessage {
                    link: Link::Handshake,
                    expected: EXPECTED,
                    found: message.id(),
                });
            }
        };
        Ok(Some(EstablishedLink {
            transport: LinkTransport::Handshake,
            side: LinkSide::A,
            local_name: self.local_name,
            remote_name: self.remote_name,
            remote_type: NodeType::NORMAL,
            remote_protocol_version: connect.protocol_version,
            remote_features: features_word(connect.features.as_ref()),
            primary_buffer: self.primary_buffer,
            primary_buffer_fd: None,
            portal_counts: PortalCounts {
                local: self.num_initial_portals,
                remote: connect.num_initial_portals,
            },
        }))
    }
}
