//! RouterLinkState (spec §5.3): the status bits as pure transitions on a
//! snapshot, and a view that decodes a copied 64-byte state.

use core::fmt;
use core::mem::offset_of;

use mojo_wire_kit::le::{I32, U32};
use mojo_wire_kit::{WireLayout, wire_layout};

use super::LayoutError;
use super::error::need;
use crate::limits::ROUTER_LINK_STATE_SIZE;
use crate::types::{FragmentDescriptor, LinkSide, NodeName, NodeNameWire};

bitflags::bitflags! {
    /// `RouterLinkState::status` bits. Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct LinkStatus: u32 {
        /// Side A has no decaying links.
        const SIDE_A_STABLE = 0x01;
        /// Side B has no decaying links.
        const SIDE_B_STABLE = 0x02;
        /// Side A tried to lock while B was unstable.
        const SIDE_A_WAITING = 0x04;
        /// Side B tried to lock while A was unstable.
        const SIDE_B_WAITING = 0x08;
        /// Side A holds the lock.
        const LOCKED_BY_SIDE_A = 0x10;
        /// Side B holds the lock.
        const LOCKED_BY_SIDE_B = 0x20;
        /// Both sides stable (`kStable`).
        const STABLE = 0x03;
        /// Either lock bit.
        const LOCKED = 0x30;
        const _ = !0;
    }
}

/// What one side's bits are called.
fn bits(side: LinkSide) -> (LinkStatus, LinkStatus, LinkStatus, LinkStatus) {
    // (this side stable, other side stable, this side waiting, this side lock)
    if side == LinkSide::A {
        (
            LinkStatus::SIDE_A_STABLE,
            LinkStatus::SIDE_B_STABLE,
            LinkStatus::SIDE_A_WAITING,
            LinkStatus::LOCKED_BY_SIDE_A,
        )
    } else {
        (
            LinkStatus::SIDE_B_STABLE,
            LinkStatus::SIDE_A_STABLE,
            LinkStatus::SIDE_B_WAITING,
            LinkStatus::LOCKED_BY_SIDE_B,
        )
    }
}

/// Result of a pure status transition: the value to store (equal to the
/// input if nothing changes) and the operation's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// New status.
    pub status: LinkStatus,
    /// The operation's boolean result.
    pub ok: bool,
}

impl LinkStatus {
    /// Reads a raw status word, keeping unknown bits.
    pub fn from_word(word: u32) -> Self {
        Self::from_bits_retain(word)
    }

    /// `SetSideStable(side)`.
    pub fn set_side_stable(self, side: LinkSide) -> Self {
        self | bits(side).0
    }

    /// `TryLock(side)` applied to a status snapshot: locks if both sides are
    /// stable and nobody holds the lock; sets our waiting bit (and fails) if
    /// only the other side is unstable; otherwise fails without change.
    pub fn try_lock(self, side: LinkSide) -> Transition {
        let (ours, other, waiting, lock) = bits(side);
        if self.intersects(Self::LOCKED) || !self.contains(ours) {
            return Transition {
                status: self,
                ok: false,
            };
        }
        if !self.contains(other) {
            return Transition {
                status: self | waiting,
                ok: false,
            };
        }
        Transition {
            status: self | lock,
            ok: true,
        }
    }

    /// `Unlock(side)`.
    pub fn unlock(self, side: LinkSide) -> Self {
        self - bits(side).3
    }

    /// `ResetWaitingBit(side)`: clears `side`'s waiting bit if both sides are
    /// stable, the bit is set and nobody holds the lock.
    pub fn reset_waiting_bit(self, side: LinkSide) -> Transition {
        let waiting = bits(side).2;
        if self.contains(Self::STABLE) && self.contains(waiting) && !self.intersects(Self::LOCKED) {
            Transition {
                status: self - waiting,
                ok: true,
            }
        } else {
            Transition {
                status: self,
                ok: false,
            }
        }
    }

    /// `is_locked_by(side)`.
    pub fn is_locked_by(self, side: LinkSide) -> bool {
        self.contains(bits(side).3)
    }

    /// Whether `side` is stable.
    pub fn is_stable(self, side: LinkSide) -> bool {
        self.contains(bits(side).0)
    }
}

impl fmt::Display for LinkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bitflags::parser::to_writer(self, f)
    }
}

wire_layout! {
    /// A RouterLinkState (64 bytes). Offsets and sizes for the atomic words,
    /// and the decoding of a copied snapshot; never laid over live memory.
    pub struct RouterLinkStateWire: size 64, names "RouterLinkState" {
        /// `ref_count` (atomic i32).
        pub ref_count: I32,
        /// `status` (atomic u32, [`LinkStatus`]).
        pub status: U32,
        /// `allowed_bypass_request_source`.
        pub allowed_bypass_request_source: NodeNameWire,
        /// `reserved1[10]`.
        pub reserved: [u8; 40],
    }
}

impl RouterLinkStateWire {
    /// Offset of the atomic `ref_count`.
    pub const REF_COUNT_OFFSET: usize = offset_of!(Self, ref_count);
    /// Offset of the atomic `status`.
    pub const STATUS_OFFSET: usize = offset_of!(Self, status);
}

const _: () = assert!(RouterLinkStateWire::SIZE == ROUTER_LINK_STATE_SIZE);

/// A view of one 64-byte RouterLinkState (plain loads).
#[derive(Clone, Copy, Debug)]
pub struct RouterLinkState<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> RouterLinkState<T> {
    /// Wraps at least 64 bytes.
    pub fn new_checked(buf: T) -> Result<Self, LayoutError> {
        need("RouterLinkState", buf.as_ref(), ROUTER_LINK_STATE_SIZE)?;
        Ok(Self(buf))
    }

    /// The state's fields (`new_checked` made sure all 64 bytes are there).
    fn wire(&self) -> RouterLinkStateWire {
        RouterLinkStateWire::from_zero_extended(self.0.as_ref())
    }

    /// `ref_count`.
    pub fn ref_count(&self) -> i32 {
        self.wire().ref_count.get()
    }

    /// `status`.
    pub fn status(&self) -> LinkStatus {
        LinkStatus::from_word(self.wire().status.get())
    }

    /// `allowed_bypass_request_source`.
    pub fn allowed_bypass_request_source(&self) -> NodeName {
        NodeName::from_wire(self.wire().allowed_bypass_request_source)
    }

    /// `CanNodeRequestBypass`: the other side holds the lock and allowed
    /// `requester` to bypass.
    pub fn can_node_request_bypass(&self, our_side: LinkSide, requester: NodeName) -> bool {
        self.status().is_locked_by(our_side.opposite())
            && self.allowed_bypass_request_source() == requester
    }
}

impl RouterLinkState<&mut [u8]> {
    /// Writes a fresh state (`ref_count`, status 0, name and reserved zero),
    /// as the allocating side does before handing it out.
    pub fn initialize(buf: &mut [u8], ref_count: i32) -> Result<(), LayoutError> {
        need("RouterLinkState", buf, ROUTER_LINK_STATE_SIZE)?;
        let fresh = RouterLinkStateWire {
            ref_count: I32::new(ref_count),
            status: U32::new(0),
            allowed_bypass_request_source: NodeName::NONE.to_wire(),
            reserved: [0; 40],
        };
        if let Some(state) = buf.get_mut(..ROUTER_LINK_STATE_SIZE) {
            state.copy_from_slice(fresh.wire_bytes());
        }
        Ok(())
    }
}

/// Whether `fragment` can hold a RouterLinkState as Chrome requires before
/// adopting one: non-null, at least 64 bytes, 8-aligned offset.
pub fn is_valid_link_state_fragment(fragment: FragmentDescriptor) -> bool {
    !fragment.is_null()
        && fragment.size as usize >= ROUTER_LINK_STATE_SIZE
        && fragment.offset % 8 == 0
}
