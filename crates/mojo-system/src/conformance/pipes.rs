//! A model of one message pipe that any sequence of calls must match: two
//! queues (each message with its bytes and, if attached, a live pipe end)
//! and two open flags; the result of every call and both ends' signals
//! after each one. The two ends may live in one system or in two joined
//! ones: what crosses a link is awaited (`wait`, `read_one`), never slept on.

use std::collections::VecDeque;

use std::time::Instant;

use crate::{
    Handle, Message, MessagePipe, MojoError, MojoHandle, MojoResult, MojoSystem, Signals,
    SignalsState,
};

use super::deadline;

/// One call on the pipe under test; `end` is taken modulo 2.
#[derive(Debug, Clone)]
pub enum PipeOp {
    /// `write_message` on `end`: `bytes`, and with `attach` one end of a
    /// fresh message pipe (whose other end the model keeps, to check that
    /// the attached end arrives joined to it, or is closed if the write or
    /// the message is dropped).
    Write {
        /// The writing end.
        end: usize,
        /// The payload.
        bytes: Vec<u8>,
        /// Whether a pipe end goes with the message.
        attach: bool,
    },
    /// `read_message` on the end.
    Read(usize),
    /// Closes the end (drops its handle).
    Close(usize),
}

/// The message pipe calls of a [`MojoSystem`], without its associated
/// types, so that the two ends' systems (of different types) sit in one
/// array.
trait PipeCalls {
    fn create_message_pipe(&self) -> MojoResult<(MessagePipe, MessagePipe)>;
    fn write_message(&self, pipe: &MessagePipe, bytes: &[u8], h: Vec<Handle>) -> MojoResult<()>;
    fn read_message(&self, pipe: &MessagePipe) -> MojoResult<Message>;
    fn query_signals(&self, handle: MojoHandle) -> MojoResult<SignalsState>;
    fn wait(&self, handle: MojoHandle, signals: Signals, until: Option<Instant>) -> MojoResult<()>;
}

impl<S: MojoSystem> PipeCalls for S {
    fn create_message_pipe(&self) -> MojoResult<(MessagePipe, MessagePipe)> {
        MojoSystem::create_message_pipe(self)
    }
    fn write_message(&self, pipe: &MessagePipe, bytes: &[u8], h: Vec<Handle>) -> MojoResult<()> {
        MojoSystem::write_message(self, pipe, bytes, h)
    }
    fn read_message(&self, pipe: &MessagePipe) -> MojoResult<Message> {
        MojoSystem::read_message(self, pipe)
    }
    fn query_signals(&self, handle: MojoHandle) -> MojoResult<SignalsState> {
        MojoSystem::query_signals(self, handle)
    }
    fn wait(&self, handle: MojoHandle, signals: Signals, until: Option<Instant>) -> MojoResult<()> {
        crate::wait(self, handle, signals, until)
    }
}

/// `read_one` over [`PipeCalls`].
fn read_one(
    sys: &dyn PipeCalls,
    pipe: &MessagePipe,
    until: Option<Instant>,
) -> MojoResult<Message> {
    loop {
        match sys.read_message(pipe) {
            Err(MojoError::ShouldWait) => {}
            other => return other,
        }
        sys.wait(pipe.raw(), Signals::READABLE, until)?;
    }
}

/// A message the model expects at an end.
struct Queued {
    bytes: Vec<u8>,
    /// The kept end (in the writer's system) of an attached pipe.
    partner: Option<MessagePipe>,
}

/// What a ping through an attached pipe carries.
const PING: &[u8] = b"ping";

/// Runs `ops` on the pipe whose end 0 is `end0` of `sys0` and end 1 is
/// `end1` of `sys1` (the same system for a local pipe), checking each
/// result and then both ends' signals against the model; panics at the
/// first difference. Every handle is closed when it returns.
pub fn pipe_model<A: MojoSystem, B: MojoSystem>(
    sys0: &A,
    end0: MessagePipe,
    sys1: &B,
    end1: MessagePipe,
    ops: &[PipeOp],
) {
    let sys: [&dyn PipeCalls; 2] = [sys0, sys1];
    let mut ends = [Some(end0), Some(end1)];
    let mut inbox: [VecDeque<Queued>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut open = [true, true];
    for (i, op) in ops.iter().enumerate() {
        match op {
            PipeOp::Write { end, bytes, attach } => {
                let s = end % 2;
                let Some(pipe) = &ends[s] else { continue };
                let (partner, handles) = if *attach {
                    let (x, y) = sys[s].create_message_pipe().expect("a pipe to attach");
                    (Some(x), vec![Handle::from(y)])
                } else {
                    (None, Vec::new())
                };
                let r = sys[s].write_message(pipe, bytes, handles);
                if open[1 - s] {
                    assert_eq!(r, Ok(()), "op {i}: write on {s}");
                    inbox[1 - s].push_back(Queued {
                        bytes: bytes.clone(),
                        partner,
                    });
                } else {
                    assert_eq!(
                        r,
                        Err(MojoError::FailedPrecondition),
                        "op {i}: write on {s} after its peer closed"
                    );
                    if let Some(x) = partner {
                        sys[s]
                            .wait(x.raw(), Signals::PEER_CLOSED, deadline())
                            .unwrap_or_else(|e| panic!("op {i}: failed write kept its end: {e}"));
                    }
                }
            }
            PipeOp::Read(s) => {
                let s = s % 2;
                let Some(pipe) = &ends[s] else { continue };
                match inbox[s].pop_front() {
                    Some(want) => {
                        let m = read_one(sys[s], pipe, deadline())
                            .unwrap_or_else(|e| panic!("op {i}: read on {s}: {e}"));
                        assert_eq!(m.bytes, want.bytes, "op {i}: read on {s}");
                        check_attached(sys[1 - s], want.partner, sys[s], m.handles, i);
                    }
                    None => {
                        let want = if open[1 - s] {
                            MojoError::ShouldWait
                        } else {
                            MojoError::FailedPrecondition
                        };
                        let r = sys[s].read_message(pipe).map(|m| m.bytes);
                        assert_eq!(r, Err(want), "op {i}: read on empty {s}");
                    }
                }
            }
            PipeOp::Close(s) => {
                let s = s % 2;
                if ends[s].take().is_none() {
                    continue;
                }
                open[s] = false;
                // The queued messages go, and the pipe ends they carried.
                for q in inbox[s].drain(..) {
                    if let Some(x) = q.partner {
                        sys[1 - s]
                            .wait(x.raw(), Signals::PEER_CLOSED, deadline())
                            .unwrap_or_else(|e| panic!("op {i}: a dropped message's end: {e}"));
                    }
                }
            }
        }
        for s in 0..2 {
            if let Some(pipe) = &ends[s] {
                check_signals(sys[s], pipe, !inbox[s].is_empty(), open[1 - s], i, s);
            }
        }
    }
}

/// Checks an arrived message's handles: none, or one pipe end joined to
/// `partner` (a ping from `partner` in `wsys` arrives on it in `rsys`).
fn check_attached(
    wsys: &dyn PipeCalls,
    partner: Option<MessagePipe>,
    rsys: &dyn PipeCalls,
    mut handles: Vec<Handle>,
    i: usize,
) {
    let Some(x) = partner else {
        assert!(handles.is_empty(), "op {i}: handles nobody sent");
        return;
    };
    assert_eq!(handles.len(), 1, "op {i}: the attached end");
    let y = handles
        .pop()
        .and_then(|h| h.into_message_pipe().ok())
        .unwrap_or_else(|| panic!("op {i}: the attached end is a message pipe"));
    wsys.write_message(&x, PING, Vec::new())
        .unwrap_or_else(|e| panic!("op {i}: ping through the attached pipe: {e}"));
    let m = read_one(rsys, &y, deadline())
        .unwrap_or_else(|e| panic!("op {i}: the ping arrives on the attached end: {e}"));
    assert_eq!(m.bytes, PING, "op {i}: the ping");
}

/// Checks one end's signals: awaits what the model says is satisfied
/// (it may still be crossing a link), then compares the whole state.
fn check_signals(
    sys: &dyn PipeCalls,
    pipe: &MessagePipe,
    readable: bool,
    peer_open: bool,
    i: usize,
    s: usize,
) {
    let what = |w: &str| format!("op {i}: end {s}: {w}");
    if readable {
        sys.wait(pipe.raw(), Signals::READABLE, deadline())
            .unwrap_or_else(|e| panic!("{}: {e}", what("readable")));
    }
    if !peer_open {
        sys.wait(pipe.raw(), Signals::PEER_CLOSED, deadline())
            .unwrap_or_else(|e| panic!("{}: {e}", what("peer closed")));
    }
    let st = sys.query_signals(pipe.raw()).expect("query");
    let has = |set: Signals, sig| set.intersects(sig);
    assert_eq!(
        has(st.satisfied, Signals::READABLE),
        readable,
        "{}",
        what("readable")
    );
    assert_eq!(
        has(st.satisfiable, Signals::READABLE),
        readable || peer_open,
        "{}",
        what("readable satisfiable")
    );
    assert_eq!(
        has(st.satisfied, Signals::PEER_CLOSED),
        !peer_open,
        "{}",
        what("peer closed")
    );
    assert!(
        has(st.satisfiable, Signals::PEER_CLOSED),
        "{}",
        what("peer closed satisfiable")
    );
    assert_eq!(
        has(st.satisfied, Signals::WRITABLE),
        peer_open,
        "{}",
        what("writable")
    );
    assert_eq!(
        has(st.satisfiable, Signals::WRITABLE),
        peer_open,
        "{}",
        what("writable satisfiable")
    );
}
