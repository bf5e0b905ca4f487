//! Single-process endpoint behaviour: limits as typed errors, fds kept until
//! the `sendmsg` carrying them succeeded, queue-time refusal, `into_fd`, and
//! mio registration.

#![allow(missing_docs)]

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use common::*;
use mojo_platform_channel::{
    ChannelError, Endpoint, Limits, QueueError, ReadOutcome, WriteOutcome, socketpair,
};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use std::net::Shutdown;

fn dups(fd: &OwnedFd, n: usize) -> Vec<OwnedFd> {
    (0..n).map(|_| fd.try_clone().unwrap()).collect()
}

#[test]
fn too_many_queued_fds_is_a_typed_error_and_closes_them() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        b.set_limits(Limits {
            max_queued_fds: 3,
            ..Limits::default()
        })
        .unwrap();
        let m = memfd_with(b"x");
        a.send(frame(b"two", 2), dups(&m, 2)).unwrap();
        a.send(frame(b"two", 2), dups(&m, 2)).unwrap();
        // The first read gets the first message (the kernel stops after an
        // fd-carrying write), the second one pushes the FIFO over 3.
        let first = b.read_available().unwrap();
        assert_eq!(first, ReadOutcome::Data { bytes: 11, fds: 2 });
        let err = b.read_available().unwrap_err();
        assert_eq!(
            err,
            ChannelError::TooManyFds {
                limit: 3,
                queued: 2,
                received: 2
            }
        );
        assert_eq!(b.queued_fds(), 2);
        // The bytes of the refused read are gone, so the stream is out of
        // step: later reads must not carry on as if nothing happened.
        a.send(frame(b"after", 0), vec![]).unwrap();
        assert_eq!(b.read_available().unwrap_err(), err);
        assert_eq!(b.read_available().unwrap_err(), err);
        assert_eq!(b.buffered().len(), 11, "nothing appended after the error");
    });
}

#[test]
fn buffer_limit_is_a_typed_error() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        b.set_limits(Limits {
            max_buffered_bytes: 16,
            ..Limits::default()
        })
        .unwrap();
        a.send(vec![5; 40], vec![]).unwrap();
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 16, fds: 0 }
        );
        assert_eq!(
            b.read_available().unwrap_err(),
            ChannelError::BufferFull { limit: 16 }
        );
        // Consuming makes room again, in the same buffer.
        b.consume(10).unwrap();
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 10, fds: 0 }
        );
        assert_eq!(b.buffered(), &[5u8; 16][..]);
        assert!(matches!(
            b.consume(17),
            Err(ChannelError::Queue(QueueError::ConsumePastEnd { .. }))
        ));
    });
}

#[test]
fn queue_refuses_message_too_short_for_its_fds_and_closes_them() {
    assert_no_fd_leak(|| {
        let (mut a, _b) = socketpair().unwrap();
        let m = memfd_with(b"x");
        let err = a.queue(vec![1], dups(&m, 129)).unwrap_err();
        assert_eq!(
            err,
            ChannelError::Queue(QueueError::TooFewBytesForFds {
                len: 1,
                num_fds: 129,
                needed_bytes: 2
            })
        );
        assert_eq!(
            a.queue(vec![], vec![]).unwrap_err(),
            ChannelError::Queue(QueueError::EmptyMessage)
        );
        assert!(!a.has_pending_output());
    });
}

#[test]
fn fds_stay_queued_on_eagain_and_close_after_sending() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        a.set_send_buffer_size(4096).unwrap();
        // Fill the socket so that the next sendmsg gets EAGAIN.
        let big = vec![1u8; 1 << 20];
        assert_eq!(a.send(big, vec![]).unwrap(), WriteOutcome::WouldBlock);
        let before = open_fd_count();
        let m = memfd_with(b"x");
        a.queue(frame(b"fds", 3), dups(&m, 3)).unwrap();
        drop(m);
        assert_eq!(a.flush().unwrap(), WriteOutcome::WouldBlock);
        assert_eq!(a.pending_output_fds(), 3);
        assert_eq!(open_fd_count(), before + 3, "queued fds still open");
        let mut filler_left = 1usize << 20;
        let mut frame_seen = None;
        let mut rounds = 0;
        while frame_seen.is_none() {
            a.flush().unwrap();
            b.read_available().unwrap();
            let n = filler_left.min(b.buffered().len());
            b.consume(n).unwrap();
            filler_left -= n;
            if filler_left == 0 {
                frame_seen = take_frame(&mut b);
            }
            rounds += 1;
            assert!(rounds < 100_000);
        }
        assert_eq!(a.pending_output_fds(), 0);
        // The sender's copies are closed; the receiver holds the 3 it got.
        assert_eq!(open_fd_count(), before + 3);
        let (payload, fds) = frame_seen.unwrap();
        assert_eq!(payload, b"fds");
        assert_eq!(fds.len(), 3);
    });
}

#[test]
fn into_fd_refuses_while_data_is_pending() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        a.send(vec![1, 2, 3], vec![]).unwrap();
        assert!(matches!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 3, .. }
        ));
        let mut b = *b.into_fd(false).unwrap_err();
        b.consume(3).unwrap();
        let fd = b.into_fd(false).unwrap();
        let fl = OFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(!fl.contains(OFlag::O_NONBLOCK), "made blocking as asked");
        // And back.
        let ep = Endpoint::from_owned_fd(fd).unwrap();
        let fl = OFlag::from_bits_retain(fcntl(ep.as_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(fl.contains(OFlag::O_NONBLOCK));
    });
}

#[test]
fn mio_reports_readability_and_shutdown_gives_eof() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.registry()
            .register(&mut b, mio::Token(7), mio::Interest::READABLE)
            .unwrap();
        assert_eq!(b.read_available().unwrap(), ReadOutcome::WouldBlock);
        a.send(frame(b"ping", 0), vec![]).unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.token() == mio::Token(7) && e.is_readable())
        );
        assert!(matches!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 12, fds: 0 }
        ));
        assert_eq!(take_frame(&mut b).unwrap().0, b"ping");
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(b.read_available().unwrap(), ReadOutcome::Eof);
        poll.registry().deregister(&mut b).unwrap();
    });
}

#[test]
fn read_batch_limit_is_a_true_upper_bound() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        b.set_limits(Limits {
            max_read_batch_bytes: 100,
            ..Limits::default()
        })
        .unwrap();
        a.send(vec![3; 1000], vec![]).unwrap();
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 100, fds: 0 }
        );
        // A limit of 0 still reads (1 byte): never WouldBlock with data waiting.
        b.set_limits(Limits {
            max_read_batch_bytes: 0,
            ..Limits::default()
        })
        .unwrap();
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 1, fds: 0 }
        );
        assert_eq!(b.buffered().len(), 101);
    });
}

#[test]
fn a_read_that_empties_the_socket_says_so() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        a.send(vec![1; 10], vec![]).unwrap();
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 10, fds: 0 }
        );
        assert!(b.drained(), "a short read without fds empties the socket");
        // A read cut by the batch limit did not see the end.
        b.set_limits(Limits {
            max_read_batch_bytes: 100,
            ..Limits::default()
        })
        .unwrap();
        a.send(vec![2; 1000], vec![]).unwrap();
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 100, fds: 0 }
        );
        assert!(!b.drained());
        // Reads of exactly the limit never come back short: the end is
        // found by the EAGAIN after the last of them.
        while b.read_available().unwrap() != ReadOutcome::WouldBlock {
            assert!(!b.drained());
        }
        assert!(b.drained());
        assert_eq!(b.buffered().len(), 1010);
        // Fds end a read early; the endpoint reads on and still finds the end.
        b.set_limits(Limits::default()).unwrap();
        a.send(vec![3; 4], dups(&memfd_with(b"x"), 1)).unwrap();
        a.send(vec![4; 4], vec![]).unwrap();
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 8, fds: 1 }
        );
        assert!(b.drained());
    });
}

#[test]
fn debug_output_does_not_dump_buffers() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        a.set_send_buffer_size(4096).unwrap();
        assert_eq!(
            a.send(vec![9; 1 << 20], vec![]).unwrap(),
            WriteOutcome::WouldBlock
        );
        while let ReadOutcome::Data { .. } = b.read_available().unwrap() {}
        assert!(!b.buffered().is_empty() && a.has_pending_output());
        for text in [format!("{a:?}"), format!("{b:?}")] {
            assert!(text.len() < 1000, "{} bytes of Debug output", text.len());
            assert!(text.contains("Endpoint"), "{text}");
        }
    });
}

#[test]
fn a_peer_that_stops_reading_makes_queue_refuse_not_grow() {
    assert_no_fd_leak(|| {
        let (mut a, _b) = socketpair().unwrap();
        a.set_limits(Limits {
            max_queued_output_bytes: 64 * 1024,
            ..Limits::default()
        })
        .unwrap();
        let m = memfd_with(b"x");
        let chunk = vec![7u8; 16 * 1024];
        // Nobody reads `_b`: the socket buffer fills, then the queue does.
        let mut refused = None;
        for _ in 0..1000 {
            match a.send(chunk.clone(), dups(&m, 1)) {
                Ok(_) => {}
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let e = refused.expect("the queue must refuse once the limit is reached");
        assert!(
            matches!(
                e,
                ChannelError::OutputFull {
                    limit: 65536,
                    len: 16384,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("not reading"), "{e}");
        assert!(a.pending_output_bytes() <= 64 * 1024);
        // Refusal changed nothing: the endpoint still works.
        assert!(a.has_pending_output());
    });
}

#[test]
fn one_recvmsg_per_read_keeps_the_kernel_read_boundaries() {
    assert_no_fd_leak(|| {
        let m = memfd_with(b"x");
        let send_three = |a: &mut Endpoint| {
            a.send(frame(b"aa", 0), vec![]).unwrap();
            a.send(frame(b"bbb", 1), dups(&m, 1)).unwrap();
            a.send(frame(b"c", 0), vec![]).unwrap();
        };
        // Off (the default): one read takes everything waiting.
        let (mut a, mut b) = socketpair().unwrap();
        send_three(&mut a);
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 30, fds: 1 }
        );
        assert_eq!(b.read_available().unwrap(), ReadOutcome::WouldBlock);
        drop(b.take_fds(1));
        // On: the kernel glues data before an fd-carrying message and ends
        // the read after it; the rest is the next read.
        let (mut a, mut b) = socketpair().unwrap();
        b.set_one_recvmsg_per_read(true);
        send_three(&mut a);
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 21, fds: 1 }
        );
        assert_eq!(
            b.read_available().unwrap(),
            ReadOutcome::Data { bytes: 9, fds: 0 }
        );
        assert_eq!(b.read_available().unwrap(), ReadOutcome::WouldBlock);
        assert_eq!(b.buffered().len(), 30);
        drop(b.take_fds(1));
    });
}

/// More fds in the socket than the FIFO may hold, in writes of 100 fds
/// each: every read ends before a recvmsg that could overflow the FIFO, so
/// a reader that takes the fds after each read never sees `TooManyFds`
/// (before, one read drained the whole socket and failed at 2,048).
#[test]
fn a_read_ends_before_the_fd_fifo_could_overflow() {
    assert_no_fd_leak(|| {
        let (mut a, mut b) = socketpair().unwrap();
        let m = memfd_with(b"x");
        let (writes, per_write) = (24, 100);
        for _ in 0..writes {
            assert_eq!(
                a.send(frame(b"batch", per_write), dups(&m, per_write))
                    .unwrap(),
                WriteOutcome::Flushed
            );
        }
        let mut taken = Vec::new();
        loop {
            match b.read_available().unwrap() {
                ReadOutcome::Data { fds, .. } => {
                    assert!(
                        fds <= Limits::default().max_queued_fds,
                        "{fds} fds in one read"
                    );
                    taken.extend(b.take_fds(fds).unwrap());
                }
                ReadOutcome::WouldBlock => break,
                ReadOutcome::Eof => panic!("the writer is still open"),
            }
        }
        assert_eq!(taken.len(), writes * per_write);
    });
}
