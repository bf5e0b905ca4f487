//! A non-broker connecting to a broker host (spec `ipcz.md` §4.2,
//! Chrome's `NodeConnectorForNonBrokerToBroker`): what `mojo_proxy` does
//! towards Chrome in its normal mode.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_wire::limits::PROTOCOL_VERSION;
use ipcz_wire::messages::{Body, ConnectFromNonBrokerToBroker};
use ipcz_wire::types::{LinkSide, NodeType};

use super::frames::{
    advertised_features, check_name, decode_frame, encode_transmit, features_word,
    take_primary_buffer,
};
use super::state::Phase;
use super::{
    EstablishedLink, HandshakeError, Link, LinkTransport, MAX_INITIAL_PORTALS, PortalCounts,
    Transmit,
};

const EXPECTED: &str = "ConnectFromBrokerToNonBroker";

/// The non-broker side of the direct handshake, sans-IO.
///
/// [`NonBrokerConnector::new`] queues ConnectFromNonBrokerToBroker
/// (`protocol_version` 0, our portal count, features `[0]`, sequence
/// number 0, no fds; spec §9.1 has its bytes). Hand every frame of the
/// socket to [`NonBrokerConnector::handle_frame`] until
/// [`NonBrokerConnector::is_established`]; the broker's
/// ConnectFromBrokerToNonBroker completes it, and
/// [`NonBrokerConnector::finish`] yields the link: side B, our name as the
/// broker assigned it, the broker as the remote, and the primary buffer's
/// fd to map. Frames after that one belong to the node (their NodeLink
/// sequence numbers start at 0 in both directions).
#[derive(Debug)]
pub struct NonBrokerConnector {
    num_initial_portals: u32,
    phase: Phase<EstablishedLink>,
    transmits: VecDeque<Transmit>,
}

impl NonBrokerConnector {
    /// A connector for a node with `num_initial_portals` initial portals
    /// (at most [`MAX_INITIAL_PORTALS`]; a Mojo node: attachments + 1), its
    /// greeting queued.
    pub fn new(num_initial_portals: u32) -> Result<Self, HandshakeError> {
        if num_initial_portals > MAX_INITIAL_PORTALS {
            return Err(HandshakeError::InvalidConfig {
                field: "num_initial_portals (more than MAX_INITIAL_PORTALS)",
            });
        }
        let greeting = encode_transmit(
            Link::Handshake,
            0,
            Body::ConnectFromNonBrokerToBroker(ConnectFromNonBrokerToBroker {
                protocol_version: PROTOCOL_VERSION,
                num_initial_portals,
                features: advertised_features(),
            }),
            Vec::new(),
        )?;
        Ok(Self {
            num_initial_portals,
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
    /// ConnectFromBrokerToNonBroker fails the handshake.
    pub fn handle_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), HandshakeError> {
        self.phase.check_waiting(Link::Handshake)?;
        let outcome = self.accept(bytes, fds);
        self.phase.record(outcome)
    }

    /// The socket reached end of stream or failed: before the broker's
    /// greeting this fails the handshake ([`HandshakeError::PeerClosed`]).
    pub fn handle_closed(&mut self) -> Result<(), HandshakeError> {
        self.phase.closed(Link::Handshake)
    }

    /// Whether the broker's greeting has been accepted.
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
            Body::ConnectFromBrokerToNonBroker(c) => c,
            Body::Unknown(_) => return Ok(None),
            _ => {
                return Err(HandshakeError::UnexpectedMessage {
                    link: Link::Handshake,
                    expected: EXPECTED,
                    found: message.id(),
                });
            }
        };
        check_name(connect.broker_name, &[], EXPECTED, "broker_name")?;
        check_name(
            connect.receiver_name,
            &[connect.broker_name],
            EXPECTED,
            "receiver_name",
        )?;
        let buffer = take_primary_buffer(&message, &mut fds, connect.buffer, "buffer")?;
        Ok(Some(EstablishedLink {
            transport: LinkTransport::Handshake,
            side: LinkSide::B,
            local_name: connect.receiver_name,
            remote_name: connect.broker_name,
            remote_type: NodeType::BROKER,
            remote_protocol_version: connect.protocol_version,
            remote_features: features_word(connect.features.as_ref()),
            primary_buffer: buffer.buffer,
            primary_buffer_fd: Some(buffer.fd),
            portal_counts: PortalCounts {
                local: self.num_initial_portals,
                remote: connect.num_initial_portals,
            },
        }))
    }
}
