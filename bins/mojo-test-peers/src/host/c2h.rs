//! The host's side of the test-peers.md §2.1 scenarios, where the client
//! creates the objects (or bounces the host's): subpipe_c2h, shmem_c2h
//! (writable and read-only), platform_handle_c2h, pipe_roundtrip and
//! many_pipes.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use nix::sys::stat::{SFlag, fstat};
use nix::sys::uio::pwrite;

use super::io::{ReadLimit, report_deadline};
use super::report::{add_err, ms};
use super::{C2H_REPORT_GRACE, Host, TimedOut};
use crate::protocol::{self, Fnv, HOST_MARK, HOST_PIPE_MSG, Payload, op};
use crate::system::{
    BufferMapping, Handle, HandleKind, MessagePipe, MojoError, MojoSystem, Signals, result_code,
};

/// Is `fd` a regular file (a memfd)?
fn is_regular_file(fd: &OwnedFd) -> bool {
    fstat(fd.as_fd())
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG)
}

/// Is `fd` a FIFO (an OS pipe end)?
fn is_fifo(fd: &OwnedFd) -> bool {
    fstat(fd.as_fd())
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFIFO)
}

/// A handle kind as the error texts name it.
fn kind_name(k: HandleKind) -> &'static str {
    match k {
        HandleKind::MessagePipe => "message pipe",
        HandleKind::SharedBuffer => "shared buffer",
        HandleKind::PlatformHandle => "platform handle",
        HandleKind::DataPipeProducer => "data pipe producer",
        HandleKind::DataPipeConsumer => "data pipe consumer",
    }
}

impl<S: MojoSystem> Host<'_, S> {
    pub(super) fn subpipe_c2h(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let (queued, echoes) = (self.cfg.counts.c2h_queued, self.cfg.counts.c2h_echoes);
        let mut err = String::new();
        let _ = self.send(pipe, &Payload::SubPipeC2H { count: queued }, Vec::new());
        let mut handles_in_msg: i128 = -1;
        let (mut queued_ok, mut echoed, mut mismatches, mut client_count) =
            (0u32, 0u32, 0u32, 0u64);
        let (mut got_pipe, mut done) = (false, false);
        if let Some(mut ready) = self.read_expect_deadline(
            pipe,
            op::SUB_PIPE_C2H_READY,
            &mut err,
            deadline,
            "kSubPipeC2HReady",
        )? {
            handles_in_msg = ready.handles.len() as i128;
            let b = match <[Handle; 1]>::try_from(std::mem::take(&mut ready.handles)) {
                Ok([h]) => match h.into_message_pipe() {
                    Ok(b) => Some(b),
                    Err(other) => {
                        err = format!("ready message carries a {}", kind_name(other.kind()));
                        None
                    }
                },
                Err(hs) => {
                    err = format!("ready message has {} handles", hs.len());
                    None
                }
            };
            if let Some(b) = b {
                got_pipe = true;
                self.decode(&ready, &mut err);
                if protocol::get_u32(&ready.bytes, 4) != queued {
                    add_err(&mut err, "ready count mismatch");
                }
                let mut seed: u64 = 77;
                let sizes = (0..echoes as usize).map(|i| 8 + i * 53);
                let sent = self.write_echoes(&b, sizes, &mut seed);
                // The client's queued messages come first, then the echoes.
                let client_queued: Vec<_> = (0..queued).map(protocol::c2h_msg).collect();
                let limit = ReadLimit::Deadline(deadline, "queued message");
                let found = self.read_back(&b, &client_queued, limit, &mut err)?;
                queued_ok = found.matched as u32;
                mismatches = found.mismatched as u32;
                let limit = ReadLimit::Deadline(deadline, "echo");
                let found = self.read_back(&b, &sent, limit, &mut err)?;
                echoed = found.read as u32;
                mismatches += found.mismatched as u32;
                drop(b); // the client's echo loop ends and it reports its count
            }
            // Also without a usable `b` (spec §2.1 "Deadlines", where the
            // reference reads nothing): the client still reports, and its
            // report must not be left for the next scenario.
            let mut e2 = String::new();
            let d2 = report_deadline(&err, deadline, C2H_REPORT_GRACE);
            if let Some(d) = self.read_expect_deadline(
                pipe,
                op::SUB_PIPE_C2H_DONE,
                &mut e2,
                d2,
                "kSubPipeC2HDone",
            )? {
                done = true;
                client_count = protocol::get_u64(&d.bytes, 4);
                self.decode(&d, &mut e2);
            }
            add_err(&mut err, &e2);
        }
        let pass = got_pipe
            && done
            && err.is_empty()
            && queued_ok == queued
            && echoed == echoes
            && mismatches == 0
            && client_count == u64::from(echoes);
        let mut j = self.line("subpipe_c2h", pass);
        j.int("handles_in_msg", handles_in_msg)
            .int("queued", i128::from(queued))
            .int("queued_ok", i128::from(queued_ok))
            .int("echoes", i128::from(echoes))
            .int("echoed", i128::from(echoed))
            .int("mismatches", i128::from(mismatches))
            .int("client_count", i128::from(client_count))
            .num("elapsed_ms", ms(t0.elapsed()))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn shmem_c2h(&mut self, pipe: &MessagePipe, ro: bool) -> Result<(), TimedOut> {
        let name = if ro {
            "shmem_c2h_readonly"
        } else {
            "shmem_c2h"
        };
        let size = self.cfg.counts.shmem_c2h_size;
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let mut err = String::new();
        let expect = protocol::fnv_of_pattern(size, protocol::shmem_c2h_byte);
        let _ = self.send(
            pipe,
            &Payload::ShmemC2H {
                size,
                read_only: u32::from(ro),
            },
            Vec::new(),
        );
        let mut handles_in_msg: i128 = -1;
        let (mut got_msg, mut mapped, mut wrote, mut result) = (false, false, false, false);
        let (mut client_fnv, mut host_fnv, mut info_size, mut bad1, mut bad2) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let (mut info_r, mut map_r, mut dup_r, mut unwrap_r) = (-1i128, -1i128, -1i128, -1i128);
        let (mut mprotect_errno, mut mmap_write_errno, mut fd_accmode) = (-1i128, -1i128, -1i128);
        let (mut unwrap_mode, mut unwrap_nfds) = (-1i128, -1i128);
        if let Some(mut bm) = self.read_expect_deadline(
            pipe,
            op::SHMEM_C2H_BUFFER,
            &mut err,
            deadline,
            "kShmemC2HBuffer",
        )? {
            got_msg = true;
            handles_in_msg = bm.handles.len() as i128;
            client_fnv = protocol::get_u64(&bm.bytes, 12);
            self.decode(&bm, &mut err);
            if protocol::get_u64(&bm.bytes, 4) != size
                || protocol::get_u32(&bm.bytes, 20) != u32::from(ro)
            {
                add_err(&mut err, "buffer message size/ro mismatch");
            }
            match <[Handle; 1]>::try_from(std::mem::take(&mut bm.handles)) {
                Err(hs) => add_err(
                    &mut err,
                    &format!("buffer message has {} handles", hs.len()),
                ),
                Ok([h]) => match h.into_shared_buffer() {
                    Err(other) => {
                        // Mojo would refuse every buffer call on it.
                        let bad = i128::from(MojoError::InvalidArgument.code());
                        (info_r, map_r) = (bad, bad);
                        if ro {
                            (dup_r, unwrap_r) = (bad, bad);
                        }
                        add_err(
                            &mut err,
                            &format!("buffer message carries a {}", kind_name(other.kind())),
                        );
                    }
                    Ok(buf) => {
                        let info = self.sys.buffer_size(&buf);
                        info_r = i128::from(result_code(&info));
                        info_size = info.unwrap_or(0);
                        match self.sys.map_buffer(&buf, 0, size) {
                            Err(e) => {
                                map_r = i128::from(e.code());
                                add_err(&mut err, &format!("MojoMapBuffer failed {}", e.code()));
                            }
                            Ok(mut map) => {
                                map_r = 0;
                                mapped = true;
                                host_fnv = fnv_of_mapping(&map, size);
                                if !ro {
                                    let second: Vec<u8> = (size / 2..size)
                                        .map(protocol::shmem_c2h_host_byte)
                                        .collect();
                                    wrote = map.write((size / 2) as usize, &second).is_ok();
                                } else {
                                    // Must fail (EACCES) for a shared mapping of a read-only fd.
                                    mprotect_errno = match map.try_make_writable() {
                                        Ok(()) => 0,
                                        Err(e) => e as i32 as i128,
                                    };
                                }
                            }
                        }
                        if ro {
                            // A writable duplicate of a read-only buffer must be refused.
                            dup_r =
                                i128::from(result_code(&self.sys.duplicate_buffer(&buf, false)));
                            match self.sys.unwrap_shared_buffer(buf) {
                                Err(e) => unwrap_r = i128::from(e.code()),
                                Ok(region) => {
                                    unwrap_r = 0;
                                    unwrap_mode = i128::from(region.access_mode.code());
                                    unwrap_nfds = region.fds.len() as i128;
                                    if let Some(fd) = region.fds.first() {
                                        fd_accmode = i128::from(crate::os::fd_access_mode(fd));
                                        mmap_write_errno =
                                            match crate::os::probe_writable_mmap(fd, size as usize)
                                            {
                                                Ok(()) => 0,
                                                Err(e) => e as i32 as i128,
                                            };
                                    }
                                }
                            }
                        }
                    }
                },
            }
            // Always ack, so the client never waits for an ack that does not come.
            let _ = self.send(
                pipe,
                &Payload::ShmemC2HAck {
                    wrote: u32::from(wrote),
                },
                Vec::new(),
            );
            let mut e2 = String::new();
            if let Some(res) = self.read_expect_deadline(
                pipe,
                op::SHMEM_C2H_RESULT,
                &mut e2,
                deadline,
                "kShmemC2HResult",
            )? {
                result = true;
                bad1 = protocol::get_u64(&res.bytes, 4);
                bad2 = protocol::get_u64(&res.bytes, 12);
                self.decode(&res, &mut e2);
            }
            add_err(&mut err, &e2);
        }
        let base_ok = got_msg
            && handles_in_msg == 1
            && mapped
            && result
            && host_fnv == expect
            && client_fnv == expect
            && bad1 == 0
            && bad2 == 0;
        let pass = if ro {
            base_ok
                && err.is_empty()
                && dup_r != 0
                && mprotect_errno > 0
                && unwrap_r == 0
                && unwrap_mode == 0
                && mmap_write_errno > 0
        } else {
            base_ok && wrote && err.is_empty()
        };
        let mut j = self.line(name, pass);
        j.int("size", i128::from(size))
            .bool("read_only", ro)
            .int("handles_in_msg", handles_in_msg)
            .int("buffer_info_result", info_r)
            .int("buffer_info_size", i128::from(info_size))
            .int("map_result", map_r)
            .bool("host_checksum_match", mapped && host_fnv == expect)
            .bool("client_checksum_match", client_fnv == expect);
        if !ro {
            j.bool("host_wrote_second_half", wrote)
                .int("client_first_half_mismatches", i128::from(bad1))
                .int("client_second_half_mismatches", i128::from(bad2));
        } else {
            j.int("writable_dup_result", dup_r)
                .int("mprotect_write_errno", mprotect_errno)
                .int("unwrap_result", unwrap_r)
                .int("unwrap_access_mode", unwrap_mode)
                .int("unwrap_num_fds", unwrap_nfds)
                .int("fd_accmode", fd_accmode)
                .int("mmap_write_errno", mmap_write_errno)
                .int("client_unchanged_mismatches", i128::from(bad1 + bad2));
        }
        j.num("elapsed_ms", ms(t0.elapsed())).error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn platform_handle_c2h(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let size = self.cfg.counts.plat_c2h_size;
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let mut err = String::new();
        let expect = protocol::fnv_of_pattern(size, protocol::memfd_c2h_byte);
        let _ = self.send(pipe, &Payload::PlatHandleC2H { size }, Vec::new());
        let mut handles_in_msg: i128 = -1;
        let (mut fds_ok, mut memfd_reg, mut pipe_fifo, mut result) = (false, false, false, false);
        let (mut host_fnv, mut client_fnv) = (0u64, 0u64);
        let (mut mark_ok, mut pipe_ok, mut pipe_bytes, mut pipe_eof) = (0u64, 0u64, 0u64, 0u64);
        let mut nread: i128 = -1;
        if let Some(mut fm) = self.read_expect_deadline(
            pipe,
            op::PLAT_HANDLE_C2H_FDS,
            &mut err,
            deadline,
            "kPlatHandleC2HFds",
        )? {
            handles_in_msg = fm.handles.len() as i128;
            client_fnv = protocol::get_u64(&fm.bytes, 12);
            self.decode(&fm, &mut err);
            match <[Handle; 2]>::try_from(std::mem::take(&mut fm.handles)) {
                Err(hs) => add_err(&mut err, &format!("fds message has {} handles", hs.len())),
                Ok([h0, h1]) => {
                    let unwrap = |h: Handle| {
                        h.into_platform_handle()
                            .ok()
                            .and_then(|p| self.sys.unwrap_platform_handle(p).ok())
                    };
                    match (unwrap(h0), unwrap(h1)) {
                        (Some(memfd), Some(wpipe)) => {
                            fds_ok = true;
                            memfd_reg = is_regular_file(&memfd);
                            pipe_fifo = is_fifo(&wpipe);
                            let (fnv, n) = crate::os::hash_fd_prefix(&memfd, size);
                            host_fnv = fnv;
                            nread = n.map_or(-1, i128::from);
                            let _ = pwrite(memfd.as_fd(), HOST_MARK, size as i64);
                            let _ = nix::unistd::write(&wpipe, HOST_PIPE_MSG);
                            // Both fds close here: the client must then see EOF.
                        }
                        _ => add_err(&mut err, "unwrapped handles are not valid fds"),
                    }
                }
            }
            let _ = self.send(pipe, &Payload::PlatHandleC2HAck { host_fnv }, Vec::new());
            let mut e2 = String::new();
            if let Some(res) = self.read_expect_deadline(
                pipe,
                op::PLAT_HANDLE_C2H_RESULT,
                &mut e2,
                deadline,
                "kPlatHandleC2HResult",
            )? {
                result = true;
                mark_ok = protocol::get_u64(&res.bytes, 4);
                pipe_ok = protocol::get_u64(&res.bytes, 12);
                pipe_bytes = protocol::get_u64(&res.bytes, 20);
                pipe_eof = protocol::get_u64(&res.bytes, 28);
                self.decode(&res, &mut e2);
            }
            add_err(&mut err, &e2);
        }
        let pass = err.is_empty()
            && fds_ok
            && result
            && host_fnv == expect
            && client_fnv == expect
            && mark_ok != 0
            && pipe_ok != 0
            && pipe_eof != 0;
        let mut j = self.line("platform_handle_c2h", pass);
        j.int("handles_in_msg", handles_in_msg)
            .bool("fds_valid", fds_ok)
            .bool("memfd_is_regular_file", memfd_reg)
            .bool("pipe_is_fifo", pipe_fifo)
            .int("memfd_bytes_read", nread)
            .bool("memfd_checksum_ok", fds_ok && host_fnv == expect)
            .bool("client_checksum_match", client_fnv == expect)
            .bool("client_saw_host_mark", mark_ok != 0)
            .bool("client_pipe_ok", pipe_ok != 0)
            .int("client_pipe_bytes", i128::from(pipe_bytes))
            .bool("client_pipe_eof", pipe_eof != 0)
            .num("elapsed_ms", ms(t0.elapsed()))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn pipe_roundtrip(
        &mut self,
        pipe: &MessagePipe,
        bounces: u32,
        name: &str,
    ) -> Result<(), TimedOut> {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let (queued_n, msgs) = (
            self.cfg.counts.roundtrip_queued,
            self.cfg.counts.roundtrip_messages,
        );
        let mut err = String::new();
        let mut seed: u64 = 0xabcdef + u64::from(bounces);
        let (mut hops_done, mut queued_ok, mut fwd_ok, mut back_ok, mut mismatches) =
            (0u32, 0, 0, 0, 0);
        let mut peer_closed_ok = false;
        let mut close_ms = -1.0;
        let mut hop_ms = String::from("[");
        match self.sys.create_message_pipe() {
            Err(e) => err = format!("create pipe failed {}", e.code()),
            Ok((p0, p1)) => {
                let queued = self.write_echoes(&p0, (0..queued_n).map(|i| 12 + i * 41), &mut seed);
                let mut h: Option<Handle> = Some(p1.into());
                for hop in 0..bounces {
                    let th = Instant::now();
                    let handle = h.take().map_or_else(Vec::new, |x| vec![x]);
                    if let Err(e) = self.send(pipe, &Payload::PipeBounce { hop }, handle) {
                        err = format!("send bounce {hop} failed {}", e.code());
                        break;
                    }
                    let what = format!("kPipeBounceBack {hop}");
                    let Some(mut back) = self.read_expect_deadline(
                        pipe,
                        op::PIPE_BOUNCE_BACK,
                        &mut err,
                        deadline,
                        &what,
                    )?
                    else {
                        break;
                    };
                    let back_hop = protocol::get_u32(&back.bytes, 4);
                    let hs = std::mem::take(&mut back.handles);
                    if back_hop != hop || hs.len() != 1 {
                        err = format!("bounce {hop}: hop {back_hop}, {} handles", hs.len());
                        break;
                    }
                    self.decode(&back, &mut err);
                    h = hs.into_iter().next();
                    hops_done += 1;
                    hop_ms.push_str(&format!(
                        "{}{:.3}",
                        if hop > 0 { "," } else { "" },
                        ms(th.elapsed())
                    ));
                }
                let p1 = match h.map(Handle::into_message_pipe) {
                    Some(Ok(p)) if err.is_empty() => Some(p),
                    Some(Err(other)) if err.is_empty() => {
                        err = format!("bounced back a {}", kind_name(other.kind()));
                        None
                    }
                    _ => None,
                };
                if let Some(p1) = p1 {
                    let limit = |label| ReadLimit::Deadline(deadline, label);
                    let found = self.read_back(&p1, &queued, limit("queued"), &mut err)?;
                    (queued_ok, mismatches) = (found.matched, found.mismatched);
                    // Each direction's messages are written only while all
                    // went well (the reference's loops stop at an error).
                    let fwd = if err.is_empty() {
                        self.write_echoes(&p0, (0..msgs).map(|i| 4 + i * 97), &mut seed)
                    } else {
                        Vec::new()
                    };
                    let found = self.read_back(&p1, &fwd, limit("forward"), &mut err)?;
                    fwd_ok = found.matched;
                    mismatches += found.mismatched;
                    let bwd = if err.is_empty() {
                        self.write_echoes(&p1, (0..msgs).map(|i| 4 + i * 89), &mut seed)
                    } else {
                        Vec::new()
                    };
                    let found = self.read_back(&p0, &bwd, limit("backward"), &mut err)?;
                    back_ok = found.matched;
                    mismatches += found.mismatched;
                    let tc = Instant::now();
                    drop(p1);
                    let pr = self.wait(p0.raw(), Signals::PEER_CLOSED, Some(deadline))?;
                    peer_closed_ok = pr.is_ok();
                    if peer_closed_ok {
                        close_ms = ms(tc.elapsed());
                    } else {
                        add_err(
                            &mut err,
                            &format!("peer-closed wait result {}", result_code(&pr)),
                        );
                    }
                }
            }
        }
        hop_ms.push(']');
        let pass = err.is_empty()
            && hops_done == bounces
            && queued_ok == queued_n
            && fwd_ok == msgs
            && back_ok == msgs
            && mismatches == 0
            && peer_closed_ok;
        let crossings = if self.cfg.direct { 0 } else { 2 * hops_done };
        let mut j = self.line(name, pass);
        j.int("bounces", i128::from(bounces))
            .int("bounces_done", i128::from(hops_done))
            .int("handle_transfers", i128::from(2 * hops_done))
            .int("proxy_crossings", i128::from(crossings))
            .raw("bounce_ms", &hop_ms)
            .int("queued", queued_n as i128)
            .int("queued_ok", queued_ok as i128)
            .int("messages_each_way", msgs as i128)
            .int("forward_ok", fwd_ok as i128)
            .int("backward_ok", back_ok as i128)
            .int("mismatches", mismatches as i128)
            .bool("peer_closed", peer_closed_ok)
            .num("peer_closed_ms", close_ms)
            .num("elapsed_ms", ms(t0.elapsed()))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    pub(super) fn many_pipes(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let n = self.cfg.counts.many_pipes;
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let mut err = String::new();
        let mut ends = Vec::with_capacity(n as usize);
        let mut sent = Vec::with_capacity(n as usize);
        let mut send_failures = 0u32;
        for i in 0..n {
            let mut e = Vec::with_capacity(12 + 61);
            for w in [op::ECHO, i, n] {
                e.extend_from_slice(&w.to_le_bytes());
            }
            e.extend((0..i % 61).map(|j| (i.wrapping_mul(13).wrapping_add(j)) as u8));
            match self.sys.create_message_pipe() {
                Err(_) => send_failures += 1,
                Ok((p0, p1)) => {
                    let _ = self.write(&p0, &e, Vec::new());
                    if self
                        .send(
                            pipe,
                            &Payload::ManyPipe { index: i, total: n },
                            vec![p1.into()],
                        )
                        .is_err()
                    {
                        send_failures += 1;
                    }
                    ends.push(Some(p0));
                }
            }
            sent.push(e);
        }
        let t_sent = Instant::now();
        let (mut echoed, mut mismatches, mut closed) = (0u32, 0u32, 0u32);
        for (i, end) in ends.iter().enumerate() {
            if !err.is_empty() {
                break;
            }
            let Some(p0) = end else { continue };
            let what = format!("echo on pipe {i}");
            let Some(got) = self.read_expect_deadline(p0, op::ECHO, &mut err, deadline, &what)?
            else {
                break;
            };
            echoed += 1;
            if got.bytes != sent[i] {
                mismatches += 1;
            }
            let pr = self.wait(p0.raw(), Signals::PEER_CLOSED, Some(deadline))?;
            if pr.is_ok() {
                closed += 1;
            } else {
                add_err(
                    &mut err,
                    &format!("pipe {i} peer-closed wait {}", result_code(&pr)),
                );
            }
        }
        let t_echoed = Instant::now();
        drop(ends);
        let (mut handled, mut errors, mut done) = (0u64, 0u64, false);
        let mut e2 = String::new();
        let d2 = report_deadline(&err, deadline, C2H_REPORT_GRACE);
        if let Some(d) =
            self.read_expect_deadline(pipe, op::MANY_PIPES_DONE, &mut e2, d2, "kManyPipesDone")?
        {
            done = true;
            handled = protocol::get_u64(&d.bytes, 4);
            errors = protocol::get_u64(&d.bytes, 12);
            self.decode(&d, &mut e2);
        }
        add_err(&mut err, &e2);
        let pass = err.is_empty()
            && send_failures == 0
            && echoed == n
            && mismatches == 0
            && closed == n
            && done
            && handled == u64::from(n)
            && errors == 0;
        let mut j = self.line("many_pipes", pass);
        j.int("pipes", i128::from(n))
            .int("send_failures", i128::from(send_failures))
            .int("echoed", i128::from(echoed))
            .int("mismatches", i128::from(mismatches))
            .int("peer_closed", i128::from(closed))
            .int("client_handled", i128::from(handled))
            .int("client_errors", i128::from(errors))
            .num("send_ms", ms(t_sent - t0))
            .num("echo_ms", ms(t_echoed - t0))
            .num("elapsed_ms", ms(t0.elapsed()))
            .error(&err);
        self.print(&j);
        Ok(())
    }
}

/// FNV-1a of a mapping's first `size` bytes, read in chunks.
fn fnv_of_mapping<M: BufferMapping>(map: &M, size: u64) -> u64 {
    let mut h = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    while at < size {
        let n = ((size - at) as usize).min(buf.len());
        if map.read(at as usize, &mut buf[..n]).is_err() {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    h.value()
}
