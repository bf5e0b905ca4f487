//! Mojo attachment names to initial portal indices (spec `ipcz.md` §4.5),
//! as MojoIpcz's invitation maps them.
//!
//! MojoIpcz keeps initial portal 0 for itself (on a Linux host: the
//! `BaseSharedMemoryService`, which a proxy closes at once) and puts
//! attachment `k` on portal `k + 1`. The index `k` comes from the name:
//!
//! - a name of 4 or 8 bytes whose first 4 bytes, read as a little-endian
//!   u32, are below [`MAX_ATTACHMENTS`] has that value as its index (numeric
//!   names: `AttachMessagePipe(uint64_t n)` writes `n` as 8 LE bytes);
//! - any other name has index 0, so string names (Chrome's GUIDs, the
//!   default `pipe!`) all land on portal 1: only one such attachment works.
//!
//! A Mojo node therefore opens at most [`MAX_MOJO_INITIAL_PORTALS`] initial
//! portals: `attachments + 1` when inviting, always 8 when accepting.
//! `mojo_proxy --num-attachments=K` names its attachments `0..K` (u64) and
//! opens `K + 1` portals.

/// Most attachments a Mojo invitation carries (`Invitation::kMaxAttachments`).
pub const MAX_ATTACHMENTS: u32 = ipcz_wire::limits::MAX_MOJO_ATTACHMENTS as u32;

/// Initial portals a Mojo node opens at most: portal 0 plus one per
/// attachment.
pub const MAX_MOJO_INITIAL_PORTALS: u32 = MAX_ATTACHMENTS + 1;

/// Initial portal 0, which MojoIpcz keeps for itself: on a Linux host it is
/// bound to `BaseSharedMemoryService`, which waits for one parcel with a
/// boxed Transport. A proxy does not need that service and closes the
/// portal at once (`RouteClosed{0, 0}` as soon as it can lock the link,
/// spec §4.5, §6.6); the host then drops its end.
pub const MOJO_RESERVED_PORTAL: u32 = 0;

/// The attachment index of `name` (MojoIpcz's `GetAttachmentIndex`).
pub fn attachment_index(name: &[u8]) -> u32 {
    if name.len() != 4 && name.len() != 8 {
        return 0;
    }
    let Some(first) = name.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        return 0;
    };
    let value = u32::from_le_bytes(first);
    if value < MAX_ATTACHMENTS { value } else { 0 }
}

/// The initial portal that carries the attachment called `name`:
/// [`attachment_index`] + 1 (portal 0 is Mojo's own).
pub fn attachment_portal(name: &[u8]) -> u32 {
    attachment_index(name) + MOJO_RESERVED_PORTAL + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numeric_names_map_to_their_value_plus_one() {
        for n in 0..u64::from(MAX_ATTACHMENTS) {
            assert_eq!(attachment_portal(&n.to_le_bytes()), n as u32 + 1);
            assert_eq!(attachment_portal(&(n as u32).to_le_bytes()), n as u32 + 1);
        }
    }

    #[test]
    fn string_names_and_out_of_range_values_map_to_portal_one() {
        assert_eq!(attachment_portal(b"pipe!"), 1);
        assert_eq!(
            attachment_portal(b"6a1c0d6e-32b2-4c3e-9a4e-2f1d8c7b5a90"),
            1
        );
        assert_eq!(attachment_portal(&7u64.to_le_bytes()), 1);
        assert_eq!(attachment_portal(&u64::MAX.to_le_bytes()), 1);
        assert_eq!(attachment_portal(b""), 1);
        // 8 bytes: only the first 4 count.
        assert_eq!(attachment_portal(&[3, 0, 0, 0, 9, 9, 9, 9]), 4);
        // A 4-character string is read as a number, then out of range.
        assert_eq!(attachment_portal(b"abcd"), 1);
    }

    proptest! {
        #[test]
        fn every_name_maps_to_a_portal_from_1_to_7(name in proptest::collection::vec(any::<u8>(), 0..16)) {
            let portal = attachment_portal(&name);
            prop_assert!((1..MAX_MOJO_INITIAL_PORTALS).contains(&portal));
        }
    }
}
