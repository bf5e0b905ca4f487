//! Routers and parcels: in-order delivery, closure and route reduction (spec ipcz.md §6).
//!
//! The module is sans-IO. A [`Routers`] table holds every router of one node
//! and the sublink table of every node link; the caller feeds it route
//! messages received on a node link ([`Routers::handle_message`]) and
//! application calls (open, put, get, close), and drains [`Output`]s:
//! messages to send on a node link, portal status changes, sublinks dropped,
//! introductions or shared-memory capacity needed.
//!
//! Shared memory is never touched here. Every RouterLinkState operation a
//! router needs (locking for closure or bypass, stable and waiting bits,
//! references) and sublink allocation go through the [`LinkState`] trait,
//! which the node implements over its NodeLinkMemory; [`InMemoryLinkState`]
//! implements it over plain maps for tests.
//!
//! Parcels carry handles of a caller-defined type `H` (driver objects)
//! alongside portals: in the table a moved portal is a [`Handle::Portal`],
//! on the wire a [`WireHandle::Router`] descriptor. The conversion from and
//! to ipcz-wire's borrowed messages happens in one place outside this module.
//! Parcel data arrives here as bytes: fragments are read (and freed), and
//! subparcels unwrapped, by that conversion.
//!
//! What of spec §6 lives where:
//!
//! - sequence numbers, the reorder window and final lengths (§6.2): `queue`;
//!   which emptied queues keep the capacity a burst gave them: `kept_rings`;
//! - edges with primary and decaying links and their limits (§6.8.6): `edge`;
//! - the flush (§6.9), generalized to proxies: `flush`;
//! - AcceptParcel, RouteClosed, RouteDisconnected, FlushRouter (§6.4, §6.6,
//!   §6.7): `handlers`; disconnection and link loss: [`Routers::node_link_lost`];
//! - descriptors received in every variant and sent in the split form of
//!   §6.5.2 or, where the table may proxy, as B1/B2 (§6.5): `transfer`;
//! - every bypass role (§6.8.2 to §6.8.5: Z with X remote, on Y's node or
//!   local; X; and Y for tables that proxy): `bypass`.
//!
//! With [`ProxyPolicy::Never`] (the `mojo_proxy` node, §6.10) the table never
//! leaves a proxy behind: moving a portal that would need one is refused,
//! and StopProxying / StopProxyingToLocalPeer for its routers are
//! [`RouteError::NotAProxy`].
//!
//! ```
//! use ipcz_node::router::{Handle, InMemoryLinkState, Routers, RouterConfig};
//! use ipcz_wire::types::NodeName;
//!
//! let mut states = InMemoryLinkState::default();
//! let mut node: Routers<()> = Routers::new(NodeName { high: 1, low: 1 }, RouterConfig::default());
//! let (a, b) = node.open_pair(&mut states);
//! node.put(a, b"hi".to_vec(), Vec::<Handle<()>>::new(), &mut states).unwrap();
//! assert_eq!(node.get(b, &mut states).unwrap().unwrap().data, b"hi");
//! node.close(a, &mut states).unwrap();
//! node.close(b, &mut states).unwrap();
//! assert_eq!(node.router_count(), 0);
//! ```

mod bypass;
mod edge;
mod error;
mod flush;
mod handlers;
mod ids;
mod kept_rings;
mod link_state;
mod links;
mod message;
mod output;
mod parcel;
mod queue;
mod sublinks;
mod table;
mod transfer;

pub use bypass::MAX_ROUTERS_AWAITING_LINKS;
pub use error::{PortalError, RouteError};
pub use ids::{LinkSide, NodeLinkId, RouterId};
pub use kept_rings::{KEPT_RING_BYTES, MAX_KEPT_RINGS};
pub use link_state::{
    IN_MEMORY_FIRST_SUBLINK, InMemoryLinkState, LINK_STATE_SIZE, LinkState, LinkStatus,
};
pub use message::{NewRouter, RouteMessage};
pub use output::{Output, PortalStatus};
pub use parcel::{Handle, Parcel, WireHandle};
pub use queue::{MAX_QUEUED_PARCELS_PER_ROUTER, MAX_SEQUENCE_GAP};
pub use table::{ProxyPolicy, RouterConfig, Routers};
