//! The proxy's table driven by hand with the route messages a real Chrome
//! host sends (the sequences of the recordings in ../shared/vectors and of
//! spec §4.4, §6.5.1, §6.8.2), checking what it answers. Bypasses offered by
//! a third node are in `router_host_renderer.rs`.

mod router_host_support;

use router_host_support::*;

/// vectors/cros/close-host_proxy.jsonl, chan0, as the proxy's router table sees it.
#[test]
fn close_scenario_of_the_recordings() {
    let mut p = Proxy::new();
    for slot in [frag(256), frag(320)] {
        p.states.add_unmanaged(HOST_END, slot);
        p.states.set_side_stable(HOST_END, slot, LinkSide::A);
    }
    // The host tried to bypass its bridge on portal 1 before we were stable.
    assert!(
        !p.states
            .try_lock_for_bypass(HOST_END, frag(320), LinkSide::A, PROXY)
    );
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    let p1 = p
        .table
        .connect_initial_portal(L, SublinkId(1), LinkSide::B, frag(320), &mut p.states)
        .unwrap();
    p.table.close(p0, &mut p.states).unwrap();
    assert_eq!(
        p.sent(),
        vec![
            (
                L,
                RouteMessage::FlushRouter {
                    sublink: SublinkId(1)
                }
            ),
            (
                L,
                RouteMessage::RouteClosed {
                    sublink: SublinkId(0),
                    sequence_length: 0
                }
            ),
        ]
    );

    p.host(parcel(1, 0, vec![]));
    let f12 = frag(1088);
    p.states.add_allocated(HOST_END, f12);
    p.host(RouteMessage::BypassPeerWithLink {
        sublink: SublinkId(1),
        new_sublink: SublinkId(12),
        new_link_state: f12,
        inbound_sequence_length: 1,
    });
    assert_eq!(
        p.sent(),
        vec![(
            L,
            RouteMessage::StopProxyingToLocalPeer {
                sublink: SublinkId(1),
                outbound_sequence_length: 0
            }
        )]
    );
    // The decay of sublink 1 is over (parcel 0 arrived): our side of 12 is stable.
    assert_eq!(p.states.status(L, f12).unwrap().bits & 0x2, 0x2);
    p.states.set_side_stable(HOST_END, f12, LinkSide::A);

    let (f13, f15) = (frag(1216), frag(1152));
    for f in [f13, f15] {
        p.states.add_allocated(HOST_END, f);
        p.states.set_side_stable(HOST_END, f, LinkSide::A);
    }
    p.host(parcel(12, 1, vec![bypassed(13, f13, 0)]));
    p.host(RouteMessage::RouteClosed {
        sublink: SublinkId(13),
        sequence_length: 0,
    });
    p.host(parcel(12, 2, vec![bypassed(15, f15, 0)]));
    for seq in 0..3 {
        p.table.put(p1, vec![seq], vec![], &mut p.states).unwrap();
    }
    p.host(RouteMessage::RouteClosed {
        sublink: SublinkId(12),
        sequence_length: 3,
    });

    assert_eq!(p.get(p1).sequence_number, 0);
    let r13 = portal_of(&p.get(p1));
    let r15 = portal_of(&p.get(p1));
    assert!(p.table.status(p1).unwrap().dead);
    assert!(
        p.table.status(r13).unwrap().dead,
        "host closed it with nothing sent"
    );
    p.table.close(r15, &mut p.states).unwrap();
    let sent = p.sent();
    let names: Vec<_> = sent
        .iter()
        .map(|(_, m)| (m.name(), m.sublink().0))
        .collect();
    assert_eq!(
        names,
        [
            ("AcceptParcel", 12),
            ("AcceptParcel", 12),
            ("AcceptParcel", 12),
            ("RouteClosed", 15)
        ]
    );
    assert_eq!(
        sent[3].1,
        RouteMessage::RouteClosed {
            sublink: SublinkId(15),
            sequence_length: 0
        }
    );
    p.table.close(r13, &mut p.states).unwrap();
    p.table.close(p1, &mut p.states).unwrap();
    assert!(p.sent().is_empty(), "closing dead portals sends nothing");
    assert_eq!(p.table.router_count(), 0);
    assert_eq!(p.table.sublink_count(), 0);
    for f in [f12, f13, f15] {
        assert_eq!(
            p.states.refs(L, f),
            Some(1),
            "only the host's reference is left on {f:?}"
        );
    }
}

/// §6.5.1 variant A with k parcels already sent by the local peer (9.5):
/// they arrive on the decaying sublink, later ones on the new central link.
#[test]
fn bypassed_descriptor_with_parcels_on_the_decaying_link() {
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
    // Reordered across the two sublinks.
    p.host(parcel(20, 4, vec![]));
    p.host(parcel(21, 1, vec![]));
    p.host(parcel(20, 3, vec![]));
    p.host(parcel(21, 0, vec![]));
    assert_eq!(
        p.states.status(L, f).unwrap().bits & 0x2,
        0,
        "still decaying"
    );
    p.host(parcel(21, 2, vec![]));
    assert_eq!(
        p.states.status(L, f).unwrap().bits & 0x2,
        0x2,
        "decayed: side B stable"
    );
    let seqs: Vec<u64> = (0..5).map(|_| p.get(r).sequence_number).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4]);
    p.sent();
    // Parcel on the dropped decaying sublink: ignored.
    p.host(parcel(21, 5, vec![]));
    assert_eq!(p.table.status(r).unwrap().readable_parcels, 0);
    p.table
        .put(r, b"x".to_vec(), vec![], &mut p.states)
        .unwrap();
    assert_eq!(p.sent()[0].1.sublink(), SublinkId(20));
    p.teardown(&[r, p0], &[L]);
}

/// §6.8.2 with descriptor B2: the peer lives on a renderer; the proxy asks
/// for an introduction, sends AcceptBypassLink, accepts ProxyWillStop.
#[test]
fn descriptor_b2_bypass_through_an_introduction() {
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
        next_incoming_sequence_number: 2,
        ..NewRouter::default()
    });
    p.host(parcel(0, 0, vec![d]));
    let z = portal_of(&p.get(p0));
    let mut need = Vec::new();
    while let Some(o) = p.table.poll_output() {
        need.push(o);
    }
    assert!(need.contains(&Output::NeedNodeLink { node: RENDERER }));
    // Parcels the renderer sent before, forwarded by the host.
    p.host(parcel(12, 2, vec![]));
    let t = NodeLinkId(7);
    p.table.add_node_link(t, RENDERER, &mut p.states);
    let sent = p.sent();
    let [
        (
            link,
            RouteMessage::AcceptBypassLink {
                current_peer_node,
                current_peer_sublink,
                inbound_sequence_length_from_bypassed_link,
                new_sublink,
                new_link_state,
            },
        ),
    ] = sent.as_slice()
    else {
        panic!("{sent:?}");
    };
    assert_eq!(
        (*link, *current_peer_node, *current_peer_sublink),
        (t, HOST, SublinkId(40))
    );
    assert_eq!(*inbound_sequence_length_from_bypassed_link, 0);
    let (n, state) = (*new_sublink, *new_link_state);
    p.table
        .put(z, b"to renderer".to_vec(), vec![], &mut p.states)
        .unwrap();
    assert_eq!(
        p.sent(),
        vec![(
            t,
            RouteMessage::AcceptParcel {
                sublink: n,
                parcel: Parcel::new(0, b"to renderer".to_vec(), vec![])
            }
        )]
    );
    p.table
        .handle_message(
            t,
            RouteMessage::ProxyWillStop {
                sublink: n,
                inbound_sequence_length: 4,
            },
            &mut p.states,
        )
        .unwrap();
    assert_eq!(
        p.states.status(t, state).unwrap().bits & 0x1,
        0,
        "parcel 3 still due via the host"
    );
    p.host(parcel(12, 3, vec![]));
    assert_eq!(
        p.states.status(t, state).unwrap().bits & 0x1,
        0x1,
        "decayed: side A stable"
    );
    assert_eq!(
        p.table.sublink_count(),
        2,
        "sublink 0 and the new link; 12 is gone"
    );
    assert_eq!(p.get(z).sequence_number, 2);
    assert_eq!(p.get(z).sequence_number, 3);
    p.teardown(&[z, p0], &[L, t]);
}

#[test]
fn failed_introduction_disconnects_the_portal() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
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
    p.table.introduction_failed(RENDERER, &mut p.states);
    assert_eq!(
        p.sent(),
        vec![(
            L,
            RouteMessage::RouteDisconnected {
                sublink: SublinkId(12)
            }
        )]
    );
    let st = p.table.status(z).unwrap();
    assert!(st.peer_closed && st.disconnected);
    p.teardown(&[z, p0], &[L]);
}

/// §6.10: a proxy-only node has no proxy routers, so proxy messages are
/// typed validation errors, and moving a portal that would need one is refused.
#[test]
fn proxy_only_node_never_proxies() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
    p.states.add_unmanaged(HOST_END, frag(320));
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    let p1 = p
        .table
        .connect_initial_portal(L, SublinkId(1), LinkSide::B, frag(320), &mut p.states)
        .unwrap();
    let stop = RouteMessage::StopProxying {
        sublink: SublinkId(1),
        inbound_sequence_length: 0,
        outbound_sequence_length: 0,
    };
    assert_eq!(
        p.table.handle_message(L, stop, &mut p.states),
        Err(RouteError::NotAProxy {
            sublink: SublinkId(1)
        })
    );
    let stop_local = RouteMessage::StopProxyingToLocalPeer {
        sublink: SublinkId(1),
        outbound_sequence_length: 0,
    };
    assert_eq!(
        p.table.handle_message(L, stop_local, &mut p.states),
        Err(RouteError::NotAProxy {
            sublink: SublinkId(1)
        })
    );
    assert_eq!(
        p.table
            .put(p0, vec![], vec![Handle::Portal(p1)], &mut p.states),
        Err(PortalError::WouldProxy)
    );
    // A fresh local pipe end can move: the route is split (§6.5.2).
    let (a, b) = p.table.open_pair(&mut p.states);
    p.states.set_side_stable(HOST_END, frag(256), LinkSide::A);
    p.table
        .put(p0, vec![], vec![Handle::Portal(b)], &mut p.states)
        .unwrap();
    let sent = p.sent();
    let RouteMessage::AcceptParcel { parcel, .. } = &sent[0].1 else {
        panic!("{sent:?}")
    };
    let [WireHandle::Router(d)] = parcel.handles.as_slice() else {
        panic!()
    };
    assert!(d.proxy_already_bypassed && d.new_link_state.is_some() && d.proxy_peer.is_none());
    assert_eq!(d.new_decaying_sublink.0, d.new_sublink.0 + 1);
    p.table
        .put(a, b"first".to_vec(), vec![], &mut p.states)
        .unwrap();
    assert_eq!(p.sent()[0].1.sublink(), d.new_sublink);
    p.table.node_link_lost(L, &mut p.states);
    assert!(p.table.status(a).unwrap().disconnected);
    p.teardown(&[a, p0, p1], &[]);
}

/// §6.6: closing while the host's side is not yet stable sets our waiting
/// bit; the host's FlushRouter (once stable) makes us send RouteClosed.
#[test]
fn closure_waits_for_the_other_side_then_flush_router() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    p.table
        .put(p0, b"a".to_vec(), vec![], &mut p.states)
        .unwrap();
    p.table.close(p0, &mut p.states).unwrap();
    assert_eq!(p.sent().len(), 1, "only the parcel");
    assert_eq!(
        p.states.status(L, frag(256)).unwrap().bits,
        0x2 | 0x8,
        "B stable and waiting"
    );
    // The host marks its side stable and sees our waiting bit.
    p.states.set_side_stable(HOST_END, frag(256), LinkSide::A);
    assert!(p.states.reset_waiting_bit(HOST_END, frag(256), LinkSide::B));
    p.host(RouteMessage::FlushRouter {
        sublink: SublinkId(0),
    });
    assert_eq!(
        p.sent(),
        vec![(
            L,
            RouteMessage::RouteClosed {
                sublink: SublinkId(0),
                sequence_length: 1
            }
        )]
    );
    assert_eq!(p.table.router_count(), 0);
    assert_eq!(p.table.sublink_count(), 0);
}

/// §6.7: RouteDisconnected on the old link during a bypass is passed to
/// every link the router has, including the new one on another node link.
#[test]
fn route_disconnected_propagates_to_every_link() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    let t = NodeLinkId(7);
    p.table.add_node_link(t, RENDERER, &mut p.states);
    let d = WireHandle::Router(NewRouter {
        new_sublink: SublinkId(12),
        proxy_peer: Some((RENDERER, SublinkId(40))),
        ..NewRouter::default()
    });
    p.host(parcel(0, 0, vec![d]));
    let z = portal_of(&p.get(p0));
    let sent = p.sent();
    let RouteMessage::AcceptBypassLink {
        new_sublink: n,
        new_link_state,
        ..
    } = sent[0].1
    else {
        panic!("{sent:?}")
    };
    p.host(RouteMessage::RouteDisconnected {
        sublink: SublinkId(12),
    });
    let mut sent = p.sent();
    sent.sort_by_key(|(l, _)| *l);
    assert_eq!(
        sent,
        vec![
            (
                L,
                RouteMessage::RouteDisconnected {
                    sublink: SublinkId(12)
                }
            ),
            (t, RouteMessage::RouteDisconnected { sublink: n }),
        ]
    );
    assert!(p.table.status(z).unwrap().disconnected);
    assert_eq!(
        p.states.refs(t, new_link_state),
        Some(1),
        "our reference released"
    );
    // Late messages for the gone sublinks are ignored.
    p.table
        .handle_message(
            t,
            RouteMessage::ProxyWillStop {
                sublink: n,
                inbound_sequence_length: 0,
            },
            &mut p.states,
        )
        .unwrap();
    p.table.close(z, &mut p.states).unwrap();
    p.table.close(p0, &mut p.states).unwrap();
    p.table.node_link_lost(L, &mut p.states);
    p.table.node_link_lost(t, &mut p.states);
    assert_eq!(
        (
            p.table.router_count(),
            p.table.sublink_count(),
            p.table.has_pending()
        ),
        (0, 0, false)
    );
}

/// Descriptor B1 with `peer_closed`: the host's pipe end was already closed
/// after k parcels, which follow on the new sublink.
#[test]
fn descriptor_for_a_pipe_whose_peer_already_closed() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    let d = WireHandle::Router(NewRouter {
        peer_closed: true,
        closed_peer_sequence_length: 2,
        new_sublink: SublinkId(12),
        ..NewRouter::default()
    });
    p.host(parcel(0, 0, vec![d]));
    let z = portal_of(&p.get(p0));
    assert!(
        !p.table.status(z).unwrap().peer_closed,
        "two parcels still due"
    );
    assert_eq!(
        p.table.put(z, vec![], vec![], &mut p.states),
        Err(PortalError::PeerClosed)
    );
    p.host(parcel(12, 1, vec![]));
    p.host(parcel(12, 0, vec![]));
    let st = p.table.status(z).unwrap();
    assert!(st.peer_closed && !st.disconnected && !st.dead);
    assert_eq!(p.get(z).sequence_number, 0);
    assert_eq!(p.get(z).sequence_number, 1);
    assert!(p.table.status(z).unwrap().dead);
    assert_eq!(
        p.table.sublink_count(),
        1,
        "sublink 12 dropped without a message"
    );
    p.table.close(z, &mut p.states).unwrap();
    assert!(p.sent().is_empty());
    p.table.close(p0, &mut p.states).unwrap();
    p.table.node_link_lost(L, &mut p.states);
    assert_eq!(p.table.router_count(), 0);
}

/// A peer that keeps sending parcels nobody can take yet (a gap at the
/// front) hits the per-router limit: a typed error, memory stays bounded.
#[test]
fn queued_parcels_are_bounded() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    let limit = ipcz_node::router::MAX_QUEUED_PARCELS_PER_ROUTER as u64;
    for seq in 1..=limit {
        p.host(parcel(0, seq, vec![]));
    }
    assert_eq!(
        p.table
            .handle_message(L, parcel(0, limit + 1, vec![]), &mut p.states),
        Err(RouteError::TooManyQueuedParcels {
            sublink: SublinkId(0)
        })
    );
    p.table.node_link_lost(L, &mut p.states);
    assert_eq!(
        p.table.queued_parcel_count(),
        0,
        "a disconnected route drops what it cannot deliver"
    );
    p.teardown(&[p0], &[]);
}

/// vectors/cros/pipe_roundtrip-host_proxy.jsonl: the proxy sends a new pipe
/// end to the host in the split form (§6.5.2) and writes into its own end;
/// the host sends that pipe end back (descriptor B2 naming the proxy
/// itself), so the proxy bypasses the host locally (§6.8.5) and answers
/// StopProxying{inbound = parcels it sent, outbound = 0}.
#[test]
fn pipe_roundtrip_scenario_ends_in_a_local_bypass() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(256));
    p.states.set_side_stable(HOST_END, frag(256), LinkSide::A);
    let p0 = p
        .table
        .connect_initial_portal(L, SublinkId(0), LinkSide::B, frag(256), &mut p.states)
        .unwrap();
    let (k, j) = p.table.open_pair(&mut p.states);
    p.table
        .put(p0, vec![], vec![Handle::Portal(j)], &mut p.states)
        .unwrap();
    let sent = p.sent();
    let RouteMessage::AcceptParcel {
        parcel: carried, ..
    } = &sent[0].1
    else {
        panic!("{sent:?}")
    };
    let [WireHandle::Router(d)] = carried.handles.as_slice() else {
        panic!()
    };
    let (n, state) = (d.new_sublink, d.new_link_state.unwrap());
    assert_eq!(
        (
            d.next_outgoing_sequence_number,
            d.next_incoming_sequence_number
        ),
        (0, 0)
    );
    // The host builds its router: adopts the state and marks its side (B) stable.
    assert!(p.states.adopt(HOST_END, state));
    p.states.set_side_stable(HOST_END, state, LinkSide::B);
    for i in 0..2u8 {
        p.table.put(k, vec![i], vec![], &mut p.states).unwrap();
    }
    let seqs: Vec<_> = p
        .sent()
        .into_iter()
        .map(|(_, m)| match m {
            RouteMessage::AcceptParcel { sublink, parcel } => (sublink, parcel.sequence_number),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs, [(n, 0), (n, 1)]);

    // The host moves that pipe end back, locking the link for our bypass.
    assert!(
        p.states
            .try_lock_for_bypass(HOST_END, state, LinkSide::B, PROXY)
    );
    let back = WireHandle::Router(NewRouter {
        new_sublink: SublinkId(21),
        proxy_peer: Some((PROXY, n)),
        ..NewRouter::default()
    });
    p.host(parcel(0, 0, vec![back]));
    assert_eq!(
        p.sent(),
        vec![(
            L,
            RouteMessage::StopProxying {
                sublink: n,
                inbound_sequence_length: 2,
                outbound_sequence_length: 0
            }
        )]
    );
    // The host's proxy forwards what k had sent, then goes away.
    p.host(parcel(21, 0, vec![]));
    p.host(parcel(21, 1, vec![]));
    let z = portal_of(&p.get(p0));
    assert_eq!(p.get(z).sequence_number, 0);
    assert_eq!(p.get(z).sequence_number, 1);
    assert_eq!(
        p.table.sublink_count(),
        1,
        "both links to the host's proxy decayed"
    );
    assert_eq!(
        p.states.refs(L, state),
        Some(1),
        "our reference to the old central link's state released"
    );
    p.table
        .put(z, b"local".to_vec(), vec![], &mut p.states)
        .unwrap();
    assert!(p.sent().is_empty(), "k and z are linked in-process now");
    assert_eq!(p.get(k).data, b"local");
    p.table.close(k, &mut p.states).unwrap();
    assert!(p.table.status(z).unwrap().dead);
    p.teardown(&[z, p0], &[L]);
}

/// §4.4: when the proxy already answered over the initial sublink before the
/// host's BypassPeerWithLink, it reports that count (observed: `{1, 1}`).
#[test]
fn stop_proxying_to_local_peer_counts_what_we_sent_on_the_old_link() {
    let mut p = Proxy::new();
    p.states.add_unmanaged(HOST_END, frag(320));
    p.states.set_side_stable(HOST_END, frag(320), LinkSide::A);
    let p1 = p
        .table
        .connect_initial_portal(L, SublinkId(1), LinkSide::B, frag(320), &mut p.states)
        .unwrap();
    p.host(parcel(1, 0, vec![]));
    p.table
        .put(p1, b"answer".to_vec(), vec![], &mut p.states)
        .unwrap();
    let f12 = frag(1088);
    p.states.add_allocated(HOST_END, f12);
    p.sent();
    p.host(RouteMessage::BypassPeerWithLink {
        sublink: SublinkId(1),
        new_sublink: SublinkId(12),
        new_link_state: f12,
        inbound_sequence_length: 1,
    });
    assert_eq!(
        p.sent(),
        vec![(
            L,
            RouteMessage::StopProxyingToLocalPeer {
                sublink: SublinkId(1),
                outbound_sequence_length: 1
            }
        )]
    );
    p.table
        .put(p1, b"next".to_vec(), vec![], &mut p.states)
        .unwrap();
    assert_eq!(
        p.sent(),
        vec![(
            L,
            RouteMessage::AcceptParcel {
                sublink: SublinkId(12),
                parcel: Parcel::new(1, b"next".to_vec(), vec![])
            }
        )]
    );
    assert_eq!(p.get(p1).sequence_number, 0);
    p.teardown(&[p1], &[L]);
}
