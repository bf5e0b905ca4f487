//! Every fixed little-endian layout of the legacy protocol, each declared
//! once (a data catalog): the zerocopy struct, its size check, and the field
//! names and spans that errors, `decode_exact` and `--verify` report. The
//! codecs in the other modules read and write these structs and convert
//! them to and from the typed values.
//!
//! Names and guids are [`WireName`] (16 bytes, `high` first).

use mojo_wire_kit::le::{I32, U16, U32, U64};
use mojo_wire_kit::wire_layout;

use crate::name::WireName;

// ---- channel (spec section 1) ----

wire_layout! {
    /// `LegacyHeader` (8 bytes, message type 0).
    pub(crate) struct LegacyHeader: size 8, names "channel" {
        pub(crate) num_bytes: U32,
        pub(crate) num_handles: U16,
        pub(crate) message_type: U16,
    }
}

wire_layout! {
    /// `Header` (16 bytes; extra header bytes may follow).
    pub(crate) struct FullHeader: size 16, names "channel" {
        pub(crate) num_bytes: U32,
        pub(crate) num_header_bytes: U16,
        pub(crate) message_type: U16,
        pub(crate) num_handles: U16,
        pub(crate) padding: [u8; 6],
    }
}

wire_layout! {
    /// `UPGRADE_OFFER` payload.
    pub(crate) struct UpgradeOfferBody: size 8, names "upgrade_offer" {
        pub(crate) version: I32,
        pub(crate) num_pages: I32,
    }
}

// ---- broker (spec section 2) ----

wire_layout! {
    /// `BrokerMessageHeader`.
    pub(crate) struct BrokerHeader: size 8, names "broker" {
        pub(crate) message_type: U32 => "broker.type",
        pub(crate) padding: [u8; 4],
    }
}

wire_layout! {
    /// `BufferRequestData`.
    pub(crate) struct BufferRequestBody: size 4, names "buffer_request" {
        pub(crate) size: U32,
    }
}

wire_layout! {
    /// `BufferResponseData` (`guid_high`, `guid_low`).
    pub(crate) struct BufferResponseBody: size 16, names "buffer_response" {
        pub(crate) guid: WireName,
    }
}

// ---- NodeChannel (spec section 3); versioned bodies at their newest ----

wire_layout! {
    /// The NodeChannel header.
    pub(crate) struct NodeHeader: size 8, names "node" {
        pub(crate) message_type: U32 => "node.type",
        pub(crate) padding: [u8; 4],
    }
}

wire_layout! {
    /// `AcceptInviteeData` V1 (V0 is the first 32 bytes).
    pub(crate) struct AcceptInviteeBody: size 40, names "accept_invitee" {
        pub(crate) inviter_name: WireName,
        pub(crate) token: WireName,
        pub(crate) capabilities: U64,
    }
}

wire_layout! {
    /// `AcceptInvitationData` V1 (V0 is the first 32 bytes).
    pub(crate) struct AcceptInvitationBody: size 40, names "accept_invitation" {
        pub(crate) token: WireName,
        pub(crate) invitee_name: WireName,
        pub(crate) capabilities: U64,
    }
}

wire_layout! {
    /// `AddBrokerClientData`.
    pub(crate) struct AddBrokerClientBody: size 24, names "add_broker_client" {
        pub(crate) client_name: WireName,
        pub(crate) process_handle: U32,
        pub(crate) padding: [u8; 4],
    }
}

wire_layout! {
    /// `BrokerClientAddedData`.
    pub(crate) struct BrokerClientAddedBody: size 16, names "broker_client_added" {
        pub(crate) client_name: WireName,
    }
}

wire_layout! {
    /// `AcceptBrokerClientData` V1 (V0 is the first 16 bytes).
    pub(crate) struct AcceptBrokerClientBody: size 32, names "accept_broker_client" {
        pub(crate) broker_name: WireName,
        pub(crate) capabilities: U64,
        pub(crate) broker_capabilities: U64,
    }
}

wire_layout! {
    /// `RequestPortMergeData` (the token bytes follow).
    pub(crate) struct RequestPortMergeBody: size 16, names "request_port_merge" {
        pub(crate) connector_port_name: WireName,
    }
}

wire_layout! {
    /// `IntroductionData` V1 (V0 is the first 16 bytes).
    pub(crate) struct IntroductionBody: size 24, names "introduction" {
        pub(crate) name: WireName,
        pub(crate) capabilities: U64,
    }
}

wire_layout! {
    /// `AcceptPeerData`.
    pub(crate) struct AcceptPeerBody: size 48, names "accept_peer" {
        pub(crate) token: WireName,
        pub(crate) peer_name: WireName,
        pub(crate) port_name: WireName,
    }
}

wire_layout! {
    /// `BindBrokerHostData`.
    pub(crate) struct BindBrokerHostBody: size 8, names "bind_broker_host" {
        pub(crate) reserved: [u8; 8],
    }
}

// ---- ports events (spec 4.1-4.3, 4.9) ----

wire_layout! {
    /// The compact (libchrome) event header.
    pub(crate) struct CompactEventHeader: size 24, names "event" {
        pub(crate) event_type: U32 => "event.type",
        pub(crate) padding: [u8; 4],
        pub(crate) port_name: WireName,
    }
}

wire_layout! {
    /// The extended event header (sender verification fields).
    pub(crate) struct ExtendedEventHeader: size 48, names "event" {
        pub(crate) event_type: U32 => "event.type",
        pub(crate) padding: [u8; 4],
        pub(crate) port_name: WireName,
        pub(crate) from_port: WireName,
        pub(crate) control_sequence_num: U64,
    }
}

wire_layout! {
    /// `UserMessageEventData` (descriptors and port names follow).
    pub(crate) struct UserMessageEventBody: size 16, names "event" {
        pub(crate) sequence_num: U64,
        pub(crate) num_ports: U32,
        pub(crate) padding: [u8; 4] => "event.user_message_padding",
    }
}

wire_layout! {
    /// `PortDescriptor`.
    pub(crate) struct PortDescriptorBody: size 96, names "port_descriptor" {
        pub(crate) peer_node_name: WireName,
        pub(crate) peer_port_name: WireName,
        pub(crate) referring_node_name: WireName,
        pub(crate) referring_port_name: WireName,
        pub(crate) next_sequence_num_to_send: U64,
        pub(crate) next_sequence_num_to_receive: U64,
        pub(crate) last_sequence_num_to_receive: U64,
        pub(crate) peer_closed: u8,
        pub(crate) padding: [u8; 7],
    }
}

wire_layout! {
    /// `ObserveProxyEventData`.
    pub(crate) struct ObserveProxyBody: size 64, names "observe_proxy" {
        pub(crate) proxy_node_name: WireName,
        pub(crate) proxy_port_name: WireName,
        pub(crate) proxy_target_node_name: WireName,
        pub(crate) proxy_target_port_name: WireName,
    }
}

wire_layout! {
    /// `ObserveProxyAckEventData`.
    pub(crate) struct ObserveProxyAckBody: size 8, names "observe_proxy_ack" {
        pub(crate) last_sequence_num: U64,
    }
}

wire_layout! {
    /// `ObserveClosureEventData`.
    pub(crate) struct ObserveClosureBody: size 8, names "observe_closure" {
        pub(crate) last_sequence_num: U64,
    }
}

wire_layout! {
    /// `MergePortEventData`.
    pub(crate) struct MergePortBody: size 112, names "merge_port" {
        pub(crate) new_port_name: WireName,
        pub(crate) new_port_descriptor: PortDescriptorBody,
    }
}

wire_layout! {
    /// `UserMessageReadAckRequestEventData`.
    pub(crate) struct ReadAckRequestBody: size 8, names "user_message_read_ack_request" {
        pub(crate) sequence_num_to_acknowledge: U64,
    }
}

wire_layout! {
    /// `UserMessageReadAckEventData`.
    pub(crate) struct ReadAckBody: size 8, names "user_message_read_ack" {
        pub(crate) sequence_num_acknowledged: U64,
    }
}

wire_layout! {
    /// `UpdatePreviousPeerEventData`.
    pub(crate) struct UpdatePreviousPeerBody: size 32, names "update_previous_peer" {
        pub(crate) new_node_name: WireName,
        pub(crate) new_port_name: WireName,
    }
}

// ---- user messages (spec section 5) ----

wire_layout! {
    /// The user message `MessageHeader`.
    pub(crate) struct MessageHeader: size 8, names "message_header" {
        pub(crate) num_dispatchers: U32,
        pub(crate) header_size: U32,
    }
}

wire_layout! {
    /// `DispatcherHeader`.
    pub(crate) struct DispatcherHeader: size 16, names "dispatcher" {
        pub(crate) dispatcher_type: I32 => "dispatcher.type",
        pub(crate) num_bytes: U32,
        pub(crate) num_ports: U32,
        pub(crate) num_platform_handles: U32,
    }
}

wire_layout! {
    /// `MESSAGE_PIPE` state.
    pub(crate) struct MessagePipeStateBody: size 16, names "message_pipe" {
        pub(crate) pipe_id: U64,
        pub(crate) endpoint: u8,
        pub(crate) padding: [u8; 7],
    }
}

wire_layout! {
    /// `DATA_PIPE_PRODUCER` / `DATA_PIPE_CONSUMER` state.
    pub(crate) struct DataPipeStateBody: size 56, names "data_pipe" {
        pub(crate) struct_size: U32 => "data_pipe.options.struct_size",
        pub(crate) options_flags: U32 => "data_pipe.options.flags",
        pub(crate) element_num_bytes: U32 => "data_pipe.options.element_num_bytes",
        pub(crate) capacity_num_bytes: U32 => "data_pipe.options.capacity_num_bytes",
        pub(crate) pipe_id: U64,
        pub(crate) offset: U32,
        pub(crate) available: U32,
        pub(crate) flags: u8,
        pub(crate) buffer_guid: WireName,
        pub(crate) padding: [u8; 7],
    }
}

wire_layout! {
    /// `SHARED_BUFFER` state.
    pub(crate) struct SharedBufferStateBody: size 32, names "shared_buffer" {
        pub(crate) num_bytes: U64,
        pub(crate) access_mode: U32,
        pub(crate) guid: WireName,
        pub(crate) padding: [u8; 4],
    }
}

wire_layout! {
    /// `DataPipeControlMessage`.
    pub(crate) struct DataPipeControlBody: size 8, names "data_pipe_control" {
        pub(crate) command: U32,
        pub(crate) num_bytes: U32,
    }
}
