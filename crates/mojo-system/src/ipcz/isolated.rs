//! Isolated connections of the Mojo+ipcz system (MojoIpcz's
//! `MOJO_SEND_INVITATION_FLAG_ISOLATED` / `MOJO_ACCEPT_INVITATION_FLAG_ISOLATED`):
//! two brokers linked by ConnectFromBrokerToBroker over a socket of their
//! own, one pipe on it. MojoIpcz allows them only between brokers (it
//! checks that the process is one), so only a system made by
//! [`send_broker_invitation`](super::send_broker_invitation) connects; a
//! non-broker cannot, in Chrome either.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::time::Instant;

use ipcz_node::router::RouterId;
use ipcz_node::session::SocketId;
use mojo_invitation::ipcz::attachment_portal;

use super::{HANDSHAKE_TIMEOUT, IpczProtocol};
use crate::MessagePipe;
use crate::runtime::{ConnectError, RealSystem};

/// The attachment name of an isolated invitation's one pipe (four zero
/// bytes, as Mojo names it): initial portal 1.
pub const ISOLATED_PIPE: [u8; 4] = [0; 4];

/// Initial portals each side opens: Mojo's reserved portal 0 and the pipe
/// (MojoIpcz's sending side opens as many; its accepting side opens 8, and
/// the smaller count wins).
const ISOLATED_PORTALS: u32 = 2;

/// The isolated connections of one system, by session socket: the pipe's
/// portal once the link is up, or why it failed.
#[derive(Debug, Default)]
pub(super) struct IsolatedLinks {
    results: BTreeMap<SocketId, Result<RouterId, String>>,
}

impl IsolatedLinks {
    pub(super) fn connected(&mut self, socket: SocketId, portals: &[Option<RouterId>]) {
        let index = attachment_portal(&ISOLATED_PIPE) as usize;
        let result = portals
            .get(index)
            .copied()
            .flatten()
            .ok_or_else(|| "the other broker opened no pipe".to_string());
        self.results.insert(socket, result);
    }

    pub(super) fn failed(&mut self, socket: SocketId, error: String) {
        self.results.insert(socket, Err(error));
    }

    fn take(&mut self, socket: SocketId) -> Option<Result<RouterId, String>> {
        self.results.remove(&socket)
    }
}

/// `mojo::OutgoingInvitation::SendIsolated` and
/// `mojo::IncomingInvitation::AcceptIsolated` over Mojo+ipcz (the two sides
/// do the same): links this broker to the broker at the other end of
/// `socket` (a platform channel end of its own) and returns the one pipe,
/// once the link is up (waits up to [`HANDSHAKE_TIMEOUT`]). `system` must
/// be a broker's ([`send_broker_invitation`](super::send_broker_invitation));
/// its network is untouched. Portals sent on the pipe work if their other
/// ends are on one of the two brokers (no introductions across networks).
pub fn connect_isolated(
    system: &RealSystem<IpczProtocol>,
    socket: OwnedFd,
) -> Result<MessagePipe, ConnectError> {
    let id = system
        .with_protocol(|p| p.core.connect_broker(socket, ISOLATED_PORTALS))
        .map_err(ConnectError::from_display)?;
    let portal = system
        .wait_for(Some(Instant::now() + HANDSHAKE_TIMEOUT), |p| {
            p.isolated.take(id)
        })
        .ok_or_else(|| ConnectError::new("no isolated connection"))?
        .map_err(ConnectError::new)?;
    system
        .adopt_pipe(portal)
        .map_err(ConnectError::from_display)
}
