//! Initializing a primary buffer the connector's side created (spec
//! `ipcz.md` §5.1), through the caller's mapping.

use ipcz_node::memory::NodeLinkMemory;
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use mojo_wire_kit::SharedMemory;

use super::HandshakeError;

/// Zero-fills the first 128 KiB of `mapping` (so a reused region starts
/// clean: the initial RouterLinkState slots must read all-zero) and then
/// writes the id counters and block allocator free lists as the broker
/// does, before anyone else maps the buffer.
pub(crate) fn initialize_primary_buffer<M: SharedMemory>(
    mapping: &M,
) -> Result<(), HandshakeError> {
    const CHUNK: usize = 4096;
    let zeros = [0u8; CHUNK];
    if mapping.size() >= PRIMARY_BUFFER_SIZE {
        for offset in (0..PRIMARY_BUFFER_SIZE).step_by(CHUNK) {
            mapping.write(offset, &zeros).map_err(|error| {
                HandshakeError::PrimaryBufferInit(ipcz_node::memory::MemoryError::Access {
                    buffer: ipcz_wire::types::BufferId::PRIMARY,
                    error,
                })
            })?;
        }
    }
    NodeLinkMemory::initialize_primary_buffer(mapping).map_err(HandshakeError::PrimaryBufferInit)
}
