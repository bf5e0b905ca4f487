//! The driver over real socket pairs, with the echo core of `common`: fds
//! both ways, partial writes, back-pressure, adoption, closure, errors,
//! timers and the per-turn read budget. Every test checks that no fd leaked.

#![allow(missing_docs)]

mod common;

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use common::*;
use mojo_driver::{
    Backlog, CloseReason, Config, Core, CoreRequest, Driver, DriverError, Exit, LinkId,
    ReceivedFds, Transmit,
};
use mojo_platform_channel::{Endpoint, Limits, MAX_READ_BATCH_BYTES, socketpair, socketpair_fds};

/// A driver with `n` links; returns the peers' ends in link order.
fn driver_with_links(config: Config, n: usize) -> (Driver, Vec<LinkId>, Vec<Endpoint>) {
    let mut driver = Driver::with_config(config).unwrap();
    let mut ids = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..n {
        let (ours, theirs) = socketpair().unwrap();
        ids.push(driver.add_link(ours).unwrap());
        peers.push(theirs);
    }
    (driver, ids, peers)
}

#[test]
fn written_frames_come_back_to_the_core_for_reuse() {
    assert_no_fd_leak(|| {
        let (mut driver, ids, mut peers) = driver_with_links(Config::default(), 1);
        let mut core = EchoCore::default();
        // A burst, so that most echoes wait behind others and are coalesced.
        for i in 0..200u32 {
            peers[0].queue(frame(&i.to_le_bytes(), 0), vec![]).unwrap();
        }
        let mut echoed = 0;
        spin(&mut driver, &mut core, |_, _| {
            peers[0].flush().unwrap();
            peer_read(&mut peers[0]);
            while take_frame(&mut peers[0]).is_some() {
                echoed += 1;
            }
            echoed == 200
        });
        // Every echo's buffer came back, written or copied into a chunk.
        assert_eq!(core.recycled.len(), 200);
        assert!(core.recycled.iter().all(|&(l, cap)| l == ids[0] && cap > 0));
        drop(peers);
        assert_eq!(driver.run(&mut core).unwrap(), Exit::AllLinksClosed);
    });
}

#[test]
fn echo_over_several_links_with_fds_both_ways() {
    assert_no_fd_leak(|| {
        let (mut driver, ids, mut peers) = driver_with_links(Config::default(), 3);
        let mut core = EchoCore::default();
        // Per peer: what it sent, in order (payload, inodes of the fds).
        let mut sent: Vec<VecDeque<(Vec<u8>, Vec<u64>)>> = vec![VecDeque::new(); peers.len()];
        for (p, peer) in peers.iter_mut().enumerate() {
            for i in 0..20usize {
                let payload = format!("peer {p} frame {i}").repeat(i + 1).into_bytes();
                let fds = some_fds(i % 4);
                let inodes = fds.iter().map(inode).collect();
                peer.queue(frame(&payload, fds.len()), fds).unwrap();
                sent[p].push_back((payload, inodes));
            }
        }
        spin(&mut driver, &mut core, |_, _| {
            for (p, peer) in peers.iter_mut().enumerate() {
                peer.flush().unwrap();
                peer_read(peer);
                while let Some((payload, fds)) = take_frame(peer) {
                    let (want, inodes) = sent[p].pop_front().expect("no extra frame");
                    assert_eq!(payload, want);
                    assert_eq!(fds.iter().map(inode).collect::<Vec<_>>(), inodes);
                }
            }
            sent.iter().all(VecDeque::is_empty)
        });
        assert_eq!(core.frames_in, 60);
        for id in &ids {
            let s = driver.link_stats(*id).unwrap();
            assert_eq!(s.pending_output_bytes, 0);
            assert_eq!(s.received_fds, 0);
            assert!(!s.write_interest);
        }
        drop(peers);
        assert_eq!(driver.run(&mut core).unwrap(), Exit::AllLinksClosed);
        assert_eq!(core.closed.len(), 3);
        for (_, reason) in &core.closed {
            assert_eq!(
                *reason,
                CloseReason::HangUp {
                    unconsumed_bytes: 0,
                    untaken_fds: 0
                }
            );
        }
    });
}

#[test]
fn large_message_is_written_in_parts_with_write_interest_toggled() {
    assert_no_fd_leak(|| {
        let (mut driver, ids, mut peers) = driver_with_links(Config::default(), 1);
        let mut core = EchoCore::default();
        let payload: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let fds = some_fds(3);
        let inodes: Vec<u64> = fds.iter().map(inode).collect();
        let peer = &mut peers[0];
        peer.queue(frame(&payload, 3), fds).unwrap();
        let mut max_pending = 0;
        let mut got = None;
        spin(&mut driver, &mut core, |_, driver| {
            if let Some(s) = driver.link_stats(ids[0]) {
                max_pending = max_pending.max(s.pending_output_bytes);
            }
            peer.flush().unwrap();
            peer_read(peer);
            got = take_frame(peer);
            got.is_some()
        });
        let (echoed, fds) = got.unwrap();
        assert!(echoed == payload, "echoed payload differs");
        assert_eq!(fds.iter().map(inode).collect::<Vec<_>>(), inodes);
        // The socket took the frame in parts: output waited, write interest
        // went on and, once everything was written, off again.
        assert!(max_pending > 0);
        let stats = driver.stats();
        assert!(stats.write_interest_on >= 1, "{stats:?}");
        assert_eq!(
            stats.write_interest_on, stats.write_interest_off,
            "{stats:?}"
        );
        assert!(!driver.link_stats(ids[0]).unwrap().write_interest);
        // 16 MiB over High and back under Low, reported once each.
        assert_eq!(
            core.backlog,
            vec![(ids[0], Backlog::High), (ids[0], Backlog::Low)]
        );
    });
}

#[test]
fn stalled_reader_pauses_input_then_resumes_with_nothing_lost() {
    assert_no_fd_leak(|| {
        const HIGH: usize = 256 * 1024;
        const LOW: usize = 64 * 1024;
        const FRAME: usize = 16 * 1024;
        const FRAMES: usize = 512; // 8 MiB in all
        let config = Config {
            output_high_water: HIGH,
            output_low_water: LOW,
            ..Config::default()
        };
        let (mut driver, ids, mut peers) = driver_with_links(config, 1);
        let mut core = EchoCore::pausing();
        let payload_of = |i: usize| -> Vec<u8> {
            let mut p = vec![(i % 256) as u8; FRAME];
            p[..8].copy_from_slice(&(i as u64).to_le_bytes());
            p
        };
        let peer = &mut peers[0];
        for i in 0..FRAMES {
            peer.queue(frame(&payload_of(i), 0), vec![]).unwrap();
        }
        // The peer writes but does not read.
        let bound = HIGH + MAX_READ_BATCH_BYTES + FRAME + HEADER;
        let mut max_pending = 0;
        let mut stalled_turns = 0;
        spin(&mut driver, &mut core, |core, driver| {
            let s = driver.link_stats(ids[0]).unwrap();
            max_pending = max_pending.max(s.pending_output_bytes);
            peer.flush().unwrap();
            if s.paused && peer.has_pending_output() {
                stalled_turns += 1;
            }
            // Paused for a while with the peer's writes blocked.
            stalled_turns >= 50 && core.backlog.contains(&(ids[0], Backlog::High))
        });
        assert!(max_pending <= bound, "{max_pending} > {bound}");
        let read_while_stalled = core.bytes_in;
        assert!(read_while_stalled < FRAMES * (FRAME + HEADER));

        // The peer reads again: everything comes back, in order.
        let mut next = 0;
        spin(&mut driver, &mut core, |_, driver| {
            let s = driver.link_stats(ids[0]).unwrap();
            max_pending = max_pending.max(s.pending_output_bytes);
            peer.flush().unwrap();
            peer_read(peer);
            while let Some((payload, _)) = take_frame(peer) {
                assert!(payload == payload_of(next), "frame {next} differs");
                next += 1;
            }
            next == FRAMES
        });
        assert!(max_pending <= bound, "{max_pending} > {bound}");
        assert!(core.backlog.contains(&(ids[0], Backlog::Low)));
        assert!(!driver.link_stats(ids[0]).unwrap().paused);
    });
}

#[test]
fn stalled_reader_on_one_link_pauses_only_the_link_that_feeds_it() {
    assert_no_fd_leak(|| {
        const HIGH: usize = 256 * 1024;
        const FRAME: usize = 32 * 1024;
        const FRAMES: usize = 256; // 8 MiB from A to B
        let config = Config {
            output_high_water: HIGH,
            output_low_water: HIGH / 4,
            ..Config::default()
        };
        let (mut driver, ids, mut peers) = driver_with_links(config, 2);
        let (a, b) = (ids[0], ids[1]);
        let mut core = EchoCore::pausing();
        core.routes = vec![(a, b), (b, a)];
        let (peer_a, peer_b) = {
            let (x, y) = peers.split_at_mut(1);
            (&mut x[0], &mut y[0])
        };
        for i in 0..FRAMES {
            peer_a
                .queue(frame(&vec![(i % 256) as u8; FRAME], 0), vec![])
                .unwrap();
        }
        // B does not read, but keeps sending small frames to A.
        let bound = HIGH + MAX_READ_BATCH_BYTES + FRAME + HEADER;
        let mut max_pending = 0;
        let mut b_sent = 0usize;
        let mut a_got = 0usize;
        let mut paused_turns = 0;
        spin(&mut driver, &mut core, |_, driver| {
            max_pending = max_pending.max(driver.link_stats(b).unwrap().pending_output_bytes);
            if driver.link_stats(a).unwrap().paused {
                paused_turns += 1;
            }
            peer_a.flush().unwrap();
            if b_sent < 100 {
                peer_b.send(frame(b"from b", 0), vec![]).unwrap();
                b_sent += 1;
            }
            peer_read(peer_a);
            while take_frame(peer_a).is_some() {
                a_got += 1;
            }
            paused_turns >= 50 && a_got == 100
        });
        // B's direction flowed while A was held back; B itself was never paused.
        assert!(!driver.link_stats(b).unwrap().paused);
        assert!(max_pending <= bound, "{max_pending} > {bound}");

        let mut b_got = 0;
        spin(&mut driver, &mut core, |_, driver| {
            max_pending = max_pending.max(driver.link_stats(b).unwrap().pending_output_bytes);
            peer_a.flush().unwrap();
            peer_read(peer_b);
            while let Some((payload, _)) = take_frame(peer_b) {
                assert!(payload == vec![(b_got % 256) as u8; FRAME], "frame {b_got}");
                b_got += 1;
            }
            b_got == FRAMES
        });
        assert!(max_pending <= bound, "{max_pending} > {bound}");
        assert_eq!(core.backlog.first(), Some(&(b, Backlog::High)));
        assert_eq!(core.backlog.last(), Some(&(b, Backlog::Low)));
    });
}

#[test]
fn abort_request_closes_the_link_and_the_fds_it_held_at_once() {
    let _g = fd_lock();
    let base = open_fd_count();
    {
        // A second link keeps the run going.
        let (mut driver, ids, mut peers) = driver_with_links(Config::default(), 2);
        let mut core = EchoCore::default();
        // `ABORT` claims no fd; the two that ride with it stay untaken.
        peers[0].send(frame(ABORT, 0), some_fds(2)).unwrap();
        assert_eq!(
            open_fd_count(),
            base + 5,
            "the epoll fd and two links' sockets"
        );
        spin(&mut driver, &mut core, |core, _| !core.closed.is_empty());
        assert_eq!(core.closed, vec![(ids[0], CloseReason::Requested)]);
        // The link's socket and the two received fds are closed.
        assert_eq!(
            open_fd_count(),
            base + 4,
            "epoll, the other link, the aborted link's peer end"
        );
        assert!(peer_read(&mut peers[0]), "the peer sees the end");
    }
    assert_eq!(open_fd_count(), base);
}

#[test]
fn adopts_a_link_from_an_fd_received_in_a_message() {
    assert_no_fd_leak(|| {
        let (mut driver, _ids, mut peers) = driver_with_links(Config::default(), 1);
        let mut core = EchoCore::default();
        let (for_driver, mut theirs) = {
            let (a, b) = socketpair_fds(true, true).unwrap();
            (a, Endpoint::from_owned_fd(b).unwrap())
        };
        // The new socket travels inside a message, with some bytes already
        // waiting in it (they must be read although no edge comes for them).
        theirs.send(frame(b"early", 0), vec![]).unwrap();
        peers[0].send(frame(ADOPT, 1), vec![for_driver]).unwrap();
        let mut frames = Vec::new();
        spin(&mut driver, &mut core, |_, _| {
            theirs.flush().unwrap();
            peer_read(&mut theirs);
            while let Some((payload, _)) = take_frame(&mut theirs) {
                frames.push(payload);
            }
            frames.len() == 2
        });
        assert_eq!(frames, vec![WELCOME.to_vec(), b"early".to_vec()]);
        assert_eq!(driver.link_count(), 2);
        let new_link = core.adopted[0].clone().unwrap();

        // Something that is not a socket is refused (and closed).
        let not_a_socket: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        peers[0].send(frame(ADOPT, 1), vec![not_a_socket]).unwrap();
        spin(&mut driver, &mut core, |core, _| core.adopted.len() == 2);
        assert!(core.adopted[1].is_err(), "{:?}", core.adopted[1]);
        assert_eq!(driver.link_count(), 2);

        drop(theirs);
        spin(&mut driver, &mut core, |core, _| !core.closed.is_empty());
        assert_eq!(core.closed[0].0, new_link);
        drop(peers);
        assert_eq!(driver.run(&mut core).unwrap(), Exit::AllLinksClosed);
    });
}

#[test]
fn new_link_pair_gives_the_core_a_socket_to_send() {
    assert_no_fd_leak(|| {
        let (mut driver, _ids, mut peers) = driver_with_links(Config::default(), 1);
        let mut core = EchoCore::default();
        peers[0].send(frame(PAIR, 0), vec![]).unwrap();
        let mut got = None;
        spin(&mut driver, &mut core, |_, _| {
            peer_read(&mut peers[0]);
            got = take_frame(&mut peers[0]);
            got.is_some()
        });
        let (payload, mut fds) = got.unwrap();
        assert_eq!(payload, PAIRED);
        let new_link = core.paired[0].clone().unwrap();
        assert_eq!(driver.link_count(), 2);
        // The end we got is the other side of the new link.
        let mut theirs = Endpoint::from_owned_fd(fds.pop().unwrap()).unwrap();
        theirs.send(frame(b"via the new link", 0), vec![]).unwrap();
        let mut frames = Vec::new();
        spin(&mut driver, &mut core, |_, _| {
            theirs.flush().unwrap();
            peer_read(&mut theirs);
            while let Some((payload, _)) = take_frame(&mut theirs) {
                frames.push(payload);
            }
            frames.len() == 2
        });
        assert_eq!(frames, vec![WELCOME.to_vec(), b"via the new link".to_vec()]);
        drop(theirs);
        drop(peers);
        assert_eq!(driver.run(&mut core).unwrap(), Exit::AllLinksClosed);
        assert!(core.closed.iter().any(|(l, _)| *l == new_link));
    });
}

#[test]
fn a_paused_link_whose_peer_hangs_up_is_read_to_its_end_and_closed() {
    assert_no_fd_leak(|| {
        const FRAME: usize = 16 * 1024;
        let config = Config {
            output_high_water: 64 * 1024,
            output_low_water: 16 * 1024,
            ..Config::default()
        };
        // A feeds B, whose peer does not read: A is paused. A has nothing
        // to write, so only reading can tell that its peer is gone.
        let (mut driver, ids, mut peers) = driver_with_links(config, 2);
        let (a, b) = (ids[0], ids[1]);
        let mut core = EchoCore::pausing();
        core.routes = vec![(a, b)];
        let peer_b = peers.pop().unwrap();
        let mut peer_a = peers.pop().unwrap();
        let mut stalled_turns = 0;
        spin(&mut driver, &mut core, |_, driver| {
            peer_a.flush().unwrap();
            while !peer_a.has_pending_output() {
                peer_a.queue(frame(&[1u8; FRAME], 0), vec![]).unwrap();
                peer_a.flush().unwrap();
            }
            if driver.link_stats(a).unwrap().paused && peer_a.has_pending_output() {
                stalled_turns += 1;
            }
            stalled_turns >= 20
        });
        // A's peer dies with frames we have not read: they are read (the
        // kernel holds no more than its buffer) and A's loss is reported
        // although B still backs up.
        drop(peer_a);
        spin(&mut driver, &mut core, |core, _| !core.closed.is_empty());
        assert!(matches!(
            core.closed.as_slice(),
            [(link, CloseReason::HangUp { .. })] if *link == a
        ));
        assert!(driver.link_stats(b).unwrap().pending_output_bytes > 0);
        drop(peer_b);
        assert_eq!(driver.run(&mut core).unwrap(), Exit::AllLinksClosed);
    });
}

#[test]
fn hang_up_ends_the_run_and_closes_every_fd() {
    assert_no_fd_leak(|| {
        let (mut driver, ids, mut peers) = driver_with_links(Config::default(), 1);
        let mut core = EchoCore::default();
        let mut peer = peers.pop().unwrap();
        // One whole frame, then the start of one that never completes; its
        // two fds arrive with its first byte and are never taken.
        peer.send(frame(b"whole", 0), vec![]).unwrap();
        let partial = frame(&[7u8; 1000], 2);
        peer.send(partial[..100].to_vec(), some_fds(2)).unwrap();
        spin(&mut driver, &mut core, |core, _| core.frames_in == 1);
        drop(peer);
        assert_eq!(driver.run(&mut core).unwrap(), Exit::AllLinksClosed);
        assert_eq!(
            core.closed,
            vec![(
                ids[0],
                CloseReason::HangUp {
                    unconsumed_bytes: 100,
                    untaken_fds: 2
                }
            )]
        );
        assert_eq!(driver.link_count(), 0);
    });
}

#[test]
fn close_request_sends_queued_output_first() {
    assert_no_fd_leak(|| {
        let (mut driver, ids, mut peers) = driver_with_links(Config::default(), 1);
        let mut core = EchoCore::default();
        let mut peer = peers.pop().unwrap();
        let big = vec![1u8; 4 * 1024 * 1024];
        peer.queue(frame(&big, 0), vec![]).unwrap();
        peer.queue(frame(CLOSE, 0), vec![]).unwrap();
        let mut got = Vec::new();
        let mut exit = None;
        let start = Instant::now();
        loop {
            if exit.is_none() {
                exit = driver.turn(&mut core, Some(TURN_WAIT)).unwrap();
            }
            peer.flush().unwrap();
            let eof = peer_read(&mut peer);
            while let Some((payload, _)) = take_frame(&mut peer) {
                got.push(payload.len());
            }
            if eof {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "test hung");
        }
        assert_eq!(got, vec![big.len(), CLOSE.len()]);
        // The link went once everything was written.
        let exit = exit.unwrap_or_else(|| driver.run(&mut core).unwrap());
        assert_eq!(exit, Exit::AllLinksClosed);
        assert_eq!(core.closed, vec![(ids[0], CloseReason::Requested)]);
    });
}

#[test]
fn close_gives_up_when_the_peer_does_not_take_the_output_in_time() {
    assert_no_fd_leak(|| {
        let linger = Duration::from_millis(100);
        let config = Config {
            close_linger: linger,
            ..Config::default()
        };
        let (mut driver, ids, mut peers) = driver_with_links(config, 1);
        let mut core = EchoCore::default();
        // 4 MiB echoed to a peer that never reads, then CLOSE.
        peers[0]
            .queue(frame(&vec![0u8; 4 * 1024 * 1024], 0), vec![])
            .unwrap();
        peers[0].queue(frame(CLOSE, 0), vec![]).unwrap();
        let start = Instant::now();
        let mut closing_since = None;
        let exit = loop {
            peers[0].flush().unwrap();
            if let Some(exit) = driver.turn(&mut core, Some(TURN_WAIT)).unwrap() {
                break exit;
            }
            if closing_since.is_none() && driver.link_stats(ids[0]).is_some_and(|s| s.closing) {
                closing_since = Some(Instant::now());
            }
            assert!(start.elapsed() < DEADLINE, "test hung");
        };
        assert_eq!(exit, Exit::AllLinksClosed);
        let waited = closing_since.expect("the link lingered").elapsed();
        assert!(waited >= linger - TURN_WAIT, "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        match &core.closed[..] {
            [(link, CloseReason::LingerExpired { unsent_bytes })] => {
                assert_eq!(*link, ids[0]);
                assert!(*unsent_bytes > 0);
            }
            other => panic!("unexpected closures {other:?}"),
        }
    });
}

#[test]
fn core_error_ends_the_run_naming_the_link() {
    assert_no_fd_leak(|| {
        let (mut driver, ids, mut peers) = driver_with_links(Config::default(), 2);
        let mut core = EchoCore::default();
        peers[1].send(frame(BAD, 0), vec![]).unwrap();
        let err = driver.run(&mut core).unwrap_err();
        match &err {
            DriverError::Core { link, error } => {
                assert_eq!(*link, ids[1]);
                assert_eq!(*error, EchoError::BadFrame);
            }
            other => panic!("unexpected error {other}"),
        }
        assert_eq!(err.to_string(), format!("{}: bad frame", ids[1]));
    });
}

#[test]
fn read_budget_lets_every_link_take_turns() {
    assert_no_fd_leak(|| {
        let config = Config {
            read_budget_per_turn: 1,
            ..Config::default()
        };
        let mut driver = Driver::with_config(config).unwrap();
        let mut peers = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (mut ours, theirs) = socketpair().unwrap();
            // One read_available call takes at most 4 KiB.
            ours.set_limits(Limits {
                max_read_batch_bytes: 4096,
                read_chunk_size: 4096,
                ..Limits::default()
            })
            .unwrap();
            ids.push(driver.add_link(ours).unwrap());
            peers.push(theirs);
        }
        let mut core = EchoCore::default();
        // Link 0 has 64 KiB waiting, link 1 one small frame.
        peers[0].send(frame(&[0u8; 64 * 1024], 0), vec![]).unwrap();
        peers[1].send(frame(b"small", 0), vec![]).unwrap();
        driver.turn(&mut core, Some(TURN_WAIT)).unwrap();
        // Both links were read in the first turn, link 0 only once.
        assert_eq!(core.input_calls, vec![ids[0], ids[1]]);
        // Link 0 keeps being read, one batch per turn, without waiting.
        let start = Instant::now();
        while core.frames_in < 2 {
            driver
                .turn(&mut core, Some(Duration::from_secs(10)))
                .unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(core.input_calls.len() >= 64 * 1024 / 4096);
    });
}

/// Sends `TICK` on its link when its deadline passes, then shuts down.
struct TimerCore {
    link: LinkId,
    deadline: Option<Instant>,
    fired: Vec<Instant>,
    out: VecDeque<Transmit>,
    shutdown: bool,
}

impl Core for TimerCore {
    type Error = std::convert::Infallible;

    fn handle_input(
        &mut self,
        _: LinkId,
        _: &[u8],
        _: &mut ReceivedFds,
    ) -> Result<usize, Self::Error> {
        Ok(0)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_request(&mut self) -> Option<CoreRequest> {
        std::mem::take(&mut self.shutdown).then_some(CoreRequest::Shutdown)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.deadline
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.fired.push(now);
        self.deadline = None;
        self.out.push_back(Transmit {
            link: self.link,
            bytes: frame(b"TICK", 0),
            fds: vec![],
        });
        self.shutdown = true;
    }

    fn handle_link_closed(&mut self, _: LinkId, reason: CloseReason) {
        assert_eq!(reason, CloseReason::Requested);
    }
}

#[test]
fn timer_fires_at_its_deadline_and_shutdown_finishes_the_run() {
    assert_no_fd_leak(|| {
        let (mut driver, ids, mut peers) = driver_with_links(Config::default(), 1);
        let start = Instant::now();
        let mut core = TimerCore {
            link: ids[0],
            deadline: Some(start + Duration::from_millis(50)),
            fired: Vec::new(),
            out: VecDeque::new(),
            shutdown: false,
        };
        // No input at all: only the timer can end the wait.
        assert_eq!(driver.run(&mut core).unwrap(), Exit::CoreFinished);
        assert_eq!(core.fired.len(), 1);
        let waited = core.fired[0] - start;
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        // The frame sent from the timer reached the peer before the close.
        let peer = &mut peers[0];
        assert!(peer_read(peer));
        assert_eq!(take_frame(peer).unwrap().0, b"TICK");
    });
}
