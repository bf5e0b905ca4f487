//! Deterministic multi-node router tests over the in-memory network.

mod router_support;

use ipcz_node::router::RouterConfig;
use router_support::Net;

fn msgs(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|i| i.to_le_bytes().to_vec()).collect()
}

#[test]
fn local_pair_delivers_in_order_and_closes() {
    let mut net = Net::with_nodes(1, 1);
    let (a, b) = net.nodes[0].open_pair(&mut net.states);
    for i in 0..5u32 {
        net.put(0, a, &i.to_le_bytes());
    }
    net.close(0, a);
    assert_eq!(net.read_all(0, b), msgs(0..5));
    assert!(net.is_peer_closed(0, b));
    net.close(0, b);
    net.assert_clean();
}

#[test]
fn remote_route_in_order_and_closure_from_either_end() {
    for seed in 0..20 {
        for closer in [0usize, 1] {
            let mut net = Net::with_nodes(2, seed);
            let (pa, pb) = net.route(0, 1);
            let (c, o) = if closer == 0 { (pa, pb) } else { (pb, pa) };
            for i in 0..10u32 {
                net.put(closer, c, &i.to_le_bytes());
            }
            net.close(closer, c);
            // Some parcels are in flight when the closure is sent.
            net.run();
            assert!(net.is_peer_closed(1 - closer, o));
            assert_eq!(net.read_all(1 - closer, o), msgs(0..10));
            assert!(net.nodes[1 - closer].status(o).unwrap().dead);
            net.close(1 - closer, o);
            net.assert_clean();
        }
    }
}

/// Puts `n` numbered parcels starting at `from`.
fn put_range(
    net: &mut Net,
    node: usize,
    portal: ipcz_node::router::RouterId,
    r: std::ops::Range<u32>,
) {
    for i in r {
        net.put(node, portal, &i.to_le_bytes());
    }
}

/// Three nodes: route a (node 0) <-> b (node 1); node 1 moves b to node 2,
/// leaving a proxy that is bypassed, with parcels in flight both ways
/// throughout. Returns the net after both ends closed.
fn move_to_third_node(config_of_mover: RouterConfig, seed: u64, link_0_2_exists: bool) -> Net {
    let mut net = Net::new(
        &[
            RouterConfig::default(),
            config_of_mover,
            RouterConfig::default(),
        ],
        seed,
    );
    let (a, b) = net.route(0, 1);
    let (c1, c2) = net.route(1, 2);
    if link_0_2_exists {
        net.connect(0, 2);
    }
    put_range(&mut net, 0, a, 0..5);
    put_range(&mut net, 1, b, 0..3);
    // Let some of it land, so b's queue holds unread parcels when it moves.
    for _ in 0..3 {
        net.step();
    }
    net.put_portal(1, c1, b);
    put_range(&mut net, 0, a, 5..10);
    let z = net.receive_portal(2, c2);
    put_range(&mut net, 2, z, 3..6);
    put_range(&mut net, 0, a, 10..15);
    net.run();
    assert_eq!(net.read_all(2, z), msgs(0..15), "seed {seed}");
    assert_eq!(net.read_all(0, a), msgs(0..6), "seed {seed}");
    assert_eq!(
        net.nodes[1].router_count(),
        1,
        "only the carrier is left on the mover (seed {seed})"
    );
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    // Parcels now go straight between nodes 0 and 2.
    let before = net.log.len();
    net.put(0, a, b"direct");
    net.run();
    assert!(net.log[before..].iter().all(|(n, _)| *n == 2));
    assert_eq!(net.read_all(2, z), vec![b"direct".to_vec()]);
    net.close(0, a);
    net.run();
    assert!(net.is_peer_closed(2, z));
    net.close(2, z);
    net.close(1, c1);
    net.close(2, c2);
    net.assert_clean();
    net
}

#[test]
fn proxy_bypassed_with_bypass_peer() {
    for seed in 0..30 {
        let config = RouterConfig {
            bypass_in_descriptor: false,
            ..RouterConfig::default()
        };
        let net = move_to_third_node(config, seed, seed % 2 == 0);
        assert_eq!(net.count("BypassPeer"), 1);
        assert_eq!(net.count("AcceptBypassLink"), 1);
        assert_eq!(net.count("StopProxying"), 1);
        assert_eq!(net.count("ProxyWillStop"), 1);
    }
}

#[test]
fn proxy_bypassed_from_descriptor() {
    for seed in 0..30 {
        let net = move_to_third_node(RouterConfig::default(), seed, seed % 2 == 1);
        assert_eq!(net.count("BypassPeer"), 0);
        assert_eq!(net.count("AcceptBypassLink"), 1);
        assert_eq!(net.count("StopProxying"), 1);
        assert_eq!(net.count("ProxyWillStop"), 1);
    }
}

/// Node 0 holds both ends of a pipe and moves one to node 1.
fn move_from_local_pair(config: RouterConfig, seed: u64) -> Net {
    let mut net = Net::new(&[config, RouterConfig::default()], seed);
    let (c0, c1) = net.route(0, 1);
    let (p, q) = net.nodes[0].open_pair(&mut net.states);
    put_range(&mut net, 0, p, 0..4);
    put_range(&mut net, 0, q, 0..2);
    net.put_portal(0, c0, q);
    put_range(&mut net, 0, p, 4..8);
    let z = net.receive_portal(1, c1);
    put_range(&mut net, 1, z, 2..5);
    net.run();
    assert_eq!(net.read_all(1, z), msgs(0..8), "seed {seed}");
    assert_eq!(net.read_all(0, p), msgs(0..5), "seed {seed}");
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    // Only p and the carrier are left on node 0.
    assert_eq!(net.nodes[0].router_count(), 2);
    net.close(1, z);
    net.run();
    assert!(net.is_peer_closed(0, p));
    net.close(0, p);
    net.close(0, c0);
    net.close(1, c1);
    net.assert_clean();
    net
}

#[test]
fn local_pair_split_when_moved() {
    for seed in 0..20 {
        let net = move_from_local_pair(RouterConfig::default(), seed);
        assert_eq!(net.count("BypassPeerWithLink"), 0);
    }
}

#[test]
fn proxy_bypassed_with_bypass_peer_with_link() {
    for seed in 0..20 {
        let config = RouterConfig {
            split_local_pairs: false,
            ..RouterConfig::default()
        };
        let net = move_from_local_pair(config, seed);
        assert_eq!(net.count("BypassPeerWithLink"), 1);
        assert_eq!(net.count("StopProxyingToLocalPeer"), 1);
    }
}

#[test]
fn local_bypass_when_a_portal_comes_back() {
    for seed in 0..20 {
        let mut net = Net::with_nodes(2, seed);
        let (c0, c1) = net.route(0, 1);
        let (p, q) = net.nodes[0].open_pair(&mut net.states);
        net.put_portal(0, c0, q);
        let z = net.receive_portal(1, c1);
        put_range(&mut net, 0, p, 0..3);
        put_range(&mut net, 1, z, 0..2);
        for _ in 0..(seed % 4) {
            net.step();
        }
        // Node 1 sends it back: node 0 ends up with both ends again.
        net.put_portal(1, c1, z);
        put_range(&mut net, 0, p, 3..6);
        let back = net.receive_portal(0, c0);
        net.run();
        assert_eq!(net.read_all(0, back), msgs(0..6), "seed {seed}");
        assert_eq!(net.read_all(0, p), msgs(0..2), "seed {seed}");
        assert!(net.errors.is_empty(), "{:?}", net.errors);
        assert_eq!(
            net.nodes[1].router_count(),
            1,
            "node 1 keeps only its carrier"
        );
        assert_eq!(
            net.count("StopProxying"),
            1,
            "the host-side proxy is told to stop"
        );
        // Now purely local: nothing crosses the link.
        let before = net.log.len();
        net.put(0, p, b"local");
        net.run();
        assert_eq!(net.log.len(), before);
        assert_eq!(net.read_all(0, back), vec![b"local".to_vec()]);
        net.close(0, p);
        assert!(net.is_peer_closed(0, back));
        net.close(0, back);
        net.close(0, c0);
        net.close(1, c1);
        net.assert_clean();
    }
}

#[test]
fn link_loss_disconnects_routes() {
    for seed in 0..10 {
        let mut net = Net::with_nodes(3, seed);
        let (a, b) = net.route(0, 1);
        let (x, y) = net.route(0, 2);
        put_range(&mut net, 0, a, 0..5);
        put_range(&mut net, 1, b, 0..5);
        net.step();
        let l = net.link_between(0, 1).unwrap();
        net.lose_link(l);
        net.run();
        for (node, portal) in [(0, a), (1, b)] {
            let st = net.nodes[node].status(portal).unwrap();
            assert!(st.peer_closed && st.disconnected, "seed {seed}");
            assert!(net.peer_closed[node].contains(&(portal, true)));
            let got = net.read_all(node, portal);
            assert_eq!(got, msgs(0..got.len() as u32), "what arrived is a prefix");
            assert!(
                net.nodes[node]
                    .put(portal, vec![], vec![], &mut net.states)
                    .is_err()
            );
        }
        // The other route is unaffected.
        net.put(0, x, b"ok");
        net.run();
        assert_eq!(net.read_all(2, y), vec![b"ok".to_vec()]);
        for (node, portal) in [(0, a), (1, b), (0, x), (2, y)] {
            net.close(node, portal);
        }
        net.assert_clean();
    }
}

#[test]
fn a_portal_cannot_be_queued_inside_itself() {
    let mut net = Net::with_nodes(1, 3);
    let (a, b) = net.nodes[0].open_pair(&mut net.states);
    let (c, d) = net.nodes[0].open_pair(&mut net.states);
    net.put_portal(0, a, c);
    // b is c's holder now; d's peer c is inside b, so b into d is a cycle.
    let cycle = net.nodes[0].put(
        d,
        vec![],
        vec![ipcz_node::router::Handle::Portal(b)],
        &mut net.states,
    );
    assert_eq!(cycle, Err(ipcz_node::router::PortalError::InvalidTransfer));
    assert_eq!(
        net.nodes[0].put(
            a,
            vec![],
            vec![ipcz_node::router::Handle::Portal(b)],
            &mut net.states
        ),
        Err(ipcz_node::router::PortalError::InvalidTransfer),
        "a pipe end cannot travel through its own route"
    );
    // Closing d and b: the parcel holding c is discarded and c closed.
    net.close(0, d);
    net.close(0, b);
    net.close(0, a);
    net.assert_clean();
}

#[test]
fn peer_closed_is_reported_only_after_every_parcel_arrived() {
    for seed in 0..20 {
        let mut net = Net::with_nodes(3, seed);
        let (a, b) = net.route(0, 1);
        let (c1, c2) = net.route(1, 2);
        put_range(&mut net, 0, a, 0..6);
        net.put_portal(1, c1, b);
        put_range(&mut net, 0, a, 6..12);
        net.close(0, a);
        let z = net.receive_portal(2, c2);
        let mut got = 0;
        while net.step() {
            let st = net.nodes[2].status(z).unwrap();
            if st.peer_closed {
                assert_eq!(
                    got + st.readable_parcels,
                    12,
                    "closure before all parcels (seed {seed})"
                );
            }
            got += net.read_all(2, z).len() as u64;
        }
        assert!(net.is_peer_closed(2, z));
        assert_eq!(got + net.read_all(2, z).len() as u64, 12);
        net.close(2, z);
        net.close(1, c1);
        net.close(2, c2);
        net.assert_clean();
    }
}
