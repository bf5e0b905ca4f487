//! `RouterDescriptor`: how a portal moves inside a parcel (spec §6.5), in the
//! 96-byte form of M117 and later and the 112-byte form before (§10.2).

use core::fmt;

use mojo_wire_kit::le::U64;
use mojo_wire_kit::{CodecError, LayoutField, WireLayout, wire_layout};

use crate::layout_ref::prefix_ref;
use crate::limits::{LEGACY_ROUTER_DESCRIPTOR_SIZE, ROUTER_DESCRIPTOR_SIZE};
use crate::types::{
    FragmentDescriptor, FragmentDescriptorWire, NodeName, NodeNameWire, SequenceNumber, SublinkId,
};

/// Which RouterDescriptor layout a peer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DescriptorFormat {
    /// 96 bytes (M117 and later, including r1429904).
    #[default]
    Current,
    /// 112 bytes (M112-M116).
    PreM117,
}

impl DescriptorFormat {
    /// Element size in a `new_routers` array.
    pub const fn size(self) -> usize {
        match self {
            Self::Current => ROUTER_DESCRIPTOR_SIZE,
            Self::PreM117 => LEGACY_ROUTER_DESCRIPTOR_SIZE,
        }
    }

    /// The fields of one element in this layout (names and byte ranges).
    pub const fn fields(self) -> &'static [LayoutField] {
        match self {
            Self::Current => RouterDescriptorWire::FIELDS,
            Self::PreM117 => LegacyRouterDescriptorWire::FIELDS,
        }
    }
}

wire_layout! {
    /// The 96-byte RouterDescriptor of M117 and later (spec §6.5).
    pub struct RouterDescriptorWire: size 96, names "RouterDescriptor" {
        /// If `peer_closed`: total parcels the peer sent.
        pub closed_peer_sequence_length: U64,
        /// New link from the sender's router to the new router.
        pub new_sublink: U64,
        /// RouterLinkState for `new_sublink` if bypassed, else null.
        pub new_link_state_fragment: FragmentDescriptorWire,
        /// If bypassed: link for parcels already queued at the sender.
        pub new_decaying_sublink: U64,
        /// First sequence number the new router sends.
        pub next_outgoing_sequence_number: U64,
        /// First sequence number the new router expects.
        pub next_incoming_sequence_number: U64,
        /// If bypassed: parcels below this arrive over `new_decaying_sublink`.
        pub decaying_incoming_sequence_length: U64,
        /// Bit 0 `peer_closed`, bit 1 `proxy_already_bypassed`.
        pub flags: u8,
        /// Ignored, zero.
        pub reserved0: [u8; 7],
        /// If valid: bypass toward this node immediately.
        pub proxy_peer_node_name: NodeNameWire,
        /// Sublink between the sender's node and `proxy_peer_node_name`.
        pub proxy_peer_sublink: U64,
    }
}

wire_layout! {
    /// The 112-byte RouterDescriptor of Chrome M112-M116 (spec §10.2).
    pub struct LegacyRouterDescriptorWire: size 112, names "RouterDescriptor" {
        /// If `peer_closed`: total parcels the peer sent.
        pub closed_peer_sequence_length: U64,
        /// New link from the sender's router to the new router.
        pub new_sublink: U64,
        /// RouterLinkState for `new_sublink` if bypassed, else null.
        pub new_link_state_fragment: FragmentDescriptorWire,
        /// If bypassed: link for parcels already queued at the sender.
        pub new_decaying_sublink: U64,
        /// First sequence number the new router sends.
        pub next_outgoing_sequence_number: U64,
        /// Unused.
        pub num_bytes_produced: U64,
        /// First sequence number the new router expects.
        pub next_incoming_sequence_number: U64,
        /// If bypassed: parcels below this arrive over `new_decaying_sublink`.
        pub decaying_incoming_sequence_length: U64,
        /// Unused.
        pub num_bytes_consumed: U64,
        /// Bit 0 `peer_closed`, bit 1 `proxy_already_bypassed`.
        pub flags: u8,
        /// Ignored, zero.
        pub reserved: [u8; 7],
        /// If valid: bypass toward this node immediately.
        pub proxy_peer_node_name: NodeNameWire,
        /// Sublink between the sender's node and `proxy_peer_node_name`.
        pub proxy_peer_sublink: U64,
    }
}

/// Flag bit: the moved portal's peer is closed.
pub const FLAG_PEER_CLOSED: u8 = 0x01;
/// Flag bit: the sender already linked the peer to the new router.
pub const FLAG_PROXY_ALREADY_BYPASSED: u8 = 0x02;

/// A decoded RouterDescriptor. Reserved bytes and unused flag bits are
/// ignored on decode (as Chrome does) and written as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RouterDescriptor {
    /// If `peer_closed`: total parcels the peer sent.
    pub closed_peer_sequence_length: SequenceNumber,
    /// New link from the sender's router to the new router.
    pub new_sublink: SublinkId,
    /// RouterLinkState for `new_sublink` if bypassed, else null.
    pub new_link_state_fragment: FragmentDescriptor,
    /// If bypassed: link for parcels already queued at the sender.
    pub new_decaying_sublink: SublinkId,
    /// First sequence number the new router sends.
    pub next_outgoing_sequence_number: SequenceNumber,
    /// First sequence number the new router expects.
    pub next_incoming_sequence_number: SequenceNumber,
    /// If bypassed: parcels below this arrive over `new_decaying_sublink`.
    pub decaying_incoming_sequence_length: SequenceNumber,
    /// Flag bit 0.
    pub peer_closed: bool,
    /// Flag bit 1.
    pub proxy_already_bypassed: bool,
    /// If valid: bypass toward this node immediately (variant B2).
    pub proxy_peer_node_name: NodeName,
    /// Sublink between the sender's node and `proxy_peer_node_name`.
    pub proxy_peer_sublink: SublinkId,
}

/// Why a descriptor is rejected by `Router::Deserialize` (stateless checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DescriptorError {
    /// `new_sublink` equals the sublink the parcel arrived on.
    NewSublinkIsReceivingSublink,
    /// Bypassed, and `new_sublink` equals `new_decaying_sublink`.
    NewSublinkIsDecayingSublink,
    /// Bypassed, and `new_decaying_sublink` equals the receiving sublink.
    DecayingSublinkIsReceivingSublink,
    /// Bypassed, and the link state fragment is null, smaller than 64 bytes or unaligned.
    InvalidLinkStateFragment(FragmentDescriptor),
    /// Not bypassed, but a link state fragment is given.
    UnexpectedLinkStateFragment(FragmentDescriptor),
    /// Peer closed with a length below `next_incoming_sequence_number` or
    /// more than 1,000,000 above it.
    ClosedPeerSequenceLength(SequenceNumber),
}

impl DescriptorError {
    /// The descriptor field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::NewSublinkIsReceivingSublink | Self::NewSublinkIsDecayingSublink => "new_sublink",
            Self::DecayingSublinkIsReceivingSublink => "new_decaying_sublink",
            Self::InvalidLinkStateFragment(_) | Self::UnexpectedLinkStateFragment(_) => {
                "new_link_state_fragment"
            }
            Self::ClosedPeerSequenceLength(_) => "closed_peer_sequence_length",
        }
    }
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NewSublinkIsReceivingSublink => {
                f.write_str("new_sublink equals the receiving sublink")
            }
            Self::NewSublinkIsDecayingSublink => {
                f.write_str("new_sublink equals new_decaying_sublink")
            }
            Self::DecayingSublinkIsReceivingSublink => {
                f.write_str("new_decaying_sublink equals the receiving sublink")
            }
            Self::InvalidLinkStateFragment(d) => {
                write!(
                    f,
                    "new_link_state_fragment {d} is not a valid RouterLinkState"
                )
            }
            Self::UnexpectedLinkStateFragment(d) => {
                write!(
                    f,
                    "new_link_state_fragment {d} given without proxy_already_bypassed"
                )
            }
            Self::ClosedPeerSequenceLength(n) => {
                write!(f, "closed_peer_sequence_length {n} cannot be set")
            }
        }
    }
}

impl std::error::Error for DescriptorError {}

impl RouterDescriptor {
    /// Encoded size.
    pub const SIZE: usize = ROUTER_DESCRIPTOR_SIZE;

    /// The flag byte.
    pub fn flags(&self) -> u8 {
        u8::from(self.peer_closed) | (u8::from(self.proxy_already_bypassed) << 1)
    }

    /// Decodes the first 96 bytes of `b`. Reserved bytes and unknown flag
    /// bits are ignored, as Chrome ignores them.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        prefix_ref::<RouterDescriptorWire>(b, RouterDescriptorWire::NAME)
            .map(|w| Self::from_wire(*w))
    }

    /// From the 96-byte layout.
    pub fn from_wire(w: RouterDescriptorWire) -> Self {
        Self {
            closed_peer_sequence_length: SequenceNumber(w.closed_peer_sequence_length.get()),
            new_sublink: SublinkId(w.new_sublink.get()),
            new_link_state_fragment: FragmentDescriptor::from_wire(w.new_link_state_fragment),
            new_decaying_sublink: SublinkId(w.new_decaying_sublink.get()),
            next_outgoing_sequence_number: SequenceNumber(w.next_outgoing_sequence_number.get()),
            next_incoming_sequence_number: SequenceNumber(w.next_incoming_sequence_number.get()),
            decaying_incoming_sequence_length: SequenceNumber(
                w.decaying_incoming_sequence_length.get(),
            ),
            peer_closed: w.flags & FLAG_PEER_CLOSED != 0,
            proxy_already_bypassed: w.flags & FLAG_PROXY_ALREADY_BYPASSED != 0,
            proxy_peer_node_name: NodeName::from_wire(w.proxy_peer_node_name),
            proxy_peer_sublink: SublinkId(w.proxy_peer_sublink.get()),
        }
    }

    /// The 96-byte layout (reserved bytes zero).
    pub fn to_wire(&self) -> RouterDescriptorWire {
        RouterDescriptorWire {
            closed_peer_sequence_length: U64::new(self.closed_peer_sequence_length.0),
            new_sublink: U64::new(self.new_sublink.0),
            new_link_state_fragment: self.new_link_state_fragment.to_wire(),
            new_decaying_sublink: U64::new(self.new_decaying_sublink.0),
            next_outgoing_sequence_number: U64::new(self.next_outgoing_sequence_number.0),
            next_incoming_sequence_number: U64::new(self.next_incoming_sequence_number.0),
            decaying_incoming_sequence_length: U64::new(self.decaying_incoming_sequence_length.0),
            flags: self.flags(),
            reserved0: [0; 7],
            proxy_peer_node_name: self.proxy_peer_node_name.to_wire(),
            proxy_peer_sublink: U64::new(self.proxy_peer_sublink.0),
        }
    }

    /// Decodes one element in `format`.
    pub fn decode_format(b: &[u8], format: DescriptorFormat) -> Result<Self, CodecError> {
        match format {
            DescriptorFormat::Current => Self::decode(b),
            DescriptorFormat::PreM117 => LegacyRouterDescriptor::decode(b).map(Into::into),
        }
    }

    /// Appends one element in `format` (a fixed-size layout: cannot fail).
    pub fn encode_format(&self, format: DescriptorFormat, out: &mut Vec<u8>) {
        match format {
            DescriptorFormat::Current => out.extend_from_slice(self.to_wire().wire_bytes()),
            DescriptorFormat::PreM117 => {
                out.extend_from_slice(LegacyRouterDescriptor::from(*self).to_wire().wire_bytes())
            }
        }
    }

    /// The stateless checks of `Router::Deserialize` for a descriptor that
    /// arrived in a parcel on `receiving_sublink` (spec §6.5.1 steps 1, 3, 4, 5).
    pub fn validate(&self, receiving_sublink: SublinkId) -> Result<(), DescriptorError> {
        let bypassed = self.proxy_already_bypassed;
        if self.new_sublink == receiving_sublink {
            return Err(DescriptorError::NewSublinkIsReceivingSublink);
        }
        if bypassed && self.new_sublink == self.new_decaying_sublink {
            return Err(DescriptorError::NewSublinkIsDecayingSublink);
        }
        if bypassed && self.new_decaying_sublink == receiving_sublink {
            return Err(DescriptorError::DecayingSublinkIsReceivingSublink);
        }
        if self.peer_closed {
            let base = self.next_incoming_sequence_number.0;
            let len = self.closed_peer_sequence_length.0;
            if len < base || len - base > crate::limits::MAX_SEQUENCE_GAP {
                return Err(DescriptorError::ClosedPeerSequenceLength(
                    self.closed_peer_sequence_length,
                ));
            }
        }
        let f = self.new_link_state_fragment;
        if bypassed {
            if !crate::memory::is_valid_link_state_fragment(f) {
                return Err(DescriptorError::InvalidLinkStateFragment(f));
            }
        } else if !f.is_null() {
            return Err(DescriptorError::UnexpectedLinkStateFragment(f));
        }
        Ok(())
    }
}

impl fmt::Display for RouterDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{sublink {}", self.new_sublink)?;
        if self.proxy_already_bypassed {
            write!(
                f,
                ", bypassed, state {}, decaying {} (in < {})",
                self.new_link_state_fragment,
                self.new_decaying_sublink,
                self.decaying_incoming_sequence_length
            )?;
        } else if !self.new_link_state_fragment.is_null() {
            write!(f, ", state {}", self.new_link_state_fragment)?;
        }
        write!(
            f,
            ", out {}, in {}",
            self.next_outgoing_sequence_number, self.next_incoming_sequence_number
        )?;
        if self.peer_closed {
            write!(f, ", peer closed at {}", self.closed_peer_sequence_length)?;
        }
        if self.proxy_peer_node_name.is_valid() {
            write!(
                f,
                ", bypass to {} sublink {}",
                self.proxy_peer_node_name, self.proxy_peer_sublink
            )?;
        }
        f.write_str("}")
    }
}

/// The 112-byte RouterDescriptor of Chrome M112-M116 (spec §10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LegacyRouterDescriptor {
    /// The fields shared with the current form.
    pub descriptor: RouterDescriptor,
    /// Unused; sent as 0.
    pub num_bytes_produced: u64,
    /// Unused; sent as 0.
    pub num_bytes_consumed: u64,
}

impl LegacyRouterDescriptor {
    /// Encoded size.
    pub const SIZE: usize = LEGACY_ROUTER_DESCRIPTOR_SIZE;

    /// Decodes the first 112 bytes of `b`.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        prefix_ref::<LegacyRouterDescriptorWire>(b, LegacyRouterDescriptorWire::NAME)
            .map(|w| Self::from_wire(*w))
    }

    /// From the 112-byte layout: the fields the forms share, plus the two
    /// unused counters.
    pub fn from_wire(w: LegacyRouterDescriptorWire) -> Self {
        let shared = RouterDescriptorWire {
            closed_peer_sequence_length: w.closed_peer_sequence_length,
            new_sublink: w.new_sublink,
            new_link_state_fragment: w.new_link_state_fragment,
            new_decaying_sublink: w.new_decaying_sublink,
            next_outgoing_sequence_number: w.next_outgoing_sequence_number,
            next_incoming_sequence_number: w.next_incoming_sequence_number,
            decaying_incoming_sequence_length: w.decaying_incoming_sequence_length,
            flags: w.flags,
            reserved0: w.reserved,
            proxy_peer_node_name: w.proxy_peer_node_name,
            proxy_peer_sublink: w.proxy_peer_sublink,
        };
        Self {
            descriptor: RouterDescriptor::from_wire(shared),
            num_bytes_produced: w.num_bytes_produced.get(),
            num_bytes_consumed: w.num_bytes_consumed.get(),
        }
    }

    /// The 112-byte layout (reserved bytes zero).
    pub fn to_wire(&self) -> LegacyRouterDescriptorWire {
        let d = self.descriptor.to_wire();
        LegacyRouterDescriptorWire {
            closed_peer_sequence_length: d.closed_peer_sequence_length,
            new_sublink: d.new_sublink,
            new_link_state_fragment: d.new_link_state_fragment,
            new_decaying_sublink: d.new_decaying_sublink,
            next_outgoing_sequence_number: d.next_outgoing_sequence_number,
            num_bytes_produced: U64::new(self.num_bytes_produced),
            next_incoming_sequence_number: d.next_incoming_sequence_number,
            decaying_incoming_sequence_length: d.decaying_incoming_sequence_length,
            num_bytes_consumed: U64::new(self.num_bytes_consumed),
            flags: d.flags,
            reserved: [0; 7],
            proxy_peer_node_name: d.proxy_peer_node_name,
            proxy_peer_sublink: d.proxy_peer_sublink,
        }
    }
}

impl From<LegacyRouterDescriptor> for RouterDescriptor {
    fn from(l: LegacyRouterDescriptor) -> Self {
        l.descriptor
    }
}

impl From<RouterDescriptor> for LegacyRouterDescriptor {
    fn from(descriptor: RouterDescriptor) -> Self {
        Self {
            descriptor,
            num_bytes_produced: 0,
            num_bytes_consumed: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_forms() {
        let d = RouterDescriptor {
            closed_peer_sequence_length: SequenceNumber(3),
            new_sublink: SublinkId(13),
            new_link_state_fragment: FragmentDescriptor::new(0, 1216, 64),
            new_decaying_sublink: SublinkId(14),
            next_outgoing_sequence_number: SequenceNumber(1),
            next_incoming_sequence_number: SequenceNumber(2),
            decaying_incoming_sequence_length: SequenceNumber(5),
            peer_closed: true,
            proxy_already_bypassed: true,
            proxy_peer_node_name: NodeName { high: 7, low: 8 },
            proxy_peer_sublink: SublinkId(9),
        };
        assert_eq!(RouterDescriptor::decode(d.to_wire().wire_bytes()), Ok(d));
        let l = LegacyRouterDescriptor::from(d);
        let wire = l.to_wire();
        let bytes = wire.wire_bytes();
        assert_eq!(bytes[80], 3);
        assert_eq!(LegacyRouterDescriptor::decode(bytes), Ok(l));
        assert_eq!(
            RouterDescriptorWire::field_at(64),
            Some("RouterDescriptor.flags")
        );
        assert_eq!(
            LegacyRouterDescriptorWire::field_at(50),
            Some("RouterDescriptor.num_bytes_produced")
        );
    }

    #[test]
    fn validation_matches_router_deserialize() {
        let good = RouterDescriptor {
            new_sublink: SublinkId(13),
            new_link_state_fragment: FragmentDescriptor::new(0, 1216, 64),
            new_decaying_sublink: SublinkId(14),
            proxy_already_bypassed: true,
            ..Default::default()
        };
        assert_eq!(good.validate(SublinkId(12)), Ok(()));
        assert_eq!(
            good.validate(SublinkId(13)),
            Err(DescriptorError::NewSublinkIsReceivingSublink)
        );
        assert_eq!(
            good.validate(SublinkId(14)),
            Err(DescriptorError::DecayingSublinkIsReceivingSublink)
        );
        let unbypassed = RouterDescriptor {
            proxy_already_bypassed: false,
            ..good
        };
        assert!(matches!(
            unbypassed.validate(SublinkId(12)),
            Err(DescriptorError::UnexpectedLinkStateFragment(_))
        ));
        let b1 = RouterDescriptor {
            new_link_state_fragment: FragmentDescriptor::NULL,
            ..unbypassed
        };
        assert_eq!(b1.validate(SublinkId(12)), Ok(()));
    }
}
