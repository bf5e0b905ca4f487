//! The broker host on the bootstrap socket (spec §2.1, §2.4): it writes
//! `INIT`, then answers every `BUFFER_REQUEST` with exactly one
//! `BUFFER_RESPONSE`, in request order, with the read-write and read-only fds
//! of a region the caller creates.

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};

use mojo_legacy_wire::Profile;
use mojo_legacy_wire::broker::{BROKER_HEADER_LEN, BrokerMessage};
use mojo_legacy_wire::channel::Frame;
use mojo_wire_kit::Guid;

use super::error::{BufferError, HandshakeError};
use super::{
    FdAccess, FdAccessProbe, Link, MAX_BUFFER_REQUEST_SIZE, MAX_PENDING_BUFFER_REQUESTS, Transmit,
};

/// Names one `BUFFER_REQUEST` until it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer request {}", self.0)
    }
}

/// The caller's task: create a writable shared memory region of `size`
/// bytes (e.g. `mojo_platform_channel::SharedMemoryRegion::create`) and pass
/// its fds to [`BrokerHost::answer_buffer_request`], or call
/// [`BrokerHost::fail_buffer_request`] if that fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegionRequest {
    /// The request to answer.
    pub id: RequestId,
    /// Bytes the client asked for (1 ..= [`MAX_BUFFER_REQUEST_SIZE`]); the
    /// file must be at least this long.
    pub size: u32,
}

/// A writable region as a `BUFFER_RESPONSE` carries it (spec §2.4).
#[derive(Debug)]
pub struct RegionFds {
    /// The region's id; must not be zero.
    pub guid: Guid,
    /// fd 0: `O_RDWR`.
    pub read_write: OwnedFd,
    /// fd 1: `O_RDONLY`, the same file.
    pub read_only: OwnedFd,
}

#[derive(Debug)]
enum Slot {
    /// The caller has been asked for a region.
    Waiting,
    /// The response, held until every earlier one has been sent.
    Ready(Transmit),
}

#[derive(Debug)]
struct Pending {
    id: RequestId,
    slot: Slot,
}

/// The synchronous broker protocol, broker side. Input: one frame at a time
/// read from the bootstrap socket with the normal stream parser (the caller
/// deframes), plus the fds its header claims. Output: [`Transmit`]s for
/// [`Link::Bootstrap`] and [`RegionRequest`]s.
#[derive(Debug)]
pub struct BrokerHost {
    profile: Profile,
    pending: VecDeque<Pending>,
    region_requests: VecDeque<RegionRequest>,
    transmits: VecDeque<Transmit>,
    next_id: u64,
    closed: bool,
    failed: Option<BufferError>,
}

impl BrokerHost {
    /// A host that emits frames in `profile` (whose header form fixes the
    /// exact sizes the client reads: `BUFFER_RESPONSE` is 32 or 40 bytes).
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            pending: VecDeque::new(),
            region_requests: VecDeque::new(),
            transmits: VecDeque::new(),
            next_id: 0,
            closed: false,
            failed: None,
        }
    }

    /// Queues `INIT` carrying the client's end of the node channel.
    pub(super) fn queue_init(&mut self, client_end: OwnedFd) -> Result<(), HandshakeError> {
        let mut bytes = Vec::new();
        BrokerMessage::Init { trailing: &[] }
            .encode_frame(self.profile, &mut bytes)
            .map_err(HandshakeError::Encode)?;
        self.transmits.push_back(Transmit {
            link: Link::Bootstrap,
            bytes,
            fds: vec![client_end],
        });
        Ok(())
    }

    /// The profile this host emits.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Takes one frame from the bootstrap socket: `bytes` is exactly one
    /// channel message, `fds` the fds its header claims.
    ///
    /// As Chromium's broker host: a `BUFFER_REQUEST` asks the caller for a
    /// region ([`BrokerHost::poll_region_request`]); a size of 0 or above
    /// [`MAX_BUFFER_REQUEST_SIZE`] is answered at once with the failure
    /// response (zero guid, no fds) so the client never stays blocked; so is
    /// a request too short to hold its size (Chromium ignores it, which
    /// hangs the client); other broker types are ignored. Errors are fatal
    /// and sticky (close the socket): a malformed frame, any fd (the
    /// channel rejects handles), more than [`MAX_PENDING_BUFFER_REQUESTS`]
    /// unanswered requests.
    pub fn handle_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), BufferError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.closed {
            return Err(BufferError::Closed);
        }
        let result = self.handle_frame_inner(bytes, fds.len());
        drop(fds); // the bootstrap socket carries no fds from the client
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn handle_frame_inner(&mut self, bytes: &[u8], num_fds: usize) -> Result<(), BufferError> {
        let (frame, used) = Frame::decode(bytes).map_err(BufferError::Malformed)?;
        if used != bytes.len() {
            return Err(BufferError::NotOneFrame {
                frame_len: used,
                given: bytes.len(),
            });
        }
        let claimed = usize::from(frame.header.num_handles());
        if claimed != num_fds {
            return Err(BufferError::FdCount {
                expected: claimed,
                actual: num_fds,
            });
        }
        if num_fds > 0 {
            return Err(BufferError::UnexpectedFds { count: num_fds });
        }
        if frame.header.message_type().is_control() {
            return Err(BufferError::Malformed(
                mojo_legacy_wire::Error::InvalidValue {
                    field: "channel.message_type",
                    value: u64::from(frame.header.message_type().0),
                    reason: "control messages do not occur on the broker channel",
                },
            ));
        }
        let size = match BrokerMessage::decode(frame.payload) {
            Ok(BrokerMessage::BufferRequest { size, .. }) => Some(size),
            Ok(other) => {
                log::debug!(
                    "ignoring broker message {:?} from the client",
                    other.message_type()
                );
                return Ok(());
            }
            Err(_) if frame.payload.len() < BROKER_HEADER_LEN => {
                log::debug!("ignoring a broker message shorter than its header");
                return Ok(());
            }
            // A BUFFER_REQUEST too short to hold its size.
            Err(_) => None,
        };
        self.accept_request(size)
    }

    fn accept_request(&mut self, size: Option<u32>) -> Result<(), BufferError> {
        if self.pending.len() >= MAX_PENDING_BUFFER_REQUESTS {
            return Err(BufferError::TooManyPendingRequests {
                limit: MAX_PENDING_BUFFER_REQUESTS,
            });
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        match size.filter(|&s| s > 0 && u64::from(s) <= MAX_BUFFER_REQUEST_SIZE) {
            Some(size) => {
                self.pending.push_back(Pending {
                    id,
                    slot: Slot::Waiting,
                });
                self.region_requests.push_back(RegionRequest { id, size });
            }
            None => {
                log::debug!("answering an unusable buffer request ({size:?} bytes) with failure");
                let failure = self.response(Guid::NONE, Vec::new())?;
                self.pending.push_back(Pending {
                    id,
                    slot: Slot::Ready(failure),
                });
                self.flush_ready();
            }
        }
        Ok(())
    }

    /// The next region the caller must create.
    pub fn poll_region_request(&mut self) -> Option<RegionRequest> {
        self.region_requests.pop_front()
    }

    /// Answers request `id` with `region`: a `BUFFER_RESPONSE` carrying
    /// `[read_write, read_only]`, sent once every earlier request has been
    /// answered. The fds' access modes are checked with `probe` first,
    /// because a Chromium client aborts on a wrong one; on any error the fds
    /// are closed and the request stays pending (answer it again, or fail it).
    pub fn answer_buffer_request(
        &mut self,
        id: RequestId,
        region: RegionFds,
        probe: &impl FdAccessProbe,
    ) -> Result<(), BufferError> {
        if self.closed {
            return Err(BufferError::Closed);
        }
        self.waiting_index(id)?;
        if !region.guid.is_valid() {
            return Err(BufferError::ZeroGuid);
        }
        for (index, fd, expected) in [
            (0, &region.read_write, FdAccess::ReadWrite),
            (1, &region.read_only, FdAccess::ReadOnly),
        ] {
            let found = probe.access_mode(fd.as_fd());
            if found != Some(expected) {
                return Err(BufferError::WrongFdMode {
                    index,
                    expected,
                    found,
                });
            }
        }
        let response = self.response(region.guid, vec![region.read_write, region.read_only])?;
        self.complete(id, response)
    }

    /// Answers request `id` with the failure response (zero guid, no fds):
    /// the client's allocation fails gracefully.
    pub fn fail_buffer_request(&mut self, id: RequestId) -> Result<(), BufferError> {
        if self.closed {
            return Err(BufferError::Closed);
        }
        self.waiting_index(id)?;
        let response = self.response(Guid::NONE, Vec::new())?;
        self.complete(id, response)
    }

    fn waiting_index(&self, id: RequestId) -> Result<usize, BufferError> {
        self.pending
            .iter()
            .position(|p| p.id == id && matches!(p.slot, Slot::Waiting))
            .ok_or(BufferError::UnknownRequest { id: id.0 })
    }

    fn complete(&mut self, id: RequestId, response: Transmit) -> Result<(), BufferError> {
        let index = self.waiting_index(id)?;
        if let Some(p) = self.pending.get_mut(index) {
            p.slot = Slot::Ready(response);
        }
        self.region_requests.retain(|r| r.id != id);
        self.flush_ready();
        Ok(())
    }

    fn response(&self, guid: Guid, fds: Vec<OwnedFd>) -> Result<Transmit, BufferError> {
        let mut bytes = Vec::new();
        BrokerMessage::BufferResponse {
            guid,
            trailing: &[],
        }
        .encode_frame(self.profile, &mut bytes)
        .map_err(BufferError::Encode)?;
        Ok(Transmit {
            link: Link::Bootstrap,
            bytes,
            fds,
        })
    }

    fn flush_ready(&mut self) {
        while matches!(
            self.pending.front(),
            Some(Pending {
                slot: Slot::Ready(_),
                ..
            })
        ) {
            if let Some(Pending {
                slot: Slot::Ready(t),
                ..
            }) = self.pending.pop_front()
            {
                self.transmits.push_back(t);
            }
        }
    }

    /// The next frame to write on the bootstrap socket (one `sendmsg` each:
    /// the client reads each with a single exact-size read).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Requests received and not yet answered on the wire.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// The bootstrap socket closed (or the caller closes it): pending
    /// requests and unsent frames are dropped, their fds closed.
    pub fn handle_closed(&mut self) {
        self.closed = true;
        self.pending.clear();
        self.region_requests.clear();
        self.transmits.clear();
    }

    /// True once [`BrokerHost::handle_closed`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True when nothing is pending or queued (what tests assert at the end).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.region_requests.is_empty() && self.transmits.is_empty()
    }
}
