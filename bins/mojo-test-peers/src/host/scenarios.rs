//! The host's side of the test-peers.md §3 scenarios that the host starts
//! and the client answers: echoes, a moved subpipe, a host-made shared
//! buffer and memfd, closes, throughput and latency.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::uio::{pread, pwrite};

use super::io::{ReadBack, ReadLimit, unexpected_op};
use super::report::ms;
use super::{ECHO_SMALL_SIZES, Host, TimedOut};
use crate::protocol::{self, CLIENT_MARK, CLIENT_PIPE_MSG, Payload, op};
use crate::system::{BufferMapping, MessagePipe, MojoError, MojoSystem, Signals, result_code};

impl<S: MojoSystem> Host<'_, S> {
    pub(super) fn echo_small(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let c = &self.cfg.counts;
        let (lock, piped) = (c.echo_lockstep, c.echo_pipelined);
        let mut seed: u64 = 0x1234567;
        let (mut n, mut bad) = (0usize, 0usize);
        let mut err = String::new();
        let t0 = Instant::now();
        // A failed read counts as a mismatch here (the reference's tally).
        let mut tally = |found: ReadBack| {
            n += found.read;
            bad += found.mismatched + usize::from(found.failed);
            found.failed
        };
        for i in 0..lock {
            let sent = self.write_echoes(pipe, [ECHO_SMALL_SIZES[i % 12]], &mut seed);
            if tally(self.read_back(pipe, &sent, ReadLimit::Watchdog, &mut err)?) {
                break;
            }
        }
        let sizes = (0..piped).map(|i| ECHO_SMALL_SIZES[(i * 5) % 12]);
        let sent = self.write_echoes(pipe, sizes, &mut seed);
        tally(self.read_back(pipe, &sent, ReadLimit::Watchdog, &mut err)?);
        let mut j = self.line("echo_small", bad == 0 && n == lock + piped);
        j.int("messages", n as i128)
            .int("mismatches", bad as i128)
            .num("elapsed_s", t0.elapsed().as_secs_f64())
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn echo_large(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let sizes = self.cfg.counts.echo_large_sizes.clone();
        let mut seed: u64 = 0x9876543;
        let (mut bad, mut n) = (0usize, 0usize);
        let mut err = String::new();
        let mut times = String::from("[");
        for (i, &size) in sizes.iter().enumerate() {
            let m = protocol::random_payload(op::ECHO, size, &mut seed);
            let t0 = Instant::now();
            let _ = self.write(pipe, &m, Vec::new());
            let Some(got) = self.read_expect(pipe, op::ECHO, &mut err)? else {
                bad += 1;
                break;
            };
            let dt = t0.elapsed();
            n += 1;
            if got.bytes != m {
                bad += 1;
            }
            times.push_str(&format!(
                "{}{{\"size\":{size},\"rtt_ms\":{:.3}}}",
                if i > 0 { "," } else { "" },
                ms(dt)
            ));
        }
        times.push(']');
        let mut j = self.line("echo_large", bad == 0 && n == sizes.len());
        j.int("messages", n as i128)
            .int("mismatches", bad as i128)
            .raw("rtts", &times)
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn subpipe(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let (before, total) = (
            self.cfg.counts.subpipe_before,
            self.cfg.counts.subpipe_total,
        );
        let mut err = String::new();
        let Ok((h0, h1)) = self.sys.create_message_pipe() else {
            let mut j = self.line("subpipe", false);
            j.int("echoed", 0)
                .int("mismatches", 0)
                .int("client_count", 0)
                .error("create pipe failed");
            self.print(&j);
            return Ok(());
        };
        let mut seed: u64 = 42;
        let size = |i: usize| 16 + i * 100;
        let mut sent = self.write_echoes(&h0, (0..before).map(size), &mut seed);
        let wr = self.send(pipe, &Payload::SubPipe, vec![h1.into()]);
        sent.extend(self.write_echoes(&h0, (before..total).map(size), &mut seed));
        let found = self.read_back(&h0, &sent, ReadLimit::Watchdog, &mut err)?;
        let (n, bad) = (found.read, found.mismatched);
        drop(h0);
        let mut client_count = 0u64;
        if err.is_empty() {
            if let Some(m) = self.read_expect(pipe, op::SUB_PIPE_DONE, &mut err)? {
                if let Some(Payload::SubPipeDone { echoed }) = self.decode(&m, &mut err) {
                    client_count = echoed;
                }
            }
        }
        let pass =
            wr.is_ok() && n == total && bad == 0 && client_count == total as u64 && err.is_empty();
        let mut j = self.line("subpipe", pass);
        j.int("echoed", n as i128)
            .int("mismatches", bad as i128)
            .int("client_count", i128::from(client_count))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn shmem(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let size = self.cfg.counts.shmem_size;
        let mut err = String::new();
        let (mut ok, mut got_fnv, mut expect, mut pattern_bad) = (false, 0u64, 0u64, 0u64);
        let created = self
            .sys
            .create_shared_buffer(size)
            .and_then(|b| self.sys.map_buffer(&b, 0, size).map(|m| (b, m)));
        match created {
            Err(e) => err = format!("create/map failed {}", e.code()),
            Ok((buf, mut map)) => {
                let content = protocol::pattern_bytes(size as usize, protocol::shmem_host_byte);
                let _ = map.write(0, &content);
                expect = protocol::fnv1a(&content[..(size / 2) as usize]);
                let wr = self.send(pipe, &Payload::Shmem { size }, vec![buf.into()]);
                if let Err(e) = wr {
                    err = format!("write failed {}", e.code());
                } else if let Some(m) = self.read_expect(pipe, op::SHMEM_ACK, &mut err)? {
                    if let Some(Payload::ShmemAck { fnv }) = self.decode(&m, &mut err) {
                        got_fnv = fnv;
                    }
                    let mut second = vec![0u8; (size - size / 2) as usize];
                    if map.read((size / 2) as usize, &mut second).is_err() {
                        pattern_bad = second.len() as u64;
                    } else {
                        pattern_bad = second
                            .iter()
                            .zip(size / 2..)
                            .filter(|&(&b, i)| b != protocol::shmem_client_byte(i))
                            .count() as u64;
                    }
                    ok = got_fnv == expect && pattern_bad == 0 && err.is_empty();
                }
            }
        }
        let mut j = self.line("shmem", ok);
        j.int("size", i128::from(size))
            .bool("checksum_match", got_fnv == expect && got_fnv != 0)
            .int("client_write_mismatches", i128::from(pattern_bad))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn platform_handle(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let size = self.cfg.counts.plat_size;
        let mut err = String::new();
        let (mut ok, mut fnv_ok, mut mark_ok, mut pipe_ok) = (false, false, false, false);
        let content = protocol::pattern_bytes(size as usize, protocol::memfd_host_byte);
        match make_memfd_and_pipe("rm_host_memfd", &content) {
            Err(e) => err = format!("memfd/pipe failed {e}"),
            Ok((memfd, r, w)) => {
                let handles = memfd
                    .try_clone()
                    .map_err(|_| MojoError::ResourceExhausted)
                    .and_then(|d| self.sys.wrap_platform_handle(d))
                    .and_then(|h0| {
                        self.sys
                            .wrap_platform_handle(w)
                            .map(|h1| vec![h0.into(), h1.into()])
                    });
                let wr = handles.and_then(|hs| self.send(pipe, &Payload::PlatHandle { size }, hs));
                if let Err(e) = wr {
                    err = format!("write failed {}", e.code());
                } else if let Some(m) = self.read_expect(pipe, op::PLAT_HANDLE_ACK, &mut err)? {
                    if let Some(Payload::PlatHandleAck { fnv, .. }) = self.decode(&m, &mut err) {
                        fnv_ok = fnv == protocol::fnv1a(&content);
                    }
                    let mut mark = [0u8; CLIENT_MARK.len()];
                    mark_ok = matches!(pread(memfd.as_fd(), &mut mark, size as i64), Ok(n) if n == mark.len())
                        && mark == CLIENT_MARK;
                    let _ = fcntl(r.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                    let mut pb = [0u8; 63];
                    pipe_ok = matches!(nix::unistd::read(&r, &mut pb), Ok(n) if n > 0 && &pb[..n] == CLIENT_PIPE_MSG);
                    ok = fnv_ok && mark_ok && pipe_ok;
                }
            }
        }
        let mut j = self.line("platform_handle", ok);
        j.bool("memfd_checksum_ok", fnv_ok)
            .bool("memfd_client_write_ok", mark_ok)
            .bool("pipe_fd_ok", pipe_ok)
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn close(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        // close_host_to_client
        {
            let mut err = String::new();
            let (mut ok, mut res, mut latency) = (false, 999u64, 0.0);
            match self.sys.create_message_pipe() {
                Err(e) => err = format!("create pipe failed {}", e.code()),
                Ok((h0, h1)) => {
                    let _ = self.send(pipe, &Payload::CloseWatch, vec![h1.into()]);
                    ok = self
                        .read_expect(pipe, op::CLOSE_WATCH_READY, &mut err)?
                        .is_some();
                    let t0 = Instant::now();
                    drop(h0);
                    if ok {
                        match self.read(pipe, None)? {
                            Err(e) => {
                                err = format!("read failed r={}", e.code());
                                ok = false;
                                res = 0;
                            }
                            Ok(m) => {
                                res = protocol::get_u64(&m.bytes, 4);
                                if protocol::opcode_of(&m.bytes) != op::CLOSE_SEEN {
                                    err = unexpected_op(&m, op::CLOSE_SEEN, None);
                                    ok = false;
                                } else if self.decode(&m, &mut err).is_none() {
                                    ok = false;
                                }
                            }
                        }
                    }
                    latency = ms(t0.elapsed());
                }
            }
            let mut j = self.line("close_host_to_client", ok && res == 0);
            j.int("client_wait_result", i128::from(res))
                .num("latency_ms", latency)
                .error(&err);
            self.print(&j);
        }
        // close_client_to_host
        {
            let (r, latency) = match self.sys.create_message_pipe() {
                Err(e) => (Err(e), 0.0),
                Ok((h0, h1)) => {
                    let t0 = Instant::now();
                    let _ = self.send(pipe, &Payload::CloseSelf, vec![h1.into()]);
                    let r = self.wait(h0.raw(), Signals::PEER_CLOSED, None)?;
                    (r, ms(t0.elapsed()))
                }
            };
            let mut j = self.line("close_client_to_host", r.is_ok());
            j.int("wait_result", i128::from(result_code(&r)))
                .num("latency_ms", latency);
            self.print(&j);
        }
        Ok(())
    }

    pub(super) fn throughput(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        for (size, count) in self.cfg.counts.throughput.clone() {
            self.sink_run(pipe, size, count)?;
        }
        Ok(())
    }

    /// One one-way run: SinkStart, `count` SinkData messages of `size`
    /// bytes, the client's SinkAck; line `throughput_<size>`.
    pub(super) fn sink_run(
        &mut self,
        pipe: &MessagePipe,
        size: usize,
        count: u64,
    ) -> Result<(), TimedOut> {
        let start = Payload::SinkStart {
            count,
            size: size as u64,
        };
        let mut data = vec![0xabu8; size.max(4)];
        data[..4].copy_from_slice(&op::SINK_DATA.to_le_bytes());
        let t0 = Instant::now();
        let _ = self.send(pipe, &start, Vec::new());
        for _ in 0..count {
            let _ = self.write(pipe, &data, Vec::new());
        }
        let mut err = String::new();
        let ack = self.read_expect(pipe, op::SINK_ACK, &mut err)?;
        let dt = t0.elapsed().as_secs_f64();
        let (mut got, mut bytes, mut bad) = (0, 0, 0);
        let mut ok = false;
        if let Some(m) = ack {
            (got, bytes, bad) = (
                protocol::get_u64(&m.bytes, 4),
                protocol::get_u64(&m.bytes, 12),
                protocol::get_u64(&m.bytes, 20),
            );
            ok = self.decode(&m, &mut err).is_some();
        }
        let mut j = self.line(
            &format!("throughput_{size}"),
            ok && got == count && bad == 0,
        );
        j.int("size", size as i128)
            .int("count", i128::from(count))
            .int("received", i128::from(got))
            .int("bytes", i128::from(bytes))
            .num("elapsed_s", dt)
            .num("msgs_per_s", count as f64 / dt)
            .num("mb_per_s", count as f64 * size as f64 / dt / 1e6)
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn latency(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let warmup = self.cfg.counts.latency_warmup;
        for (size, rounds) in self.cfg.counts.latency.clone() {
            let mut m = vec![0x5au8; size.max(4)];
            m[..4].copy_from_slice(&op::ECHO.to_le_bytes());
            let mut err = String::new();
            let mut ns: Vec<u64> = Vec::with_capacity(rounds);
            for i in 0..warmup + rounds {
                let t0 = Instant::now();
                let _ = self.write(pipe, &m, Vec::new());
                if self.read_expect(pipe, op::ECHO, &mut err)?.is_none() {
                    break;
                }
                let dt = t0.elapsed().as_nanos() as u64;
                if i >= warmup {
                    ns.push(dt);
                }
            }
            ns.sort_unstable();
            let pct = |q: f64| -> f64 {
                if ns.is_empty() {
                    return 0.0;
                }
                let idx = ((q * ns.len() as f64) as usize).min(ns.len() - 1);
                ns[idx] as f64 / 1e3
            };
            let sum: f64 = ns.iter().map(|&v| v as f64).sum();
            let len = ns.len() as f64;
            let mut j = self.line(&format!("latency_{size}"), ns.len() == rounds);
            j.int("size", size as i128)
                .int("rounds", ns.len() as i128)
                .num("p50_us", pct(0.5))
                .num("p90_us", pct(0.9))
                .num("p99_us", pct(0.99))
                .num("p999_us", pct(0.999))
                .num("max_us", ns.last().map_or(0.0, |&v| v as f64 / 1e3))
                .num("mean_us", if ns.is_empty() { 0.0 } else { sum / len / 1e3 })
                .num(
                    "round_trips_per_s",
                    if ns.is_empty() { 0.0 } else { 1e9 * len / sum },
                )
                .error(&err);
            self.print(&j);
        }
        Ok(())
    }
}

/// A memfd holding `content` and an OS pipe: (memfd, read end, write end).
fn make_memfd_and_pipe(
    name: &str,
    content: &[u8],
) -> Result<(OwnedFd, OwnedFd, OwnedFd), nix::errno::Errno> {
    let memfd = memfd_create(name, MFdFlags::MFD_CLOEXEC)?;
    let mut at = 0usize;
    while at < content.len() {
        at += pwrite(memfd.as_fd(), &content[at..], at as i64)?;
    }
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((memfd, r, w))
}
