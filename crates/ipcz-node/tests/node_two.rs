//! Two nodes, the broker side and the non-broker side of one link over one
//! shared primary buffer, driven through frames: parcels inline and in
//! fragments, portals and boxes both ways, closure, link loss, and
//! fragment exhaustion forcing AddBlockBuffer. Every test ends with
//! nothing left: no router, sublink, link, block, fragment or fd.

mod node_support;

use ipcz_node::memory::MemoryOptions;
use ipcz_node::node::{NodeConfig, NodeHandle, ParcelDataPlacement};
use ipcz_node::router::Handle;
use node_support::{Net, fd_box};

fn fragments() -> NodeConfig {
    NodeConfig {
        parcel_data: ParcelDataPlacement::SharedMemory,
        ..NodeConfig::default()
    }
}

fn close_all(net: &mut Net, n: usize, portals: &[ipcz_node::router::RouterId]) {
    for p in portals {
        net.nodes[n].close(*p).unwrap();
    }
}

fn exchange(net: &mut Net, count: usize) {
    let (_, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    for i in 0..count {
        net.nodes[0]
            .put(
                pa[1],
                format!("a{i}").repeat(i + 1).into_bytes(),
                Vec::new(),
            )
            .unwrap();
        net.nodes[1]
            .put(
                pb[1],
                format!("b{i}").repeat(i + 1).into_bytes(),
                Vec::new(),
            )
            .unwrap();
    }
    net.run();
    let at_b = net.take_all(1, pb[1]);
    let at_a = net.take_all(0, pa[1]);
    assert_eq!(at_b.len(), count);
    assert_eq!(at_a.len(), count);
    for (i, (x, y)) in at_b.iter().zip(&at_a).enumerate() {
        assert_eq!(x.data, format!("a{i}").repeat(i + 1).into_bytes());
        assert_eq!(y.data, format!("b{i}").repeat(i + 1).into_bytes());
    }
    assert!(!net.readable[1].is_empty(), "readable was reported");
    close_all(net, 0, &pa);
    close_all(net, 1, &pb);
    net.assert_idle_and_clean();
}

#[test]
fn parcels_inline_both_ways() {
    let mut net = Net::with_nodes(2);
    exchange(&mut net, 20);
}

#[test]
fn parcels_through_fragments_both_ways() {
    let mut net = Net::new(&[fragments(), fragments()]);
    exchange(&mut net, 20);
}

#[test]
fn fragments_are_really_used_and_freed() {
    let mut net = Net::new(&[fragments(), NodeConfig::default()]);
    let (la, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    net.nodes[0].put(pa[1], vec![7; 1000], Vec::new()).unwrap();
    // Before delivery the data sits in a 1024-byte block of the shared buffer.
    let memory = net.nodes[0].link(la).unwrap().memory();
    let in_use: usize = memory
        .block_allocators()
        .filter(|a| a.block_size() == 1024)
        .map(|a| {
            let region = memory.buffer(a.buffer()).unwrap();
            a.region().num_blocks - 1 - a.free_list(region).unwrap().len()
        })
        .sum();
    assert_eq!(in_use, 1);
    net.run();
    assert_eq!(net.take_all(1, pb[1])[0].data, vec![7; 1000]);
    net.assert_all_blocks_free(0, la);
    close_all(&mut net, 0, &pa);
    close_all(&mut net, 1, &pb);
    net.assert_idle_and_clean();
}

#[test]
fn portals_sent_in_both_directions_and_used() {
    let mut net = Net::new(&[fragments(), NodeConfig::default()]);
    let (_, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();

    // A sends one end of a fresh pair to B.
    let (a_keep, a_send) = net.nodes[0].create_portal_pair();
    net.nodes[0]
        .put(pa[1], b"take this".to_vec(), vec![Handle::Portal(a_send)])
        .unwrap();
    // B sends one end of its own pair to A.
    let (b_keep, b_send) = net.nodes[1].create_portal_pair();
    net.nodes[1]
        .put(pb[1], b"and this".to_vec(), vec![Handle::Portal(b_send)])
        .unwrap();
    net.run();

    let mut got_b = net.take_all(1, pb[1]);
    let mut got_a = net.take_all(0, pa[1]);
    let Some(NodeHandle::Portal(at_b)) = got_b.pop().unwrap().handles.pop() else {
        panic!("portal expected");
    };
    let Some(NodeHandle::Portal(at_a)) = got_a.pop().unwrap().handles.pop() else {
        panic!("portal expected");
    };

    // Both moved portals work both ways, with boxes too.
    net.nodes[1]
        .put(at_b, b"hello a".to_vec(), vec![Handle::Object(fd_box())])
        .unwrap();
    net.nodes[0]
        .put(a_keep, b"hello b".to_vec(), Vec::new())
        .unwrap();
    net.nodes[0]
        .put(at_a, b"to b's pair".to_vec(), Vec::new())
        .unwrap();
    net.nodes[1]
        .put(b_keep, b"to a".to_vec(), Vec::new())
        .unwrap();
    net.run();
    let p = net.nodes[0].get(a_keep).unwrap().unwrap();
    assert_eq!(p.data, b"hello a");
    assert_eq!(p.handles.len(), 1);
    assert_eq!(net.nodes[0].received_fds_alive(), 1);
    drop(p);
    assert_eq!(net.nodes[0].received_fds_alive(), 0);
    assert_eq!(net.nodes[1].get(at_b).unwrap().unwrap().data, b"hello b");
    assert_eq!(
        net.nodes[1].get(b_keep).unwrap().unwrap().data,
        b"to b's pair"
    );
    assert_eq!(net.nodes[0].get(at_a).unwrap().unwrap().data, b"to a");

    for p in [a_keep, at_a] {
        net.nodes[0].close(p).unwrap();
    }
    for p in [b_keep, at_b] {
        net.nodes[1].close(p).unwrap();
    }
    close_all(&mut net, 0, &pa);
    close_all(&mut net, 1, &pb);
    net.assert_idle_and_clean();
}

#[test]
fn portal_carrying_a_portal_recursively() {
    let mut net = Net::with_nodes(2);
    let (_, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    let (outer_keep, outer_send) = net.nodes[0].create_portal_pair();
    let (inner_keep, inner_send) = net.nodes[0].create_portal_pair();
    // The inner portal travels inside a parcel queued on the outer one,
    // which itself travels to B.
    net.nodes[0]
        .put(
            outer_keep,
            b"inner".to_vec(),
            vec![Handle::Portal(inner_send)],
        )
        .unwrap();
    net.nodes[0]
        .put(pa[1], b"outer".to_vec(), vec![Handle::Portal(outer_send)])
        .unwrap();
    net.run();
    let Some(NodeHandle::Portal(outer_b)) = net.take_all(1, pb[1]).pop().unwrap().handles.pop()
    else {
        panic!("portal expected");
    };
    let Some(NodeHandle::Portal(inner_b)) = net.take_all(1, outer_b).pop().unwrap().handles.pop()
    else {
        panic!("portal expected");
    };
    net.nodes[1]
        .put(inner_b, b"deep".to_vec(), Vec::new())
        .unwrap();
    net.run();
    assert_eq!(net.nodes[0].get(inner_keep).unwrap().unwrap().data, b"deep");
    for p in [outer_keep, inner_keep] {
        net.nodes[0].close(p).unwrap();
    }
    for p in [outer_b, inner_b] {
        net.nodes[1].close(p).unwrap();
    }
    close_all(&mut net, 0, &pa);
    close_all(&mut net, 1, &pb);
    net.assert_idle_and_clean();
}

fn closure_in_flight(closer: usize) {
    let mut net = Net::new(&[fragments(), fragments()]);
    let (_, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    let ports = [pa.clone(), pb.clone()];
    net.run();
    let other = 1 - closer;
    for i in 0..5u8 {
        net.nodes[closer]
            .put(
                ports[closer][1],
                vec![i; 100],
                vec![Handle::Object(fd_box())],
            )
            .unwrap();
    }
    // Closed right after putting: the parcels are still in flight.
    net.nodes[closer].close(ports[closer][1]).unwrap();
    net.run();
    let status = net.nodes[other].status(ports[other][1]).unwrap();
    assert!(status.peer_closed);
    assert_eq!(status.readable_parcels, 5);
    assert!(net.peer_closed[other].contains(&(ports[other][1], false)));
    let got = net.take_all(other, ports[other][1]);
    assert_eq!(got.len(), 5);
    assert!(net.nodes[other].status(ports[other][1]).unwrap().dead);
    drop(got);
    net.nodes[other].close(ports[other][1]).unwrap();
    net.nodes[0].close(pa[0]).unwrap();
    net.nodes[1].close(pb[0]).unwrap();
    net.assert_idle_and_clean();
}

#[test]
fn closure_from_the_broker_side_with_parcels_in_flight() {
    closure_in_flight(0);
}

#[test]
fn closure_from_the_non_broker_side_with_parcels_in_flight() {
    closure_in_flight(1);
}

#[test]
fn unread_parcels_with_fds_are_dropped_on_close() {
    let mut net = Net::with_nodes(2);
    let (_, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    for _ in 0..3 {
        net.nodes[0]
            .put(pa[1], b"x".to_vec(), vec![Handle::Object(fd_box())])
            .unwrap();
    }
    net.run();
    assert_eq!(net.nodes[1].received_fds_alive(), 3);
    net.nodes[1].close(pb[1]).unwrap();
    assert_eq!(net.nodes[1].received_fds_alive(), 0);
    close_all(&mut net, 0, &pa);
    net.nodes[1].close(pb[0]).unwrap();
    net.assert_idle_and_clean();
}

#[test]
fn link_loss_disconnects_routes_and_drops_fds() {
    let mut net = Net::with_nodes(2);
    let (la, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    let (keep, send) = net.nodes[0].create_portal_pair();
    net.nodes[0]
        .put(pa[1], Vec::new(), vec![Handle::Portal(send)])
        .unwrap();
    net.nodes[0]
        .put(pa[1], b"fd".to_vec(), vec![Handle::Object(fd_box())])
        .unwrap();
    net.run();
    assert_eq!(net.nodes[1].received_fds_alive(), 1);
    net.close_transport(0, la);
    net.run();
    assert_eq!(net.nodes[0].link_count(), 0);
    assert_eq!(net.nodes[1].link_count(), 0);
    // Every portal on a route through the link sees a broken route.
    for p in [&pa[..], &[keep][..]].concat() {
        let s = net.nodes[0].status(p).unwrap();
        assert!(s.peer_closed && s.disconnected, "{p:?}");
    }
    assert!(net.peer_closed[0].contains(&(keep, true)));
    // Parcels that had arrived stay readable, their fds with them.
    let mut got = net.take_all(1, pb[1]);
    assert_eq!(got.len(), 2);
    let Some(Handle::Portal(moved)) = got[0].handles.pop() else {
        panic!("portal expected");
    };
    assert!(net.nodes[1].status(moved).unwrap().disconnected);
    net.nodes[1].close(moved).unwrap();
    drop(got);
    assert_eq!(net.nodes[1].received_fds_alive(), 0);
    for p in [&pa[..], &[keep][..]].concat() {
        net.nodes[0].close(p).unwrap();
    }
    close_all(&mut net, 1, &pb);
    net.assert_nothing_left();
}

#[test]
fn fragment_exhaustion_forces_add_block_buffer() {
    let growing = NodeConfig {
        parcel_data: ParcelDataPlacement::SharedMemory,
        ..NodeConfig::default()
    };
    let mut net = Net::new(&[growing, growing]);
    let primary = ipcz_node::sim::SharedHeap::new(ipcz_wire::memory::primary::SIZE);
    let options = MemoryOptions {
        fixed_parcel_capacity: false,
    };
    let mut pa_params = ipcz_node::link::LinkParams::new(
        node_support::name(0),
        node_support::name(1),
        ipcz_wire::types::LinkSide::A,
        primary.clone(),
    )
    .initializing_primary_buffer();
    pa_params.memory_options = options;
    let mut pb_params = ipcz_node::link::LinkParams::new(
        node_support::name(1),
        node_support::name(0),
        ipcz_wire::types::LinkSide::B,
        primary,
    );
    pb_params.memory_options = options;
    let la = net.nodes[0].add_link(pa_params).unwrap();
    let lb = net.nodes[1].add_link(pb_params).unwrap();
    net.ends.insert(
        (0, la),
        node_support::End {
            node: 0,
            link: la,
            peer_node: 1,
            peer_link: lb,
        },
    );
    net.ends.insert(
        (1, lb),
        node_support::End {
            node: 1,
            link: lb,
            peer_node: 0,
            peer_link: la,
        },
    );
    let pa = net.nodes[0].open_initial_portals(la, 2, 2).unwrap();
    let pb = net.nodes[1].open_initial_portals(lb, 2, 2).unwrap();
    net.run();

    // The primary buffer has three free 4096-byte blocks: parcels of 3000
    // bytes not yet received use them up, the next one goes inline and asks
    // for more, the buffer is added and the rest use it.
    for i in 0..10u8 {
        net.nodes[0].put(pa[1], vec![i; 3000], Vec::new()).unwrap();
        net.collect();
    }
    net.run();
    assert_eq!(net.buffers_added, vec![(0, 4096)]);
    assert_eq!(net.buffers_mapped, 1);
    assert_eq!(net.nodes[1].link(lb).unwrap().memory().num_buffers(), 2);
    let got = net.take_all(1, pb[1]);
    assert_eq!(got.len(), 10);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.data, vec![i as u8; 3000]);
    }
    net.assert_all_blocks_free(0, la);
    net.assert_all_blocks_free(1, lb);
    close_all(&mut net, 0, &pa);
    close_all(&mut net, 1, &pb);
    net.assert_idle_and_clean();
}

/// Initial portals merged with local pairs, as MojoIpcz nodes connect
/// (the `direct_ipcz` recordings): the proxy on each initial sublink asks
/// for a link straight to its portal (BypassPeerWithLink; of two facing
/// proxies the one holding the link's lock first, then the other over the
/// new link), parcels put before and after arrive in order both ways, and
/// every proxy goes away.
#[test]
fn merged_initial_portals_bypass_their_proxies() {
    for (merged_a, merged_b) in [(true, true), (true, false), (false, true)] {
        let mut net = Net::new(&[fragments(), NodeConfig::default()]);
        let (la, lb) = net.connect(0, 1);
        let open = |net: &mut Net, n: usize, l, merged: bool| {
            if merged {
                net.nodes[n].open_merged_initial_portals(l, 2, 2).unwrap()
            } else {
                net.nodes[n].open_initial_portals(l, 2, 2).unwrap()
            }
        };
        let pa = open(&mut net, 0, la, merged_a);
        let pb = open(&mut net, 1, lb, merged_b);
        net.nodes[0].put(pa[1], b"a0".to_vec(), Vec::new()).unwrap();
        net.nodes[1].put(pb[1], b"b0".to_vec(), Vec::new()).unwrap();
        net.run();
        let case = format!("merged: a {merged_a}, b {merged_b}");
        let bypasses = net.log.iter().filter(|(_, id)| *id == 34).count();
        // One per merged proxy (portal 1; portal 0 is never merged).
        let merged = usize::from(merged_a) + usize::from(merged_b);
        assert_eq!(bypasses, merged, "{case}: {:?}", net.log);
        for i in 1..5u8 {
            net.nodes[0].put(pa[1], vec![b'a', i], Vec::new()).unwrap();
            net.nodes[1].put(pb[1], vec![b'b', i], Vec::new()).unwrap();
            net.run();
        }
        let got_b: Vec<_> = net.take_all(1, pb[1]).into_iter().map(|p| p.data).collect();
        let got_a: Vec<_> = net.take_all(0, pa[1]).into_iter().map(|p| p.data).collect();
        let sent = |c: u8| -> Vec<Vec<u8>> {
            (0..5u8)
                .map(|i| if i == 0 { vec![c, b'0'] } else { vec![c, i] })
                .collect()
        };
        assert_eq!(got_b, sent(b'a'), "{case}");
        assert_eq!(got_a, sent(b'b'), "{case}");
        // Only the two portals of each side are left: the proxies went.
        assert_eq!(net.nodes[0].router_count(), 2, "{case}");
        assert_eq!(net.nodes[1].router_count(), 2, "{case}");
        close_all(&mut net, 0, &pa);
        close_all(&mut net, 1, &pb);
        net.assert_idle_and_clean();
    }
}
