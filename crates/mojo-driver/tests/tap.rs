//! The driver's [`Tap`] over real socket pairs and the echo core of
//! `common`: it sees every kernel read and every frame sent with the fds
//! that came with them, how each link came to be (added, paired, adopted,
//! with the fds a recorder needs to match), the end of a stream and the
//! removal; and without a tap reads batch again.

#![allow(missing_docs)]

mod common;

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use common::*;
use mojo_driver::{CloseReason, Driver, LinkId, LinkOrigin, Tap};
use mojo_platform_channel::{Endpoint, socketpair, socketpair_fds};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Added(LinkId),
    Paired(LinkId, u64),
    Adopted(LinkId, u64),
    Received(LinkId, Vec<u8>, Vec<u64>),
    Sent(LinkId, Vec<u8>, Vec<u64>),
    Eof(LinkId),
    Removed(LinkId, CloseReason),
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn inodes(fds: &[OwnedFd]) -> Vec<u64> {
    fds.iter().map(inode).collect()
}

impl Tap for Recorder {
    fn link_added(&mut self, link: LinkId, origin: LinkOrigin<'_>) {
        self.0.lock().unwrap().push(match origin {
            LinkOrigin::Added => Seen::Added(link),
            LinkOrigin::Pair { other_end } => Seen::Paired(link, inode(&other_end)),
            LinkOrigin::Adopted(fd) => Seen::Adopted(link, inode(&fd)),
        });
    }

    fn received(&mut self, link: LinkId, bytes: &[u8], fds: &[OwnedFd]) {
        let seen = Seen::Received(link, bytes.to_vec(), inodes(fds));
        self.0.lock().unwrap().push(seen);
    }

    fn sent(&mut self, link: LinkId, bytes: &[u8], fds: &[OwnedFd]) {
        let seen = Seen::Sent(link, bytes.to_vec(), inodes(fds));
        self.0.lock().unwrap().push(seen);
    }

    fn end_of_stream(&mut self, link: LinkId) {
        self.0.lock().unwrap().push(Seen::Eof(link));
    }

    fn link_removed(&mut self, link: LinkId, reason: &CloseReason) {
        self.0
            .lock()
            .unwrap()
            .push(Seen::Removed(link, reason.clone()));
    }
}

/// Spins until the peer has `n` frames; returns them.
fn frames_at_peer(
    driver: &mut Driver,
    core: &mut EchoCore,
    peer: &mut Endpoint,
    n: usize,
) -> Vec<(Vec<u8>, Vec<OwnedFd>)> {
    let mut got = Vec::new();
    spin(driver, core, |_, _| {
        peer.flush().unwrap();
        peer_read(peer);
        while let Some(f) = take_frame(peer) {
            got.push(f);
        }
        got.len() >= n
    });
    got
}

#[test]
fn the_tap_sees_each_read_and_each_frame_with_their_fds() {
    assert_no_fd_leak(|| {
        let recorder = Recorder::default();
        let mut driver = Driver::new().unwrap();
        driver.set_tap(Box::new(recorder.clone()));
        let (ours, mut peer) = socketpair().unwrap();
        let link = driver.add_link(ours).unwrap();
        assert_eq!(recorder.take(), [Seen::Added(link)]);
        let mut core = EchoCore::default();

        // Three writes before the driver reads: the kernel glues the first
        // two (the second carries an fd, which ends the read).
        let fd = some_fds(1);
        let fd_inode = inode(&fd[0]);
        let (one, two, three) = (frame(b"one", 0), frame(b"two", 1), frame(b"three", 0));
        peer.send(one.clone(), vec![]).unwrap();
        peer.send(two.clone(), fd).unwrap();
        peer.send(three.clone(), vec![]).unwrap();
        let echoed = frames_at_peer(&mut driver, &mut core, &mut peer, 3);
        assert_eq!(inodes(&echoed[1].1), [fd_inode]);
        let seen = recorder.take();
        let first_read = [one.clone(), two.clone()].concat();
        assert_eq!(
            seen,
            [
                Seen::Received(link, first_read, vec![fd_inode]),
                Seen::Sent(link, one, vec![]),
                Seen::Sent(link, two, vec![fd_inode]),
                Seen::Received(link, three.clone(), vec![]),
                Seen::Sent(link, three, vec![]),
            ]
        );

        // A pair: the tap learns the other end before it leaves in PAIRED.
        peer.send(frame(PAIR, 0), vec![]).unwrap();
        let paired = frames_at_peer(&mut driver, &mut core, &mut peer, 1);
        let sent_end = inode(&paired[0].1[0]);
        let seen = recorder.take();
        assert_eq!(seen[0], Seen::Received(link, frame(PAIR, 0), vec![]));
        let Seen::Paired(pair_link, other_end) = seen[1] else {
            panic!("expected the pair next: {seen:?}");
        };
        assert_eq!(other_end, sent_end);
        assert_eq!(
            seen[2..],
            [
                Seen::Sent(pair_link, frame(WELCOME, 0), vec![]),
                Seen::Sent(link, frame(PAIRED, 1), vec![sent_end]),
            ]
        );

        // An adoption: the socket that arrived is the one adopted.
        let (adoptee, adoptee_peer) = socketpair_fds(true, true).unwrap();
        let adoptee_inode = inode(&adoptee);
        peer.send(frame(ADOPT, 1), vec![adoptee]).unwrap();
        let mut adoptee_peer_ep = Endpoint::from_owned_fd(adoptee_peer).expect("a unix socket");
        let welcome = frames_at_peer(&mut driver, &mut core, &mut adoptee_peer_ep, 1);
        assert_eq!(welcome[0].0, WELCOME);
        let seen = recorder.take();
        assert_eq!(
            seen[0],
            Seen::Received(link, frame(ADOPT, 1), vec![adoptee_inode])
        );
        let Seen::Adopted(adopted, inode_seen) = seen[1] else {
            panic!("expected the adoption next: {seen:?}");
        };
        assert_eq!(inode_seen, adoptee_inode);
        assert_eq!(seen[2..], [Seen::Sent(adopted, frame(WELCOME, 0), vec![])]);

        // The peer hangs up: end of stream, then the removal.
        drop(peer);
        spin(&mut driver, &mut core, |core, _| {
            core.closed.iter().any(|(l, _)| *l == link)
        });
        let hang_up = CloseReason::HangUp {
            unconsumed_bytes: 0,
            untaken_fds: 0,
        };
        assert_eq!(
            recorder.take(),
            [Seen::Eof(link), Seen::Removed(link, hang_up)]
        );

        // Without the tap, reads batch again and nothing is reported.
        assert!(driver.take_tap().is_some());
        adoptee_peer_ep.send(frame(b"x", 0), vec![]).unwrap();
        let _ = frames_at_peer(&mut driver, &mut core, &mut adoptee_peer_ep, 1);
        assert!(recorder.take().is_empty());
        drop((adoptee_peer_ep, driver));
    });
}
