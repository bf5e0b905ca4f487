//! `mojo-test-client`'s work: serve the application protocol on every
//! attached pipe, concurrently, exactly as `rm_legacy_client.cc` does
//! (test-peers.md §2 and §2.1).
//!
//! Each pipe gets its own thread and is served one request at a time: a
//! handler that waits for "the next message on the main pipe" reads the
//! host's ack for that very request. A pipe's loop ends when its peer is
//! closed (or, as in the reference, when a write of a c2h transfer or the
//! read of its ack fails); [`serve_all`] returns when every loop has ended.
//! Replies are written without checking the result, as the reference does.

mod handle_sink;
mod scale;

pub use scale::{MAX_SCALE_PIPES, scale_error};

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::uio::{pread, pwrite};

use crate::protocol::{
    self, CLIENT_MARK, CLIENT_PIPE_MSG, Direction, Fnv, HOST_MARK, HOST_PIPE_MSG, Payload,
    error_code, op,
};
use crate::system::{
    BufferMapping, Handle, Message, MessagePipe, MojoError, MojoResult, MojoSystem, Signals,
    read_one, result_code, wait,
};

/// Chunk size for data pipe reads (the reference's 64 KiB buffer).
pub const DATA_PIPE_READ_CHUNK: usize = 64 * 1024;
/// Chunk size for data pipe writes (the reference's 16 KiB chunk).
pub const DATA_PIPE_WRITE_CHUNK: usize = 16 * 1024;
/// Chunk size for filling and checking buffers and memfds.
pub const FILL_CHUNK: usize = 64 * 1024;
/// Most bytes the client reads from the host's OS pipe (platform_handle_c2h).
pub const OS_PIPE_READ_MAX: usize = 256;
/// How long the client reads the host's OS pipe for EOF.
pub const OS_PIPE_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest `m` of a kSubPipeC2H request the client queues (the spec's is 10;
/// the bound only keeps a wild request from exhausting memory).
pub const MAX_SUB_PIPE_C2H_MESSAGES: u32 = 4096;
/// Largest memfd a kPlatHandleC2H request makes the client write.
pub const MAX_PLAT_HANDLE_C2H_SIZE: u64 = 256 << 20;
/// Name of the client's memfd (`memfd_create`).
pub const CLIENT_MEMFD_NAME: &str = "rm_client_memfd";

/// Ours: a request asking for more than the client's limits (then the
/// opcode and the value). The reference has no such limits.
pub const ERROR_REQUEST_TOO_LARGE: u64 = 102;

/// Serves every pipe on its own thread and returns once all are done.
/// `verbose` prints the reference's `[client]` lines on stderr.
pub fn serve_all<S: MojoSystem>(system: &S, pipes: Vec<MessagePipe>, verbose: bool) {
    std::thread::scope(|scope| {
        for (index, pipe) in pipes.into_iter().enumerate() {
            scope.spawn(move || serve(system, pipe, index, verbose));
        }
    });
    if verbose {
        eprintln!("[client] all pipes closed, exiting");
    }
}

/// What a handler tells the serve loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The main pipe is gone (a failed write or ack read): stop serving it.
    Stop,
}

/// Serves one pipe until its peer closes.
pub fn serve<S: MojoSystem>(system: &S, pipe: MessagePipe, index: usize, verbose: bool) {
    let mut server = PipeServer {
        sys: system,
        pipe: &pipe,
        many_handled: 0,
        many_errors: 0,
        scale: Vec::new(),
    };
    let mut served: u64 = 0;
    loop {
        let msg = match read_one(system, &pipe, None) {
            Ok(m) => m,
            Err(e) => {
                if verbose {
                    eprintln!(
                        "[client] pipe {index} closed (r={}) after {served} msgs",
                        e.code()
                    );
                }
                break;
            }
        };
        served += 1;
        if server.handle(msg) == Flow::Stop {
            break;
        }
    }
    if verbose {
        eprintln!("[client] pipe {index} serve loop done");
    }
}

struct PipeServer<'a, S: MojoSystem> {
    sys: &'a S,
    pipe: &'a MessagePipe,
    /// kManyPipe counters since the last kManyPipesDone.
    many_handled: u64,
    many_errors: u64,
    /// The `scale` scenario's pipes (ours), in ScaleOpen order.
    scale: Vec<MessagePipe>,
}

impl<S: MojoSystem> PipeServer<'_, S> {
    fn reply(&self, payload: Payload) {
        let _ = self
            .sys
            .write_message(self.pipe, &payload.encode(), Vec::new());
    }

    fn error(&self, code: u64, detail: &[u64]) {
        self.reply(Payload::Error {
            code,
            detail: detail.to_vec(),
        });
    }

    fn handle(&mut self, msg: Message) -> Flow {
        let opcode = protocol::opcode_of(&msg.bytes);
        if opcode == op::ECHO || opcode == op::HELLO {
            // Echoed verbatim whatever their length, as the reference does.
            let _ = self.sys.write_message(self.pipe, &msg.bytes, Vec::new());
            return Flow::Continue;
        }
        if !is_request(opcode) {
            self.error(error_code::UNKNOWN_OPCODE, &[u64::from(opcode)]);
            return Flow::Continue;
        }
        let Ok(payload) = Payload::decode(&msg.bytes) else {
            self.error(
                error_code::MALFORMED_REQUEST,
                &[u64::from(opcode), msg.bytes.len() as u64],
            );
            return Flow::Continue;
        };
        let handles = msg.handles;
        match payload {
            Payload::SinkStart { count, size } => self.sink(count, size),
            Payload::SubPipe => self.sub_pipe(handles),
            Payload::Shmem { size } => self.shmem(size, handles),
            Payload::PlatHandle { size } => self.plat_handle(size, handles),
            Payload::CloseWatch => self.close_watch(handles),
            Payload::DataPipe { total } => self.data_pipe(total, handles),
            Payload::DataPipeReverse { total, capacity } => self.data_pipe_reverse(total, capacity),
            Payload::CloseSelf => drop(handles),
            Payload::SubPipeC2H { count } => return self.sub_pipe_c2h(count),
            Payload::ShmemC2H { size, read_only } => return self.shmem_c2h(size, read_only != 0),
            Payload::PlatHandleC2H { size } => return self.plat_handle_c2h(size),
            Payload::PipeBounce { hop } => self.pipe_bounce(hop, handles),
            Payload::ManyPipe { index, total } => self.many_pipe(index, total, handles),
            Payload::ScaleOpen { first, count } => self.scale_open(first, count, handles),
            Payload::ScaleEcho { count } => self.scale_echo(count),
            Payload::ScaleSink { count, size } => self.scale_sink(count, size),
            Payload::ScaleClose => self.scale_close(),
            Payload::HandleSink { count, size, kind } => self.handle_sink(count, size, kind),
            _ => self.error(error_code::UNKNOWN_OPCODE, &[u64::from(opcode)]),
        }
        Flow::Continue
    }

    fn sink(&self, count: u64, size: u64) {
        let (mut got, mut bytes, mut bad) = (0u64, 0u64, 0u64);
        while got < count {
            let Ok(d) = read_one(self.sys, self.pipe, None) else {
                break;
            };
            got += 1;
            bytes += d.bytes.len() as u64;
            if d.bytes.len() as u64 != size || protocol::opcode_of(&d.bytes) != op::SINK_DATA {
                bad += 1;
            }
        }
        self.reply(Payload::SinkAck {
            received: got,
            bytes,
            bad,
        });
    }

    fn sub_pipe(&self, handles: Vec<Handle>) {
        let Ok([h]) = <[Handle; 1]>::try_from(handles) else {
            return self.error(error_code::SUB_PIPE_HANDLES, &[]);
        };
        let echoed = match h.into_message_pipe() {
            Ok(sub) => echo_until_closed(self.sys, &sub),
            // Reading a non-pipe fails at once in Mojo: nothing echoed.
            Err(_) => 0,
        };
        self.reply(Payload::SubPipeDone { echoed });
    }

    fn shmem(&self, size: u64, handles: Vec<Handle>) {
        let Ok([h]) = <[Handle; 1]>::try_from(handles) else {
            return self.error(error_code::SHMEM_HANDLES, &[]);
        };
        let Ok(buf) = h.into_shared_buffer() else {
            // MojoMapBuffer on another kind of handle: INVALID_ARGUMENT.
            let code = MojoError::InvalidArgument.code();
            return self.error(error_code::SHMEM_MAP, &[u64::from(code)]);
        };
        let mut map = match self.sys.map_buffer(&buf, 0, size) {
            Ok(m) => m,
            Err(e) => return self.error(error_code::SHMEM_MAP, &[u64::from(e.code())]),
        };
        let half = size / 2;
        let fnv = fnv_of_mapping(&map, 0, half);
        let _ = fill_mapping(&mut map, half, size, protocol::shmem_client_byte);
        drop(map);
        drop(buf);
        self.reply(Payload::ShmemAck { fnv });
    }

    fn plat_handle(&self, size: u64, handles: Vec<Handle>) {
        let n = handles.len();
        let Ok([h0, h1]) = <[Handle; 2]>::try_from(handles) else {
            return self.error(error_code::PLAT_HANDLE_HANDLES, &[n as u64]);
        };
        let memfd = h0
            .into_platform_handle()
            .ok()
            .and_then(|h| self.sys.unwrap_platform_handle(h).ok());
        let wpipe = h1
            .into_platform_handle()
            .ok()
            .and_then(|h| self.sys.unwrap_platform_handle(h).ok());
        let (Some(memfd), Some(wpipe)) = (memfd, wpipe) else {
            return self.error(error_code::PLAT_HANDLE_INVALID, &[]);
        };
        let (fnv, read) = crate::os::hash_fd_prefix(&memfd, size);
        // A failed pread is the reference's (uint64_t)-1.
        let read = read.unwrap_or(u64::MAX);
        let _ = pwrite(memfd.as_fd(), CLIENT_MARK, size as i64);
        let _ = nix::unistd::write(&wpipe, CLIENT_PIPE_MSG);
        self.reply(Payload::PlatHandleAck {
            fnv,
            bytes_read: read,
        });
    }

    fn close_watch(&self, handles: Vec<Handle>) {
        let Ok([h]) = <[Handle; 1]>::try_from(handles) else {
            return self.error(error_code::CLOSE_WATCH_HANDLES, &[]);
        };
        self.reply(Payload::CloseWatchReady);
        let r = wait(self.sys, h.raw(), Signals::PEER_CLOSED, None);
        self.reply(Payload::CloseSeen {
            result: u64::from(result_code(&r)),
        });
    }

    fn data_pipe(&self, total: u64, handles: Vec<Handle>) {
        let n = handles.len();
        let Ok([h]) = <[Handle; 1]>::try_from(handles) else {
            return self.error(error_code::DATA_PIPE_HANDLES, &[n as u64]);
        };
        let (mut bytes, mut fnv) = (0u64, Fnv::new());
        if let Ok(consumer) = h.into_data_pipe_consumer() {
            let mut buf = vec![0u8; DATA_PIPE_READ_CHUNK];
            while bytes < total {
                match self.sys.read_data(&consumer, &mut buf) {
                    Ok(num) => {
                        fnv.update(&buf[..num]);
                        bytes += num as u64;
                    }
                    Err(MojoError::ShouldWait) => {
                        if wait(self.sys, consumer.raw(), Signals::READABLE, None).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        self.reply(Payload::DataPipeAck {
            bytes,
            fnv: fnv.value(),
        });
    }

    fn data_pipe_reverse(&self, total: u64, capacity: u64) {
        // The reference passes the capacity as a uint32_t.
        let (producer, consumer) = match self.sys.create_data_pipe(1, capacity as u32) {
            Ok(p) => p,
            Err(e) => return self.error(error_code::DATA_PIPE_CREATE, &[u64::from(e.code())]),
        };
        let msg = Payload::DataPipeConsumer { total }.encode();
        let _ = self
            .sys
            .write_message(self.pipe, &msg, vec![consumer.into()]);
        let mut chunk = vec![0u8; DATA_PIPE_WRITE_CHUNK];
        let mut written = 0u64;
        let mut last: MojoResult<()> = Ok(());
        while written < total {
            let num = (chunk.len() as u64).min(total - written) as usize;
            for (i, b) in chunk[..num].iter_mut().enumerate() {
                *b = protocol::pattern_byte(written + i as u64, Direction::ClientToHost);
            }
            match self.sys.write_data(&producer, &chunk[..num]) {
                Ok(n) => {
                    last = Ok(());
                    written += n as u64;
                }
                Err(MojoError::ShouldWait) => {
                    last = wait(self.sys, producer.raw(), Signals::WRITABLE, None);
                    if last.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    last = Err(e);
                    break;
                }
            }
        }
        drop(producer);
        self.reply(Payload::DataPipeReverseDone {
            written,
            last_result: u64::from(result_code(&last)),
        });
    }

    fn sub_pipe_c2h(&self, count: u32) -> Flow {
        if count > MAX_SUB_PIPE_C2H_MESSAGES {
            self.error(
                ERROR_REQUEST_TOO_LARGE,
                &[u64::from(op::SUB_PIPE_C2H), u64::from(count)],
            );
            return Flow::Continue;
        }
        let Ok((a, b)) = self.sys.create_message_pipe() else {
            self.error(error_code::SUB_PIPE_C2H_WRITE, &[]);
            return Flow::Continue;
        };
        for i in 0..count {
            let _ = self
                .sys
                .write_message(&a, &protocol::c2h_msg(i), Vec::new());
        }
        let ready = Payload::SubPipeC2HReady { count }.encode();
        if self
            .sys
            .write_message(self.pipe, &ready, vec![b.into()])
            .is_err()
        {
            self.error(error_code::SUB_PIPE_C2H_WRITE, &[]);
            return Flow::Continue;
        }
        let echoed = echo_until_closed(self.sys, &a);
        self.reply(Payload::SubPipeC2HDone { echoed });
        Flow::Continue
    }

    fn shmem_c2h(&self, size: u64, read_only: bool) -> Flow {
        if size > MAX_PLAT_HANDLE_C2H_SIZE {
            self.error(ERROR_REQUEST_TOO_LARGE, &[u64::from(op::SHMEM_C2H), size]);
            return Flow::Continue;
        }
        let buf = match self.sys.create_shared_buffer(size) {
            Ok(b) => b,
            Err(e) => {
                self.error(error_code::SHMEM_C2H_CREATE, &[u64::from(e.code())]);
                return Flow::Continue;
            }
        };
        let mut map = match self.sys.map_buffer(&buf, 0, size) {
            Ok(m) => m,
            Err(e) => {
                self.error(error_code::SHMEM_C2H_MAP, &[u64::from(e.code())]);
                return Flow::Continue;
            }
        };
        let _ = fill_mapping(&mut map, 0, size, protocol::shmem_c2h_byte);
        let fnv = fnv_of_mapping(&map, 0, size);
        // Read-only: a READ_ONLY duplicate travels and `buf` (now read-only
        // itself) stays here; writable: the original handle travels.
        let (send, kept) = if read_only {
            match self.sys.duplicate_buffer(&buf, true) {
                Ok(dup) => (dup, Some(buf)),
                Err(e) => {
                    self.error(error_code::SHMEM_C2H_DUPLICATE, &[u64::from(e.code())]);
                    return Flow::Continue;
                }
            }
        } else {
            (buf, None)
        };
        let out = Payload::ShmemC2HBuffer {
            size,
            fnv,
            read_only: u32::from(read_only),
        }
        .encode();
        if self
            .sys
            .write_message(self.pipe, &out, vec![send.into()])
            .is_err()
        {
            return Flow::Stop;
        }
        let Ok(ack) = read_one(self.sys, self.pipe, None) else {
            return Flow::Stop; // the main pipe is gone
        };
        let ack_op = protocol::opcode_of(&ack.bytes);
        if ack_op != op::SHMEM_C2H_ACK {
            self.error(error_code::SHMEM_C2H_ACK, &[u64::from(ack_op)]);
            return Flow::Continue;
        }
        let Ok(Payload::ShmemC2HAck { wrote }) = Payload::decode(&ack.bytes) else {
            self.error(
                error_code::MALFORMED_REQUEST,
                &[u64::from(ack_op), ack.bytes.len() as u64],
            );
            return Flow::Continue;
        };
        let wrote = wrote != 0;
        let half = size / 2;
        let bad_first = count_mismatches(&map, 0, half, protocol::shmem_c2h_byte);
        let bad_second = if wrote {
            count_mismatches(&map, half, size, protocol::shmem_c2h_host_byte)
        } else {
            count_mismatches(&map, half, size, protocol::shmem_c2h_byte)
        };
        drop(map);
        drop(kept);
        self.reply(Payload::ShmemC2HResult {
            bad_first,
            bad_second,
        });
        Flow::Continue
    }

    fn plat_handle_c2h(&self, size: u64) -> Flow {
        if size > MAX_PLAT_HANDLE_C2H_SIZE {
            self.error(
                ERROR_REQUEST_TOO_LARGE,
                &[u64::from(op::PLAT_HANDLE_C2H), size],
            );
            return Flow::Continue;
        }
        let created = memfd_create(CLIENT_MEMFD_NAME, MFdFlags::MFD_CLOEXEC)
            .and_then(|m| nix::unistd::pipe2(OFlag::O_CLOEXEC).map(|p| (m, p)));
        let (memfd, (r, w)) = match created {
            Ok(x) => x,
            Err(errno) => {
                self.error(error_code::PLAT_HANDLE_C2H_CREATE, &[errno as i32 as u64]);
                return Flow::Continue;
            }
        };
        let fnv = write_pattern_fd(&memfd, size, protocol::memfd_c2h_byte);
        // The client keeps the memfd and `r`, and no copy of `w`.
        let wrapped = memfd
            .try_clone()
            .map_err(|_| MojoError::ResourceExhausted)
            .and_then(|d| self.sys.wrap_platform_handle(d))
            .and_then(|h0| self.sys.wrap_platform_handle(w).map(|h1| (h0, h1)));
        let (h0, h1) = match wrapped {
            Ok(h) => h,
            Err(e) => {
                self.error(error_code::PLAT_HANDLE_C2H_CREATE, &[u64::from(e.code())]);
                return Flow::Continue;
            }
        };
        let out = Payload::PlatHandleC2HFds { size, fnv }.encode();
        if self
            .sys
            .write_message(self.pipe, &out, vec![h0.into(), h1.into()])
            .is_err()
        {
            return Flow::Stop;
        }
        let Ok(ack) = read_one(self.sys, self.pipe, None) else {
            return Flow::Stop;
        };
        let ack_op = protocol::opcode_of(&ack.bytes);
        if ack_op != op::PLAT_HANDLE_C2H_ACK {
            self.error(error_code::PLAT_HANDLE_C2H_ACK, &[u64::from(ack_op)]);
            return Flow::Continue;
        }
        let mut mark = [0u8; HOST_MARK.len()];
        let mark_ok = matches!(pread(memfd.as_fd(), &mut mark, size as i64), Ok(n) if n == mark.len())
            && mark == HOST_MARK;
        let (got, eof) = read_fd_until_eof(&r, OS_PIPE_READ_MAX, OS_PIPE_READ_TIMEOUT);
        let pipe_ok = got == HOST_PIPE_MSG;
        drop((memfd, r));
        self.reply(Payload::PlatHandleC2HResult {
            mark_ok: u64::from(mark_ok),
            pipe_ok: u64::from(pipe_ok),
            pipe_bytes: got.len() as u64,
            pipe_eof: u64::from(eof),
        });
        Flow::Continue
    }

    fn pipe_bounce(&self, hop: u32, handles: Vec<Handle>) {
        let n = handles.len();
        if n != 1 {
            return self.error(error_code::PIPE_BOUNCE_HANDLES, &[n as u64]);
        }
        let back = Payload::PipeBounceBack { hop }.encode();
        if self.sys.write_message(self.pipe, &back, handles).is_err() {
            self.error(error_code::PIPE_BOUNCE_WRITE, &[]);
        }
    }

    fn many_pipe(&mut self, index: u32, total: u32, handles: Vec<Handle>) {
        self.many_handled += 1;
        match <[Handle; 1]>::try_from(handles).map(|[h]| h.into_message_pipe()) {
            Ok(Ok(sub)) => {
                let ok = read_one(self.sys, &sub, None)
                    .and_then(|m| self.sys.write_message(&sub, &m.bytes, Vec::new()))
                    .is_ok();
                if !ok {
                    self.many_errors += 1;
                }
                drop(sub);
            }
            _ => self.many_errors += 1,
        }
        if index.wrapping_add(1) >= total {
            self.reply(Payload::ManyPipesDone {
                handled: self.many_handled,
                errors: self.many_errors,
            });
            self.many_handled = 0;
            self.many_errors = 0;
        }
    }
}

/// The opcodes the client serves (all others get Error [100, op]).
fn is_request(opcode: u32) -> bool {
    matches!(
        opcode,
        op::SINK_START
            | op::SUB_PIPE
            | op::SHMEM
            | op::PLAT_HANDLE
            | op::CLOSE_WATCH
            | op::CLOSE_SELF
            | op::DATA_PIPE
            | op::DATA_PIPE_REVERSE
            | op::SUB_PIPE_C2H
            | op::SHMEM_C2H
            | op::PLAT_HANDLE_C2H
            | op::PIPE_BOUNCE
            | op::MANY_PIPE
            | op::SCALE_OPEN
            | op::SCALE_ECHO
            | op::SCALE_SINK
            | op::SCALE_CLOSE
            | op::HANDLE_SINK
    )
}

/// Echoes every message on `pipe` back (attached handles are dropped, i.e.
/// closed) until its peer closes; returns the count.
fn echo_until_closed<S: MojoSystem>(sys: &S, pipe: &MessagePipe) -> u64 {
    let mut n = 0;
    while let Ok(m) = read_one(sys, pipe, None) {
        let _ = sys.write_message(pipe, &m.bytes, Vec::new());
        n += 1;
    }
    n
}

fn fnv_of_mapping<M: BufferMapping>(map: &M, from: u64, to: u64) -> u64 {
    let mut h = Fnv::new();
    let mut buf = vec![0u8; FILL_CHUNK];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(FILL_CHUNK);
        if map.read(at as usize, &mut buf[..n]).is_err() {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    h.value()
}

fn fill_mapping<M: BufferMapping>(
    map: &mut M,
    from: u64,
    to: u64,
    pattern: fn(u64) -> u8,
) -> MojoResult<()> {
    let mut at = from;
    let mut buf = Vec::with_capacity(FILL_CHUNK);
    while at < to {
        let n = ((to - at) as usize).min(FILL_CHUNK);
        buf.clear();
        buf.extend((at..at + n as u64).map(pattern));
        map.write(at as usize, &buf)?;
        at += n as u64;
    }
    Ok(())
}

fn count_mismatches<M: BufferMapping>(map: &M, from: u64, to: u64, pattern: fn(u64) -> u8) -> u64 {
    let mut bad = 0;
    let mut buf = vec![0u8; FILL_CHUNK];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(FILL_CHUNK);
        if map.read(at as usize, &mut buf[..n]).is_err() {
            return bad + (to - at);
        }
        bad += buf[..n]
            .iter()
            .zip(at..)
            .filter(|&(&b, i)| b != pattern(i))
            .count() as u64;
        at += n as u64;
    }
    bad
}

/// Writes `size` bytes `pattern(i)` at offset 0 of `fd`; returns their FNV.
fn write_pattern_fd(fd: &OwnedFd, size: u64, pattern: fn(u64) -> u8) -> u64 {
    let mut h = Fnv::new();
    let mut buf = Vec::with_capacity(FILL_CHUNK);
    let mut at = 0u64;
    while at < size {
        let n = ((size - at) as usize).min(FILL_CHUNK);
        buf.clear();
        buf.extend((at..at + n as u64).map(pattern));
        h.update(&buf);
        let _ = pwrite(fd.as_fd(), &buf, at as i64);
        at += n as u64;
    }
    h.value()
}

/// Reads `fd` until EOF, `max` bytes or `timeout` (poll). Returns the bytes
/// and whether EOF was seen.
pub fn read_fd_until_eof(fd: &OwnedFd, max: usize, timeout: Duration) -> (Vec<u8>, bool) {
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < max {
        let left = end.saturating_duration_since(Instant::now());
        let left_ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if left_ms == 0 {
            break;
        }
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(left_ms)) {
            Ok(n) if n > 0 => {}
            Err(Errno::EINTR) => continue,
            _ => break,
        }
        let mut b = [0u8; OS_PIPE_READ_MAX];
        let want = b.len().min(max - out.len());
        match nix::unistd::read(fd, &mut b[..want]) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    (out, false)
}
