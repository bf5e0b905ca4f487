//! The peers' application protocol (test-peers.md §2 and §2.1): opcodes,
//! payload codecs with the exact sizes of the spec, FNV-1a 64 and the byte
//! patterns both sides compute.
//!
//! Every payload starts with a little-endian u32 opcode. [`Payload::decode`]
//! demands each fixed-size payload's exact length and names what was wrong
//! otherwise; [`Payload::encode`] writes what the reference peers write.

use std::fmt;

/// Opcodes (`rm::Op` of `rm_common.h`).
pub mod op {
    /// Echo: any payload, echoed back.
    pub const ECHO: u32 = 1;
    /// SinkStart [u64 count][u64 size].
    pub const SINK_START: u32 = 2;
    /// SinkData: `size` bytes in all.
    pub const SINK_DATA: u32 = 3;
    /// SinkAck [u64 received][u64 bytes][u64 bad].
    pub const SINK_ACK: u32 = 4;
    /// SubPipe, handle 0 = a pipe.
    pub const SUB_PIPE: u32 = 5;
    /// SubPipeDone [u64 echoed].
    pub const SUB_PIPE_DONE: u32 = 6;
    /// Shmem [u64 size], handle 0 = a shared buffer.
    pub const SHMEM: u32 = 7;
    /// ShmemAck [u64 fnv of the first half].
    pub const SHMEM_ACK: u32 = 8;
    /// PlatHandle [u64 size], handles = memfd, pipe write end.
    pub const PLAT_HANDLE: u32 = 9;
    /// PlatHandleAck [u64 fnv][u64 bytes read].
    pub const PLAT_HANDLE_ACK: u32 = 10;
    /// CloseWatch, handle 0 = a pipe.
    pub const CLOSE_WATCH: u32 = 11;
    /// CloseWatchReady.
    pub const CLOSE_WATCH_READY: u32 = 12;
    /// CloseSeen [u64 wait result].
    pub const CLOSE_SEEN: u32 = 13;
    /// CloseSelf, handle 0 = a pipe.
    pub const CLOSE_SELF: u32 = 14;
    /// Hello [u32 pipe index].
    pub const HELLO: u32 = 15;
    /// DataPipe [u64 total], handle 0 = a consumer.
    pub const DATA_PIPE: u32 = 16;
    /// DataPipeAck [u64 bytes][u64 fnv].
    pub const DATA_PIPE_ACK: u32 = 17;
    /// DataPipeReverse [u64 total][u64 capacity].
    pub const DATA_PIPE_REVERSE: u32 = 18;
    /// DataPipeConsumer [u64 total], handle 0 = a consumer.
    pub const DATA_PIPE_CONSUMER: u32 = 19;
    /// DataPipeReverseDone [u64 written][u64 last result].
    pub const DATA_PIPE_REVERSE_DONE: u32 = 20;
    /// kSubPipeC2H [u32 m].
    pub const SUB_PIPE_C2H: u32 = 21;
    /// kSubPipeC2HReady [u32 m], handle 0 = pipe end `b`.
    pub const SUB_PIPE_C2H_READY: u32 = 22;
    /// kSubPipeC2HDone [u64 n].
    pub const SUB_PIPE_C2H_DONE: u32 = 23;
    /// kShmemC2H [u64 size][u32 read_only].
    pub const SHMEM_C2H: u32 = 24;
    /// kShmemC2HBuffer [u64 size][u64 fnv][u32 read_only], handle 0 = buffer.
    pub const SHMEM_C2H_BUFFER: u32 = 25;
    /// kShmemC2HAck [u32 wrote].
    pub const SHMEM_C2H_ACK: u32 = 26;
    /// kShmemC2HResult [u64 bad_first][u64 bad_second].
    pub const SHMEM_C2H_RESULT: u32 = 27;
    /// kPlatHandleC2H [u64 size].
    pub const PLAT_HANDLE_C2H: u32 = 28;
    /// kPlatHandleC2HFds [u64 size][u64 fnv], handles = memfd, pipe write end.
    pub const PLAT_HANDLE_C2H_FDS: u32 = 29;
    /// kPlatHandleC2HAck [u64 host_fnv].
    pub const PLAT_HANDLE_C2H_ACK: u32 = 30;
    /// kPlatHandleC2HResult [u64 mark_ok][u64 pipe_ok][u64 pipe_bytes][u64 pipe_eof].
    pub const PLAT_HANDLE_C2H_RESULT: u32 = 31;
    /// kPipeBounce [u32 hop], handle 0 = a pipe end.
    pub const PIPE_BOUNCE: u32 = 32;
    /// kPipeBounceBack [u32 hop], handle 0 = the same pipe end.
    pub const PIPE_BOUNCE_BACK: u32 = 33;
    /// kManyPipe [u32 index][u32 total], handle 0 = a pipe end.
    pub const MANY_PIPE: u32 = 34;
    /// kManyPipesDone [u64 handled][u64 errors].
    pub const MANY_PIPES_DONE: u32 = 35;
    /// kError [u64 code]...: a request the client could not serve.
    pub const ERROR: u32 = 99;
    /// Ours, not the spec's (the `scale` scenario): ScaleOpen [u32 first]
    /// [u32 count], handles = `count` pipe ends, the client's scale pipes
    /// `first .. first + count`; the client echoes one message on each.
    pub const SCALE_OPEN: u32 = 200;
    /// Ours: ScaleEcho [u64 count]: the client echoes `count` messages, the
    /// k-th read from scale pipe `k mod N`, then replies ScaleEchoDone.
    pub const SCALE_ECHO: u32 = 201;
    /// Ours: ScaleEchoDone [u64 echoed].
    pub const SCALE_ECHO_DONE: u32 = 202;
    /// Ours: ScaleSink [u64 count][u64 size]: the client reads `count`
    /// SinkData messages, the k-th from scale pipe `k mod N`, then replies
    /// SinkAck on the main pipe.
    pub const SCALE_SINK: u32 = 203;
    /// Ours: ScaleClose: the client closes every scale pipe, then replies
    /// ScaleClosed.
    pub const SCALE_CLOSE: u32 = 204;
    /// Ours: ScaleClosed [u64 closed].
    pub const SCALE_CLOSED: u32 = 205;
    /// Ours (the `throughput_extra` scenario): HandleSink [u64 count]
    /// [u64 size][u32 kind]: the client reads `count` SinkData messages of
    /// `size` bytes, each carrying exactly one handle of `kind` (a
    /// [`super::sink_kind`] code), counts and closes every handle, then
    /// replies HandleSinkAck.
    pub const HANDLE_SINK: u32 = 206;
    /// Ours: HandleSinkAck [u64 received][u64 bytes][u64 bad][u64 handles]:
    /// `bad` counts messages of the wrong size or opcode or without exactly
    /// one handle of the kind; `handles` the handles of the kind received
    /// (for fds: valid ones, closed).
    pub const HANDLE_SINK_ACK: u32 = 207;
}

/// The handle kinds of a HandleSink run (ours), its `kind` field.
pub mod sink_kind {
    /// A platform handle (an fd).
    pub const FD: u32 = 1;
    /// A shared buffer.
    pub const SHARED_BUFFER: u32 = 2;
    /// A message pipe end.
    pub const MESSAGE_PIPE: u32 = 3;
}

/// Codes of the client's op-99 Error replies (the first u64), as
/// `rm_legacy_client.cc` sends them.
pub mod error_code {
    /// SubPipe without exactly one handle.
    pub const SUB_PIPE_HANDLES: u64 = 1;
    /// Shmem without exactly one handle.
    pub const SHMEM_HANDLES: u64 = 2;
    /// Shmem: `MojoMapBuffer` failed (then the result).
    pub const SHMEM_MAP: u64 = 3;
    /// PlatHandle without exactly two handles (then the count).
    pub const PLAT_HANDLE_HANDLES: u64 = 4;
    /// PlatHandle: a handle is not a valid fd.
    pub const PLAT_HANDLE_INVALID: u64 = 5;
    /// CloseWatch without exactly one handle.
    pub const CLOSE_WATCH_HANDLES: u64 = 6;
    /// DataPipe without exactly one handle (then the count).
    pub const DATA_PIPE_HANDLES: u64 = 7;
    /// DataPipeReverse: `MojoCreateDataPipe` failed (then the result).
    pub const DATA_PIPE_CREATE: u64 = 8;
    /// kSubPipeC2H: writing the Ready message failed.
    pub const SUB_PIPE_C2H_WRITE: u64 = 21;
    /// kShmemC2H: `MojoCreateSharedBuffer` failed (then the result).
    pub const SHMEM_C2H_CREATE: u64 = 24;
    /// kShmemC2H: `MojoMapBuffer` failed (then the result).
    pub const SHMEM_C2H_MAP: u64 = 25;
    /// kShmemC2H: the read-only duplicate failed (then the result).
    pub const SHMEM_C2H_DUPLICATE: u64 = 26;
    /// kShmemC2H: the next message was not kShmemC2HAck (then its opcode).
    pub const SHMEM_C2H_ACK: u64 = 27;
    /// kPlatHandleC2H: memfd or pipe creation failed (then the errno).
    pub const PLAT_HANDLE_C2H_CREATE: u64 = 28;
    /// kPlatHandleC2H: the next message was not kPlatHandleC2HAck (then its opcode).
    pub const PLAT_HANDLE_C2H_ACK: u64 = 29;
    /// kPipeBounce without exactly one handle (then the count).
    pub const PIPE_BOUNCE_HANDLES: u64 = 32;
    /// kPipeBounce: writing the BounceBack failed.
    pub const PIPE_BOUNCE_WRITE: u64 = 33;
    /// Unknown opcode (then the opcode).
    pub const UNKNOWN_OPCODE: u64 = 100;
    /// Ours, not the reference's: a request whose payload has the wrong
    /// length (then the opcode and the length). The reference client reads
    /// missing fields as zero instead; no correct host sends such a request.
    pub const MALFORMED_REQUEST: u64 = 101;
}

/// The offset basis of the checksum, as the reference peers compute it:
/// `1469598103934665603` (`0x1465_0fb0_739d_0383`), the standard FNV-1a 64
/// basis `14695981039346656037` with its last digit lost. The spec names the
/// standard value, but checksums must agree with the reference pair, which
/// is what real runs are judged with (`docs/SPEC-ERRATA.md`).
pub const FNV_OFFSET_BASIS: u64 = 1_469_598_103_934_665_603;
/// FNV-1a 64 prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv {
    /// A hash of nothing yet (the offset basis).
    pub const fn new() -> Self {
        Self(FNV_OFFSET_BASIS)
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash so far.
    pub const fn value(self) -> u64 {
        self.0
    }
}

/// FNV-1a 64 of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.update(bytes);
    h.value()
}

/// FNV-1a 64 of `len` bytes `pattern(0..len)`.
pub fn fnv_of_pattern(len: u64, pattern: impl Fn(u64) -> u8) -> u64 {
    let mut h = FNV_OFFSET_BASIS;
    for i in 0..len {
        h ^= u64::from(pattern(i));
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// `len` bytes `pattern(0..len)`.
pub fn pattern_bytes(len: usize, pattern: impl Fn(u64) -> u8) -> Vec<u8> {
    (0..len as u64).map(pattern).collect()
}

/// Data pipe direction of [`pattern_byte`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// 1: host to client.
    HostToClient,
    /// 2: client to host.
    ClientToHost,
}

/// `PatternByte(i, 1)` = `(i*11 + 7) mod 256`; `PatternByte(i, 2)` =
/// `(i*5 + 1 + (i >> 12)) mod 256`.
pub fn pattern_byte(i: u64, dir: Direction) -> u8 {
    match dir {
        Direction::HostToClient => i.wrapping_mul(11).wrapping_add(7) as u8,
        Direction::ClientToHost => i.wrapping_mul(5).wrapping_add(1).wrapping_add(i >> 12) as u8,
    }
}

/// `ShmemC2HByte(i) = i*29 + 11`.
pub fn shmem_c2h_byte(i: u64) -> u8 {
    i.wrapping_mul(29).wrapping_add(11) as u8
}

/// `ShmemC2HHostByte(i) = i*3 + 0x5a`.
pub fn shmem_c2h_host_byte(i: u64) -> u8 {
    i.wrapping_mul(3).wrapping_add(0x5a) as u8
}

/// `MemfdC2HByte(i) = i*17 + 9`.
pub fn memfd_c2h_byte(i: u64) -> u8 {
    i.wrapping_mul(17).wrapping_add(9) as u8
}

/// `shmem`: the host's fill byte `(i*13 + 1) mod 256`.
pub fn shmem_host_byte(i: u64) -> u8 {
    i.wrapping_mul(13).wrapping_add(1) as u8
}

/// `shmem`: the client's second-half byte `(i*7 + 3) mod 256`.
pub fn shmem_client_byte(i: u64) -> u8 {
    i.wrapping_mul(7).wrapping_add(3) as u8
}

/// `platform_handle`: the host's memfd byte `(i*31 + 5) mod 256`.
pub fn memfd_host_byte(i: u64) -> u8 {
    i.wrapping_mul(31).wrapping_add(5) as u8
}

/// `kHostMark`, written by the host at offset `size` of the client's memfd.
pub const HOST_MARK: &[u8] = b"host-was-here";
/// `kHostPipeMsg`, written by the host into the client's OS pipe.
pub const HOST_PIPE_MSG: &[u8] = b"hello-from-host";
/// Written by the client at offset `size` of the host's memfd.
pub const CLIENT_MARK: &[u8] = b"client-was-here";
/// Written by the client into the host's OS pipe.
pub const CLIENT_PIPE_MSG: &[u8] = b"hello-from-client";

/// `C2HMsg(i)`: `[u32 1][u32 i]` then `8 + 16*i` bytes, byte j = `i*7 + j*31 + 3`.
pub fn c2h_msg(i: u32) -> Vec<u8> {
    let tail = 8 + 16 * i as usize;
    let mut v = Vec::with_capacity(8 + tail);
    v.extend_from_slice(&op::ECHO.to_le_bytes());
    v.extend_from_slice(&i.to_le_bytes());
    let i = u64::from(i);
    v.extend((0..tail as u64).map(|j| {
        i.wrapping_mul(7)
            .wrapping_add(j.wrapping_mul(31))
            .wrapping_add(3) as u8
    }));
    v
}

/// The reference host's `RandomPayload`: `[u32 op]` then xorshift bytes up to
/// `size` bytes in all (at least 4), advancing `seed`.
pub fn random_payload(opcode: u32, size: usize, seed: &mut u64) -> Vec<u8> {
    let mut v = vec![0u8; size.max(4)];
    v[..4].copy_from_slice(&opcode.to_le_bytes());
    let mut x = *seed;
    for b in &mut v[4..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    *seed = x;
    v
}

/// The reference's lenient `GetU32`: the u32 at `off`, or 0 if `bytes` is too short.
pub fn get_u32(bytes: &[u8], off: usize) -> u32 {
    bytes
        .get(off..off.saturating_add(4))
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The reference's lenient `GetU64`: the u64 at `off`, or 0 if `bytes` is too short.
pub fn get_u64(bytes: &[u8], off: usize) -> u64 {
    bytes
        .get(off..off.saturating_add(8))
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The opcode of a payload (0 if shorter than 4 bytes, as the reference reads it).
pub fn opcode_of(bytes: &[u8]) -> u32 {
    get_u32(bytes, 0)
}

/// Largest number of u64 words after the code that an Error payload may
/// carry (the reference sends at most one).
pub const MAX_ERROR_DETAIL_WORDS: usize = 16;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than the 4 bytes of the opcode.
    NoOpcode {
        /// Bytes present.
        len: usize,
    },
    /// An opcode this protocol does not have.
    UnknownOpcode(u32),
    /// A fixed-size payload of the wrong length.
    WrongLength {
        /// The opcode's name.
        name: &'static str,
        /// Its size in the spec.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// A payload shorter than its fixed part (SinkData, Echo are any length).
    TooShort {
        /// The opcode's name.
        name: &'static str,
        /// The minimum size.
        minimum: usize,
        /// The size found.
        found: usize,
    },
    /// An Error payload whose length is not 4 + 8k with 1 <= k <= 1 + max words.
    BadErrorLength {
        /// The size found.
        found: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoOpcode { len } => write!(f, "payload of {len} bytes has no opcode"),
            Self::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            Self::WrongLength {
                name,
                expected,
                found,
            } => {
                write!(f, "{name} payload is {found} bytes, expected {expected}")
            }
            Self::TooShort {
                name,
                minimum,
                found,
            } => {
                write!(
                    f,
                    "{name} payload is {found} bytes, at least {minimum} expected"
                )
            }
            Self::BadErrorLength { found } => write!(
                f,
                "Error payload is {found} bytes, expected 4 + 8k (1 <= k <= {})",
                1 + MAX_ERROR_DETAIL_WORDS
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// One decoded payload, per opcode. Fields are named after the spec's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // The fields are the spec's, documented there per opcode.
pub enum Payload {
    /// 1: the bytes after the opcode.
    Echo(Vec<u8>),
    /// 2.
    SinkStart { count: u64, size: u64 },
    /// 3: the bytes after the opcode.
    SinkData(Vec<u8>),
    /// 4.
    SinkAck { received: u64, bytes: u64, bad: u64 },
    /// 5.
    SubPipe,
    /// 6.
    SubPipeDone { echoed: u64 },
    /// 7.
    Shmem { size: u64 },
    /// 8.
    ShmemAck { fnv: u64 },
    /// 9.
    PlatHandle { size: u64 },
    /// 10.
    PlatHandleAck { fnv: u64, bytes_read: u64 },
    /// 11.
    CloseWatch,
    /// 12.
    CloseWatchReady,
    /// 13.
    CloseSeen { result: u64 },
    /// 14.
    CloseSelf,
    /// 15.
    Hello { index: u32 },
    /// 16.
    DataPipe { total: u64 },
    /// 17.
    DataPipeAck { bytes: u64, fnv: u64 },
    /// 18.
    DataPipeReverse { total: u64, capacity: u64 },
    /// 19.
    DataPipeConsumer { total: u64 },
    /// 20.
    DataPipeReverseDone { written: u64, last_result: u64 },
    /// 21.
    SubPipeC2H { count: u32 },
    /// 22.
    SubPipeC2HReady { count: u32 },
    /// 23.
    SubPipeC2HDone { echoed: u64 },
    /// 24.
    ShmemC2H { size: u64, read_only: u32 },
    /// 25.
    ShmemC2HBuffer { size: u64, fnv: u64, read_only: u32 },
    /// 26.
    ShmemC2HAck { wrote: u32 },
    /// 27.
    ShmemC2HResult { bad_first: u64, bad_second: u64 },
    /// 28.
    PlatHandleC2H { size: u64 },
    /// 29.
    PlatHandleC2HFds { size: u64, fnv: u64 },
    /// 30.
    PlatHandleC2HAck { host_fnv: u64 },
    /// 31.
    PlatHandleC2HResult {
        mark_ok: u64,
        pipe_ok: u64,
        pipe_bytes: u64,
        pipe_eof: u64,
    },
    /// 32.
    PipeBounce { hop: u32 },
    /// 33.
    PipeBounceBack { hop: u32 },
    /// 34.
    ManyPipe { index: u32, total: u32 },
    /// 35.
    ManyPipesDone { handled: u64, errors: u64 },
    /// 99: the code, then up to [`MAX_ERROR_DETAIL_WORDS`] more words.
    Error { code: u64, detail: Vec<u64> },
    /// 200 (ours).
    ScaleOpen { first: u32, count: u32 },
    /// 201 (ours).
    ScaleEcho { count: u64 },
    /// 202 (ours).
    ScaleEchoDone { echoed: u64 },
    /// 203 (ours).
    ScaleSink { count: u64, size: u64 },
    /// 204 (ours).
    ScaleClose,
    /// 205 (ours).
    ScaleClosed { closed: u64 },
    /// 206 (ours).
    HandleSink { count: u64, size: u64, kind: u32 },
    /// 207 (ours).
    HandleSinkAck {
        received: u64,
        bytes: u64,
        bad: u64,
        handles: u64,
    },
}

/// Exact payload size (opcode included) of each fixed-size opcode.
pub fn fixed_size(opcode: u32) -> Option<usize> {
    Some(match opcode {
        op::SUB_PIPE | op::CLOSE_WATCH | op::CLOSE_WATCH_READY | op::CLOSE_SELF => 4,
        op::SCALE_CLOSE => 4,
        op::SCALE_OPEN | op::SCALE_ECHO | op::SCALE_ECHO_DONE | op::SCALE_CLOSED => 12,
        op::SCALE_SINK => 20,
        op::HANDLE_SINK => 24,
        op::HANDLE_SINK_ACK => 36,
        op::HELLO
        | op::SUB_PIPE_C2H
        | op::SUB_PIPE_C2H_READY
        | op::SHMEM_C2H_ACK
        | op::PIPE_BOUNCE
        | op::PIPE_BOUNCE_BACK => 8,
        op::SUB_PIPE_DONE
        | op::SHMEM
        | op::SHMEM_ACK
        | op::PLAT_HANDLE
        | op::CLOSE_SEEN
        | op::DATA_PIPE
        | op::DATA_PIPE_CONSUMER
        | op::SUB_PIPE_C2H_DONE
        | op::PLAT_HANDLE_C2H
        | op::PLAT_HANDLE_C2H_ACK
        | op::MANY_PIPE => 12,
        op::SHMEM_C2H => 16,
        op::SINK_START
        | op::PLAT_HANDLE_ACK
        | op::DATA_PIPE_ACK
        | op::DATA_PIPE_REVERSE
        | op::DATA_PIPE_REVERSE_DONE
        | op::SHMEM_C2H_RESULT
        | op::PLAT_HANDLE_C2H_FDS
        | op::MANY_PIPES_DONE => 20,
        op::SHMEM_C2H_BUFFER => 24,
        op::SINK_ACK => 28,
        op::PLAT_HANDLE_C2H_RESULT => 36,
        _ => return None,
    })
}

/// The spec's name of an opcode.
pub fn name(opcode: u32) -> &'static str {
    match opcode {
        op::ECHO => "Echo",
        op::SINK_START => "SinkStart",
        op::SINK_DATA => "SinkData",
        op::SINK_ACK => "SinkAck",
        op::SUB_PIPE => "SubPipe",
        op::SUB_PIPE_DONE => "SubPipeDone",
        op::SHMEM => "Shmem",
        op::SHMEM_ACK => "ShmemAck",
        op::PLAT_HANDLE => "PlatHandle",
        op::PLAT_HANDLE_ACK => "PlatHandleAck",
        op::CLOSE_WATCH => "CloseWatch",
        op::CLOSE_WATCH_READY => "CloseWatchReady",
        op::CLOSE_SEEN => "CloseSeen",
        op::CLOSE_SELF => "CloseSelf",
        op::HELLO => "Hello",
        op::DATA_PIPE => "DataPipe",
        op::DATA_PIPE_ACK => "DataPipeAck",
        op::DATA_PIPE_REVERSE => "DataPipeReverse",
        op::DATA_PIPE_CONSUMER => "DataPipeConsumer",
        op::DATA_PIPE_REVERSE_DONE => "DataPipeReverseDone",
        op::SUB_PIPE_C2H => "kSubPipeC2H",
        op::SUB_PIPE_C2H_READY => "kSubPipeC2HReady",
        op::SUB_PIPE_C2H_DONE => "kSubPipeC2HDone",
        op::SHMEM_C2H => "kShmemC2H",
        op::SHMEM_C2H_BUFFER => "kShmemC2HBuffer",
        op::SHMEM_C2H_ACK => "kShmemC2HAck",
        op::SHMEM_C2H_RESULT => "kShmemC2HResult",
        op::PLAT_HANDLE_C2H => "kPlatHandleC2H",
        op::PLAT_HANDLE_C2H_FDS => "kPlatHandleC2HFds",
        op::PLAT_HANDLE_C2H_ACK => "kPlatHandleC2HAck",
        op::PLAT_HANDLE_C2H_RESULT => "kPlatHandleC2HResult",
        op::PIPE_BOUNCE => "kPipeBounce",
        op::PIPE_BOUNCE_BACK => "kPipeBounceBack",
        op::MANY_PIPE => "kManyPipe",
        op::MANY_PIPES_DONE => "kManyPipesDone",
        op::ERROR => "Error",
        op::SCALE_OPEN => "ScaleOpen",
        op::SCALE_ECHO => "ScaleEcho",
        op::SCALE_ECHO_DONE => "ScaleEchoDone",
        op::SCALE_SINK => "ScaleSink",
        op::SCALE_CLOSE => "ScaleClose",
        op::SCALE_CLOSED => "ScaleClosed",
        op::HANDLE_SINK => "HandleSink",
        op::HANDLE_SINK_ACK => "HandleSinkAck",
        _ => "unknown",
    }
}

impl Payload {
    /// The opcode.
    pub fn opcode(&self) -> u32 {
        match self {
            Self::Echo(_) => op::ECHO,
            Self::SinkStart { .. } => op::SINK_START,
            Self::SinkData(_) => op::SINK_DATA,
            Self::SinkAck { .. } => op::SINK_ACK,
            Self::SubPipe => op::SUB_PIPE,
            Self::SubPipeDone { .. } => op::SUB_PIPE_DONE,
            Self::Shmem { .. } => op::SHMEM,
            Self::ShmemAck { .. } => op::SHMEM_ACK,
            Self::PlatHandle { .. } => op::PLAT_HANDLE,
            Self::PlatHandleAck { .. } => op::PLAT_HANDLE_ACK,
            Self::CloseWatch => op::CLOSE_WATCH,
            Self::CloseWatchReady => op::CLOSE_WATCH_READY,
            Self::CloseSeen { .. } => op::CLOSE_SEEN,
            Self::CloseSelf => op::CLOSE_SELF,
            Self::Hello { .. } => op::HELLO,
            Self::DataPipe { .. } => op::DATA_PIPE,
            Self::DataPipeAck { .. } => op::DATA_PIPE_ACK,
            Self::DataPipeReverse { .. } => op::DATA_PIPE_REVERSE,
            Self::DataPipeConsumer { .. } => op::DATA_PIPE_CONSUMER,
            Self::DataPipeReverseDone { .. } => op::DATA_PIPE_REVERSE_DONE,
            Self::SubPipeC2H { .. } => op::SUB_PIPE_C2H,
            Self::SubPipeC2HReady { .. } => op::SUB_PIPE_C2H_READY,
            Self::SubPipeC2HDone { .. } => op::SUB_PIPE_C2H_DONE,
            Self::ShmemC2H { .. } => op::SHMEM_C2H,
            Self::ShmemC2HBuffer { .. } => op::SHMEM_C2H_BUFFER,
            Self::ShmemC2HAck { .. } => op::SHMEM_C2H_ACK,
            Self::ShmemC2HResult { .. } => op::SHMEM_C2H_RESULT,
            Self::PlatHandleC2H { .. } => op::PLAT_HANDLE_C2H,
            Self::PlatHandleC2HFds { .. } => op::PLAT_HANDLE_C2H_FDS,
            Self::PlatHandleC2HAck { .. } => op::PLAT_HANDLE_C2H_ACK,
            Self::PlatHandleC2HResult { .. } => op::PLAT_HANDLE_C2H_RESULT,
            Self::PipeBounce { .. } => op::PIPE_BOUNCE,
            Self::PipeBounceBack { .. } => op::PIPE_BOUNCE_BACK,
            Self::ManyPipe { .. } => op::MANY_PIPE,
            Self::ManyPipesDone { .. } => op::MANY_PIPES_DONE,
            Self::Error { .. } => op::ERROR,
            Self::ScaleOpen { .. } => op::SCALE_OPEN,
            Self::ScaleEcho { .. } => op::SCALE_ECHO,
            Self::ScaleEchoDone { .. } => op::SCALE_ECHO_DONE,
            Self::ScaleSink { .. } => op::SCALE_SINK,
            Self::ScaleClose => op::SCALE_CLOSE,
            Self::ScaleClosed { .. } => op::SCALE_CLOSED,
            Self::HandleSink { .. } => op::HANDLE_SINK,
            Self::HandleSinkAck { .. } => op::HANDLE_SINK_ACK,
        }
    }

    /// The payload bytes, opcode first.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(36));
        w.u32(self.opcode());
        match self {
            Self::Echo(rest) | Self::SinkData(rest) => w.0.extend_from_slice(rest),
            Self::SubPipe
            | Self::CloseWatch
            | Self::CloseWatchReady
            | Self::CloseSelf
            | Self::ScaleClose => {}
            Self::Hello { index: a }
            | Self::SubPipeC2H { count: a }
            | Self::SubPipeC2HReady { count: a }
            | Self::ShmemC2HAck { wrote: a }
            | Self::PipeBounce { hop: a }
            | Self::PipeBounceBack { hop: a } => w.u32(*a),
            Self::SubPipeDone { echoed: a }
            | Self::Shmem { size: a }
            | Self::ShmemAck { fnv: a }
            | Self::PlatHandle { size: a }
            | Self::CloseSeen { result: a }
            | Self::DataPipe { total: a }
            | Self::DataPipeConsumer { total: a }
            | Self::SubPipeC2HDone { echoed: a }
            | Self::PlatHandleC2H { size: a }
            | Self::PlatHandleC2HAck { host_fnv: a }
            | Self::ScaleEcho { count: a }
            | Self::ScaleEchoDone { echoed: a }
            | Self::ScaleClosed { closed: a } => w.u64(*a),
            Self::SinkStart { count: a, size: b }
            | Self::PlatHandleAck {
                fnv: a,
                bytes_read: b,
            }
            | Self::DataPipeAck { bytes: a, fnv: b }
            | Self::DataPipeReverse {
                total: a,
                capacity: b,
            }
            | Self::DataPipeReverseDone {
                written: a,
                last_result: b,
            }
            | Self::ShmemC2HResult {
                bad_first: a,
                bad_second: b,
            }
            | Self::PlatHandleC2HFds { size: a, fnv: b }
            | Self::ManyPipesDone {
                handled: a,
                errors: b,
            }
            | Self::ScaleSink { count: a, size: b } => {
                w.u64(*a);
                w.u64(*b);
            }
            Self::SinkAck {
                received,
                bytes,
                bad,
            } => {
                w.u64(*received);
                w.u64(*bytes);
                w.u64(*bad);
            }
            Self::HandleSink { count, size, kind } => {
                w.u64(*count);
                w.u64(*size);
                w.u32(*kind);
            }
            Self::HandleSinkAck {
                received,
                bytes,
                bad,
                handles,
            } => {
                for v in [received, bytes, bad, handles] {
                    w.u64(*v);
                }
            }
            Self::ShmemC2H { size, read_only } => {
                w.u64(*size);
                w.u32(*read_only);
            }
            Self::ShmemC2HBuffer {
                size,
                fnv,
                read_only,
            } => {
                w.u64(*size);
                w.u64(*fnv);
                w.u32(*read_only);
            }
            Self::PlatHandleC2HResult {
                mark_ok,
                pipe_ok,
                pipe_bytes,
                pipe_eof,
            } => {
                for v in [mark_ok, pipe_ok, pipe_bytes, pipe_eof] {
                    w.u64(*v);
                }
            }
            Self::ManyPipe { index: a, total: b } | Self::ScaleOpen { first: a, count: b } => {
                w.u32(*a);
                w.u32(*b);
            }
            Self::Error { code, detail } => {
                w.u64(*code);
                for v in detail {
                    w.u64(*v);
                }
            }
        }
        w.0
    }

    /// Decodes a payload, demanding the exact size of fixed-size opcodes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 4 {
            return Err(DecodeError::NoOpcode { len: bytes.len() });
        }
        let opcode = get_u32(bytes, 0);
        let rest = &bytes[4..];
        match opcode {
            op::ECHO => return Ok(Self::Echo(rest.to_vec())),
            op::SINK_DATA => return Ok(Self::SinkData(rest.to_vec())),
            op::ERROR => {
                let words = rest.len() / 8;
                if rest.len() % 8 != 0 || words == 0 || words > 1 + MAX_ERROR_DETAIL_WORDS {
                    return Err(DecodeError::BadErrorLength { found: bytes.len() });
                }
                return Ok(Self::Error {
                    code: get_u64(bytes, 4),
                    detail: (1..words).map(|k| get_u64(bytes, 4 + 8 * k)).collect(),
                });
            }
            _ => {}
        }
        let expected = fixed_size(opcode).ok_or(DecodeError::UnknownOpcode(opcode))?;
        if bytes.len() != expected {
            return Err(DecodeError::WrongLength {
                name: name(opcode),
                expected,
                found: bytes.len(),
            });
        }
        let u32_at = |off| get_u32(bytes, off);
        let u64_at = |off| get_u64(bytes, off);
        Ok(match opcode {
            op::SINK_START => Self::SinkStart {
                count: u64_at(4),
                size: u64_at(12),
            },
            op::SINK_ACK => Self::SinkAck {
                received: u64_at(4),
                bytes: u64_at(12),
                bad: u64_at(20),
            },
            op::SUB_PIPE => Self::SubPipe,
            op::SUB_PIPE_DONE => Self::SubPipeDone { echoed: u64_at(4) },
            op::SHMEM => Self::Shmem { size: u64_at(4) },
            op::SHMEM_ACK => Self::ShmemAck { fnv: u64_at(4) },
            op::PLAT_HANDLE => Self::PlatHandle { size: u64_at(4) },
            op::PLAT_HANDLE_ACK => Self::PlatHandleAck {
                fnv: u64_at(4),
                bytes_read: u64_at(12),
            },
            op::CLOSE_WATCH => Self::CloseWatch,
            op::CLOSE_WATCH_READY => Self::CloseWatchReady,
            op::CLOSE_SEEN => Self::CloseSeen { result: u64_at(4) },
            op::CLOSE_SELF => Self::CloseSelf,
            op::HELLO => Self::Hello { index: u32_at(4) },
            op::DATA_PIPE => Self::DataPipe { total: u64_at(4) },
            op::DATA_PIPE_ACK => Self::DataPipeAck {
                bytes: u64_at(4),
                fnv: u64_at(12),
            },
            op::DATA_PIPE_REVERSE => Self::DataPipeReverse {
                total: u64_at(4),
                capacity: u64_at(12),
            },
            op::DATA_PIPE_CONSUMER => Self::DataPipeConsumer { total: u64_at(4) },
            op::DATA_PIPE_REVERSE_DONE => Self::DataPipeReverseDone {
                written: u64_at(4),
                last_result: u64_at(12),
            },
            op::SUB_PIPE_C2H => Self::SubPipeC2H { count: u32_at(4) },
            op::SUB_PIPE_C2H_READY => Self::SubPipeC2HReady { count: u32_at(4) },
            op::SUB_PIPE_C2H_DONE => Self::SubPipeC2HDone { echoed: u64_at(4) },
            op::SHMEM_C2H => Self::ShmemC2H {
                size: u64_at(4),
                read_only: u32_at(12),
            },
            op::SHMEM_C2H_BUFFER => Self::ShmemC2HBuffer {
                size: u64_at(4),
                fnv: u64_at(12),
                read_only: u32_at(20),
            },
            op::SHMEM_C2H_ACK => Self::ShmemC2HAck { wrote: u32_at(4) },
            op::SHMEM_C2H_RESULT => Self::ShmemC2HResult {
                bad_first: u64_at(4),
                bad_second: u64_at(12),
            },
            op::PLAT_HANDLE_C2H => Self::PlatHandleC2H { size: u64_at(4) },
            op::PLAT_HANDLE_C2H_FDS => Self::PlatHandleC2HFds {
                size: u64_at(4),
                fnv: u64_at(12),
            },
            op::PLAT_HANDLE_C2H_ACK => Self::PlatHandleC2HAck {
                host_fnv: u64_at(4),
            },
            op::PLAT_HANDLE_C2H_RESULT => Self::PlatHandleC2HResult {
                mark_ok: u64_at(4),
                pipe_ok: u64_at(12),
                pipe_bytes: u64_at(20),
                pipe_eof: u64_at(28),
            },
            op::PIPE_BOUNCE => Self::PipeBounce { hop: u32_at(4) },
            op::PIPE_BOUNCE_BACK => Self::PipeBounceBack { hop: u32_at(4) },
            op::MANY_PIPE => Self::ManyPipe {
                index: u32_at(4),
                total: u32_at(8),
            },
            op::MANY_PIPES_DONE => Self::ManyPipesDone {
                handled: u64_at(4),
                errors: u64_at(12),
            },
            op::SCALE_OPEN => Self::ScaleOpen {
                first: u32_at(4),
                count: u32_at(8),
            },
            op::SCALE_ECHO => Self::ScaleEcho { count: u64_at(4) },
            op::SCALE_ECHO_DONE => Self::ScaleEchoDone { echoed: u64_at(4) },
            op::SCALE_SINK => Self::ScaleSink {
                count: u64_at(4),
                size: u64_at(12),
            },
            op::SCALE_CLOSE => Self::ScaleClose,
            op::SCALE_CLOSED => Self::ScaleClosed { closed: u64_at(4) },
            op::HANDLE_SINK => Self::HandleSink {
                count: u64_at(4),
                size: u64_at(12),
                kind: u32_at(20),
            },
            op::HANDLE_SINK_ACK => Self::HandleSinkAck {
                received: u64_at(4),
                bytes: u64_at(12),
                bad: u64_at(20),
                handles: u64_at(28),
            },
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests;
