//! Wire profiles: the two compile-time variants of Chromium's legacy core,
//! selectable here at run time.

use crate::channel::{ChannelHeader, HeaderForm};

/// Which build of Chromium's legacy core to talk like.
///
/// Only outgoing (fresh) encodes and the event header size depend on it; both
/// channel header forms are always accepted on input, and a decoded frame keeps
/// the header it arrived with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Chrome OS / libchrome (`MOJO_CORE_LEGACY_PROTOCOL` and
    /// `MOJO_BACKWARDS_COMPAT`): 8-byte `LegacyHeader` framing, 24-byte compact
    /// event header. What real legacy clients use; the default.
    #[default]
    Libchrome,
    /// Linux desktop Chromium: 16-byte `Header` framing (type `NORMAL`),
    /// 48-byte extended event header with sender verification.
    Desktop,
}

impl Profile {
    /// Header form used for `NORMAL` traffic emitted in this profile.
    pub fn header_form(self) -> HeaderForm {
        match self {
            Self::Libchrome => HeaderForm::Legacy,
            Self::Desktop => HeaderForm::Full,
        }
    }

    /// Size of the channel header this profile emits (8 or 16).
    pub fn channel_header_len(self) -> usize {
        self.header_form().len()
    }

    /// The event header form of this profile.
    pub fn event_header_form(self) -> EventHeaderForm {
        match self {
            Self::Libchrome => EventHeaderForm::Compact,
            Self::Desktop => EventHeaderForm::Extended,
        }
    }

    /// The channel header for a fresh `NORMAL` / `NORMAL_LEGACY` message with
    /// `num_handles` fds in this profile.
    pub fn normal_header(self, num_handles: u16) -> ChannelHeader<'static> {
        ChannelHeader::normal(self.header_form(), num_handles)
    }
}

/// Size of the ports event header; not self-describing on the wire, so the
/// parser must be told.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EventHeaderForm {
    /// 24 bytes: type, padding, `port_name`.
    #[default]
    Compact,
    /// 48 bytes: compact fields plus `from_port` and `control_sequence_num`.
    Extended,
}

impl EventHeaderForm {
    /// Header size in bytes (24 or 48).
    pub fn len(self) -> usize {
        match self {
            Self::Compact => 24,
            Self::Extended => 48,
        }
    }

    /// Always false; present for API symmetry with `len`.
    pub fn is_empty(self) -> bool {
        false
    }
}
