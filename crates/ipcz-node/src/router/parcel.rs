//! Parcels and their handles.

use super::{NewRouter, RouterId};

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
}

impl<T> Parcel<T> {
    /// A parcel with the given sequence number.
    pub fn new(sequence_number: u64, data: Vec<u8>, handles: Vec<T>) -> Self {
        Self {
            sequence_number,
            data,
            handles,
        }
    }
}

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
