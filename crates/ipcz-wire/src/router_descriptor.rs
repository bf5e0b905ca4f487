//! `RouterDescriptor`: how a portal moves inside a parcel (spec §6.5), in the
//! 96-byte form of M117 and later and the 112-byte form before (§10.2).

use core::fmt;
use core::ops::Range;

use crate::codec;
use crate::limits::{LEGACY_ROUTER_DESCRIPTOR_SIZE, ROUTER_DESCRIPTOR_SIZE};
use crate::types::{FragmentDescriptor, NodeName, SequenceNumber, SublinkId};

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
}

/// Byte ranges of the fields of the 96-byte descriptor.
pub mod field {
    use core::ops::Range;
    /// `closed_peer_sequence_length` (u64).
    pub const CLOSED_PEER_SEQUENCE_LENGTH: Range<usize> = 0..8;
    /// `new_sublink` (u64).
    pub const NEW_SUBLINK: Range<usize> = 8..16;
    /// `new_link_state_fragment` (FragmentDescriptor).
    pub const NEW_LINK_STATE_FRAGMENT: Range<usize> = 16..32;
    /// `new_decaying_sublink` (u64).
    pub const NEW_DECAYING_SUBLINK: Range<usize> = 32..40;
    /// `next_outgoing_sequence_number` (u64).
    pub const NEXT_OUTGOING_SEQUENCE_NUMBER: Range<usize> = 40..48;
    /// `next_incoming_sequence_number` (u64).
    pub const NEXT_INCOMING_SEQUENCE_NUMBER: Range<usize> = 48..56;
    /// `decaying_incoming_sequence_length` (u64).
    pub const DECAYING_INCOMING_SEQUENCE_LENGTH: Range<usize> = 56..64;
    /// Flag byte: bit 0 `peer_closed`, bit 1 `proxy_already_bypassed`.
    pub const FLAGS: Range<usize> = 64..65;
    /// `reserved0` (7 bytes).
    pub const RESERVED0: Range<usize> = 65..72;
    /// `proxy_peer_node_name` (NodeName).
    pub const PROXY_PEER_NODE_NAME: Range<usize> = 72..88;
    /// `proxy_peer_sublink` (u64).
    pub const PROXY_PEER_SUBLINK: Range<usize> = 88..96;
}

/// Byte ranges of the fields of the 112-byte pre-M117 descriptor.
pub mod legacy_field {
    use core::ops::Range;
    /// `closed_peer_sequence_length` (u64).
    pub const CLOSED_PEER_SEQUENCE_LENGTH: Range<usize> = 0..8;
    /// `new_sublink` (u64).
    pub const NEW_SUBLINK: Range<usize> = 8..16;
    /// `new_link_state_fragment` (FragmentDescriptor).
    pub const NEW_LINK_STATE_FRAGMENT: Range<usize> = 16..32;
    /// `new_decaying_sublink` (u64).
    pub const NEW_DECAYING_SUBLINK: Range<usize> = 32..40;
    /// `next_outgoing_sequence_number` (u64).
    pub const NEXT_OUTGOING_SEQUENCE_NUMBER: Range<usize> = 40..48;
    /// `num_bytes_produced` (u64, unused).
    pub const NUM_BYTES_PRODUCED: Range<usize> = 48..56;
    /// `next_incoming_sequence_number` (u64).
    pub const NEXT_INCOMING_SEQUENCE_NUMBER: Range<usize> = 56..64;
    /// `decaying_incoming_sequence_length` (u64).
    pub const DECAYING_INCOMING_SEQUENCE_LENGTH: Range<usize> = 64..72;
    /// `num_bytes_consumed` (u64, unused).
    pub const NUM_BYTES_CONSUMED: Range<usize> = 72..80;
    /// Flag byte.
    pub const FLAGS: Range<usize> = 80..81;
    /// `reserved` (7 bytes).
    pub const RESERVED: Range<usize> = 81..88;
    /// `proxy_peer_node_name` (NodeName).
    pub const PROXY_PEER_NODE_NAME: Range<usize> = 88..104;
    /// `proxy_peer_sublink` (u64).
    pub const PROXY_PEER_SUBLINK: Range<usize> = 104..112;
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

fn u64_in(b: &[u8], r: Range<usize>) -> u64 {
    codec::u64_at(b, r.start).unwrap_or(0)
}

fn sub(b: &[u8], r: Range<usize>) -> SublinkId {
    SublinkId(u64_in(b, r))
}

fn seq(b: &[u8], r: Range<usize>) -> SequenceNumber {
    SequenceNumber(u64_in(b, r))
}

fn name(b: &[u8], r: Range<usize>) -> NodeName {
    NodeName {
        high: codec::u64_at(b, r.start).unwrap_or(0),
        low: codec::u64_at(b, r.start + 8).unwrap_or(0),
    }
}

impl RouterDescriptor {
    /// Encoded size.
    pub const SIZE: usize = ROUTER_DESCRIPTOR_SIZE;

    /// The flag byte.
    pub fn flags(&self) -> u8 {
        u8::from(self.peer_closed) | (u8::from(self.proxy_already_bypassed) << 1)
    }

    /// Decodes the first 96 bytes of `b`.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let b = b.get(..Self::SIZE)?;
        let flags = codec::u8_at(b, field::FLAGS.start)?;
        Some(Self {
            closed_peer_sequence_length: seq(b, field::CLOSED_PEER_SEQUENCE_LENGTH),
            new_sublink: sub(b, field::NEW_SUBLINK),
            new_link_state_fragment: FragmentDescriptor::read(
                b,
                field::NEW_LINK_STATE_FRAGMENT.start,
            )?,
            new_decaying_sublink: sub(b, field::NEW_DECAYING_SUBLINK),
            next_outgoing_sequence_number: seq(b, field::NEXT_OUTGOING_SEQUENCE_NUMBER),
            next_incoming_sequence_number: seq(b, field::NEXT_INCOMING_SEQUENCE_NUMBER),
            decaying_incoming_sequence_length: seq(b, field::DECAYING_INCOMING_SEQUENCE_LENGTH),
            peer_closed: flags & FLAG_PEER_CLOSED != 0,
            proxy_already_bypassed: flags & FLAG_PROXY_ALREADY_BYPASSED != 0,
            proxy_peer_node_name: name(b, field::PROXY_PEER_NODE_NAME),
            proxy_peer_sublink: sub(b, field::PROXY_PEER_SUBLINK),
        })
    }

    /// The 96 wire bytes.
    pub fn to_bytes(&self) -> [u8; ROUTER_DESCRIPTOR_SIZE] {
        let mut b = [0u8; ROUTER_DESCRIPTOR_SIZE];
        codec::put_u64(
            &mut b,
            field::CLOSED_PEER_SEQUENCE_LENGTH.start,
            self.closed_peer_sequence_length.0,
        );
        codec::put_u64(&mut b, field::NEW_SUBLINK.start, self.new_sublink.0);
        codec::put(
            &mut b,
            field::NEW_LINK_STATE_FRAGMENT.start,
            &self.new_link_state_fragment.to_bytes(),
        );
        codec::put_u64(
            &mut b,
            field::NEW_DECAYING_SUBLINK.start,
            self.new_decaying_sublink.0,
        );
        codec::put_u64(
            &mut b,
            field::NEXT_OUTGOING_SEQUENCE_NUMBER.start,
            self.next_outgoing_sequence_number.0,
        );
        codec::put_u64(
            &mut b,
            field::NEXT_INCOMING_SEQUENCE_NUMBER.start,
            self.next_incoming_sequence_number.0,
        );
        codec::put_u64(
            &mut b,
            field::DECAYING_INCOMING_SEQUENCE_LENGTH.start,
            self.decaying_incoming_sequence_length.0,
        );
        b[field::FLAGS.start] = self.flags();
        codec::put_u64(
            &mut b,
            field::PROXY_PEER_NODE_NAME.start,
            self.proxy_peer_node_name.high,
        );
        codec::put_u64(
            &mut b,
            field::PROXY_PEER_NODE_NAME.start + 8,
            self.proxy_peer_node_name.low,
        );
        codec::put_u64(
            &mut b,
            field::PROXY_PEER_SUBLINK.start,
            self.proxy_peer_sublink.0,
        );
        b
    }

    /// Decodes one element in `format`.
    pub fn decode_format(b: &[u8], format: DescriptorFormat) -> Option<Self> {
        match format {
            DescriptorFormat::Current => Self::decode(b),
            DescriptorFormat::PreM117 => LegacyRouterDescriptor::decode(b).map(Into::into),
        }
    }

    /// Appends one element in `format`.
    pub fn encode_format(&self, format: DescriptorFormat, out: &mut Vec<u8>) {
        match format {
            DescriptorFormat::Current => out.extend_from_slice(&self.to_bytes()),
            DescriptorFormat::PreM117 => {
                out.extend_from_slice(&LegacyRouterDescriptor::from(*self).to_bytes())
            }
        }
    }

    /// Name of the field at byte `at` of the encoding in `format`.
    pub fn field_at(at: usize, format: DescriptorFormat) -> &'static str {
        let table: &[(Range<usize>, &'static str)] = match format {
            DescriptorFormat::Current => &[
                (
                    field::CLOSED_PEER_SEQUENCE_LENGTH,
                    "closed_peer_sequence_length",
                ),
                (field::NEW_SUBLINK, "new_sublink"),
                (field::NEW_LINK_STATE_FRAGMENT, "new_link_state_fragment"),
                (field::NEW_DECAYING_SUBLINK, "new_decaying_sublink"),
                (
                    field::NEXT_OUTGOING_SEQUENCE_NUMBER,
                    "next_outgoing_sequence_number",
                ),
                (
                    field::NEXT_INCOMING_SEQUENCE_NUMBER,
                    "next_incoming_sequence_number",
                ),
                (
                    field::DECAYING_INCOMING_SEQUENCE_LENGTH,
                    "decaying_incoming_sequence_length",
                ),
                (field::FLAGS, "flags"),
                (field::RESERVED0, "reserved0"),
                (field::PROXY_PEER_NODE_NAME, "proxy_peer_node_name"),
                (field::PROXY_PEER_SUBLINK, "proxy_peer_sublink"),
            ],
            DescriptorFormat::PreM117 => &[
                (
                    legacy_field::CLOSED_PEER_SEQUENCE_LENGTH,
                    "closed_peer_sequence_length",
                ),
                (legacy_field::NEW_SUBLINK, "new_sublink"),
                (
                    legacy_field::NEW_LINK_STATE_FRAGMENT,
                    "new_link_state_fragment",
                ),
                (legacy_field::NEW_DECAYING_SUBLINK, "new_decaying_sublink"),
                (
                    legacy_field::NEXT_OUTGOING_SEQUENCE_NUMBER,
                    "next_outgoing_sequence_number",
                ),
                (legacy_field::NUM_BYTES_PRODUCED, "num_bytes_produced"),
                (
                    legacy_field::NEXT_INCOMING_SEQUENCE_NUMBER,
                    "next_incoming_sequence_number",
                ),
                (
                    legacy_field::DECAYING_INCOMING_SEQUENCE_LENGTH,
                    "decaying_incoming_sequence_length",
                ),
                (legacy_field::NUM_BYTES_CONSUMED, "num_bytes_consumed"),
                (legacy_field::FLAGS, "flags"),
                (legacy_field::RESERVED, "reserved"),
                (legacy_field::PROXY_PEER_NODE_NAME, "proxy_peer_node_name"),
                (legacy_field::PROXY_PEER_SUBLINK, "proxy_peer_sublink"),
            ],
        };
        table
            .iter()
            .find(|(r, _)| r.contains(&at))
            .map_or("trailing bytes", |(_, n)| n)
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
    pub fn decode(b: &[u8]) -> Option<Self> {
        use legacy_field as f;
        let b = b.get(..Self::SIZE)?;
        let flags = codec::u8_at(b, f::FLAGS.start)?;
        Some(Self {
            descriptor: RouterDescriptor {
                closed_peer_sequence_length: seq(b, f::CLOSED_PEER_SEQUENCE_LENGTH),
                new_sublink: sub(b, f::NEW_SUBLINK),
                new_link_state_fragment: FragmentDescriptor::read(
                    b,
                    f::NEW_LINK_STATE_FRAGMENT.start,
                )?,
                new_decaying_sublink: sub(b, f::NEW_DECAYING_SUBLINK),
                next_outgoing_sequence_number: seq(b, f::NEXT_OUTGOING_SEQUENCE_NUMBER),
                next_incoming_sequence_number: seq(b, f::NEXT_INCOMING_SEQUENCE_NUMBER),
                decaying_incoming_sequence_length: seq(b, f::DECAYING_INCOMING_SEQUENCE_LENGTH),
                peer_closed: flags & FLAG_PEER_CLOSED != 0,
                proxy_already_bypassed: flags & FLAG_PROXY_ALREADY_BYPASSED != 0,
                proxy_peer_node_name: name(b, f::PROXY_PEER_NODE_NAME),
                proxy_peer_sublink: sub(b, f::PROXY_PEER_SUBLINK),
            },
            num_bytes_produced: u64_in(b, f::NUM_BYTES_PRODUCED),
            num_bytes_consumed: u64_in(b, f::NUM_BYTES_CONSUMED),
        })
    }

    /// The 112 wire bytes.
    pub fn to_bytes(&self) -> [u8; LEGACY_ROUTER_DESCRIPTOR_SIZE] {
        use legacy_field as f;
        let d = &self.descriptor;
        let mut b = [0u8; LEGACY_ROUTER_DESCRIPTOR_SIZE];
        codec::put_u64(
            &mut b,
            f::CLOSED_PEER_SEQUENCE_LENGTH.start,
            d.closed_peer_sequence_length.0,
        );
        codec::put_u64(&mut b, f::NEW_SUBLINK.start, d.new_sublink.0);
        codec::put(
            &mut b,
            f::NEW_LINK_STATE_FRAGMENT.start,
            &d.new_link_state_fragment.to_bytes(),
        );
        codec::put_u64(
            &mut b,
            f::NEW_DECAYING_SUBLINK.start,
            d.new_decaying_sublink.0,
        );
        codec::put_u64(
            &mut b,
            f::NEXT_OUTGOING_SEQUENCE_NUMBER.start,
            d.next_outgoing_sequence_number.0,
        );
        codec::put_u64(&mut b, f::NUM_BYTES_PRODUCED.start, self.num_bytes_produced);
        codec::put_u64(
            &mut b,
            f::NEXT_INCOMING_SEQUENCE_NUMBER.start,
            d.next_incoming_sequence_number.0,
        );
        codec::put_u64(
            &mut b,
            f::DECAYING_INCOMING_SEQUENCE_LENGTH.start,
            d.decaying_incoming_sequence_length.0,
        );
        codec::put_u64(&mut b, f::NUM_BYTES_CONSUMED.start, self.num_bytes_consumed);
        b[f::FLAGS.start] = d.flags();
        codec::put_u64(
            &mut b,
            f::PROXY_PEER_NODE_NAME.start,
            d.proxy_peer_node_name.high,
        );
        codec::put_u64(
            &mut b,
            f::PROXY_PEER_NODE_NAME.start + 8,
            d.proxy_peer_node_name.low,
        );
        codec::put_u64(&mut b, f::PROXY_PEER_SUBLINK.start, d.proxy_peer_sublink.0);
        b
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
        assert_eq!(RouterDescriptor::decode(&d.to_bytes()), Some(d));
        let l = LegacyRouterDescriptor::from(d);
        let bytes = l.to_bytes();
        assert_eq!(bytes[80], 3);
        assert_eq!(LegacyRouterDescriptor::decode(&bytes), Some(l));
        assert_eq!(
            RouterDescriptor::field_at(64, DescriptorFormat::Current),
            "flags"
        );
        assert_eq!(
            RouterDescriptor::field_at(50, DescriptorFormat::PreM117),
            "num_bytes_produced"
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
