//! NodeLinkMemory layouts (spec §5) as offsets, bit meanings, read-only views
//! over byte slices and pure helpers. The atomic operations themselves belong
//! to whoever maps the memory: they load a word, compute the new value with a
//! function from here, and compare-and-swap.
//!
//! ```text
//! primary buffer (BufferId 0, 131072 bytes)
//!   0     u64 next_buffer_id      8  u64 next_sublink_id     16..256 reserved
//!   256   12 x RouterLinkState (64 bytes each)
//!   1024  BlockAllocator regions: 64 B x 1484, 256 x 9, 512 x 8, 1K x 4, 2K x 4, 4K x 4
//! RouterLinkState (64): i32 ref_count, u32 status, NodeName allowed_bypass_request_source, u32[10]
//! free block header (u32): u16 version | i16 next << 16, next relative to the following block
//! parcel fragment: u32 size, u32 reserved, data
//! ```

//!
//! Each concern has its file: [`LayoutError`], [`BlockRegion`], [`primary`],
//! RouterLinkState and its status bits ([`LinkStatus`], [`RouterLinkState`]),
//! [`block`] and [`fragment`]. Fixed layouts are zerocopy declarations used
//! for offsets, sizes and decoding copied snapshots only, never laid over a
//! live mapping.

mod error;
mod link_state;
mod region;

pub mod block;
pub mod fragment;
pub mod primary;

pub use self::error::LayoutError;
pub use self::link_state::{
    LinkStatus, RouterLinkState, RouterLinkStateWire, Transition, is_valid_link_state_fragment,
};
pub use self::region::BlockRegion;

#[cfg(test)]
mod tests {
    use super::block::*;
    use super::*;
    use crate::types::{FragmentDescriptor, LinkSide};

    #[test]
    fn primary_layout_adds_up() {
        let mut end = primary::INITIAL_LINK_STATES.end;
        for r in primary::REGIONS {
            assert_eq!(r.offset, end);
            end = r.range().end;
        }
        assert_eq!(end, primary::SIZE);
        assert_eq!(primary::initial_link_state(11), Some(960..1024));
        assert_eq!(primary::initial_link_state(12), None);
        assert_eq!(primary::REGIONS[0].block_offset(1), Some(1088));
        assert_eq!(primary::REGIONS[0].block_index(1216), Some(3));
        assert_eq!(primary::REGIONS[2].block_index(98816), Some(1));
        assert_eq!(initial_last_header(1484).to_word(), 0xFA34_0000);
    }

    #[test]
    fn initialized_primary_buffer_allocates_like_chrome() {
        let mut buf = vec![0xffu8; primary::SIZE];
        primary::initialize(&mut buf).unwrap();
        let view = primary::PrimaryBuffer::new_checked(&buf[..]).unwrap();
        assert_eq!(view.next_buffer_id(), 1);
        assert_eq!(view.next_sublink_id(), 12);
        assert_eq!(
            view.initial_link_state(3).unwrap().status(),
            LinkStatus::empty()
        );
        let r = primary::REGIONS[0];
        let mut a = BlockAllocator::new(&mut buf[r.range()], r.block_size).unwrap();
        assert_eq!(a.allocate(), Some(1));
        assert_eq!(a.allocate(), Some(2));
        a.free(1).unwrap();
        assert_eq!(a.allocate(), Some(1));
        assert_eq!(a.allocate(), Some(3));
        assert!(a.free(0).is_err());
        let mut count = 3;
        while a.allocate().is_some() {
            count += 1;
        }
        assert_eq!(count, 1483);
    }

    #[test]
    fn link_status_transitions() {
        let s = LinkStatus::empty();
        let t = s.set_side_stable(LinkSide::B).try_lock(LinkSide::B);
        assert_eq!(
            t,
            Transition {
                status: LinkStatus::SIDE_B_STABLE | LinkStatus::SIDE_B_WAITING,
                ok: false
            }
        );
        let s = t.status.set_side_stable(LinkSide::A);
        let r = s.reset_waiting_bit(LinkSide::B);
        assert!(r.ok);
        assert_eq!(r.status, LinkStatus::STABLE);
        let l = r.status.try_lock(LinkSide::A);
        assert!(l.ok && l.status.is_locked_by(LinkSide::A));
        assert!(!l.status.try_lock(LinkSide::B).ok);
        assert_eq!(l.status.unlock(LinkSide::A), LinkStatus::STABLE);
        assert_eq!(LinkStatus::from_word(0x103).bits(), 0x103);
    }

    #[test]
    fn parcel_fragments() {
        let d = FragmentDescriptor::new(0, 1152, 64);
        let mut bytes = vec![0u8; 64];
        fragment::write_parcel_data(&mut bytes, b"hello").unwrap();
        assert_eq!(fragment::parcel_data(d, &bytes), Ok(&b"hello"[..]));
        bytes[0] = 57;
        assert!(matches!(
            fragment::parcel_data(d, &bytes),
            Err(LayoutError::DataSize { size: 57, max: 56 })
        ));
        assert_eq!(fragment::range(d, primary::SIZE), Ok(1152..1216));
        assert!(fragment::range(FragmentDescriptor::new(0, u32::MAX, 64), 100).is_err());
        for (len, class) in [
            (4, 64),
            (56, 64),
            (57, 256),
            (100, 256),
            (255, 512),
            (256, 512),
            (1000, 1024),
            (4088, 4096),
        ] {
            assert_eq!(
                fragment::primary_class_for_data(len).map(|r| r.block_size),
                Some(class),
                "{len}"
            );
        }
        assert_eq!(fragment::primary_class_for_data(4089), None);
        assert_eq!(fragment::primary_class_for_data(0), None);
        assert_eq!(added_buffer_size(64), 65536);
        assert!(check_added_buffer(64, 65536).is_ok());
        assert!(check_added_buffer(96, 65536).is_err());
    }
}
