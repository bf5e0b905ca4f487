//! Frame plumbing shared by the connectors: decoding one handed-in node
//! channel frame with its fd checks, encoding fresh messages, and the
//! channel-control rules (§1.6) that apply during the handshake.

use std::os::fd::OwnedFd;

use mojo_legacy_wire::Profile;
use mojo_legacy_wire::channel::{ControlMessage, Frame};
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage};

use super::error::{FrameKind, HandshakeError};
use super::{Link, Transmit};

/// Decodes `bytes` as exactly one node-channel frame carrying `num_fds` fds,
/// as a Chromium receiver does (both header forms, lenient padding), and
/// applies the fd-count rules of spec §6.1.
pub(super) fn decode_node_frame(
    bytes: &[u8],
    num_fds: usize,
) -> Result<NodeFrame<'_>, HandshakeError> {
    let link = Link::NodeChannel;
    let frame = decode_one(link, bytes)?;
    check_fd_count(
        link,
        "channel.num_handles",
        frame.header.num_handles().into(),
        num_fds,
    )?;
    let node =
        NodeFrame::from_frame(&frame).map_err(|error| HandshakeError::Malformed { link, error })?;
    if let NodeChannelContent::Message(m) = &node.content {
        m.check_handles(num_fds)
            .map_err(|error| HandshakeError::Malformed { link, error })?;
    }
    Ok(node)
}

/// Decodes `bytes` as exactly one channel message.
pub(super) fn decode_one(link: Link, bytes: &[u8]) -> Result<Frame<'_>, HandshakeError> {
    let (frame, used) =
        Frame::decode(bytes).map_err(|error| HandshakeError::Malformed { link, error })?;
    if used != bytes.len() {
        return Err(HandshakeError::NotOneFrame {
            link,
            frame_len: used,
            given: bytes.len(),
        });
    }
    Ok(frame)
}

pub(super) fn check_fd_count(
    link: Link,
    what: &'static str,
    expected: usize,
    actual: usize,
) -> Result<(), HandshakeError> {
    if expected == actual {
        Ok(())
    } else {
        Err(HandshakeError::FdCount {
            link,
            what,
            expected,
            actual,
        })
    }
}

/// A fresh NodeChannel message without fds, framed in `profile`.
pub(super) fn node_transmit(
    profile: Profile,
    message: &NodeMessage<'_>,
) -> Result<Transmit, HandshakeError> {
    let mut bytes = Vec::new();
    message
        .encode_frame(profile, 0, &mut bytes)
        .map_err(HandshakeError::Encode)?;
    Ok(Transmit {
        link: Link::NodeChannel,
        bytes,
        fds: Vec::new(),
    })
}

/// What a connector does with a control message during the handshake:
/// an `UPGRADE_OFFER` is refused with `UPGRADE_REJECT` (its fds, moved in
/// with the frame, are closed by the caller dropping them); a short offer
/// is ignored as Chromium ignores it; anything else is unexpected (we never
/// offer, and unknown control types are fatal for Chromium too).
pub(super) fn answer_control(
    control: &ControlMessage<'_>,
    expected: &'static str,
) -> Result<Option<Transmit>, HandshakeError> {
    match control {
        ControlMessage::UpgradeOffer(_) => {
            let mut bytes = Vec::new();
            ControlMessage::UpgradeReject { payload: &[] }
                .encode_frame(0, &mut bytes)
                .map_err(HandshakeError::Encode)?;
            Ok(Some(Transmit {
                link: Link::NodeChannel,
                bytes,
                fds: Vec::new(),
            }))
        }
        ControlMessage::ShortUpgradeOffer { .. } => Ok(None),
        other => Err(HandshakeError::UnexpectedMessage {
            link: Link::NodeChannel,
            expected,
            found: FrameKind::Control(other.message_type()),
        }),
    }
}

/// Drops fds on purpose (they belong to a message that is ignored); named
/// so the intent shows at the call site.
pub(super) fn close_fds(fds: Vec<OwnedFd>) {
    drop(fds);
}
