//! Data pipe control messages: the user payload of messages on a data
//! pipe's control port.

use mojo_wire_kit::le::U32;
use mojo_wire_kit::{WireLayout, protocol_enum};

use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::layouts::DataPipeControlBody;

protocol_enum! {
    /// A data pipe control command (u32). Unknown values are kept.
    pub struct DataPipeCommand(pub u32), unknown "DATA_PIPE_COMMAND_{}", debug bare {
        /// 0: the producer wrote `num_bytes`.
        DATA_WAS_WRITTEN = 0 => "DATA_WAS_WRITTEN",
        /// 1: the consumer read `num_bytes`.
        DATA_WAS_READ = 1 => "DATA_WAS_READ",
    }
}

/// `DataPipeControlMessage`: the user payload of messages on a data pipe's
/// control port (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DataPipeControlMessage {
    /// What happened.
    pub command: DataPipeCommand,
    /// How many bytes.
    pub num_bytes: u32,
}

impl DataPipeControlMessage {
    /// Size on the wire.
    pub const LEN: usize = DataPipeControlBody::SIZE;

    /// Decodes a control-port payload; bytes after the first 8 are ignored,
    /// as Chromium ignores them.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        let b: DataPipeControlBody = Reader::new(payload).layout_as("data pipe control message")?;
        Ok(Self {
            command: DataPipeCommand(b.command.get()),
            num_bytes: b.num_bytes.get(),
        })
    }

    /// Appends the 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        Writer::new(out).layout(&DataPipeControlBody {
            command: U32::new(self.command.0),
            num_bytes: U32::new(self.num_bytes),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_pipe_control() {
        let c = DataPipeControlMessage {
            command: DataPipeCommand::DATA_WAS_READ,
            num_bytes: 5,
        };
        let mut b = Vec::new();
        c.encode(&mut b).unwrap();
        assert_eq!(b, [1, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(DataPipeControlMessage::decode(&b), Ok(c));
        assert!(DataPipeControlMessage::decode(&b[..7]).is_err());
    }
}
