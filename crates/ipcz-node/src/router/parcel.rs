//! Parcels and their handles.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use super::{NewRouter, RouterId};
use crate::account::Account;

/// One unit of data and handles (one Mojo message), numbered within its
/// route direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel<T> {
    /// Position in the sender's outbound sequence for this route direction.
    pub sequence_number: u64,
    /// The bytes, unchanged.
    pub data: Vec<u8>,
    /// The attached handles, in application order.
    pub handles: Vec<T>,
    /// Counted against the queued-parcel budget of the link it came from
    /// while this node holds it.
    charge: QueueCharge,
}

impl<T> Parcel<T> {
    /// A parcel with the given sequence number.
    pub fn new(sequence_number: u64, data: Vec<u8>, handles: Vec<T>) -> Self {
        Self {
            sequence_number,
            data,
            handles,
            charge: QueueCharge::default(),
        }
    }

    /// The same parcel with its handles replaced (the charge goes along).
    pub(crate) fn with_handles<U>(self, handles: Vec<U>) -> Parcel<U> {
        Parcel {
            sequence_number: self.sequence_number,
            data: self.data,
            handles,
            charge: self.charge,
        }
    }

    /// Counts this parcel on `counter` until it leaves the node (sent on,
    /// taken by the application, or dropped).
    pub(crate) fn charge_to(&mut self, counter: &Arc<AtomicUsize>) {
        self.charge = QueueCharge {
            _account: Some(Account::new([counter.clone()], 1)),
        };
    }

    /// Ends the charge: the parcel is leaving the node's queues.
    pub(crate) fn discharge(&mut self) {
        self.charge = QueueCharge::default();
    }
}

/// A parcel's place in its link's queued-parcel count. Bookkeeping, not
/// part of the parcel's value: any two compare equal.
#[derive(Debug, Clone, Default)]
struct QueueCharge {
    // Held for its Drop, which gives the count back.
    _account: Option<Account<1>>,
}

impl PartialEq for QueueCharge {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for QueueCharge {}

/// A handle inside the router table: a portal (a router of the same table)
/// or a caller-defined object `H` such as a boxed driver object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handle<H> {
    /// A portal travelling with the parcel; the receiver owns it once it
    /// takes the parcel.
    Portal(RouterId),
    /// Anything else, carried opaquely.
    Object(H),
}

/// A handle as it crosses a node link: a new router's descriptor (handle
/// type `kPortal`) or a caller-defined object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireHandle<H> {
    /// A portal, serialized as a RouterDescriptor (§6.5).
    Router(NewRouter),
    /// Anything else, carried opaquely.
    Object(H),
}
