//! What crossed the bridge, counted as it goes, and a snapshot of what it
//! holds now: the plain values behind `mojo_proxy`'s `SIGUSR1` report and
//! its exit totals (`docs/OPERATIONS.md`).
//!
//! The counters cost integer additions on the forwarding path, once per
//! message into a local total and once per drained pipe into the pairing
//! and the bridge's totals; nothing is allocated until a snapshot is taken.
//!
//! What the snapshot cannot tell: how many *bytes* wait in the nodes (both
//! count queued messages only, not their sizes) and how a socket's queued
//! output divides among the pipes (the frames of every pipe share their
//! link's queue). The fields say what they do count.

use ipcz_node::router::RouterId;
use mojo_legacy_node::node::PortRef;
use mojo_wire_kit::SharedMemory;

use crate::proxy::ProxyLink;
use crate::{Bridge, PairingId, Side};

/// What crossed the bridge in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionTotals {
    /// Messages forwarded (written on the other side).
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// The handles they carried, as translated.
    pub handles: u64,
}

impl DirectionTotals {
    /// Counts one forwarded message.
    pub(crate) fn count(&mut self, bytes: usize, handles: usize) {
        self.messages += 1;
        self.bytes += bytes as u64;
        self.handles += handles as u64;
    }

    fn merge(&mut self, other: Self) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.handles += other.handles;
    }
}

/// Totals since the bridge was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeTotals {
    /// From the ipcz host to the legacy client.
    pub to_legacy: DirectionTotals,
    /// From the legacy client to the ipcz host.
    pub to_ipcz: DirectionTotals,
    /// Pairings (pipes) opened, the attachments' included.
    pub pairings_opened: u64,
    /// Pairings closed, the collapsed ones included.
    pub pairings_closed: u64,
    /// Of the closed: pipe ends that came back and were not paired again.
    pub pairings_collapsed: u64,
    /// Messages lost because the other side could not take them
    /// ([`crate::BridgeEvent::ForwardFailed`]).
    pub forward_failures: u64,
    /// Messages whose handles could not be carried over
    /// ([`crate::BridgeEvent::Untranslatable`]).
    pub untranslatable: u64,
}

impl BridgeTotals {
    /// Every failure counted.
    pub fn errors(&self) -> u64 {
        self.forward_failures + self.untranslatable
    }
}

/// One pairing as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeSnapshot {
    /// The pairing.
    pub pairing: PairingId,
    /// Its ipcz portal.
    pub portal: RouterId,
    /// Its legacy pipe end.
    pub port: PortRef,
    /// Forwarded on this pipe from the host to the client.
    pub to_legacy: DirectionTotals,
    /// Forwarded on this pipe from the client to the host.
    pub to_ipcz: DirectionTotals,
    /// Parcels ready on the portal and not yet forwarded (`None` if the
    /// ipcz node no longer knows the portal).
    pub portal_readable: Option<u64>,
    /// Messages queued on the legacy end, in order or waiting for a gap,
    /// not yet forwarded (`None` if the port is no longer receiving).
    pub port_queued: Option<usize>,
    /// The host closed its end (all its parcels arrived).
    pub host_closed: bool,
    /// The client closed its end or was lost.
    pub client_closed: bool,
}

/// The bridge's state now ([`Bridge::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSnapshot {
    /// Totals since the bridge was made.
    pub totals: BridgeTotals,
    /// Every pairing alive, in pairing order.
    pub pipes: Vec<PipeSnapshot>,
    /// Parcels in the ipcz node's routers, in and out, every router (the
    /// portals', and those of proxies and of portals in transit).
    pub ipcz_queued_parcels: usize,
    /// Parcels the ipcz node holds back on its links (waiting for a
    /// buffer to be mapped or for their subparcels).
    pub ipcz_held_parcels: usize,
    /// Fds received from the host still held in driver objects.
    pub ipcz_received_fds: usize,
    /// User messages queued in all the legacy node's ports (those waiting
    /// for the client to merge an attachment included).
    pub legacy_queued_messages: usize,
    /// Fds those messages hold.
    pub legacy_queued_fds: usize,
    /// Reports dropped because too many were queued.
    pub unreported: u64,
}

impl<M: SharedMemory> Bridge<M> {
    /// Totals since the bridge was made (no allocation).
    pub fn totals(&self) -> BridgeTotals {
        self.totals
    }

    /// The bridge's state now: totals, every pairing, what the nodes hold.
    pub fn snapshot(&self) -> BridgeSnapshot {
        let mut pipes: Vec<PipeSnapshot> = self
            .pairings
            .iter()
            .map(|(&pairing, p)| {
                let portal = self.ipcz.status(p.portal).ok();
                let port = self.legacy.port_status(p.port).ok();
                PipeSnapshot {
                    pairing,
                    portal: p.portal,
                    port: p.port,
                    to_legacy: p.to_legacy,
                    to_ipcz: p.to_ipcz,
                    portal_readable: portal.map(|s| s.readable_parcels),
                    port_queued: port.map(|s| s.queued_message_count),
                    host_closed: portal.is_none_or(|s| s.peer_closed),
                    client_closed: port.is_none_or(|s| s.peer_closed),
                }
            })
            .collect();
        pipes.sort_unstable_by_key(|p| p.pairing);
        BridgeSnapshot {
            totals: self.totals,
            pipes,
            ipcz_queued_parcels: self.ipcz.queued_parcel_count(),
            ipcz_held_parcels: self.ipcz.held_parcel_count(),
            ipcz_received_fds: self.ipcz.received_fds_alive(),
            legacy_queued_messages: self.legacy.queued_message_count(),
            legacy_queued_fds: self.legacy.queued_fd_count(),
            unreported: self.unreported,
        }
    }

    /// Adds what one drain of `pairing` forwarded towards `to`.
    pub(crate) fn count_forwarded(&mut self, pairing: PairingId, to: Side, moved: DirectionTotals) {
        if moved.messages == 0 {
            return;
        }
        let pipe = self.pairings.get_mut(&pairing);
        match to {
            Side::Legacy => {
                self.totals.to_legacy.merge(moved);
                if let Some(p) = pipe {
                    p.to_legacy.merge(moved);
                }
            }
            Side::Ipcz => {
                self.totals.to_ipcz.merge(moved);
                if let Some(p) = pipe {
                    p.to_ipcz.merge(moved);
                }
            }
        }
    }
}

/// What one of the proxy's links carried, as the proxy saw it: bytes and
/// fds it consumed, frames' bytes and fds it handed out to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkTotals {
    /// Bytes consumed from the link.
    pub bytes_in: u64,
    /// Fds taken with them.
    pub fds_in: u64,
    /// Bytes of the frames given to write on it.
    pub bytes_out: u64,
    /// Fds sent with them.
    pub fds_out: u64,
}

/// The proxy's totals since start ([`crate::proxy::Proxy::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyTotals {
    /// The host's socket.
    pub host: LinkTotals,
    /// The client's bootstrap socket.
    pub client_bootstrap: LinkTotals,
    /// The legacy node channel.
    pub client_node_channel: LinkTotals,
    /// Inherit mode: the link to the host.
    pub referrer: LinkTotals,
    /// Every link to an introduced node, summed.
    pub introduced: LinkTotals,
    /// The bridge's totals (zero until the host's link is up).
    pub bridge: BridgeTotals,
}

impl ProxyTotals {
    /// The totals of `link`.
    pub fn link(&self, link: ProxyLink) -> LinkTotals {
        match link {
            ProxyLink::Host => self.host,
            ProxyLink::ClientBootstrap => self.client_bootstrap,
            ProxyLink::ClientNodeChannel => self.client_node_channel,
            ProxyLink::Referrer => self.referrer,
            ProxyLink::Introduced(_) => self.introduced,
        }
    }

    pub(crate) fn link_mut(&mut self, link: ProxyLink) -> &mut LinkTotals {
        match link {
            ProxyLink::Host => &mut self.host,
            ProxyLink::ClientBootstrap => &mut self.client_bootstrap,
            ProxyLink::ClientNodeChannel => &mut self.client_node_channel,
            ProxyLink::Referrer => &mut self.referrer,
            ProxyLink::Introduced(_) => &mut self.introduced,
        }
    }
}

/// The proxy's state now ([`crate::proxy::Proxy::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySnapshot {
    /// Totals since start.
    pub totals: ProxyTotals,
    /// The bridge, once the host's link is up.
    pub bridge: Option<BridgeSnapshot>,
    /// Before the host's link is up: user messages queued in the legacy
    /// node (what the client wrote waits there for the bridge).
    pub waiting_for_host: usize,
}
