//! The fixed layouts of an ipcz message (spec §2.2-2.6), each declared once:
//! the decoder reads them, the encoder writes them, and `decode_exact` and
//! `mojo-dump --verify` name their fields from these declarations.

use mojo_wire_kit::le::{U16, U32, U64};
use mojo_wire_kit::wire_layout;

wire_layout! {
    /// `MessageHeader` version 0 (24 bytes). Newer versions append bytes,
    /// kept as [`crate::message::Message::header_extension`].
    pub struct MessageHeaderWire: size 24, names "header" {
        /// Header size (24 for version 0).
        pub size: u8,
        /// Header version (0 from Chrome).
        pub version: u8,
        /// [`crate::messages::MessageId`].
        pub message_id: u8,
        /// Zero from Chrome; ignored by receivers.
        pub reserved0: [u8; 5],
        /// The NodeLink-level message counter.
        pub sequence_number: U64,
        /// Offset of the `DriverObjectData` array, 0 if none.
        pub driver_object_data_array: U32,
        /// Zero from Chrome; ignored by receivers.
        pub reserved1: [u8; 4],
    }
}

wire_layout! {
    /// `StructHeader` in front of the params.
    pub struct StructHeaderWire: size 8, names "StructHeader" {
        /// Params size including this header.
        pub size: U32,
        /// Zero.
        pub padding: U32,
    }
}

wire_layout! {
    /// `ArrayHeader` in front of every array.
    pub struct ArrayHeaderWire: size 8, names "ArrayHeader" {
        /// Array size including this header, 8-aligned.
        pub num_bytes: U32,
        /// Number of elements.
        pub num_elements: U32,
    }
}

wire_layout! {
    /// One `DriverObjectData` record of the driver object table.
    pub struct DriverObjectDataWire: size 8, names "DriverObjectData" {
        /// Offset of the object's byte array, 0 if none.
        pub driver_data_array: U32,
        /// Index of the object's first fd in the frame.
        pub first_driver_handle: U16,
        /// Number of fds.
        pub num_driver_handles: U16,
    }
}
