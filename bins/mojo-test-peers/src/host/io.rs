//! The host's reads, writes and waits, all under the scenario watchdog, and
//! the read-back of a run of echoes that most scenarios share.

use std::time::{Duration, Instant};

use super::report::add_err;
use super::{Host, TimedOut};
use crate::protocol::{self, Payload, op};
use crate::system::{
    Handle, Message, MessagePipe, MojoError, MojoHandle, MojoResult, MojoSystem, Signals, read_one,
    wait,
};

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The reference's error text for a message of the wrong opcode (`what`
/// names the awaited message where there is a deadline).
pub(super) fn unexpected_op(m: &Message, opcode: u32, what: Option<&str>) -> String {
    let wanted = match what {
        Some(what) => format!("{opcode} for {what}"),
        None => opcode.to_string(),
    };
    format!(
        "unexpected op {} (wanted {wanted}) detail {},{}",
        protocol::opcode_of(&m.bytes),
        protocol::get_u64(&m.bytes, 4),
        protocol::get_u64(&m.bytes, 12)
    )
}

/// The deadline of a client's report: the scenario's own while all went
/// well, else a short grace (the report still comes, and must not be left
/// for the next scenario).
pub(super) fn report_deadline(err: &str, deadline: Instant, grace: Duration) -> Instant {
    if err.is_empty() {
        deadline
    } else {
        Instant::now() + grace
    }
}

/// How the reads of [`Host::read_back`] wait.
#[derive(Debug, Clone, Copy)]
pub(super) enum ReadLimit<'a> {
    /// No deadline but the watchdog (the reference's `ReadExpect`).
    Watchdog,
    /// A deadline; a timeout names the message as `"<label> <index>"`.
    Deadline(Instant, &'a str),
}

/// What [`Host::read_back`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ReadBack {
    /// Echo messages read.
    pub read: usize,
    /// Of those, the ones equal to what was expected.
    pub matched: usize,
    /// Of those, the ones that differ.
    pub mismatched: usize,
    /// A read failed (its error is in the scenario's error text) and the
    /// read-back stopped there.
    pub failed: bool,
}

impl<S: MojoSystem> Host<'_, S> {
    /// Starts `scenario`'s watchdog.
    pub(super) fn arm(&mut self, scenario: &'static str) {
        self.scenario = scenario;
        self.watchdog = self.cfg.timeout.map(|t| Instant::now() + t);
    }

    /// `Err(TimedOut)` once the watchdog has passed.
    pub(super) fn check_watchdog(&self) -> Result<(), TimedOut> {
        match self.watchdog {
            Some(w) if Instant::now() >= w => Err(TimedOut),
            _ => Ok(()),
        }
    }

    /// Was a `DEADLINE_EXCEEDED` for `deadline` the watchdog's?
    fn watchdog_hit(&self, deadline: Option<Instant>) -> bool {
        match (self.watchdog, deadline) {
            (Some(w), Some(d)) => w < d && Instant::now() >= w,
            (Some(w), None) => Instant::now() >= w,
            (None, _) => false,
        }
    }

    /// `MojoWriteMessage` of raw bytes.
    pub(super) fn write(
        &self,
        pipe: &MessagePipe,
        bytes: &[u8],
        handles: Vec<Handle>,
    ) -> MojoResult<()> {
        self.sys.write_message(pipe, bytes, handles)
    }

    /// `MojoWriteMessage` of a payload.
    pub(super) fn send(
        &self,
        pipe: &MessagePipe,
        p: &Payload,
        handles: Vec<Handle>,
    ) -> MojoResult<()> {
        self.write(pipe, &p.encode(), handles)
    }

    /// Writes one random echo payload of each size on `pipe` and returns
    /// them; a failed write is not an error here (the reference ignores it:
    /// the read-back finds the loss).
    pub(super) fn write_echoes(
        &self,
        pipe: &MessagePipe,
        sizes: impl IntoIterator<Item = usize>,
        seed: &mut u64,
    ) -> Vec<Vec<u8>> {
        sizes
            .into_iter()
            .map(|size| {
                let m = protocol::random_payload(op::ECHO, size, seed);
                let _ = self.write(pipe, &m, Vec::new());
                m
            })
            .collect()
    }

    /// `ReadOneDeadline` under the watchdog.
    pub(super) fn read(
        &self,
        pipe: &MessagePipe,
        deadline: Option<Instant>,
    ) -> Result<MojoResult<Message>, TimedOut> {
        let r = read_one(self.sys, pipe, earliest(deadline, self.watchdog));
        if r.as_ref().err() == Some(&MojoError::DeadlineExceeded) && self.watchdog_hit(deadline) {
            return Err(TimedOut);
        }
        Ok(r)
    }

    /// `WaitDeadline` under the watchdog.
    pub(super) fn wait(
        &self,
        h: MojoHandle,
        signals: Signals,
        deadline: Option<Instant>,
    ) -> Result<MojoResult<()>, TimedOut> {
        let r = wait(self.sys, h, signals, earliest(deadline, self.watchdog));
        if r == Err(MojoError::DeadlineExceeded) && self.watchdog_hit(deadline) {
            return Err(TimedOut);
        }
        Ok(r)
    }

    /// The reference's `ReadExpect` (no deadline but the watchdog).
    pub(super) fn read_expect(
        &self,
        pipe: &MessagePipe,
        opcode: u32,
        err: &mut String,
    ) -> Result<Option<Message>, TimedOut> {
        self.read_expecting(pipe, opcode, err, None)
    }

    /// The reference's `ReadExpectDeadline`.
    pub(super) fn read_expect_deadline(
        &self,
        pipe: &MessagePipe,
        opcode: u32,
        err: &mut String,
        deadline: Instant,
        what: &str,
    ) -> Result<Option<Message>, TimedOut> {
        self.read_expecting(pipe, opcode, err, Some((deadline, what)))
    }

    /// Reads one message of `opcode`, or sets `err` to the reference's text
    /// for what came instead (naming `what` where there is a deadline).
    fn read_expecting(
        &self,
        pipe: &MessagePipe,
        opcode: u32,
        err: &mut String,
        deadline: Option<(Instant, &str)>,
    ) -> Result<Option<Message>, TimedOut> {
        let what = deadline.map(|(_, what)| what);
        match self.read(pipe, deadline.map(|(at, _)| at))? {
            Err(e) => {
                *err = match what {
                    Some(what) if e == MojoError::DeadlineExceeded => {
                        format!("timeout waiting for {what}")
                    }
                    Some(what) => format!("read {what} failed r={}", e.code()),
                    None => format!("read failed r={}", e.code()),
                };
                Ok(None)
            }
            Ok(m) if protocol::opcode_of(&m.bytes) != opcode => {
                *err = unexpected_op(&m, opcode, what);
                Ok(None)
            }
            Ok(m) => Ok(Some(m)),
        }
    }

    /// The data pipe scenarios' read of one reply: the error is the short
    /// text of the reference's data pipe code (`timeout waiting for <what>`,
    /// `read <read_name> failed r=N`, `unexpected op N`).
    pub(super) fn read_reply(
        &self,
        pipe: &MessagePipe,
        opcode: u32,
        deadline: Instant,
        what: &str,
        read_name: &str,
    ) -> Result<Result<Message, String>, TimedOut> {
        Ok(match self.read(pipe, Some(deadline))? {
            Err(MojoError::DeadlineExceeded) => Err(format!("timeout waiting for {what}")),
            Err(e) if read_name.is_empty() => Err(format!("read failed r={}", e.code())),
            Err(e) => Err(format!("read {read_name} failed r={}", e.code())),
            Ok(m) if protocol::opcode_of(&m.bytes) != opcode => {
                Err(format!("unexpected op {}", protocol::opcode_of(&m.bytes)))
            }
            Ok(m) => Ok(m),
        })
    }

    /// Reads one echo per `expected` message from `pipe` and compares them,
    /// stopping at the first failed read (and not starting once `err` holds
    /// an error).
    pub(super) fn read_back(
        &self,
        pipe: &MessagePipe,
        expected: &[Vec<u8>],
        limit: ReadLimit<'_>,
        err: &mut String,
    ) -> Result<ReadBack, TimedOut> {
        let mut found = ReadBack::default();
        for (i, want) in expected.iter().enumerate() {
            if !err.is_empty() {
                break;
            }
            let got = match limit {
                ReadLimit::Watchdog => self.read_expect(pipe, op::ECHO, err)?,
                ReadLimit::Deadline(deadline, label) => {
                    let what = format!("{label} {i}");
                    self.read_expect_deadline(pipe, op::ECHO, err, deadline, &what)?
                }
            };
            let Some(got) = got else {
                found.failed = true;
                break;
            };
            found.read += 1;
            if got.bytes == *want {
                found.matched += 1;
            } else {
                found.mismatched += 1;
            }
        }
        Ok(found)
    }

    /// Decodes a reply of the expected opcode strictly; a bad length adds
    /// an error (the reference would read missing fields as zero).
    pub(super) fn decode(&self, m: &Message, err: &mut String) -> Option<Payload> {
        match Payload::decode(&m.bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                add_err(err, &format!("malformed reply: {e}"));
                None
            }
        }
    }
}
