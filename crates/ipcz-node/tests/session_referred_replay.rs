//! `Session::referred` against real inherit-mode recordings (`inherit_*`
//! host_proxy files of `shared/vectors`): its greeting equals the one
//! Chromium's mojo_proxy sent (but for the creation timestamp), and the
//! broker's recorded ConnectToReferredNonBroker brings it up the way §4.3
//! says: two primary buffers to map (broker link first), the referrer
//! link's socket to adopt, the initial portals on that link, the broker
//! link towards the broker; nothing more goes to the broker, as from the
//! C++ proxy.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use ipcz_node::session::{Session, SessionConfig, SessionEvent, SocketId};
use ipcz_node::sim::SharedHeap;
use ipcz_wire::frame::Frame;
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::message::Message;
use ipcz_wire::messages::Body;
use mojo_transcript::{Direction, StreamKey, Transcript};

fn inherit_files() -> Vec<PathBuf> {
    let dir = mojo_transcript::testing::vectors();
    let mut files = Vec::new();
    // The shm/ recordings carry memory snapshots in another line format.
    for sub in ["cros", "desktop"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries.flatten() {
                let p = e.path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name.contains("inherit") && name.ends_with("-host_proxy.jsonl") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    files
}

/// The whole frames of a stream, in order.
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Ok(Some((_, used))) = Frame::decode_prefix(rest) {
        out.push(rest[..used].to_vec());
        rest = &rest[used..];
    }
    out
}

fn dummy_fd() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn a_referred_session_comes_up_on_the_recorded_broker_reply() {
    let files = inherit_files();
    assert!(files.len() >= 2, "inherit recordings: {files:?}");
    for path in files {
        let streams = Transcript::from_path(&path).unwrap().streams();
        let stream = |channel, direction| {
            streams
                .get(&StreamKey { channel, direction })
                .unwrap_or_else(|| panic!("{}: no chan{channel} {direction}", path.display()))
        };
        // The C++ proxy's greeting to the broker, and its portal count.
        let proxy_out = frames(&stream(0, Direction::BToA).bytes);
        let greeting = &proxy_out[0];
        let (f, _) = Frame::decode(greeting).unwrap();
        let Body::ConnectToReferredBroker(c) = Message::decode(f.payload, 0).unwrap().body else {
            panic!("{}: not a referred greeting", path.display());
        };
        let config = SessionConfig {
            initial_portals: c.num_initial_portals,
            ..SessionConfig::default()
        };
        let mut session = Session::<SharedHeap>::referred(config).unwrap();
        let ours = session.poll_transmit().unwrap();
        assert_eq!(ours.socket, SocketId::HANDSHAKE);
        assert_eq!(ours.bytes[..8], greeting[..8], "{}", path.display());
        assert_eq!(ours.bytes[16..], greeting[16..], "{}", path.display());

        // The broker's reply, with as many stand-in fds as it carried.
        let broker_in = stream(0, Direction::AToB);
        let mut fds: VecDeque<OwnedFd> = (0..broker_in.total_fds()).map(|_| dummy_fd()).collect();
        let used = session.handle_stream(&broker_in.bytes, &mut fds).unwrap();
        let mut mapped = 0;
        let mut adopted = None;
        let mut portals = None;
        for _ in 0..8 {
            while let Some(event) = session.poll_event() {
                match event {
                    SessionEvent::MapPrimaryBuffer { buffer, .. } => {
                        assert_eq!(buffer.buffer_size as usize, PRIMARY_BUFFER_SIZE);
                        mapped += 1;
                        session
                            .primary_buffer_mapped(SharedHeap::new(PRIMARY_BUFFER_SIZE))
                            .unwrap();
                    }
                    SessionEvent::AdoptSocket { socket, .. } => adopted = Some(socket),
                    SessionEvent::Established { portals: p, .. } => portals = Some(p),
                    other => panic!("{}: unexpected {other:?}", path.display()),
                }
            }
        }
        assert_eq!(mapped, 2, "{}", path.display());
        // Nothing else travels on the broker link in the recordings.
        assert_eq!(used, broker_in.bytes.len(), "{}", path.display());
        let socket = adopted.expect("the referrer link's socket");
        let portals = portals.expect("established");
        assert_eq!(portals.len(), c.num_initial_portals as usize);
        assert!(portals[0].is_none(), "portal 0 closed at once");
        let node = session.node().unwrap();
        assert_eq!(node.link_count(), 2);
        assert_eq!(node.broker_link(), session.link());
        let referrer = session.socket_link(socket).unwrap();
        assert_ne!(Some(referrer), session.link());

        // Like the C++ proxy, nothing more on the broker link.
        assert_eq!(proxy_out.len(), 1, "{}", path.display());
        let more: Vec<_> = std::iter::from_fn(|| session.poll_transmit()).collect();
        assert!(
            more.iter().all(|t| t.socket == socket),
            "{}: a frame on the broker link",
            path.display()
        );
    }
}
