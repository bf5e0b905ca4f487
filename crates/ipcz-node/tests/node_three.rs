//! Portals that move on after arriving: through a third node (the middle
//! node becomes a proxy, the bypass completes and the proxy goes away),
//! back to the node of their peer (local bypass), and from a table that
//! keeps a proxy for a local peer (BypassPeerWithLink). Parcels are in
//! flight throughout; each test ends with nothing left.

mod node_support;

use ipcz_node::node::{NodeConfig, NodeHandle, ParcelDataPlacement};
use ipcz_node::router::{Handle, RouterConfig, RouterId};
use node_support::{Net, fd_box};

fn received_portal(net: &mut Net, n: usize, portal: RouterId) -> RouterId {
    let mut got = net.take_all(n, portal);
    assert_eq!(got.len(), 1);
    match got.pop().unwrap().handles.pop() {
        Some(NodeHandle::Portal(p)) => p,
        other => panic!("portal expected, got {other:?}"),
    }
}

fn names(net: &Net, n: usize) -> Vec<&'static str> {
    net.log
        .iter()
        .filter(|(to, _)| *to == n)
        .filter_map(|(_, id)| ipcz_wire::messages::MessageId(*id).name())
        .collect()
}

fn onward_to_third_node(config: NodeConfig) {
    let mut net = Net::new(&[config, config, config]);
    let (_, _, ab_a, ab_b) = net.connect_with_portals(0, 1, 2);
    let (_, _, bc_b, bc_c) = net.connect_with_portals(1, 2, 2);
    net.run();
    let initial_routers_b = net.nodes[1].router_count();

    let (x, y) = net.nodes[0].create_portal_pair();
    net.nodes[0]
        .put(ab_a[1], b"y".to_vec(), vec![Handle::Portal(y)])
        .unwrap();
    net.run();
    let y_b = received_portal(&mut net, 1, ab_b[1]);
    // Parcels from x still travel while y moves on.
    for i in 0..3u8 {
        net.nodes[0].put(x, vec![i; 500], Vec::new()).unwrap();
    }
    net.nodes[1]
        .put(bc_b[1], b"y again".to_vec(), vec![Handle::Portal(y_b)])
        .unwrap();
    for i in 3..6u8 {
        net.nodes[0]
            .put(x, vec![i; 500], vec![Handle::Object(fd_box())])
            .unwrap();
    }
    net.run();
    let y_c = received_portal(&mut net, 2, bc_c[1]);
    for i in 6..9u8 {
        net.nodes[0].put(x, vec![i; 500], Vec::new()).unwrap();
    }
    net.nodes[2]
        .put(y_c, b"from c".to_vec(), Vec::new())
        .unwrap();
    net.run();

    // Everything arrived in order, over whatever links.
    let got = net.take_all(2, y_c);
    assert_eq!(got.len(), 9);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.data, vec![i as u8; 500]);
    }
    drop(got);
    assert_eq!(net.nodes[0].get(x).unwrap().unwrap().data, b"from c");

    // The bypass completed: C got a link to A, and B's proxy is gone.
    assert!(net.end(2, 0).is_some(), "C and A were introduced");
    assert_eq!(
        net.nodes[1].router_count(),
        initial_routers_b,
        "proxy on B is gone"
    );
    assert!(
        names(&net, 0).contains(&"AcceptBypassLink"),
        "Z offered X the new link"
    );
    assert!(
        names(&net, 1).contains(&"StopProxying"),
        "X stopped the proxy"
    );
    assert_eq!(
        names(&net, 2).contains(&"BypassPeer"),
        !config.routers.bypass_in_descriptor,
        "BypassPeer only when the descriptor did not ask for the bypass"
    );

    net.nodes[0].close(x).unwrap();
    net.run();
    assert!(net.nodes[2].status(y_c).unwrap().peer_closed);
    net.nodes[2].close(y_c).unwrap();
    for p in ab_a {
        net.nodes[0].close(p).unwrap();
    }
    for p in ab_b.iter().chain(&bc_b) {
        net.nodes[1].close(*p).unwrap();
    }
    for p in bc_c {
        net.nodes[2].close(p).unwrap();
    }
    net.assert_idle_and_clean();
}

#[test]
fn portal_sent_onward_to_a_third_node_is_bypassed() {
    onward_to_third_node(NodeConfig::default());
}

#[test]
fn portal_sent_onward_with_fragments_and_separate_bypass_peer() {
    onward_to_third_node(NodeConfig {
        parcel_data: ParcelDataPlacement::SharedMemory,
        routers: RouterConfig {
            bypass_in_descriptor: false,
            ..RouterConfig::default()
        },
        ..NodeConfig::default()
    });
}

#[test]
fn both_ends_sent_to_one_node_meet_there() {
    let mut net = Net::with_nodes(2);
    let (_, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    let (x, y) = net.nodes[0].create_portal_pair();
    net.nodes[0]
        .put(pa[1], b"y".to_vec(), vec![Handle::Portal(y)])
        .unwrap();
    net.nodes[0].put(x, b"early".to_vec(), Vec::new()).unwrap();
    net.run();
    net.nodes[0]
        .put(pa[1], b"x".to_vec(), vec![Handle::Portal(x)])
        .unwrap();
    net.run();
    let mut got = net.take_all(1, pb[1]);
    let Some(NodeHandle::Portal(x_b)) = got.pop().unwrap().handles.pop() else {
        panic!()
    };
    let Some(NodeHandle::Portal(y_b)) = got.pop().unwrap().handles.pop() else {
        panic!()
    };
    net.nodes[1].put(x_b, b"late".to_vec(), Vec::new()).unwrap();
    net.run();
    assert_eq!(net.take_all(1, y_b).len(), 2);
    // A keeps only its initial portals: the proxy for x went away.
    assert_eq!(net.nodes[0].router_count(), 2);
    for p in [x_b, y_b, pb[0], pb[1]] {
        net.nodes[1].close(p).unwrap();
    }
    for p in pa {
        net.nodes[0].close(p).unwrap();
    }
    net.assert_idle_and_clean();
}

#[test]
fn proxy_for_a_local_peer_is_bypassed_with_a_link() {
    let keeps_proxy = NodeConfig {
        routers: RouterConfig {
            split_local_pairs: false,
            ..RouterConfig::default()
        },
        ..NodeConfig::default()
    };
    let mut net = Net::new(&[keeps_proxy, NodeConfig::default()]);
    let (_, _, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    let (x, y) = net.nodes[0].create_portal_pair();
    net.nodes[0].put(x, b"queued".to_vec(), Vec::new()).unwrap();
    net.nodes[0]
        .put(pa[1], b"y".to_vec(), vec![Handle::Portal(y)])
        .unwrap();
    net.nodes[0].put(x, b"after".to_vec(), Vec::new()).unwrap();
    net.run();
    let y_b = received_portal(&mut net, 1, pb[1]);
    net.nodes[1].put(y_b, b"back".to_vec(), Vec::new()).unwrap();
    net.run();
    let got = net.take_all(1, y_b);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].data, b"queued");
    assert_eq!(net.nodes[0].get(x).unwrap().unwrap().data, b"back");
    assert!(names(&net, 1).contains(&"BypassPeerWithLink"));
    assert_eq!(net.nodes[0].router_count(), 3, "initial portals and x");
    net.nodes[1].close(y_b).unwrap();
    net.nodes[0].close(x).unwrap();
    for p in pa {
        net.nodes[0].close(p).unwrap();
    }
    for p in pb {
        net.nodes[1].close(p).unwrap();
    }
    net.assert_idle_and_clean();
}
