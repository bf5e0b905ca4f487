//! A legacy pipe end that comes back to the bridge is not paired again:
//! when the port in a client's message is the peer of a port the bridge
//! already pairs with a portal, and the two ports hold nothing, that
//! portal itself goes to the host and both ports close, so a pipe bounced
//! through the client any number of times costs no pairing (instead of two
//! more per round trip, every message crossing each of them).

use ipcz_node::router::RouterId;
use mojo_legacy_node::node::PortRef;
use mojo_wire_kit::SharedMemory;

use crate::{Bridge, BridgeEvent};

impl<M: SharedMemory> Bridge<M> {
    /// The portal to send the host for the legacy pipe end `port` from a
    /// client's message: the portal `port` came from if it came back (see
    /// the module docs), else a new portal whose peer is paired with
    /// `port`.
    pub(crate) fn portal_for_port(&mut self, port: PortRef) -> RouterId {
        if let Some(portal) = self.unpair_returning(port) {
            return portal;
        }
        let (ours, theirs) = self.ipcz.create_portal_pair();
        self.pair(ours, port);
        theirs
    }

    /// If `port` returns through a pairing's legacy end, ends that pairing
    /// without closing its portal, closes both ports and gives the portal.
    fn unpair_returning(&mut self, port: PortRef) -> Option<RouterId> {
        let peer = self.legacy.settled_local_peer(port)?;
        let pairing = *self.by_port.get(&peer)?;
        let p = self.pairings.remove(&pairing)?;
        self.totals.pairings_closed += 1;
        self.totals.pairings_collapsed += 1;
        self.by_portal.remove(&p.portal);
        self.by_port.remove(&p.port);
        self.dirty_portals.remove(&p.portal);
        self.dirty_ports.remove(&p.port);
        let _ = self.legacy.close_port(port);
        let _ = self.legacy.close_port(peer);
        log::debug!(
            "pairing {} collapsed: port {port:?} came back; portal {:?} moves on",
            pairing.0,
            p.portal
        );
        self.events
            .push_back(BridgeEvent::PairingClosed { pairing });
        Some(p.portal)
    }
}
