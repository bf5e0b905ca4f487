//! Two-phase data pipes on the node-backed systems: each protocol's two
//! sides joined over a real socket pair in this process (each system with
//! its own I/O thread), the `conformance` checks run on each side, and a
//! consumer sent across the link read there in two phases while the other
//! side writes in two phases; shared buffers unwrapped and wrapped
//! again, and wrapped ones sent across; `NEW_DATA_READABLE` locally and
//! on consumers sent across; `PEER_REMOTE` (legacy only).

use mojo_legacy_wire::Profile;
use mojo_system::conformance;
use mojo_system::{MessagePipe, MojoSystem};

/// Runs every check on both systems of a joined pair.
fn check_pair<A: MojoSystem, B: MojoSystem>(
    (a, mut pipes_a): (A, Vec<MessagePipe>),
    (b, mut pipes_b): (B, Vec<MessagePipe>),
    remote: bool,
) {
    let (pa, pb) = (pipes_a.remove(0), pipes_b.remove(0));
    conformance::two_phase_write(&a);
    conformance::two_phase_read(&a);
    conformance::peer_closed_mid_two_phase(&a);
    conformance::two_phase_write(&b);
    conformance::two_phase_read(&b);
    conformance::peer_closed_mid_two_phase(&b);
    conformance::failed_writes_hand_handles_back(&a);
    conformance::failed_writes_hand_handles_back(&b);
    conformance::two_phase_across(&a, &pa, &b, &pb);
    conformance::two_phase_across(&b, &pb, &a, &pa);
    conformance::regions::wrap_round_trip(&a);
    conformance::regions::wrap_round_trip(&b);
    conformance::regions::wrap_refusals(&a);
    conformance::regions::wrap_refusals(&b);
    conformance::regions::wrapped_region_across(&a, &pa, &b, &pb);
    conformance::regions::wrapped_region_across(&b, &pb, &a, &pa);
    conformance::new_data::new_data_readable(&a);
    conformance::new_data::new_data_readable(&b);
    conformance::new_data::new_data_across(&a, &pa, &b, &pb);
    conformance::new_data::new_data_across(&b, &pb, &a, &pa);
    conformance::peer_remote(&a, &pa, &b, &pb, remote);
    conformance::peer_remote(&b, &pb, &a, &pa, remote);
}

#[test]
fn legacy_systems_keep_the_two_phase_rules() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let (broker, client) = conformance::legacy_pair(profile);
        check_pair(broker, client, true);
    }
}

#[test]
fn ipcz_systems_keep_the_two_phase_rules() {
    let (broker, client) = conformance::ipcz_pair();
    check_pair(broker, client, false);
}
