//! The contract between [`RealSystem`](super::RealSystem) and a protocol
//! node: [`Protocol`], and the handle and region values that cross it.
//!
//! A [`Protocol`] is a sans-IO node as the runtime sees it: the
//! [`mojo_driver::Core`] methods for its links (input bytes and fds in,
//! transmits and link requests out) plus the few application operations
//! the runtime cannot do itself: message pipes, the shared buffers the
//! protocol must obtain (a legacy non-broker asks its broker) and data
//! pipes (optional: the defaults say `UNIMPLEMENTED`). Everything
//! else (handle values, waiting, mappings, platform handles, buffer
//! duplication) is the runtime's, so a new protocol (the ipcz node) only
//! maps its pipes and its handle encoding onto [`WireHandle`].
//!
//! Every method is called with the runtime's lock held, on the I/O thread
//! (link methods) or an application thread (pipe methods); none may block.
//! After any call the runtime re-reads [`Protocol::pipe_signals`] for its
//! waiters and drains [`Protocol::poll_transmit`] on the I/O thread.

use std::fmt;
use std::os::fd::OwnedFd;

use mojo_driver::{CloseReason, CoreRequest, LinkId, NewLinkError, ReceivedFds, Transmit};

use crate::two_phase::DataEndState;
use crate::{MojoError, MojoResult, RegionAccessMode, SignalsState};

/// A shared memory region as the runtime holds it: the fds its mode
/// implies (writable: read-write and read-only; read-only: the latter;
/// unsafe: the former), its size and id.
#[derive(Debug)]
pub struct RegionObject {
    /// The read-write fd (writable and unsafe regions).
    pub rw: Option<OwnedFd>,
    /// The `O_RDONLY` fd (writable and read-only regions).
    pub ro: Option<OwnedFd>,
    /// The access mode.
    pub mode: RegionAccessMode,
    /// Size in bytes.
    pub size: u64,
    /// The region's GUID.
    pub guid: u128,
}

/// A handle as it crosses between the runtime and a protocol: inside a
/// message, or made by the protocol.
#[derive(Debug)]
pub enum WireHandle<P> {
    /// A message pipe end of the protocol.
    Pipe(P),
    /// A shared buffer.
    Buffer(RegionObject),
    /// A platform handle.
    Platform(OwnedFd),
    /// A data pipe producer end, by the protocol's id for it.
    Producer(u64),
    /// A data pipe consumer end, by the protocol's id for it.
    Consumer(u64),
}

/// A message as a protocol reads it: payload and handles.
pub type WireMessage<P> = (Vec<u8>, Vec<WireHandle<P>>);

/// How [`Protocol::create_region`] answers.
#[derive(Debug)]
pub enum RegionSource {
    /// The runtime creates the region itself (a memfd of its own).
    Local,
    /// The protocol asked a peer for it; the answer comes from
    /// [`Protocol::poll_region`].
    Requested,
    /// A request is already outstanding; try again once it is answered.
    Busy,
}

/// A sans-IO protocol node the runtime drives; see the module page.
pub trait Protocol: Send + 'static {
    /// A message pipe end of this protocol (a port, a portal).
    type Pipe: Copy + Eq + fmt::Debug + Send;
    /// Why input was refused (ends the run: the peers treat it as fatal).
    type Error: std::error::Error + 'static;

    /// [`mojo_driver::Core::handle_input`].
    fn handle_input(
        &mut self,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Result<usize, Self::Error>;
    /// [`mojo_driver::Core::poll_transmit`].
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// [`mojo_driver::Core::poll_request`] (adopting a received socket...).
    fn poll_request(&mut self) -> Option<CoreRequest>;
    /// [`mojo_driver::Core::handle_link_closed`].
    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason);
    /// [`mojo_driver::Core::handle_link_adopted`].
    fn handle_link_adopted(&mut self, tag: u64, result: Result<LinkId, NewLinkError>);

    /// `MojoCreateMessagePipe`.
    fn create_pipe(&mut self) -> MojoResult<(Self::Pipe, Self::Pipe)>;
    /// `MojoWriteMessage`; the handles move into the message whatever the
    /// result. `FAILED_PRECONDITION` once the peer is closed.
    fn write_message(
        &mut self,
        pipe: Self::Pipe,
        bytes: &[u8],
        handles: Vec<WireHandle<Self::Pipe>>,
    ) -> MojoResult<()>;
    /// `MojoReadMessage`: `SHOULD_WAIT` if nothing is queued,
    /// `FAILED_PRECONDITION` if nothing is queued and the peer is closed.
    fn read_message(&mut self, pipe: Self::Pipe) -> MojoResult<WireMessage<Self::Pipe>>;
    /// The pipe end's signals (Mojo's message pipe rules: readable while a
    /// message is queued, writable and peer-closed exclusive, readable
    /// satisfiable while messages may still come).
    fn pipe_signals(&self, pipe: Self::Pipe) -> SignalsState;
    /// Whether the pipe end's peer is in another node, for `PEER_REMOTE`
    /// (default: never known, as Mojo's ipcz driver never raises it).
    fn pipe_peer_remote(&self, _pipe: Self::Pipe) -> bool {
        false
    }
    /// `MojoClose` of a pipe end.
    fn close_pipe(&mut self, pipe: Self::Pipe);
    /// `MojoCreateSharedBuffer(size)`: who makes the region.
    fn create_region(&mut self, size: u64) -> MojoResult<RegionSource>;
    /// The answer to the outstanding [`RegionSource::Requested`].
    fn poll_region(&mut self) -> Option<MojoResult<RegionObject>>;

    /// `MojoCreateDataPipe`: the protocol's ids of the producer and the
    /// consumer end (`UNIMPLEMENTED` by default).
    fn create_data_pipe(&mut self, _element_size: u32, _capacity: u32) -> MojoResult<(u64, u64)> {
        Err(MojoError::Unimplemented)
    }
    /// `MojoWriteData` on producer `id`.
    fn write_data(&mut self, _id: u64, _data: &[u8]) -> MojoResult<usize> {
        Err(MojoError::InvalidArgument)
    }
    /// `MojoReadData` on consumer `id`.
    fn read_data(&mut self, _id: u64, _buf: &mut [u8]) -> MojoResult<usize> {
        Err(MojoError::InvalidArgument)
    }
    /// A data pipe end's signals (may first take in the peer's control
    /// messages, hence `&mut`).
    fn data_signals(&mut self, _id: u64) -> SignalsState {
        SignalsState::default()
    }
    /// `MojoClose` of a data pipe end.
    fn close_data(&mut self, _id: u64) {}
    /// A data pipe end's element size, its room (producer) or readable
    /// bytes (consumer), and whether its peer is closed, after taking in
    /// the peer's control messages. `INVALID_ARGUMENT` for an unknown id.
    fn data_state(&mut self, _id: u64) -> MojoResult<DataEndState> {
        Err(MojoError::InvalidArgument)
    }
    /// Copies up to `buf.len()` readable bytes (whole elements) of consumer
    /// `id` without consuming them; returns how many.
    fn peek_data(&mut self, _id: u64, _buf: &mut [u8]) -> MojoResult<usize> {
        Err(MojoError::InvalidArgument)
    }
    /// Consumes up to `len` readable bytes (whole elements) of consumer `id`
    /// without copying them; returns how many.
    fn discard_data(&mut self, _id: u64, _len: usize) -> MojoResult<usize> {
        Err(MojoError::InvalidArgument)
    }
}
