//! The client's side of the `throughput_extra` scenario's handle runs (ours,
//! not the spec's; `op::HANDLE_SINK`): one-way SinkData messages that each
//! carry one handle. The client takes every handle as the kind the run
//! names, counts it and closes it (an fd is unwrapped to the OS and closed
//! there), so a run in which handles did not arrive, or arrived as
//! something else, cannot report all of them.

use crate::protocol::{self, Payload, op, sink_kind};
use crate::system::{Handle, MojoSystem, read_one};

use super::PipeServer;

impl<S: MojoSystem> PipeServer<'_, S> {
    /// HandleSink: reads `count` SinkData messages of `size` bytes, each
    /// with one handle of `kind`, and answers with a HandleSinkAck.
    pub(super) fn handle_sink(&self, count: u64, size: u64, kind: u32) {
        let (mut got, mut bytes, mut bad, mut handles) = (0u64, 0u64, 0u64, 0u64);
        while got < count {
            let Ok(d) = read_one(self.sys, self.pipe, None) else {
                break;
            };
            got += 1;
            bytes += d.bytes.len() as u64;
            let taken = match <[Handle; 1]>::try_from(d.handles) {
                Ok([h]) => self.take_handle(h, kind),
                // None or several: all of them are closed with the Vec.
                Err(_) => false,
            };
            handles += u64::from(taken);
            let shape_ok =
                d.bytes.len() as u64 == size && protocol::opcode_of(&d.bytes) == op::SINK_DATA;
            if !shape_ok || !taken {
                bad += 1;
            }
        }
        self.reply(Payload::HandleSinkAck {
            received: got,
            bytes,
            bad,
            handles,
        });
    }

    /// Takes `h` as a handle of `kind` and closes it: whether it was one
    /// (an fd must also be valid in this process).
    fn take_handle(&self, h: Handle, kind: u32) -> bool {
        match kind {
            sink_kind::FD => h
                .into_platform_handle()
                .ok()
                .and_then(|p| self.sys.unwrap_platform_handle(p).ok())
                .is_some_and(|fd| crate::os::fd_access_mode(&fd) >= 0),
            sink_kind::SHARED_BUFFER => h.into_shared_buffer().is_ok(),
            sink_kind::MESSAGE_PIPE => h.into_message_pipe().is_ok(),
            _ => false,
        }
    }
}
