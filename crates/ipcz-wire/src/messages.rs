//! The node message catalog (spec §3, Chromium's `node_messages_generator.h`):
//! one struct per message with every version. Offsets below are message
//! offsets for a 24-byte header, exactly as in the spec tables; fields of a
//! version above 0 are `Option`s that are `None` when an older sender left
//! the version out.

use core::fmt;

use crate::error::MessageError;
use mojo_wire_kit::CodecError;

use crate::message::{ArrayNames, Field, FieldKind, Params, ParamsReader, ParamsWriter, PartNames};
use crate::router_descriptor::RouterDescriptor;
use crate::types::{
    BufferId, DriverObjectArray, DriverObjectIndex, FragmentDescriptor, HandleType, LinkSide,
    NodeName, NodeType, ReferralId, SequenceNumber, SublinkId,
};

const H: usize = crate::limits::MESSAGE_HEADER_SIZE;

/// One params field of a message layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// Field name.
    pub name: &'static str,
    /// Message offset (for a 24-byte header).
    pub offset: usize,
    /// Bytes in the params block.
    pub width: usize,
    /// Params version that added it.
    pub version: u8,
    /// Encoding.
    pub kind: FieldKind,
}

/// The layout of one message: version blocks and fields, as Chrome defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLayout {
    /// Message name.
    pub name: &'static str,
    /// Message id.
    pub id: MessageId,
    /// `StructHeader.size` with every version.
    pub params_size: usize,
    /// Message byte ranges `[start, end)` of each version block, V0 first.
    pub versions: &'static [(usize, usize)],
    /// Every field, in declaration order.
    pub fields: &'static [FieldInfo],
}

/// A message whose id this crate does not know: kept raw so it can be
/// skipped (as Chrome does) or forwarded byte for byte.
///
/// The header's reserved bytes are kept too: the receiver does not check
/// array alignment or overlap (spec 2.5), so the driver object table or an
/// object's byte array may start inside the header and read them. Only a
/// verbatim header keeps such a message decoding the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownMessage<'a> {
    /// The message id.
    pub id: MessageId,
    /// The header's `reserved0` (bytes 3..8), written back unchanged.
    pub reserved0: [u8; 5],
    /// The header's `driver_object_data_array`, written back unchanged.
    pub driver_object_data_array: u32,
    /// The header's `reserved1` (bytes 20..24), written back unchanged.
    pub reserved1: [u8; 4],
    /// Everything after the header (params, arrays, driver objects).
    pub body: &'a [u8],
    /// fds the frame carried.
    pub num_fds: usize,
}

macro_rules! messages {
    (
        $(
            $(#[$meta:meta])*
            $name:ident $(<$lt:lifetime>)? = $id:literal, params $psize:literal {
                v0 $v0s:literal .. $v0e:literal {
                    $( $(#[$fmeta:meta])* $field:ident : $fty:ty = $at:literal, )*
                }
                $( v1 $v1s:literal .. $v1e:literal {
                    $( $(#[$f1meta:meta])* $field1:ident : $f1ty:ty = $at1:literal, )*
                } )?
            }
        )*
    ) => {
        /// An ipcz message id (u8). Unknown ids are valid values.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct MessageId(pub u8);

        #[allow(non_upper_case_globals)]
        impl MessageId {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($id), ").")]
                pub const $name: Self = Self($id);
            )*

            /// The message name, `None` for ids this crate does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $id => Some(stringify!($name)), )*
                    _ => None,
                }
            }

            /// Whether the id names a message of the catalog.
            pub fn is_known(self) -> bool {
                self.name().is_some()
            }

            /// `StructHeader.size` Chrome sends for this message (all versions).
            pub fn params_size(self) -> Option<usize> {
                match self.0 {
                    $( $id => Some($psize), )*
                    _ => None,
                }
            }

            /// Every known id.
            pub const ALL: &'static [MessageId] = &[$( Self($id), )*];

            /// The message's layout, `None` for ids this crate does not know.
            #[allow(clippy::extra_unused_lifetimes)]
            pub fn layout<'a>(self) -> Option<&'static MessageLayout> {
                match self.0 {
                    $( $id => Some(<$name $(<$lt>)? as Params<'a>>::LAYOUT), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for MessageId {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "MessageId({})", self.0),
                }
            }
        }

        impl fmt::Display for MessageId {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "unknown message {}", self.0),
                }
            }
        }

        $(
            $(#[$meta])*
            #[derive(Clone, Debug, PartialEq, Eq, Default)]
            pub struct $name $(<$lt>)? {
                $( $(#[$fmeta])* pub $field: $fty, )*
                $( $( $(#[$f1meta])* #[doc = "(Version 1; `None` if the sender left V1 out.)"] pub $field1: Option<$f1ty>, )* )?
            }

            impl<'a> Params<'a> for $name $(<$lt>)? {
                const NAME: &'static str = stringify!($name);
                const LAYOUT: &'static MessageLayout = &MessageLayout {
                    name: stringify!($name),
                    id: MessageId($id),
                    params_size: $psize,
                    versions: &[($v0s, $v0e) $(, ($v1s, $v1e))?],
                    fields: &[
                        $( FieldInfo {
                            name: stringify!($field),
                            offset: $at,
                            width: <$fty as Field<'a>>::WIDTH,
                            version: 0,
                            kind: <$fty as Field<'a>>::KIND,
                        }, )*
                        $( $( FieldInfo {
                            name: stringify!($field1),
                            offset: $at1,
                            width: <$f1ty as Field<'a>>::WIDTH,
                            version: 1,
                            kind: <$f1ty as Field<'a>>::KIND,
                        }, )* )?
                    ],
                };

                #[allow(unused_mut, unused_variables, unused_assignments)]
                fn decode(r: &mut ParamsReader<'a>, s: usize) -> Result<(Self, usize), MessageError> {
                    let (v0s, v0e) = ($v0s - H, $v0e - H);
                    if v0s >= s || v0e > s {
                        return Err(MessageError::MissingV0 {
                            message: Self::NAME,
                            size: s as u32,
                            needed: v0e,
                        });
                    }
                    let mut end = v0e;
                    $(
                        let $field = <$fty as Field<'a>>::read(
                            r,
                            $at,
                            concat!(stringify!($name), ".", stringify!($field)),
                        ).map_err(|error| {
                            MessageError::Field { message: Self::NAME, field: stringify!($field), error }
                        })?;
                    )*
                    $(
                        let (v1s, v1e) = ($v1s - H, $v1e - H);
                        let present = v1s < s && v1e <= s;
                        if present {
                            end = v1e;
                        }
                        $(
                            let $field1 = if present {
                                Some(<$f1ty as Field<'a>>::read(
                                    r,
                                    $at1,
                                    concat!(stringify!($name), ".", stringify!($field1)),
                                ).map_err(|error| {
                                    MessageError::Field { message: Self::NAME, field: stringify!($field1), error }
                                })?)
                            } else {
                                None
                            };
                        )*
                    )?
                    Ok((Self { $( $field, )* $( $( $field1, )* )? }, end))
                }

                #[allow(unused_mut)]
                fn params_size(&self, has_extension: bool) -> usize {
                    let mut size = $v0e - H;
                    $(
                        if has_extension $( || self.$field1.is_some() )* {
                            size = $v1e - H;
                        }
                    )?
                    let _ = has_extension;
                    size
                }

                fn write_inline(
                    &self,
                    w: &mut ParamsWriter<'_, '_>,
                    params_size: usize,
                ) -> Result<(), CodecError> {
                    $(
                        let name = concat!(stringify!($name), ".", stringify!($field));
                        self.$field.write(w, $at, name)?;
                        w.field_span($at, <$fty as Field<'a>>::WIDTH, name);
                    )*
                    $(
                        if params_size >= $v1e - H {
                            $(
                                let name = concat!(stringify!($name), ".", stringify!($field1));
                                match &self.$field1 {
                                    Some(v) => v.write(w, $at1, name)?,
                                    None => <$f1ty as Default>::default().write(w, $at1, name)?,
                                }
                                w.field_span($at1, <$f1ty as Field<'a>>::WIDTH, name);
                            )*
                        }
                    )?
                    let _ = params_size;
                    Ok(())
                }

                fn write_dynamic(
                    &self,
                    w: &mut ParamsWriter<'_, '_>,
                    params_size: usize,
                ) -> Result<(), CodecError> {
                    $( self.$field.write_dynamic(w, $at, ArrayNames {
                        header: concat!(stringify!($name), ".", stringify!($field), " (array header)"),
                        elements: concat!(stringify!($name), ".", stringify!($field)),
                    })?; )*
                    $(
                        if params_size >= $v1e - H {
                            $(
                                if let Some(v) = &self.$field1 {
                                    v.write_dynamic(w, $at1, ArrayNames {
                                        header: concat!(stringify!($name), ".", stringify!($field1), " (array header)"),
                                        elements: concat!(stringify!($name), ".", stringify!($field1)),
                                    })?;
                                }
                            )*
                        }
                    )?
                    let _ = params_size;
                    Ok(())
                }
            }

            impl $(<$lt>)? $name $(<$lt>)? {
                /// Highest version present.
                pub fn version(&self) -> u8 {
                    $( if false $( || self.$field1.is_some() )* { return 1; } )?
                    0
                }

                /// Appends ` field=value` for every non-padding field.
                pub(crate) fn fmt_fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    $(
                        if !is_filler(stringify!($field)) {
                            write!(f, " {}=", stringify!($field))?;
                            Field::show(&self.$field, f)?;
                        }
                    )*
                    $( $(
                        if let Some(v) = &self.$field1 {
                            write!(f, " {}=", stringify!($field1))?;
                            Field::show(v, f)?;
                        }
                    )* )?
                    Ok(())
                }
            }

            impl<'a> From<$name $(<$lt>)?> for Body<'a> {
                fn from(v: $name $(<$lt>)?) -> Self {
                    Body::$name(v)
                }
            }
        )*

        /// The params of a message, by message id.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Body<'a> {
            $(
                #[doc = concat!("Message ", stringify!($id), ".")]
                $name($name $(<$lt>)?),
            )*
            /// An id this crate does not know.
            Unknown(UnknownMessage<'a>),
        }

        impl<'a> Body<'a> {
            /// The message id.
            pub fn id(&self) -> MessageId {
                match self {
                    $( Self::$name(_) => MessageId($id), )*
                    Self::Unknown(u) => u.id,
                }
            }

            /// Span names of the parts outside the fields.
            pub(crate) fn part_names(&self) -> PartNames {
                match self {
                    $( Self::$name(_) => PartNames {
                        struct_size: concat!(stringify!($name), " StructHeader.size"),
                        struct_padding: concat!(stringify!($name), " StructHeader.padding"),
                        newer_params: concat!(stringify!($name), " params of a newer version"),
                        padding: concat!("padding of ", stringify!($name)),
                        body: concat!(stringify!($name), " body"),
                    }, )*
                    Self::Unknown(_) => PartNames {
                        struct_size: "unknown StructHeader.size",
                        struct_padding: "unknown StructHeader.padding",
                        newer_params: "unknown params of a newer version",
                        padding: "padding of unknown",
                        body: "unknown body",
                    },
                }
            }

            /// The message name (`"unknown"` for unknown ids).
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$name(_) => stringify!($name), )*
                    Self::Unknown(_) => "unknown",
                }
            }

            /// Highest params version present (0 for unknown messages).
            pub fn version(&self) -> u8 {
                match self {
                    $( Self::$name(m) => m.version(), )*
                    Self::Unknown(_) => 0,
                }
            }

            pub(crate) fn decode_known(
                id: MessageId,
                r: &mut ParamsReader<'a>,
                s: usize,
            ) -> Result<(Self, usize), MessageError> {
                match id.0 {
                    $( $id => {
                        let (v, end) = <$name $(<$lt>)? as Params<'a>>::decode(r, s)?;
                        Ok((Self::$name(v), end))
                    } )*
                    _ => Ok((
                        Self::Unknown(UnknownMessage {
                            id,
                            reserved0: [0; 5],
                            driver_object_data_array: 0,
                            reserved1: [0; 4],
                            body: &[],
                            num_fds: 0,
                        }),
                        0,
                    )),
                }
            }

            pub(crate) fn params_size(&self, has_extension: bool) -> usize {
                match self {
                    $( Self::$name(m) => m.params_size(has_extension), )*
                    Self::Unknown(_) => 0,
                }
            }

            pub(crate) fn write_inline(
                &self,
                w: &mut ParamsWriter<'_, '_>,
                params_size: usize,
            ) -> Result<(), CodecError> {
                match self {
                    $( Self::$name(m) => m.write_inline(w, params_size), )*
                    Self::Unknown(_) => Ok(()),
                }
            }

            pub(crate) fn write_dynamic(
                &self,
                w: &mut ParamsWriter<'_, '_>,
                params_size: usize,
            ) -> Result<(), CodecError> {
                match self {
                    $( Self::$name(m) => m.write_dynamic(w, params_size), )*
                    Self::Unknown(_) => Ok(()),
                }
            }

            /// Appends ` field=value` for every non-padding field.
            pub(crate) fn fmt_fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( Self::$name(m) => m.fmt_fields(f), )*
                    Self::Unknown(u) => write!(f, " id={} body={}B", u.id.0, u.body.len()),
                }
            }
        }
    };
}

fn is_filler(name: &str) -> bool {
    name.starts_with("padding") || name.starts_with("reserved")
}

messages! {
    /// Broker's greeting to a new non-broker (handshake).
    ConnectFromBrokerToNonBroker = 0, params 64 {
        v0 32..80 {
            /// The broker's name.
            broker_name: NodeName = 32,
            /// Name assigned to the receiving non-broker.
            receiver_name: NodeName = 48,
            /// 0.
            protocol_version: u32 = 64,
            /// Initial portals on the broker side.
            num_initial_portals: u32 = 68,
            /// SharedBuffer: the link's primary buffer.
            buffer: DriverObjectIndex = 72,
            /// 0.
            padding: u32 = 76,
        }
        v1 80..88 {
            /// The broker's features.
            features: Vec<u64> = 80,
        }
    }

    /// Non-broker's greeting to its broker (handshake).
    ConnectFromNonBrokerToBroker = 1, params 24 {
        v0 32..40 {
            /// 0.
            protocol_version: u32 = 32,
            /// Initial portals on the sender's side.
            num_initial_portals: u32 = 36,
        }
        v1 40..48 {
            /// The sender's features.
            features: Vec<u64> = 40,
        }
    }

    /// Non-broker asks its broker to accept a referred node.
    ReferNonBroker = 2, params 24 {
        v0 32..48 {
            /// Referral id.
            referral_id: ReferralId = 32,
            /// Initial portals the referrer assumes.
            num_initial_portals: u32 = 40,
            /// Transport to the referred node.
            transport: DriverObjectIndex = 44,
        }
    }

    /// Referred node's greeting to the broker it inherits.
    ConnectToReferredBroker = 3, params 24 {
        v0 32..40 {
            /// 0.
            protocol_version: u32 = 32,
            /// Initial portals on the sender's side.
            num_initial_portals: u32 = 36,
        }
        v1 40..48 {
            /// The sender's features.
            features: Vec<u64> = 40,
        }
    }

    /// Broker's answer to a referred node.
    ConnectToReferredNonBroker = 4, params 88 {
        v0 32..104 {
            /// The receiver's new name.
            name: NodeName = 32,
            /// The broker's name.
            broker_name: NodeName = 48,
            /// The referring node's name.
            referrer_name: NodeName = 64,
            /// 0.
            broker_protocol_version: u32 = 80,
            /// 0.
            referrer_protocol_version: u32 = 84,
            /// The referrer's initial portal count.
            num_initial_portals: u32 = 88,
            /// SharedBuffer: primary buffer of the broker link.
            broker_link_buffer: DriverObjectIndex = 92,
            /// Transport: socket to the referrer.
            referrer_link_transport: DriverObjectIndex = 96,
            /// SharedBuffer: primary buffer of the referrer link.
            referrer_link_buffer: DriverObjectIndex = 100,
        }
        v1 104..112 {
            /// The broker's features.
            broker_features: Vec<u64> = 104,
            /// The referrer's features.
            referrer_features: Vec<u64> = 108,
        }
    }

    /// Broker accepted a referral.
    NonBrokerReferralAccepted = 5, params 56 {
        v0 32..72 {
            /// Referral id.
            referral_id: ReferralId = 32,
            /// 0.
            protocol_version: u32 = 40,
            /// The referred node's initial portal count.
            num_initial_portals: u32 = 44,
            /// The referred node's name.
            name: NodeName = 48,
            /// Transport to the referred node.
            transport: DriverObjectIndex = 64,
            /// SharedBuffer: the new link's primary buffer.
            buffer: DriverObjectIndex = 68,
        }
        v1 72..80 {
            /// The broker's features.
            features: Vec<u64> = 72,
        }
    }

    /// Broker rejected a referral.
    NonBrokerReferralRejected = 6, params 16 {
        v0 32..40 {
            /// Referral id.
            referral_id: ReferralId = 32,
        }
    }

    /// Broker-to-broker greeting.
    ConnectFromBrokerToBroker = 7, params 48 {
        v0 32..64 {
            /// The sender's name.
            name: NodeName = 32,
            /// 0.
            protocol_version: u32 = 48,
            /// Initial portals on the sender's side.
            num_initial_portals: u32 = 52,
            /// SharedBuffer: candidate primary buffer.
            buffer: DriverObjectIndex = 56,
            /// 0.
            padding: u32 = 60,
        }
        v1 64..72 {
            /// The sender's features.
            features: Vec<u64> = 64,
        }
    }

    /// Ask the broker for a link to a node.
    RequestIntroduction = 10, params 24 {
        v0 32..48 {
            /// The node wanted.
            name: NodeName = 32,
        }
    }

    /// Broker introduces a node (no handshake on the new link).
    AcceptIntroduction = 11, params 48 {
        v0 32..64 {
            /// The introduced node.
            name: NodeName = 32,
            /// Side the receiver takes on the new link.
            link_side: LinkSide = 48,
            /// Type of the introduced node.
            remote_node_type: NodeType = 49,
            /// 0.
            padding: u16 = 50,
            /// 0.
            remote_protocol_version: u32 = 52,
            /// Transport: the receiver's end of the new socket.
            transport: DriverObjectIndex = 56,
            /// SharedBuffer: the new link's primary buffer.
            memory: DriverObjectIndex = 60,
        }
        v1 64..72 {
            /// The introduced node's features.
            remote_features: Vec<u64> = 64,
        }
    }

    /// Broker cannot introduce a node.
    RejectIntroduction = 12, params 24 {
        v0 32..48 {
            /// The node that cannot be introduced.
            name: NodeName = 32,
        }
    }

    /// Broker-to-broker introduction request.
    RequestIndirectIntroduction = 13, params 40 {
        v0 32..64 {
            /// Node on the sender's network.
            source_node: NodeName = 32,
            /// Node on the receiver's network.
            target_node: NodeName = 48,
        }
    }

    /// A new BlockAllocator buffer for the link's memory.
    AddBlockBuffer = 14, params 24 {
        v0 32..48 {
            /// The new buffer's id.
            id: BufferId = 32,
            /// Block size of the allocator covering the buffer.
            block_size: u32 = 40,
            /// SharedBuffer (mode unsafe), already initialized.
            buffer: DriverObjectIndex = 44,
        }
    }

    /// One parcel (or subparcel).
    AcceptParcel<'a> = 20, params 72 {
        v0 32..96 {
            /// Receiving router.
            sublink: SublinkId = 32,
            /// The parcel's position in its route direction.
            sequence_number: SequenceNumber = 40,
            /// 0 for the main parcel, 1.. for subparcels.
            subparcel_index: u32 = 48,
            /// Parcels for this sequence number including the main one (1 if none).
            num_subparcels: u32 = 52,
            /// Data in shared memory, or null.
            parcel_fragment: FragmentDescriptor = 56,
            /// Inline data (used when `parcel_fragment` is null).
            parcel_data: &'a [u8] = 72,
            /// One per handle, in handle order.
            handle_types: Vec<HandleType> = 76,
            /// One per portal handle, in order.
            new_routers: Vec<RouterDescriptor> = 80,
            /// 0.
            padding: u32 = 84,
            /// One per boxed driver object handle, in order.
            driver_objects: DriverObjectArray = 88,
        }
    }

    /// The driver-object half of a split parcel (relay only; not on POSIX).
    AcceptParcelDriverObjects = 21, params 32 {
        v0 32..56 {
            /// Receiving router.
            sublink: SublinkId = 32,
            /// The parcel's sequence number.
            sequence_number: SequenceNumber = 40,
            /// The objects.
            driver_objects: DriverObjectArray = 48,
        }
    }

    /// Orderly closure of one side of a route.
    RouteClosed = 22, params 24 {
        v0 32..48 {
            /// Receiving router.
            sublink: SublinkId = 32,
            /// Parcels the closed side sent in total.
            sequence_length: SequenceNumber = 40,
        }
    }

    /// The route broke.
    RouteDisconnected = 23, params 16 {
        v0 32..40 {
            /// Receiving router.
            sublink: SublinkId = 32,
        }
    }

    /// Proxy Y asks its inward peer Z to bypass it.
    BypassPeer = 30, params 48 {
        v0 32..72 {
            /// Receiving router (Z).
            sublink: SublinkId = 32,
            /// 0.
            reserved0: u64 = 40,
            /// Node of X.
            bypass_target_node: NodeName = 48,
            /// Sublink of the X-Y link.
            bypass_target_sublink: SublinkId = 64,
        }
    }

    /// Z tells X about the new central link.
    AcceptBypassLink = 31, params 64 {
        v0 32..88 {
            /// Node of the proxy Y being bypassed.
            current_peer_node: NodeName = 32,
            /// Sublink of the X-Y link (identifies X).
            current_peer_sublink: SublinkId = 48,
            /// Parcels Z sent toward Y.
            inbound_sequence_length_from_bypassed_link: SequenceNumber = 56,
            /// The new X-Z central link on this NodeLink.
            new_sublink: SublinkId = 64,
            /// Its RouterLinkState.
            new_link_state_fragment: FragmentDescriptor = 72,
        }
    }

    /// X tells proxy Y its final sequence lengths.
    StopProxying = 32, params 32 {
        v0 32..56 {
            /// Receiving router (Y).
            sublink: SublinkId = 32,
            /// Final parcels Y receives from X.
            inbound_sequence_length: SequenceNumber = 40,
            /// Final parcels Y receives from Z.
            outbound_sequence_length: SequenceNumber = 48,
        }
    }

    /// X tells Z how many parcels Y still forwards.
    ProxyWillStop = 33, params 24 {
        v0 32..48 {
            /// Receiving router (Z).
            sublink: SublinkId = 32,
            /// Parcels X sent toward Y.
            inbound_sequence_length: SequenceNumber = 40,
        }
    }

    /// Proxy Y hands Z a new link to X on the same node.
    BypassPeerWithLink = 34, params 48 {
        v0 32..72 {
            /// Receiving router (Z).
            sublink: SublinkId = 32,
            /// The new X-Z central link.
            new_sublink: SublinkId = 40,
            /// Its RouterLinkState.
            new_link_state_fragment: FragmentDescriptor = 48,
            /// Parcels X sent toward Y before the switch.
            inbound_sequence_length: SequenceNumber = 64,
        }
    }

    /// Z tells Y how many parcels it sent over the old link.
    StopProxyingToLocalPeer = 35, params 24 {
        v0 32..48 {
            /// Receiving router (Y).
            sublink: SublinkId = 32,
            /// Parcels Z sent over the old link.
            outbound_sequence_length: SequenceNumber = 40,
        }
    }

    /// "Re-examine your state."
    FlushRouter = 36, params 16 {
        v0 32..40 {
            /// Receiving router.
            sublink: SublinkId = 32,
        }
    }

    /// Ask an allocation delegate for memory.
    RequestMemory = 64, params 16 {
        v0 32..40 {
            /// Bytes wanted (non-zero).
            size: u32 = 32,
            /// 0.
            padding: u32 = 36,
        }
    }

    /// Memory from an allocation delegate.
    ProvideMemory = 65, params 16 {
        v0 32..40 {
            /// Bytes provided.
            size: u32 = 32,
            /// SharedBuffer.
            buffer: DriverObjectIndex = 36,
        }
    }

    /// Non-broker asks the broker to relay a message.
    RelayMessage<'a> = 66, params 40 {
        v0 32..64 {
            /// Final destination.
            destination: NodeName = 32,
            /// A complete serialized ipcz message.
            data: &'a [u8] = 48,
            /// 0.
            padding: u32 = 52,
            /// Objects relayed with it.
            driver_objects: DriverObjectArray = 56,
        }
    }

    /// Broker delivers a relayed message.
    AcceptRelayedMessage<'a> = 67, params 40 {
        v0 32..64 {
            /// Original sender.
            source: NodeName = 32,
            /// A complete serialized ipcz message.
            data: &'a [u8] = 48,
            /// 0.
            padding: u32 = 52,
            /// Objects relayed with it.
            driver_objects: DriverObjectArray = 56,
        }
    }
}

impl<'a> AcceptParcel<'a> {
    /// A main parcel with inline data (or none) and the given handles, in the
    /// shape Chrome sends: `num_subparcels` 1, null fragment, driver objects
    /// `{0, n}` where `n` counts the boxed driver object handles.
    pub fn inline(
        sublink: u64,
        sequence_number: u64,
        data: &'a [u8],
        handle_types: Vec<HandleType>,
        new_routers: Vec<RouterDescriptor>,
    ) -> Self {
        let boxes = handle_types
            .iter()
            .filter(|h| **h == HandleType::BOXED_DRIVER_OBJECT)
            .count();
        Self {
            sublink: SublinkId(sublink),
            sequence_number: SequenceNumber(sequence_number),
            subparcel_index: 0,
            num_subparcels: 1,
            parcel_fragment: FragmentDescriptor::NULL,
            parcel_data: data,
            handle_types,
            new_routers,
            padding: 0,
            driver_objects: DriverObjectArray::new(0, u32::try_from(boxes).unwrap_or(u32::MAX)),
        }
    }
}

impl Body<'_> {
    /// The `sublink` a route message addresses, if it has one.
    pub fn sublink(&self) -> Option<SublinkId> {
        Some(match self {
            Self::AcceptParcel(m) => m.sublink,
            Self::AcceptParcelDriverObjects(m) => m.sublink,
            Self::RouteClosed(m) => m.sublink,
            Self::RouteDisconnected(m) => m.sublink,
            Self::BypassPeer(m) => m.sublink,
            Self::StopProxying(m) => m.sublink,
            Self::ProxyWillStop(m) => m.sublink,
            Self::BypassPeerWithLink(m) => m.sublink,
            Self::StopProxyingToLocalPeer(m) => m.sublink,
            Self::FlushRouter(m) => m.sublink,
            _ => return None,
        })
    }
}

impl crate::message::Message<'_> {
    /// The stateless parts of the handlers' own checks (spec §2.7 item 10,
    /// per-message rules of §3 and §6.4-6.5): what makes Chrome reject a
    /// well-formed message regardless of link state. Stateful checks (known
    /// sublinks, which link it arrived on, pending requests) are the
    /// caller's.
    pub fn check_semantics(&self) -> Result<(), MessageError> {
        semantics::check(self)
    }
}

mod semantics;
