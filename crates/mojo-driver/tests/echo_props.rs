//! Property test: any sequence of frames (sizes, fd counts) sent on any of
//! a few links, read in any chunk size and turn budget, comes back through
//! the echo core byte for byte, with the same fds, in order, and leaves no fd
//! behind.

#![allow(missing_docs)]

mod common;

use std::collections::VecDeque;

use common::*;
use mojo_driver::{Config, Driver, Exit};
use mojo_platform_channel::{Limits, socketpair};
use proptest::prelude::*;

/// One frame to send: which link, payload length, fd count, a fill byte.
type FrameSpec = (usize, usize, usize, u8);
/// Links, frames, the driver side's read chunk size, the read budget per turn.
type Case = (usize, Vec<FrameSpec>, usize, usize);

fn frame_strategy(links: usize) -> impl Strategy<Value = FrameSpec> {
    (
        0..links,
        prop_oneof![0usize..64, 64usize..4096, 4096usize..200_000],
        prop_oneof![Just(0usize), 1usize..4, Just(MAX_TEST_FDS)],
        any::<u8>(),
    )
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..=3).prop_flat_map(|links| {
        (
            Just(links),
            proptest::collection::vec(frame_strategy(links), 1..12),
            512usize..=65_536,
            prop_oneof![Just(1usize), 4096usize..=1 << 20],
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn frames_come_back_unchanged((links, frames, chunk, budget) in case_strategy()) {
        assert_no_fd_leak(|| {
            let config = Config { read_budget_per_turn: budget, ..Config::default() };
            let mut driver = Driver::with_config(config).unwrap();
            let mut peers = Vec::new();
            for _ in 0..links {
                let (mut ours, theirs) = socketpair().unwrap();
                ours.set_limits(Limits {
                    read_chunk_size: chunk,
                    max_read_batch_bytes: chunk,
                    ..Limits::default()
                })
                .unwrap();
                driver.add_link(ours).unwrap();
                peers.push(theirs);
            }
            let mut expected: Vec<VecDeque<(Vec<u8>, Vec<u64>)>> = vec![VecDeque::new(); links];
            for &(link, len, nfds, fill) in &frames {
                let payload: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                let fds = some_fds(nfds);
                let inodes = fds.iter().map(inode).collect();
                peers[link].queue(frame(&payload, nfds), fds).unwrap();
                expected[link].push_back((payload, inodes));
            }
            let mut core = EchoCore::default();
            spin(&mut driver, &mut core, |_, _| {
                for (p, peer) in peers.iter_mut().enumerate() {
                    peer.flush().unwrap();
                    peer_read(peer);
                    while let Some((payload, fds)) = take_frame(peer) {
                        let (want, inodes) = expected[p].pop_front().expect("no extra frame");
                        assert!(payload == want, "payload of {} bytes differs", want.len());
                        assert_eq!(fds.iter().map(inode).collect::<Vec<_>>(), inodes);
                    }
                }
                expected.iter().all(VecDeque::is_empty)
            });
            assert_eq!(core.frames_in, frames.len());
            drop(peers);
            assert_eq!(driver.run(&mut core).unwrap(), Exit::AllLinksClosed);
        });
    }
}
