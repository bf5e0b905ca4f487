//! The client's side of the `scale` scenario (ours, not the spec's; the
//! opcodes `op::SCALE_*`): it keeps the pipes a host opens with ScaleOpen
//! and serves them in the order the host uses them, so each message costs
//! the client one read on one pipe whatever the number of pipes.
//!
//! The schedule is fixed by the protocol: the k-th message of a ScaleEcho
//! or ScaleSink run comes on scale pipe `k mod N`. A blocking read on that
//! one pipe finds it; a message on another pipe simply waits in its queue.

use crate::protocol::{self, Payload, op};
use crate::system::{Handle, MessagePipe, MojoSystem, read_one};

use super::PipeServer;

/// Most scale pipes one main pipe keeps (a bound on a wild request; the
/// bench opens at most 10,000).
pub const MAX_SCALE_PIPES: usize = 100_000;

/// Error codes of the scale requests (ours), the first u64 of an Error.
pub mod scale_error {
    /// ScaleOpen whose `first` is not the number of pipes held, whose
    /// handle count is not `count`, or beyond [`super::MAX_SCALE_PIPES`]
    /// (then `first`, `count` and the handle count).
    pub const OPEN: u64 = 200;
    /// ScaleOpen: a handle is not a message pipe (then its index).
    pub const NOT_A_PIPE: u64 = 201;
    /// ScaleOpen: the first message of a new pipe could not be read or
    /// echoed (then its index).
    pub const FIRST_ECHO: u64 = 202;
    /// ScaleEcho or ScaleSink with no scale pipe.
    pub const NO_PIPES: u64 = 203;
}

impl<S: MojoSystem> PipeServer<'_, S> {
    /// ScaleOpen: keeps the pipes, then echoes the one message the host
    /// queued on each of them.
    pub(super) fn scale_open(&mut self, first: u32, count: u32, handles: Vec<Handle>) {
        let held = self.scale.len();
        let fits = held.checked_add(handles.len()) <= Some(MAX_SCALE_PIPES);
        if first as usize != held || handles.len() != count as usize || !fits {
            let detail = [u64::from(first), u64::from(count), handles.len() as u64];
            return self.error(scale_error::OPEN, &detail);
        }
        for (i, h) in handles.into_iter().enumerate() {
            match h.into_message_pipe() {
                Ok(p) => self.scale.push(p),
                Err(_) => return self.error(scale_error::NOT_A_PIPE, &[(held + i) as u64]),
            }
        }
        for index in held..self.scale.len() {
            let pipe = &self.scale[index];
            let echoed = read_one(self.sys, pipe, None)
                .and_then(|m| self.sys.write_message(pipe, &m.bytes, Vec::new()));
            if echoed.is_err() {
                self.error(scale_error::FIRST_ECHO, &[index as u64]);
            }
        }
    }

    /// The scale pipe of the k-th message of a run.
    fn scale_pipe(&self, k: u64) -> &MessagePipe {
        &self.scale[(k % self.scale.len() as u64) as usize]
    }

    /// ScaleEcho: echoes `count` messages in the schedule's order.
    pub(super) fn scale_echo(&self, count: u64) {
        if self.scale.is_empty() {
            return self.error(scale_error::NO_PIPES, &[]);
        }
        let mut echoed = 0u64;
        while echoed < count {
            let pipe = self.scale_pipe(echoed);
            let Ok(m) = read_one(self.sys, pipe, None) else {
                break;
            };
            let _ = self.sys.write_message(pipe, &m.bytes, Vec::new());
            echoed += 1;
        }
        self.reply(Payload::ScaleEchoDone { echoed });
    }

    /// ScaleSink: reads `count` SinkData messages in the schedule's order
    /// and answers with a SinkAck, as the sink of the main pipe does.
    pub(super) fn scale_sink(&self, count: u64, size: u64) {
        if self.scale.is_empty() {
            return self.error(scale_error::NO_PIPES, &[]);
        }
        let (mut got, mut bytes, mut bad) = (0u64, 0u64, 0u64);
        while got < count {
            let Ok(d) = read_one(self.sys, self.scale_pipe(got), None) else {
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

    /// ScaleClose: closes every scale pipe, then says how many.
    pub(super) fn scale_close(&mut self) {
        let closed = self.scale.len() as u64;
        self.scale.clear();
        self.reply(Payload::ScaleClosed { closed });
    }
}
