//! Every frame of every ipcz transcript under `shared/vectors/` (host_proxy
//! links and the direct_ipcz baselines) must parse completely and re-encode
//! byte for byte, from the decoded values.

use ipcz_wire::frame::{Deframer, Frame};
use ipcz_wire::fuzzing::deframe_pieces;
use ipcz_wire::message::Message;
use ipcz_wire::messages::Body;
use mojo_transcript::testing::vector_files_of;
use mojo_transcript::{LinkProtocol, Transcript};

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn every_ipcz_frame_in_the_vectors_round_trips() {
    let files = vector_files_of(LinkProtocol::Ipcz);
    assert!(!files.is_empty(), "no ipcz transcripts in the vectors");
    let mut failures = Vec::new();
    let (mut frames, mut streams, mut messages_by_id) =
        (0usize, 0usize, std::collections::BTreeMap::new());
    for file in &files {
        let transcript = Transcript::from_path(&file.path).expect("parse transcript");
        for (key, stream) in transcript.streams() {
            streams += 1;
            let name = format!("{} {key}", file.path.display());
            // Feed the deframer in the recorded chunk sizes would need chunk
            // boundaries; feed in odd-sized pieces instead (split invariance
            // is tested separately).
            let deframed = deframe_pieces(Deframer::new(), stream.bytes.chunks(333));
            let mut claimed_fds = 0usize;
            for (index, copy) in deframed.frames.iter().enumerate() {
                let offset = copy.offset;
                let original = &copy.bytes[..];
                let (frame, _) = Frame::decode(original).expect("a deframed frame decodes");
                frames += 1;
                claimed_fds += usize::from(frame.header.num_handles);
                if let Err(e) = check_frame(&frame, original) {
                    failures.push(format!("{name} frame {index} @{offset}: {e}"));
                } else if let Ok(m) =
                    Message::decode(frame.payload, frame.header.num_handles.into())
                {
                    *messages_by_id.entry(m.body.name()).or_insert(0usize) += 1;
                }
            }
            match deframed.end {
                Err(e) => failures.push(format!("{name}: deframing stopped: {e}")),
                Ok(0) => {}
                Ok(trailing) => failures.push(format!("{name}: {trailing} trailing bytes")),
            }
            if claimed_fds != stream.total_fds() {
                failures.push(format!(
                    "{name}: frames claim {claimed_fds} fds, {} arrived",
                    stream.total_fds()
                ));
            }
        }
    }
    eprintln!(
        "{frames} frames in {streams} streams of {} files: {messages_by_id:?}",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        frames > 800,
        "expected the whole corpus, saw {frames} frames"
    );
}

fn check_frame(frame: &Frame<'_>, original: &[u8]) -> Result<(), String> {
    let mut out = Vec::new();
    frame.encode(&mut out).unwrap();
    if out != original {
        return Err("frame re-encoding differs".into());
    }
    let message = Message::decode_exact(frame.payload, frame.header.num_handles.into())
        .map_err(|e| e.to_string())?;
    message.check_semantics().map_err(|e| e.to_string())?;
    if matches!(message.body, Body::Unknown(_)) {
        return Err(format!("unknown message id {}", message.id().0));
    }
    if message.num_fds() != usize::from(frame.header.num_handles) {
        return Err(format!(
            "objects use {} fds, header claims {}",
            message.num_fds(),
            frame.header.num_handles
        ));
    }
    // Re-encode the whole frame from the decoded values.
    let mut out = Vec::new();
    frame
        .header
        .encode_frame(frame.header_extension, &message, &mut out)
        .unwrap();
    if out != original {
        return Err("frame re-encoded from the decoded message differs".into());
    }
    Ok(())
}
