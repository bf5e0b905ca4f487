//! A broker's connections to other brokers on an established [`Session`]
//! (spec `ipcz.md` §4.1, `BrokerToBroker`): what MojoIpcz runs for an
//! isolated invitation, which it allows only between brokers.
//!
//! [`Session::connect_broker`] starts the handshake on a new socket of the
//! session (the caller adopts the socket under the returned [`SocketId`]);
//! the other broker's greeting decides the sides (the greater name is A and
//! keeps its own buffer; B maps A's, asked for with
//! [`SessionEvent::MapPrimaryBuffer`]). Then the link joins the node beside
//! the session's others, its initial portals open, and
//! [`SessionEvent::BrokerConnected`] names them. A failure ends only that
//! socket ([`SessionEvent::SocketFailed`]).

use mojo_invitation::ipcz::{BrokerToBrokerConnector, EstablishedLink, PrimaryBuffer};
use mojo_wire_kit::SharedMemory;

use super::{
    Phase, Purpose, Session, SessionError, SessionEvent, SessionTransmit, Socket, SocketId,
};
use crate::node::NodeRole;

impl<M: SharedMemory> Session<M> {
    /// Broker, established: starts a connection to another broker over a
    /// new socket, greeting it with `initial_portals` initial portals and
    /// `primary` (a region the caller created, as for
    /// [`Session::broker`], mapped as `mapping`, which the connector
    /// initializes). Adopt the socket as the returned id and feed its input
    /// to [`Session::handle_socket_stream`]; the greeting is queued for it.
    pub fn connect_broker(
        &mut self,
        primary: PrimaryBuffer,
        mapping: M,
        initial_portals: u32,
    ) -> Result<SocketId, SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.config.node.role != NodeRole::Broker {
            return Err(SessionError::NotABroker);
        }
        let Phase::Running { node, .. } = &self.phase else {
            return Err(SessionError::WrongPhase);
        };
        let local_name = node.name();
        let mut connector =
            BrokerToBrokerConnector::new(local_name, initial_portals, primary, &mapping)?;
        let socket = self.new_socket()?;
        while let Some(t) = connector.poll_transmit() {
            self.transmits.push_back(SessionTransmit {
                socket,
                bytes: t.bytes,
                fds: t.fds,
            });
        }
        self.sockets
            .insert(socket, Socket::BrokerPeer(Box::new(connector)));
        self.broker_peer_mappings.insert(socket, mapping);
        Ok(socket)
    }

    /// The other broker on `socket` greeted: side A links at once over its
    /// own buffer, side B asks for the other's to be mapped first.
    pub(super) fn broker_peer_greeted(&mut self, socket: SocketId) -> Result<(), SessionError> {
        let Some(Socket::BrokerPeer(mut connector)) = self.sockets.remove(&socket) else {
            return Err(SessionError::UnknownSocket(socket));
        };
        let own = self.broker_peer_mappings.remove(&socket);
        let result = connector
            .finish()
            .map_err(SessionError::Handshake)
            .and_then(
                |mut established| match established.primary_buffer_fd.take() {
                    None => {
                        let mapping = own.ok_or(SessionError::MissingPrimaryBuffer)?;
                        self.broker_peer_link(socket, established, mapping)
                    }
                    Some(fd) => {
                        // Our own buffer goes unused (`own` drops here).
                        self.events.push_back(SessionEvent::MapPrimaryBuffer {
                            buffer: established.primary_buffer,
                            fd,
                        });
                        self.awaiting
                            .push_back((established, Purpose::BrokerPeer(socket)));
                        self.sockets.insert(socket, Socket::BrokerPeerMapping);
                        Ok(())
                    }
                },
            );
        if let Err(e) = &result {
            self.fail_referral(socket, e.clone());
        }
        result
    }

    /// The link to the other broker on `socket` joins the node (its buffer
    /// mapped as `mapping`) with its initial portals.
    pub(super) fn broker_peer_link(
        &mut self,
        socket: SocketId,
        established: EstablishedLink,
        mapping: M,
    ) -> Result<(), SessionError> {
        let Phase::Running { mut node, link } = std::mem::replace(&mut self.phase, Phase::Ended)
        else {
            return Err(SessionError::WrongPhase);
        };
        let remote_name = established.remote_name;
        let added =
            self.add_link(&mut node, established, mapping)
                .and_then(|((new_link, counts), _)| {
                    let portals = self.open_portals(&mut node, new_link, counts)?;
                    Ok((new_link, portals))
                });
        self.phase = Phase::Running { node, link };
        let (new_link, portals) = added?;
        self.sockets.insert(socket, Socket::Link(new_link));
        self.events.push_back(SessionEvent::BrokerConnected {
            socket,
            remote_name,
            portals,
        });
        self.drain_node();
        Ok(())
    }
}
