//! A non-broker inheriting the broker of a non-broker host (spec `ipcz.md`
//! §4.3, Chrome's `NodeConnectorForReferredNonBroker`): what
//! `mojo_proxy --inherit-ipcz-broker` does. The host handed its end of our
//! socket to its broker, so we greet the broker, and its one reply sets up
//! two links: to the broker over this socket, to the host over a new one.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_wire::limits::PROTOCOL_VERSION;
use ipcz_wire::messages::{Body, ConnectToReferredBroker};
use ipcz_wire::types::{LinkSide, NodeType};

use super::frames::{
    advertised_features, check_name, decode_frame, encode_transmit, features_word,
    take_primary_buffer, take_transport,
};
use super::state::Phase;
use super::{
    EstablishedLink, HandshakeError, Link, LinkTransport, MAX_INITIAL_PORTALS, PortalCounts,
    Transmit,
};

const EXPECTED: &str = "ConnectToReferredNonBroker";

/// The two links a referred node gets (§4.3 step 3).
#[derive(Debug)]
pub struct Inherited {
    /// To the broker, over the original socket ([`LinkTransport::Handshake`]),
    /// side B, with no initial portals. Introductions are requested here.
    /// Nothing else travels on it in the recordings.
    pub broker: EstablishedLink,
    /// To the referrer (the host), over the new socket
    /// ([`LinkTransport::Socket`]), side B: the initial portals live here,
    /// `n = min(ours, the referrer's count)`. It has no handshake; read it
    /// at once, its first frames may be route traffic (sequence numbers
    /// from 0 both ways).
    pub referrer: EstablishedLink,
}

/// The referred side of an inherited-broker handshake, sans-IO.
///
/// [`ReferredConnector::new`] queues ConnectToReferredBroker (the body of
/// ConnectFromNonBrokerToBroker with id 3, spec §9.2). The broker's
/// ConnectToReferredNonBroker (3 fds: the broker link's buffer, the
/// referrer link's socket, the referrer link's buffer) completes it;
/// [`ReferredConnector::finish`] yields both links.
#[derive(Debug)]
pub struct ReferredConnector {
    num_initial_portals: u32,
    phase: Phase<Inherited>,
    transmits: VecDeque<Transmit>,
}

impl ReferredConnector {
    /// A connector for a node with `num_initial_portals` initial portals
    /// (at most [`MAX_INITIAL_PORTALS`]), its greeting queued.
    pub fn new(num_initial_portals: u32) -> Result<Self, HandshakeError> {
        if num_initial_portals > MAX_INITIAL_PORTALS {
            return Err(HandshakeError::InvalidConfig {
                field: "num_initial_portals (more than MAX_INITIAL_PORTALS)",
            });
        }
        let greeting = encode_transmit(
            Link::Handshake,
            0,
            Body::ConnectToReferredBroker(ConnectToReferredBroker {
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
    /// ConnectToReferredNonBroker fails the handshake.
    pub fn handle_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), HandshakeError> {
        self.phase.check_waiting(Link::Handshake)?;
        let outcome = self.accept(bytes, fds);
        self.phase.record(outcome)
    }

    /// The socket reached end of stream or failed: before the broker's
    /// reply this fails the handshake (e.g. the host never referred us).
    pub fn handle_closed(&mut self) -> Result<(), HandshakeError> {
        self.phase.closed(Link::Handshake)
    }

    /// Whether the broker's reply has been accepted.
    pub fn is_established(&self) -> bool {
        self.phase.is_done()
    }

    /// The links, once established and until [`Self::finish`].
    pub fn established(&self) -> Option<&Inherited> {
        self.phase.done()
    }

    /// The error the handshake failed with, if it did.
    pub fn error(&self) -> Option<&HandshakeError> {
        self.phase.error()
    }

    /// Takes the established links ([`HandshakeError::Incomplete`] before).
    pub fn finish(&mut self) -> Result<Inherited, HandshakeError> {
        self.phase.finish()
    }

    fn accept(&self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<Option<Inherited>, HandshakeError> {
        let (message, mut fds) = decode_frame(Link::Handshake, bytes, fds)?;
        let connect = match &message.body {
            Body::ConnectToReferredNonBroker(c) => c,
            Body::Unknown(_) => return Ok(None),
            _ => {
                return Err(HandshakeError::UnexpectedMessage {
                    link: Link::Handshake,
                    expected: EXPECTED,
                    found: message.id(),
                });
            }
        };
        check_name(connect.name, &[], EXPECTED, "name")?;
        check_name(
            connect.broker_name,
            &[connect.name],
            EXPECTED,
            "broker_name",
        )?;
        check_name(
            connect.referrer_name,
            &[connect.name, connect.broker_name],
            EXPECTED,
            "referrer_name",
        )?;
        // Chrome's order: both buffers, then the socket.
        let broker_buffer = take_primary_buffer(
            &message,
            &mut fds,
            connect.broker_link_buffer,
            "broker_link_buffer",
        )?;
        let referrer_buffer = take_primary_buffer(
            &message,
            &mut fds,
            connect.referrer_link_buffer,
            "referrer_link_buffer",
        )?;
        let (transport, socket) = take_transport(
            &message,
            &mut fds,
            connect.referrer_link_transport,
            "referrer_link_transport",
        )?;
        let broker = EstablishedLink {
            transport: LinkTransport::Handshake,
            side: LinkSide::B,
            local_name: connect.name,
            remote_name: connect.broker_name,
            remote_type: NodeType::BROKER,
            remote_protocol_version: connect.broker_protocol_version,
            remote_features: features_word(connect.broker_features.as_ref()),
            primary_buffer: broker_buffer.buffer,
            primary_buffer_fd: Some(broker_buffer.fd),
            portal_counts: PortalCounts::default(),
        };
        let referrer = EstablishedLink {
            transport: LinkTransport::Socket {
                fd: socket,
                transport,
            },
            side: LinkSide::B,
            local_name: connect.name,
            remote_name: connect.referrer_name,
            remote_type: NodeType::NORMAL,
            remote_protocol_version: connect.referrer_protocol_version,
            remote_features: features_word(connect.referrer_features.as_ref()),
            primary_buffer: referrer_buffer.buffer,
            primary_buffer_fd: Some(referrer_buffer.fd),
            portal_counts: PortalCounts {
                local: self.num_initial_portals,
                remote: connect.num_initial_portals,
            },
        };
        Ok(Some(Inherited { broker, referrer }))
    }
}
