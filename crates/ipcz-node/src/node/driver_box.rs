//! Boxed driver objects (§8.2): a serialized object (shared buffer,
//! platform handle, data pipe end, transport) with the fds it travels with,
//! carried opaquely in parcels.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use ipcz_wire::driver_object::DriverObject;

use super::NodeError;
use crate::account::Account;

/// A driver object and its fds, as one handle of a parcel. The object's
/// fields are the decoded header (sizes, modes, GUIDs); what it means is
/// the caller's business (the bridge maps it to a Mojo handle).
#[derive(Debug)]
pub struct DriverBox {
    object: DriverObject,
    fds: Vec<OwnedFd>,
    // The fds counted against their link and node (held for its Drop).
    _account: Option<Account<2>>,
}

impl DriverBox {
    /// A box for sending: `fds` must be exactly the object's
    /// [`DriverObject::fd_count`] fds, in wire order.
    pub fn new(object: DriverObject, fds: Vec<OwnedFd>) -> Result<Self, NodeError> {
        if fds.len() != object.fd_count() {
            return Err(NodeError::BoxFds {
                expected: object.fd_count(),
                got: fds.len(),
            });
        }
        Ok(Self {
            object,
            fds,
            _account: None,
        })
    }

    /// A box that arrived on a link, counted on `counters` (link, node).
    pub(crate) fn received(
        object: DriverObject,
        fds: Vec<OwnedFd>,
        counters: [Arc<AtomicUsize>; 2],
    ) -> Self {
        let account = Account::new(counters, fds.len());
        Self {
            object,
            fds,
            _account: Some(account),
        }
    }

    /// The object.
    pub fn object(&self) -> &DriverObject {
        &self.object
    }

    /// Its fds, in wire order.
    pub fn fds(&self) -> &[OwnedFd] {
        &self.fds
    }

    /// The object and its fds, which now belong to the caller alone.
    pub fn into_parts(self) -> (DriverObject, Vec<OwnedFd>) {
        let Self { object, fds, .. } = self;
        (object, fds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn received_boxes_count_their_fds_until_dropped_or_taken_apart() {
        let counters = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
        // No real fd is needed for the accounting: a box without fds counts 0.
        let b = DriverBox::received(
            DriverObject::TransmissiblePlatformHandle,
            Vec::new(),
            counters.clone(),
        );
        assert_eq!(counters[0].load(Ordering::Relaxed), 0);
        assert_eq!(b.fds().len(), 0);
        let (object, fds) = b.into_parts();
        assert_eq!(object, DriverObject::TransmissiblePlatformHandle);
        assert!(fds.is_empty());
        assert!(matches!(
            DriverBox::new(DriverObject::TransmissiblePlatformHandle, Vec::new()),
            Err(NodeError::BoxFds {
                expected: 1,
                got: 0
            })
        ));
    }
}
