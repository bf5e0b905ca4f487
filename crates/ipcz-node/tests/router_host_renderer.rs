//! The proxy's table, with a host link and a link to a renderer (a third
//! node), driven by hand through the bypasses a renderer offers and the
//! host authorizes or not (spec §6.8.4, §7.4).

mod router_host_support;

use router_host_support::*;

/// The renderer's end of its link to the proxy, and the proxy's.
const RENDERER_END: NodeLinkId = NodeLinkId(8);
const T: NodeLinkId = NodeLinkId(7);

/// A proxy with portal p1 on the host link (both sides stable) and a link
/// to the renderer; the renderer offers `f` (two references) for a bypass.
fn proxy_with_renderer() -> (Proxy, RouterId, FragmentDescriptor) {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(320));
    p.states.set_side_stable(HOST_END, frag(320), LinkSide::A);
    p.states.set_side_stable(HOST_END, frag(320), LinkSide::B);
    let p1 = p
        .table
        .connect_initial_portal(L, SublinkId(1), LinkSide::B, frag(320), &mut p.states)
        .unwrap();
    p.states.bind(RENDERER_END, T);
    p.table.add_node_link(T, RENDERER, &mut p.states);
    let f = frag(512);
    p.states.add_allocated(RENDERER_END, f);
    p.sent();
    (p, p1, f)
}

/// AcceptBypassLink from the renderer for the host's sublink 1 (§6.8.4).
fn bypass_offer(current_peer_sublink: u64, f: FragmentDescriptor) -> RouteMessage<()> {
    RouteMessage::AcceptBypassLink {
        current_peer_node: HOST,
        current_peer_sublink: SublinkId(current_peer_sublink),
        inbound_sequence_length_from_bypassed_link: 0,
        new_sublink: SublinkId(30),
        new_link_state: f,
    }
}

/// §6.8.4 step 5 and §7.4: an AcceptBypassLink from a node the proxying
/// peer did not name is a validation failure (the node drops the link it
/// came on), whatever the lock: unlocked, locked by the proxy's own side,
/// or locked by the host for another node. The offered reference is
/// released, nothing is sent, and the route keeps working over the host.
#[test]
fn accept_bypass_link_not_authorized_is_rejected() {
    type Lock = fn(&mut InMemoryLinkState);
    let cases: [(&str, Lock); 3] = [
        ("unlocked", |_| {}),
        ("locked by our side", |s| {
            assert!(s.try_lock_for_bypass(L, frag(320), LinkSide::B, RENDERER));
        }),
        ("locked for another node", |s| {
            assert!(s.try_lock_for_bypass(HOST_END, frag(320), LinkSide::A, PROXY));
        }),
    ];
    for (what, lock) in cases {
        let (mut p, p1, f) = proxy_with_renderer();
        lock(&mut p.states);
        let result = p.table.handle_message(T, bypass_offer(1, f), &mut p.states);
        assert_eq!(
            result,
            Err(RouteError::BypassNotAuthorized {
                sublink: SublinkId(1)
            }),
            "{what}"
        );
        assert_eq!(p.sent(), vec![], "{what}");
        assert_eq!(
            p.states.refs(RENDERER_END, f),
            Some(1),
            "{what}: adopted, released"
        );
        assert_eq!(p.table.sublink_count(), 1, "{what}: no sublink 30");
        p.table
            .put(p1, b"still via the host".to_vec(), vec![], &mut p.states)
            .unwrap();
        assert_eq!(p.sent()[0].0, L, "{what}");
        p.table.node_link_lost(T, &mut p.states);
        p.teardown(&[p1], &[L]);
    }
}

/// The same offer once the host locked the link for the renderer is
/// honoured (so the rejections above are the authorization check, not
/// something else), and one for a sublink nobody is bound to is ignored.
#[test]
fn accept_bypass_link_authorized_by_the_proxying_peer_is_honoured() {
    let (mut p, p1, f) = proxy_with_renderer();
    // Unknown sublink: the route is gone; the offered reference is dropped.
    p.table
        .handle_message(T, bypass_offer(9, f), &mut p.states)
        .unwrap();
    assert_eq!(p.sent(), vec![]);
    assert_eq!(p.states.refs(RENDERER_END, f), Some(1));

    let (mut p2, p1b, f2) = proxy_with_renderer();
    assert!(
        p2.states
            .try_lock_for_bypass(HOST_END, frag(320), LinkSide::A, RENDERER)
    );
    p2.table
        .handle_message(T, bypass_offer(1, f2), &mut p2.states)
        .unwrap();
    let sent = p2.sent();
    assert_eq!(
        sent,
        vec![
            (
                L,
                RouteMessage::StopProxying {
                    sublink: SublinkId(1),
                    inbound_sequence_length: 0,
                    outbound_sequence_length: 0
                }
            ),
            (
                T,
                RouteMessage::ProxyWillStop {
                    sublink: SublinkId(30),
                    inbound_sequence_length: 0
                }
            ),
        ]
    );
    p2.table
        .put(p1b, b"direct".to_vec(), vec![], &mut p2.states)
        .unwrap();
    assert_eq!(p2.sent()[0].0, T);
    p.table.node_link_lost(T, &mut p.states);
    p.teardown(&[p1], &[L]);
    p2.teardown(&[p1b], &[L, T]);
}

/// §6.8.2 step 1: BypassPeer on a sublink of the router that is not its
/// outward primary link (here the decaying one of a bypassed descriptor)
/// is a validation failure; on an unknown sublink it is ignored.
#[test]
fn bypass_peer_not_from_the_outward_peer_is_rejected() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
    p.states.set_side_stable(HOST_END, frag(256), LinkSide::A);
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    let f = frag(1216);
    p.states.add_allocated(HOST_END, f);
    p.host(parcel(0, 0, vec![bypassed(20, f, 3)]));
    let r = portal_of(&p.get(p0));
    p.sent();
    let bypass = |sublink| RouteMessage::BypassPeer {
        sublink: SublinkId(sublink),
        bypass_target_node: RENDERER,
        bypass_target_sublink: SublinkId(40),
    };
    // Sublink 21 is r's decaying link, not its primary (20).
    assert_eq!(
        p.table.handle_message(L, bypass(21), &mut p.states),
        Err(RouteError::BypassFromNonOutwardPeer {
            sublink: SublinkId(21)
        })
    );
    p.table
        .handle_message(L, bypass(99), &mut p.states)
        .unwrap();
    let mut outputs = Vec::new();
    while let Some(o) = p.table.poll_output() {
        outputs.push(o);
    }
    assert!(
        !outputs.contains(&Output::NeedNodeLink { node: RENDERER }),
        "{outputs:?}"
    );
    assert!(!p.table.has_pending());
    p.teardown(&[r, p0], &[L]);
}

/// A portal whose bypass (§6.8.2) waits for a link to the renderer, on
/// the host link with a fresh B2 descriptor: (proxy, p0, z).
fn waiting_bypass() -> (Proxy, RouterId, RouterId) {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
    p.states.set_side_stable(HOST_END, frag(256), LinkSide::A);
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    let d = WireHandle::Router(NewRouter {
        new_sublink: SublinkId(12),
        proxy_peer: Some((RENDERER, SublinkId(40))),
        ..NewRouter::default()
    });
    p.host(parcel(0, 0, vec![d]));
    let z = portal_of(&p.get(p0));
    p.sent();
    assert!(p.table.has_pending(), "the bypass waits for a link");
    (p, p0, z)
}

/// Closed while its bypass waits: the closure cannot go over the
/// peripheral link to the proxy (only a central link carries it, as in
/// Chromium's Router::Flush), so the wait must go on; once the link comes
/// the bypass completes and the closure goes over the new central link.
#[test]
fn a_portal_closed_while_its_bypass_awaits_a_link_still_bypasses() {
    let (mut p, p0, z) = waiting_bypass();
    p.table.close(z, &mut p.states).unwrap();
    assert_eq!(p.sent(), vec![], "no closure over the peripheral link");
    assert!(p.table.has_pending(), "closure needs the bypass");
    p.states.bind(RENDERER_END, T);
    p.table.add_node_link(T, RENDERER, &mut p.states);
    let sent = p.sent();
    let [
        (
            t,
            RouteMessage::AcceptBypassLink {
                new_sublink,
                new_link_state,
                ..
            },
        ),
    ] = sent.as_slice()
    else {
        panic!("{sent:?}");
    };
    assert_eq!(*t, T);
    let (n, state) = (*new_sublink, *new_link_state);
    p.table
        .handle_message(
            T,
            RouteMessage::ProxyWillStop {
                sublink: n,
                inbound_sequence_length: 0,
            },
            &mut p.states,
        )
        .unwrap();
    assert_eq!(p.sent(), vec![], "the renderer's side is not stable yet");
    // The renderer's decay completes too: it marks its side and flushes us.
    p.states.set_side_stable(RENDERER_END, state, LinkSide::B);
    p.table
        .handle_message(T, RouteMessage::FlushRouter { sublink: n }, &mut p.states)
        .unwrap();
    assert_eq!(
        p.sent(),
        vec![(
            T,
            RouteMessage::RouteClosed {
                sublink: n,
                sequence_length: 0
            }
        )]
    );
    assert!(!p.table.has_pending());
    assert_eq!(p.table.router_count(), 1, "only p0 is left");
    p.teardown(&[p0], &[L, T]);
}

/// The route closed from the other end while the bypass waited, then the
/// portal closed: the bypass is moot (z has no outward link left to
/// replace), so the wait ends and z goes at once; a link that arrives
/// later finds nothing to resume. Before, z stayed until the link came,
/// and then for good.
#[test]
fn a_bypass_left_without_its_link_stops_waiting() {
    let (mut p, p0, z) = waiting_bypass();
    p.host(RouteMessage::RouteClosed {
        sublink: SublinkId(12),
        sequence_length: 0,
    });
    assert!(p.table.status(z).unwrap().peer_closed);
    p.table.close(z, &mut p.states).unwrap();
    p.sent();
    assert!(!p.table.has_pending(), "nothing waits for the renderer");
    assert_eq!(p.table.router_count(), 1, "only p0 is left");
    assert_eq!(p.table.sublink_count(), 1, "only sublink 0");
    p.states.bind(RENDERER_END, T);
    p.table.add_node_link(T, RENDERER, &mut p.states);
    assert_eq!(p.sent(), vec![]);
    assert_eq!(p.table.router_count(), 1);
    p.teardown(&[p0], &[L, T]);
}
