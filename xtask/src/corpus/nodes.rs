//! The seed corpora of the node and invitation targets
//! (`fuzz/corpus/{legacy_node_frames,legacy_invitation_*,ipcz_invitation,ipcz_node_frames,proxy_streams,*_session_streams}/`):
//! built by the seed functions of those crates' `fuzzing` modules, and for
//! `ipcz_invitation`, `proxy_streams` and the session targets from the
//! recorded vectors.

use std::os::fd::OwnedFd;

use mojo_transcript::testing::vectors;
use mojo_transcript::{Direction, Transcript};

use super::Seeds;

/// The fds the seed builders pass around (they only hold and drop them).
fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null").expect("/dev/null").into()
}

/// `ipcz_invitation` seeds: (file name, role, transcript below the vectors,
/// direction and index of the frame among that direction's chunks, whether
/// the socket then closes). Each is the first handshake frame the role
/// receives in a CrOS recording.
const IPCZ_INVITATION: [(&str, u8, &str, Direction, usize, bool); 4] = [
    (
        "broker-greeted-by-the-proxy",
        1,
        "cros/connect_only-host_proxy.jsonl",
        Direction::BToA,
        0,
        false,
    ),
    (
        "broker-referral-greeted",
        4,
        "cros/inherit_all-host_proxy.jsonl",
        Direction::BToA,
        0,
        true,
    ),
    (
        "non-broker-greeted-by-the-host",
        0,
        "cros/connect_only-host_proxy.jsonl",
        Direction::AToB,
        0,
        false,
    ),
    (
        "referred-answered-by-the-broker",
        2,
        "cros/inherit_all-host_proxy.jsonl",
        Direction::AToB,
        0,
        false,
    ),
];

/// `proxy_streams` seeds: the recorded sessions whose host→proxy and
/// client→proxy streams are replayed into the proxy, in time order.
const PROXY_SESSIONS: [&str; 4] = ["connect_only", "subpipe", "shmem", "multi_attach"];

/// The `proxy_streams` seed of one recorded CrOS session: what the host and
/// the client sent the recorded proxy, merged by time.
fn proxy_seed(session: &str) -> Result<Vec<u8>, String> {
    let dir = vectors().join("cros");
    let read = |name: String| {
        let path = dir.join(&name);
        Transcript::from_path(&path).map_err(|e| format!("{}: {e:?}", path.display()))
    };
    let host = read(format!("{session}-host_proxy.jsonl"))?;
    let client = read(format!("{session}-proxy_client.jsonl"))?;
    // (time, link, chunk): the host is side A of host_proxy, the proxy side A
    // of proxy_client (channel 0 bootstrap, 1 node channel).
    let mut records: Vec<(f64, u8, &mojo_transcript::Chunk)> = host
        .chunks
        .iter()
        .filter(|c| c.channel == 0 && c.direction == Direction::AToB && !c.is_eof())
        .map(|c| (c.time, 0, c))
        .chain(
            client
                .chunks
                .iter()
                .filter(|c| c.channel <= 1 && c.direction == Direction::BToA && !c.is_eof())
                .map(|c| (c.time, 1 + c.channel as u8, c)),
        )
        .collect();
    records.sort_by(|a, b| a.0.total_cmp(&b.0));
    let attachments = if session == "multi_attach" {
        3u8 << 1
    } else {
        0
    };
    let mut seed = vec![attachments];
    for (_, link, chunk) in records {
        let fds = u8::try_from(chunk.num_fds).map_err(|_| format!("{session}: fd count"))?;
        mojo_bridge::fuzzing::record(&mut seed, link, &chunk.bytes, fds);
    }
    Ok(seed)
}

/// A session target's seed: byte `mode`, then one record per chunk of
/// `direction` on the channels below `channels` of `file` (selector = the
/// channel: legacy bootstrap 0 / node channel 1; ipcz stream 0).
fn session_seed(
    file: &str,
    mode: u8,
    direction: Direction,
    channels: u32,
) -> Result<Vec<u8>, String> {
    let path = vectors().join(file);
    let transcript =
        Transcript::from_path(&path).map_err(|e| format!("{}: {e:?}", path.display()))?;
    let mut seed = vec![mode];
    for chunk in transcript
        .chunks
        .iter()
        .filter(|c| c.channel < channels && c.direction == direction && !c.is_eof())
    {
        let fds = u8::try_from(chunk.num_fds).map_err(|_| format!("{file}: fd count"))?;
        let bytes = &chunk.bytes;
        let len = u16::try_from(bytes.len()).map_err(|_| format!("{file}: chunk size"))?;
        seed.push(chunk.channel as u8);
        seed.extend_from_slice(&len.to_le_bytes());
        seed.extend_from_slice(bytes);
        seed.push(fds);
    }
    Ok(seed)
}

/// Adds the node and invitation seeds to `seeds`.
pub(crate) fn add_seeds(seeds: &mut Seeds) -> Result<(), String> {
    let target = seeds.target("legacy_node_frames");
    for (name, bytes) in mojo_legacy_node::fuzzing::seeds() {
        target.insert(name.to_string(), bytes);
    }
    let target = seeds.target("ipcz_node_frames");
    for (name, bytes) in ipcz_node::fuzzing::seeds(&mut dev_null) {
        target.insert(name.to_string(), bytes);
    }
    let target = seeds.target("legacy_invitation_broker");
    target.extend(mojo_invitation::legacy::fuzzing::broker_seeds(
        &mut dev_null,
    ));
    let target = seeds.target("legacy_invitation_client");
    target.extend(mojo_invitation::legacy::fuzzing::client_seeds());

    for session in PROXY_SESSIONS {
        let seed = proxy_seed(session)?;
        seeds
            .target("proxy_streams")
            .insert(format!("cros-{session}"), seed);
    }

    for session in PROXY_SESSIONS {
        // The recorded client heard the recorded proxy (side A); the recorded
        // proxy heard the client. Desktop too for the profile bit.
        for (profile, bit) in [("cros", 0u8), ("desktop", 2u8)] {
            let file = format!("{profile}/{session}-proxy_client.jsonl");
            let client = session_seed(&file, bit, Direction::AToB, 2)?;
            let broker = session_seed(&file, bit | 1, Direction::BToA, 2)?;
            let target = seeds.target("legacy_session_streams");
            target.insert(format!("{profile}-{session}-client"), client);
            target.insert(format!("{profile}-{session}-broker"), broker);
        }
        let file = format!("cros/{session}-host_proxy.jsonl");
        let non_broker = session_seed(&file, 0, Direction::AToB, 1)?;
        let broker = session_seed(&file, 1, Direction::BToA, 1)?;
        let target = seeds.target("ipcz_session_streams");
        target.insert(format!("{session}-non-broker"), non_broker);
        target.insert(format!("{session}-broker"), broker);
    }

    let dir = vectors();
    let target = seeds.target("ipcz_invitation");
    for (name, role, file, direction, index, hang_up) in IPCZ_INVITATION {
        let path = dir.join(file);
        let transcript =
            Transcript::from_path(&path).map_err(|e| format!("{}: {e:?}", path.display()))?;
        let chunk = transcript
            .chunks
            .iter()
            .filter(|c| c.channel == 0 && c.direction == direction && !c.is_eof())
            .nth(index)
            .ok_or_else(|| format!("{}: no frame {index} {direction:?}", path.display()))?;
        let fds = u8::try_from(chunk.num_fds).map_err(|_| format!("{name}: fd count"))?;
        let seed = mojo_invitation::ipcz::fuzzing::seed(role, &chunk.bytes, fds, hang_up);
        target.insert(name.to_string(), seed);
    }
    target.insert(
        "broker-greeted-by-a-broker".to_string(),
        mojo_invitation::ipcz::fuzzing::broker_to_broker_seed(),
    );
    Ok(())
}
