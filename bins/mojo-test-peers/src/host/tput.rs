//! The `throughput_extra` scenario (ours, not the spec's; issue 11: one-way
//! throughput "at 1 MiB, and the same with one fd, one shared buffer and one
//! new pipe per message"), run by `cargo xtask bench` after `throughput`
//! and `latency`:
//!
//! 1. `throughput_1048576`: the spec's `throughput` run (SinkStart, then
//!    `throughput_extra` SinkData messages, SinkAck) at each size of
//!    [`Counts::throughput_extra`](super::Counts) (1 MiB).
//! 2. `throughput_fd`, `throughput_shm`, `throughput_pipe`: HandleSink,
//!    then `handle_sink` SinkData messages of [`HANDLE_SINK_SIZE`] bytes,
//!    each carrying one handle: a duplicate of one memfd of the host's (a
//!    new fd each time), a new [`HANDLE_SINK_SHM_SIZE`] shared buffer, or
//!    one end of a new message pipe. The client counts and closes every
//!    handle (fds closed in the OS) and replies HandleSinkAck; the line
//!    passes only if every message arrived well-formed with its one handle
//!    of the kind (`handles` = `count`). The host keeps its ends of the new
//!    pipes until the ack and closes them after the clock stops, so the
//!    timed window holds each pipe's creation, its transfer and the
//!    client's close of its end.
//!
//! Each line has `count`, `received`, `bytes`, `elapsed_s` (from the start
//! request to the ack), `msgs_per_s` and `mb_per_s`, as `throughput_<size>`.

use std::time::Instant;

use nix::sys::memfd::{MFdFlags, memfd_create};

use super::report::add_err;
use super::{Host, TimedOut};
use crate::protocol::{Payload, op, sink_kind};
use crate::system::{Handle, MessagePipe, MojoError, MojoResult, MojoSystem};

/// Size of every SinkData message of the handle runs (the opcode included).
pub const HANDLE_SINK_SIZE: usize = 64;
/// Size of each shared buffer of `throughput_shm` (one page).
pub const HANDLE_SINK_SHM_SIZE: u64 = 4096;
/// The handle runs: (line, `sink_kind` code), in the order they run.
pub const HANDLE_RUNS: [(&str, u32); 3] = [
    ("throughput_fd", sink_kind::FD),
    ("throughput_shm", sink_kind::SHARED_BUFFER),
    ("throughput_pipe", sink_kind::MESSAGE_PIPE),
];
/// Name of the memfd whose duplicates `throughput_fd` sends.
const SINK_MEMFD_NAME: &str = "mojo_test_host_sink_fd";

/// What one handle run's HandleSinkAck said.
#[derive(Debug, Default, Clone, Copy)]
struct Acked {
    received: u64,
    bytes: u64,
    bad: u64,
    handles: u64,
}

impl<S: MojoSystem> Host<'_, S> {
    pub(super) fn throughput_extra(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        for (size, count) in self.cfg.counts.throughput_extra.clone() {
            self.sink_run(pipe, size, count)?;
        }
        for (name, kind) in HANDLE_RUNS {
            self.handle_run(pipe, name, kind)?;
        }
        Ok(())
    }

    /// One handle run of `kind`; line `name`.
    fn handle_run(&mut self, pipe: &MessagePipe, name: &str, kind: u32) -> Result<(), TimedOut> {
        let count = self.cfg.counts.handle_sink;
        let mut err = String::new();
        let memfd = if kind == sink_kind::FD {
            match memfd_create(SINK_MEMFD_NAME, MFdFlags::MFD_CLOEXEC) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    add_err(&mut err, &format!("memfd failed {e}"));
                    None
                }
            }
        } else {
            None
        };
        let mut data = vec![0xabu8; HANDLE_SINK_SIZE];
        data[..4].copy_from_slice(&op::SINK_DATA.to_le_bytes());
        let mut kept: Vec<MessagePipe> = Vec::new();
        let start = Payload::HandleSink {
            count,
            size: HANDLE_SINK_SIZE as u64,
            kind,
        };
        let t0 = Instant::now();
        let _ = self.send(pipe, &start, Vec::new());
        for k in 0..count {
            let handle: MojoResult<Handle> = match kind {
                sink_kind::FD => memfd
                    .as_ref()
                    .ok_or(MojoError::ResourceExhausted)
                    .and_then(|fd| fd.try_clone().map_err(|_| MojoError::ResourceExhausted))
                    .and_then(|fd| self.sys.wrap_platform_handle(fd))
                    .map(Handle::from),
                sink_kind::SHARED_BUFFER => self
                    .sys
                    .create_shared_buffer(HANDLE_SINK_SHM_SIZE)
                    .map(Handle::from),
                _ => self.sys.create_message_pipe().map(|(ours, theirs)| {
                    kept.push(ours);
                    Handle::from(theirs)
                }),
            };
            // A message goes out whatever happens, so the client's count
            // still ends; one without its handle fails the run.
            let handles = match handle {
                Ok(h) => vec![h],
                Err(e) => {
                    if err.is_empty() {
                        add_err(&mut err, &format!("handle {k}: r={}", e.code()));
                    }
                    Vec::new()
                }
            };
            if let Err(e) = self.write(pipe, &data, handles) {
                if err.is_empty() {
                    add_err(&mut err, &format!("write {k}: r={}", e.code()));
                }
            }
        }
        let mut acked = Acked::default();
        if let Some(m) = self.read_expect(pipe, op::HANDLE_SINK_ACK, &mut err)? {
            if let Some(Payload::HandleSinkAck {
                received,
                bytes,
                bad,
                handles,
            }) = self.decode(&m, &mut err)
            {
                acked = Acked {
                    received,
                    bytes,
                    bad,
                    handles,
                };
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        drop(kept);
        let pass =
            acked.received == count && acked.bad == 0 && acked.handles == count && err.is_empty();
        let mut j = self.line(name, pass);
        j.int("size", HANDLE_SINK_SIZE as i128)
            .int("count", i128::from(count))
            .int("received", i128::from(acked.received))
            .int("bytes", i128::from(acked.bytes))
            .int("bad", i128::from(acked.bad))
            .int("handles", i128::from(acked.handles))
            .num("elapsed_s", dt)
            .num("msgs_per_s", count as f64 / dt)
            .num(
                "mb_per_s",
                count as f64 * HANDLE_SINK_SIZE as f64 / dt / 1e6,
            )
            .error(&err);
        self.print(&j);
        Ok(())
    }
}
