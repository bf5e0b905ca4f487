//! Initializing a primary buffer the connector's side created (spec
//! `ipcz.md` §5.1), through the caller's mapping.
//!
//! The image comes from `ipcz_wire::memory::primary::initialize` and is
//! copied in with `SharedMemory::write` (word-wise atomic stores). Plain
//! copies are enough: nobody else has the buffer yet, and the `sendmsg`
//! that later hands its fd to the peer orders every store before the
//! peer's first load. This keeps the crate off `ipcz-node`, so the node
//! crates can build on the connectors.

use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::memory::primary;
use mojo_wire_kit::SharedMemory;

use super::HandshakeError;

/// Writes a freshly initialized primary buffer over the first 128 KiB of
/// `mapping`: id counters 1 and 12, every block allocator's free list, and
/// zeros everywhere else (so a reused region starts clean: the initial
/// RouterLinkState slots must read all-zero).
pub(crate) fn initialize_primary_buffer<M: SharedMemory + ?Sized>(
    mapping: &M,
) -> Result<(), HandshakeError> {
    if mapping.size() < PRIMARY_BUFFER_SIZE {
        return Err(HandshakeError::PrimaryBufferTooSmall {
            size: mapping.size(),
        });
    }
    let mut image = vec![0u8; PRIMARY_BUFFER_SIZE];
    primary::initialize(&mut image).map_err(|_| HandshakeError::PrimaryBufferTooSmall {
        size: mapping.size(),
    })?;
    mapping
        .write(0, &image)
        .map_err(|error| HandshakeError::PrimaryBufferWrite { error })
}

#[cfg(test)]
mod tests {
    use ipcz_node::memory::{MemoryOptions, NodeLinkMemory};
    use mojo_wire_kit::HeapMemory;

    use super::*;

    #[test]
    fn the_image_equals_what_the_node_crates_initialization_writes() {
        let ours = HeapMemory::from_bytes(&[0x5a; PRIMARY_BUFFER_SIZE]);
        initialize_primary_buffer(&ours).expect("ours");
        let theirs = HeapMemory::new(PRIMARY_BUFFER_SIZE);
        NodeLinkMemory::initialize_primary_buffer(&theirs).expect("ipcz-node's");
        assert_eq!(ours.snapshot(), theirs.snapshot());
        // And the node can run a link over it.
        let mut memory = NodeLinkMemory::new(ours, MemoryOptions::default()).expect("memory");
        assert!(
            memory
                .allocate_parcel_data(b"hello")
                .expect("allocate")
                .is_some()
        );
    }

    #[test]
    fn small_or_read_only_mappings_are_typed_errors() {
        assert_eq!(
            initialize_primary_buffer(&HeapMemory::new(4096)),
            Err(HandshakeError::PrimaryBufferTooSmall { size: 4096 })
        );
        let read_only = HeapMemory::read_only_from_bytes(&[0; PRIMARY_BUFFER_SIZE]);
        assert!(matches!(
            initialize_primary_buffer(&read_only),
            Err(HandshakeError::PrimaryBufferWrite { .. })
        ));
    }
}
