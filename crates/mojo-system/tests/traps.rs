//! Traps and watchers on the node-backed systems: each protocol's two sides
//! joined over a real socket pair in this process (each system with its
//! own I/O thread), the trap `conformance` checks run on each side, and a
//! `mio` poll woken by a message and a peer closure crossing the link.

use std::sync::Arc;

use mojo_legacy_wire::Profile;
use mojo_system::conformance as pairs;
use mojo_system::trap::conformance;
use mojo_system::{MessagePipe, MojoSystem};

/// Runs every check on both systems of a joined pair.
fn check_pair<A: MojoSystem + 'static, B: MojoSystem + 'static>(
    (a, mut pipes_a): (A, Vec<MessagePipe>),
    (b, mut pipes_b): (B, Vec<MessagePipe>),
) {
    let (pa, pb) = (Arc::new(pipes_a.remove(0)), pipes_b.remove(0));
    let (a, b) = (Arc::new(a), Arc::new(b));
    for check in [
        conformance::trap_rules::<A>,
        conformance::data_pipe_trap::<A>,
        conformance::new_data_trap::<A>,
        conformance::many_triggers::<A>,
    ] {
        check(&a);
    }
    for check in [
        conformance::trap_rules::<B>,
        conformance::data_pipe_trap::<B>,
        conformance::new_data_trap::<B>,
        conformance::many_triggers::<B>,
    ] {
        check(&b);
    }
    conformance::automatic_watcher(&*a);
    conformance::manual_watcher(&*b);
    conformance::mio_wakes(a.clone(), pa.clone(), &*b, &pb);
    // And the other way round.
    let pb = Arc::new(pb);
    conformance::mio_wakes(b, pb, &*a, &pa);
}

#[test]
fn legacy_systems_keep_the_trap_rules() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let (broker, client) = pairs::legacy_pair(profile);
        check_pair(broker, client);
    }
}

#[test]
fn ipcz_systems_keep_the_trap_rules() {
    let (broker, client) = pairs::ipcz_pair();
    check_pair(broker, client);
}
