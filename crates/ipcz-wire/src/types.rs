//! Field types of ipcz messages (spec §2.4). Enumerations are newtypes over
//! their wire integer with associated constants, so unknown values survive a
//! decode/encode round trip.

use core::fmt;

use mojo_wire_kit::le::{U32, U64};

use crate::layout_ref::prefix_ref;
use mojo_wire_kit::{CodecError, WireLayout, protocol_enum, wire_layout};

wire_layout! {
    /// A [`NodeName`] on the wire: `high` first, then `low`.
    pub struct NodeNameWire: size 16, names "NodeName" {
        /// High 64 bits.
        pub high: U64,
        /// Low 64 bits.
        pub low: U64,
    }
}

/// A 128-bit node name: `high` at +0, `low` at +8. All-zero means "none".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct NodeName {
    /// High 64 bits (compared first).
    pub high: u64,
    /// Low 64 bits.
    pub low: u64,
}

impl NodeName {
    /// The invalid (all-zero) name.
    pub const NONE: Self = Self { high: 0, low: 0 };

    /// From its wire layout.
    pub fn from_wire(w: NodeNameWire) -> Self {
        Self {
            high: w.high.get(),
            low: w.low.get(),
        }
    }

    /// Its wire layout.
    pub fn to_wire(self) -> NodeNameWire {
        NodeNameWire {
            high: U64::new(self.high),
            low: U64::new(self.low),
        }
    }

    /// Whether the name is non-zero.
    pub fn is_valid(self) -> bool {
        self != Self::NONE
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_valid() {
            write!(f, "{:016x}{:016x}", self.high, self.low)
        } else {
            f.write_str("none")
        }
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }
    };
}

id_type!(
    /// Names one router-to-router link multiplexed over a NodeLink.
    SublinkId
);
id_type!(
    /// A parcel's position in a route direction, or a sequence length.
    SequenceNumber
);
id_type!(
    /// Names one buffer of a NodeLinkMemory; 0 is the primary buffer.
    BufferId
);
id_type!(
    /// Names one referral of a non-broker by another (ReferNonBroker and its
    /// answers).
    ReferralId
);

impl BufferId {
    /// The primary buffer.
    pub const PRIMARY: Self = Self(0);
    /// The invalid id (marks a null [`FragmentDescriptor`]).
    pub const INVALID: Self = Self(u64::MAX);
}

wire_layout! {
    /// A [`FragmentDescriptor`] on the wire.
    pub struct FragmentDescriptorWire: size 16, names "FragmentDescriptor" {
        /// Buffer holding the fragment.
        pub buffer_id: U64,
        /// Byte offset within that buffer.
        pub offset: U32,
        /// Length in bytes.
        pub size: U32,
    }
}

/// A span of shared memory: `buffer_id` u64 at +0, `offset` u32 at +8, `size`
/// u32 at +12. Null iff `buffer_id` is [`BufferId::INVALID`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentDescriptor {
    /// Buffer holding the fragment.
    pub buffer_id: BufferId,
    /// Byte offset within that buffer.
    pub offset: u32,
    /// Length in bytes.
    pub size: u32,
}

impl FragmentDescriptor {
    /// Encoded size.
    pub const SIZE: usize = FragmentDescriptorWire::SIZE;
    /// The null descriptor, Chrome's default for every such field.
    pub const NULL: Self = Self {
        buffer_id: BufferId::INVALID,
        offset: 0,
        size: 0,
    };

    /// A descriptor for `size` bytes at `offset` of `buffer_id`.
    pub const fn new(buffer_id: u64, offset: u32, size: u32) -> Self {
        Self {
            buffer_id: BufferId(buffer_id),
            offset,
            size,
        }
    }

    /// Whether this is the null descriptor (any offset and size).
    pub fn is_null(self) -> bool {
        self.buffer_id == BufferId::INVALID
    }

    /// Decodes the first 16 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        prefix_ref::<FragmentDescriptorWire>(bytes, FragmentDescriptorWire::NAME)
            .map(|w| Self::from_wire(*w))
    }

    /// From its wire layout.
    pub fn from_wire(w: FragmentDescriptorWire) -> Self {
        Self::new(w.buffer_id.get(), w.offset.get(), w.size.get())
    }

    /// Its wire layout.
    pub fn to_wire(self) -> FragmentDescriptorWire {
        FragmentDescriptorWire {
            buffer_id: U64::new(self.buffer_id.0),
            offset: U32::new(self.offset),
            size: U32::new(self.size),
        }
    }
}

impl Default for FragmentDescriptor {
    fn default() -> Self {
        Self::NULL
    }
}

impl fmt::Debug for FragmentDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for FragmentDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() && self.offset == 0 && self.size == 0 {
            f.write_str("null")
        } else if self.is_null() {
            write!(f, "null{{{}, {}}}", self.offset, self.size)
        } else {
            write!(
                f,
                "{{buf {}, {}, {}}}",
                self.buffer_id, self.offset, self.size
            )
        }
    }
}

protocol_enum! {
    /// Which side of a NodeLink or central link (u8).
    pub struct LinkSide(pub u8), unknown "unknown({})", debug bare {
        /// Side A.
        A = 0 => "A",
        /// Side B.
        B = 1 => "B",
    }
}

impl LinkSide {
    /// The opposite side (an unknown value maps to A).
    pub fn opposite(self) -> Self {
        if self == Self::A { Self::B } else { Self::A }
    }
}

protocol_enum! {
    /// Kind of node (u8).
    pub struct NodeType(pub u8), unknown "unknown({})", debug bare {
        /// A broker.
        BROKER = 0 => "broker",
        /// A non-broker ("normal") node.
        NORMAL = 1 => "non-broker",
    }
}

protocol_enum! {
    /// What one handle of a parcel is (u32, spec §6.3).
    pub struct HandleType(pub u32), unknown "unknown({})", debug bare {
        /// A portal; consumes the next RouterDescriptor.
        PORTAL = 0 => "portal",
        /// A boxed driver object; consumes the next driver object.
        BOXED_DRIVER_OBJECT = 1 => "box",
        /// A driver object relayed separately (never on POSIX).
        RELAYED_BOXED_DRIVER_OBJECT = 2 => "relayed-box",
        /// A placeholder for the next subparcel.
        BOXED_SUBPARCEL = 3 => "subparcel",
    }
}

/// A driver object field: index into the message's driver object list, or
/// [`DriverObjectIndex::NONE`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DriverObjectIndex(pub u32);

impl DriverObjectIndex {
    /// No object.
    pub const NONE: Self = Self(crate::limits::INVALID_DRIVER_OBJECT_INDEX);

    /// The index, unless this is [`Self::NONE`].
    pub fn get(self) -> Option<usize> {
        (self != Self::NONE).then_some(self.0 as usize)
    }
}

impl Default for DriverObjectIndex {
    fn default() -> Self {
        Self::NONE
    }
}

impl fmt::Debug for DriverObjectIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DriverObjectIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(i) => write!(f, "obj{i}"),
            None => f.write_str("none"),
        }
    }
}

/// A driver object array field: `first_object_index` u32, `num_objects` u32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DriverObjectArray {
    /// Index of the first object.
    pub first: u32,
    /// Number of objects.
    pub count: u32,
}

impl DriverObjectArray {
    /// Objects `first .. first + count`.
    pub const fn new(first: u32, count: u32) -> Self {
        Self { first, count }
    }

    /// The indices covered (empty if the range would overflow).
    pub fn indices(self) -> core::ops::Range<usize> {
        let first = self.first as usize;
        first..first.saturating_add(self.count as usize)
    }
}

impl fmt::Debug for DriverObjectArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DriverObjectArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}, {}}}", self.first, self.count)
    }
}

/// Feature bit of element 0 of a features array: the mem_v2 id scheme.
pub const FEATURE_MEM_V2: u64 = 1;
