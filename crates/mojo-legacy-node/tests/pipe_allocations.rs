//! Heap allocations of a new pipe's life in the ports layer (issue 11: one
//! new pipe per message was the proxy's slowest case), counted exactly by a
//! gated global allocator: creating a local pipe and closing both its ends
//! reuses the node's tables, so in the steady state it allocates nothing
//! but the occasional B-tree node or table growth.

use mojo_legacy_node::ports::Node;
use mojo_legacy_node::ports::names::node_name;
use mojo_platform_channel::CountingAlloc;
use mojo_wire_kit::SeededRandom;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::gated();

/// Pipes that stay open throughout, so that the tables are not empty.
const RESIDENT_PIPES: usize = 500;
/// Pipes created and closed before counting.
const WARM_UP_PIPES: usize = 2_000;
/// Pipes created and closed while counting.
const COUNTED_PIPES: usize = 2_000;
/// Allowed allocations per counted pipe: B-tree node splits and merges
/// (a node holds up to 11 entries) come and go with the churn. Before the
/// flat peer index and the allocation-free `erase_port` this was 5 (now
/// 3 in 2,000 pipes).
const MAX_ALLOCATIONS_PER_PIPE: f64 = 0.1;

fn churn(node: &mut Node<Vec<u8>>, pipes: usize) {
    for _ in 0..pipes {
        let (a, b) = node.create_pipe().expect("create");
        node.close_port(a).expect("close a");
        node.close_port(b).expect("close b");
        while node.poll_notification().is_some() {}
        assert!(node.poll_transmit().is_none());
    }
}

#[test]
fn creating_and_closing_a_local_pipe_allocates_nothing_in_the_steady_state() {
    let mut node: Node<Vec<u8>> = Node::new(node_name(1, 2), SeededRandom::new(7));
    for _ in 0..RESIDENT_PIPES {
        node.create_pipe().expect("resident pipe");
    }
    churn(&mut node, WARM_UP_PIPES);
    CountingAlloc::open_gate(true);
    churn(&mut node, COUNTED_PIPES);
    CountingAlloc::open_gate(false);
    let counted = CountingAlloc::counted_on_this_thread();
    let per_pipe = counted as f64 / COUNTED_PIPES as f64;
    assert!(
        per_pipe <= MAX_ALLOCATIONS_PER_PIPE,
        "{counted} allocations for {COUNTED_PIPES} pipes ({per_pipe:.2} per pipe)"
    );
    assert_eq!(node.port_count(), 2 * RESIDENT_PIPES);
}
