//! The seed corpora of the node and invitation targets
//! (`fuzz/corpus/{legacy_node_frames,legacy_invitation_*,ipcz_invitation,ipcz_node_frames}/`):
//! built by the seed functions of those crates' `fuzzing` modules, and for
//! `ipcz_invitation` from handshake frames of the recorded vectors.

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
    Ok(())
}
