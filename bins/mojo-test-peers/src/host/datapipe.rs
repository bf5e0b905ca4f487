//! The host's side of the data pipe scenarios: `datapipe_h2c` (the host
//! writes through a consumer it sends) and `datapipe_c2h` (it reads through
//! the client's), with the consumer probe for a handle of another kind.

use std::time::{Duration, Instant};

use crate::json::JsonLine;

use super::io::report_deadline;
use super::report::{add_err, ms};
use super::{
    CONSUMER_PROBE_WAIT, ChildRole, DATAPIPE_REPORT_GRACE, Host, SETTLE_AFTER_DATAPIPE, TimedOut,
};
use crate::protocol::{self, Direction, Fnv, Payload, op};
use crate::system::{
    Handle, MessagePipe, MojoError, MojoSystem, Signals, peer_closed, result_code,
};

/// The figures both transfers start from.
struct Transfer {
    /// When the scenario started.
    t0: Instant,
    /// `--datapipe-timeout` after `t0`.
    deadline: Instant,
    /// Bytes to transfer.
    total: u64,
    /// The data pipe's capacity.
    capacity: u32,
    /// FNV-1a of the direction's pattern over `total` bytes.
    expect: u64,
}

impl<S: MojoSystem> Host<'_, S> {
    /// Starts a transfer in direction `dir`.
    fn transfer(&self, dir: Direction) -> Transfer {
        let t0 = Instant::now();
        let total = self.cfg.counts.datapipe_total;
        Transfer {
            t0,
            deadline: t0 + self.cfg.datapipe_timeout,
            total,
            capacity: self.cfg.counts.datapipe_capacity,
            expect: protocol::fnv_of_pattern(total, |i| protocol::pattern_byte(i, dir)),
        }
    }

    /// The fields both data pipe lines end with: the elapsed time, the
    /// rate (of `completed` bytes; 0 for a failed transfer), whether the
    /// host's pipe saw its peer close and both children's states.
    fn add_transfer_end(
        &mut self,
        j: &mut JsonLine,
        pipe: &MessagePipe,
        t0: Instant,
        dt: Duration,
        completed: Option<u64>,
    ) {
        let mb_per_s = completed.map_or(0.0, |total| total as f64 / dt.as_secs_f64() / 1e6);
        j.num("elapsed_ms", ms(dt))
            .num("mb_per_s", mb_per_s)
            .bool("host_pipe_peer_closed", peer_closed(self.sys, pipe.raw()));
        self.add_proc_state(j, "proxy", ChildRole::Proxy, t0);
        self.add_proc_state(j, "client", ChildRole::Client, t0);
    }

    pub(super) fn datapipe_h2c(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let Transfer {
            t0,
            deadline,
            total,
            capacity,
            expect,
        } = self.transfer(Direction::HostToClient);
        let mut err = String::new();
        let (mut written, mut client_bytes, mut client_fnv, mut acked) = (0u64, 0u64, 0u64, false);
        match self.sys.create_data_pipe(1, capacity) {
            Err(e) => err = format!("create failed {}", e.code()),
            Ok((producer, consumer)) => {
                if let Err(e) = self.send(pipe, &Payload::DataPipe { total }, vec![consumer.into()])
                {
                    err = format!("send consumer failed {}", e.code());
                }
                let mut chunk = vec![0u8; 16 * 1024];
                while err.is_empty() && written < total {
                    let num = (chunk.len() as u64).min(total - written) as usize;
                    for (i, b) in chunk[..num].iter_mut().enumerate() {
                        *b = protocol::pattern_byte(written + i as u64, Direction::HostToClient);
                    }
                    match self.sys.write_data(&producer, &chunk[..num]) {
                        Ok(n) => written += n as u64,
                        Err(MojoError::ShouldWait) => {
                            match self.wait(producer.raw(), Signals::WRITABLE, Some(deadline))? {
                                Ok(()) => {}
                                Err(MojoError::DeadlineExceeded) => err = "timeout writing".into(),
                                Err(e) => {
                                    err = format!(
                                        "producer wait failed {} (consumer closed)",
                                        e.code()
                                    )
                                }
                            }
                        }
                        Err(e) => {
                            err = format!("write failed {}", e.code());
                            break;
                        }
                    }
                }
                drop(producer);
                if err.is_empty() {
                    match self.read_reply(pipe, op::DATA_PIPE_ACK, deadline, "ack", "ack")? {
                        Err(e) => err = e,
                        Ok(m) => {
                            acked = true;
                            client_bytes = protocol::get_u64(&m.bytes, 4);
                            client_fnv = protocol::get_u64(&m.bytes, 12);
                            self.decode(&m, &mut err);
                        }
                    }
                }
            }
        }
        let dt = t0.elapsed();
        self.settle(SETTLE_AFTER_DATAPIPE);
        let pass = acked && client_bytes == total && client_fnv == expect && err.is_empty();
        let mut j = self.line("datapipe_h2c", pass);
        j.int("total", i128::from(total))
            .int("capacity", i128::from(capacity))
            .int("written", i128::from(written))
            .int("client_bytes", i128::from(client_bytes))
            .bool("checksum_match", acked && client_fnv == expect);
        self.add_transfer_end(&mut j, pipe, t0, dt, (acked).then_some(total));
        j.error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn datapipe_c2h(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let Transfer {
            t0,
            deadline,
            total,
            capacity,
            expect,
        } = self.transfer(Direction::ClientToHost);
        let mut err = String::new();
        let _ = self.send(
            pipe,
            &Payload::DataPipeReverse {
                total,
                capacity: u64::from(capacity),
            },
            Vec::new(),
        );
        let (mut got_consumer, mut done) = (false, false);
        let mut handles_in_msg: i128 = -1;
        let (mut bytes, mut h, mut client_written, mut client_last) =
            (0u64, Fnv::new(), 0u64, 0u64);
        let mut consumer_probe = String::new();
        let consumer_msg = op::DATA_PIPE_CONSUMER;
        match self.read_reply(pipe, consumer_msg, deadline, "consumer msg", "")? {
            Err(e) => err = e,
            Ok(mut msg) => {
                handles_in_msg = msg.handles.len() as i128;
                self.decode(&msg, &mut err);
                // Without exactly one handle the reference reads no report;
                // we do (as after every other failure), to stay in step.
                match <[Handle; 1]>::try_from(std::mem::take(&mut msg.handles)) {
                    Err(hs) => err = format!("consumer message has {} handles", hs.len()),
                    Ok([handle]) => {
                        got_consumer = true;
                        match handle.into_data_pipe_consumer() {
                            Ok(cons) => {
                                let mut buf = vec![0u8; 64 * 1024];
                                while bytes < total {
                                    match self.sys.read_data(&cons, &mut buf) {
                                        Ok(n) => {
                                            h.update(&buf[..n]);
                                            bytes += n as u64;
                                        }
                                        Err(MojoError::ShouldWait) => {
                                            match self.wait(
                                                cons.raw(),
                                                Signals::READABLE,
                                                Some(deadline),
                                            )? {
                                                Ok(()) => {}
                                                Err(MojoError::DeadlineExceeded) => {
                                                    err = "timeout reading data".into();
                                                    break;
                                                }
                                                Err(e) => {
                                                    err = format!(
                                                        "consumer wait failed {} (producer closed)",
                                                        e.code()
                                                    );
                                                    break;
                                                }
                                            }
                                        }
                                        Err(e) => {
                                            err = format!("read data failed {}", e.code());
                                            break;
                                        }
                                    }
                                }
                            }
                            Err(other) => {
                                // MojoReadData on another kind of handle is
                                // INVALID_ARGUMENT; probe what it is (a proxy
                                // may turn a consumer into a message pipe).
                                err = format!(
                                    "read data failed {}",
                                    MojoError::InvalidArgument.code()
                                );
                                consumer_probe = self.probe_handle(other)?;
                            }
                        }
                    }
                }
                // The client's report, also after a failure (short deadline).
                let d2 = report_deadline(&err, deadline, DATAPIPE_REPORT_GRACE);
                let mut e2 = String::new();
                match self.read_reply(pipe, op::DATA_PIPE_REVERSE_DONE, d2, "done", "done")? {
                    Err(e) => e2 = e,
                    Ok(d) => {
                        done = true;
                        client_written = protocol::get_u64(&d.bytes, 4);
                        client_last = protocol::get_u64(&d.bytes, 12);
                        self.decode(&d, &mut e2);
                    }
                }
                add_err(&mut err, &e2);
            }
        }
        let dt = t0.elapsed();
        self.settle(SETTLE_AFTER_DATAPIPE);
        let fnv = h.value();
        let pass = got_consumer && done && bytes == total && fnv == expect && err.is_empty();
        let mut j = self.line("datapipe_c2h", pass);
        j.int("total", i128::from(total))
            .int("capacity", i128::from(capacity))
            .bool("got_consumer", got_consumer)
            .int("handles_in_msg", handles_in_msg)
            .int("bytes_read", i128::from(bytes))
            .bool("checksum_match", bytes != 0 && fnv == expect)
            .int("client_written", i128::from(client_written))
            .int("client_last_result", i128::from(client_last));
        self.add_transfer_end(
            &mut j,
            pipe,
            t0,
            dt,
            (done && bytes == total).then_some(total),
        );
        if !consumer_probe.is_empty() {
            j.str("consumer_probe", &consumer_probe);
        }
        j.error(&err);
        self.print(&j);
        Ok(())
    }

    /// The reference's consumer probe: signals, a message read and a
    /// peer-closed wait on a handle that should have been a consumer.
    fn probe_handle(&self, handle: Handle) -> Result<String, TimedOut> {
        let st = self.sys.query_signals(handle.raw()).unwrap_or_default();
        let read_message = match &handle {
            Handle::MessagePipe(p) => result_code(&self.sys.read_message(p)),
            _ => MojoError::InvalidArgument.code(),
        };
        let tp = Instant::now();
        let pc = self.wait(
            handle.raw(),
            Signals::PEER_CLOSED,
            Some(tp + CONSUMER_PROBE_WAIT),
        )?;
        Ok(format!(
            "satisfied=0x{:x} satisfiable=0x{:x} read_message={read_message} peer_closed_wait={} after {:.1} ms",
            st.satisfied.bits(),
            st.satisfiable.bits(),
            result_code(&pc),
            ms(tp.elapsed())
        ))
    }
}
