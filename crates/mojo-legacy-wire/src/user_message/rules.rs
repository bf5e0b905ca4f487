//! The deserialization rules Chromium applies to a decoded dispatcher's
//! state when the receiver extracts the message's handles (not channel
//! errors, so `UserMessage::decode` does not apply them).

use crate::error::{Error, Result};
use crate::limits::MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES;

use super::dispatcher::{DataPipeState, Dispatcher};

impl Dispatcher<'_> {
    /// Applies the checks Chromium's `Dispatcher::Deserialize` makes on a
    /// decoded dispatcher's state when the receiver extracts the message's
    /// handles (`UserMessageImpl::ExtractSerializedHandles`). A failure there
    /// invalidates the message's handles (`MOJO_RESULT_ABORTED`); it is not a
    /// channel error, so [`super::UserMessage::decode`] does not apply these checks.
    ///
    /// The rules, per type (the counts and state sizes are already enforced
    /// by `decode`; port and fd checks that need the node or the fds are the
    /// caller's):
    ///
    /// - `SHARED_BUFFER` (`shared_buffer_dispatcher.cc` and
    ///   `PlatformSharedMemoryRegion::Take`): `num_bytes` non-zero and at most
    ///   [`MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES`], `guid` non-zero.
    /// - `DATA_PIPE_PRODUCER` / `DATA_PIPE_CONSUMER`
    ///   (`data_pipe_{producer,consumer}_dispatcher.cc`):
    ///   `element_num_bytes` non-zero; `capacity_num_bytes` non-zero, at least
    ///   `element_num_bytes` and at most
    ///   [`MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES`] (the ring buffer region);
    ///   `offset` (write/read offset) below the capacity; `available`
    ///   (available capacity / bytes available) at most the capacity;
    ///   `buffer_guid` non-zero. Chromium does *not* check
    ///   `options.struct_size`, `options.flags`, that the capacity is a
    ///   multiple of the element size, or the `flags` bits, so neither does
    ///   this.
    /// - `MESSAGE_PIPE`, `PLATFORM_HANDLE`: nothing in the state (Chromium
    ///   only looks the port up; `pipe_id` and `endpoint` are debug values).
    /// - any other type, including `WATCHER` and `INVITATION`: always fails
    ///   (`dispatcher.type`).
    pub fn check_state(&self) -> Result<()> {
        match self {
            Self::MessagePipe(_) | Self::PlatformHandle => Ok(()),
            Self::SharedBuffer(s) => {
                if s.num_bytes == 0 {
                    return Err(Error::InvalidValue {
                        field: "shared_buffer.num_bytes",
                        value: 0,
                        reason: "zero-sized shared buffer",
                    });
                }
                if !s.guid.is_valid() {
                    return Err(Error::InvalidValue {
                        field: "shared_buffer.guid",
                        value: 0,
                        reason: "zero guid (never created)",
                    });
                }
                if s.num_bytes > MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES {
                    return Err(Error::LimitExceeded {
                        field: "shared_buffer.num_bytes",
                        value: s.num_bytes,
                        limit: MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES,
                    });
                }
                Ok(())
            }
            Self::DataPipeProducer(s) | Self::DataPipeConsumer(s) => s.check(),
            Self::Unknown {
                dispatcher_type, ..
            } => Err(Error::InvalidValue {
                field: "dispatcher.type",
                value: dispatcher_type.0 as i64 as u64,
                reason: "not a transferable dispatcher type",
            }),
        }
    }
}

impl DataPipeState {
    /// The state checks of Chromium's data pipe producer and consumer
    /// deserialization; see [`Dispatcher::check_state`].
    pub fn check(&self) -> Result<()> {
        let capacity = self.options.capacity_num_bytes;
        let element = self.options.element_num_bytes;
        if capacity == 0 {
            return Err(Error::InvalidValue {
                field: "data_pipe.options.capacity_num_bytes",
                value: 0,
                reason: "zero capacity",
            });
        }
        if element == 0 {
            return Err(Error::InvalidValue {
                field: "data_pipe.options.element_num_bytes",
                value: 0,
                reason: "zero element size",
            });
        }
        if capacity < element {
            return Err(Error::Mismatch {
                field: "data_pipe.options.capacity_num_bytes",
                expected: u64::from(element),
                actual: u64::from(capacity),
            });
        }
        if self.offset >= capacity {
            return Err(Error::LimitExceeded {
                field: "data_pipe.offset",
                value: u64::from(self.offset),
                limit: u64::from(capacity - 1),
            });
        }
        if self.available > capacity {
            return Err(Error::LimitExceeded {
                field: "data_pipe.available",
                value: u64::from(self.available),
                limit: u64::from(capacity),
            });
        }
        if !self.buffer_guid.is_valid() {
            return Err(Error::InvalidValue {
                field: "data_pipe.buffer_guid",
                value: 0,
                reason: "zero guid (never created)",
            });
        }
        if u64::from(capacity) > MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES {
            return Err(Error::LimitExceeded {
                field: "data_pipe.options.capacity_num_bytes",
                value: u64::from(capacity),
                limit: MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mojo_wire_kit::{Guid, RegionMode};

    use super::*;
    use crate::limits::MAX_DECODABLE_DISPATCHERS;
    use crate::user_message::{
        DataPipeOptions, DispatcherType, MessagePipeState, SharedBufferState, UserMessage,
    };

    const G: Guid = Guid { high: 1, low: 2 };

    fn shared_buffer(num_bytes: u64, guid: Guid) -> Dispatcher<'static> {
        Dispatcher::SharedBuffer(SharedBufferState {
            num_bytes,
            access_mode: RegionMode::ReadOnly,
            guid,
        })
    }

    fn data_pipe(element: u32, capacity: u32, offset: u32, available: u32) -> DataPipeState {
        DataPipeState {
            options: DataPipeOptions {
                struct_size: 16,
                flags: 0,
                element_num_bytes: element,
                capacity_num_bytes: capacity,
            },
            pipe_id: 0,
            offset,
            available,
            flags: 0,
            buffer_guid: G,
        }
    }

    fn check_field(d: Dispatcher<'_>) -> Option<&'static str> {
        d.check_state().err().map(|e| e.field())
    }

    #[test]
    fn shared_buffer_checks() {
        assert_eq!(check_field(shared_buffer(1, G)), None);
        assert_eq!(
            check_field(shared_buffer(MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES, G)),
            None
        );
        assert_eq!(
            check_field(shared_buffer(0, G)),
            Some("shared_buffer.num_bytes")
        );
        assert_eq!(
            shared_buffer(MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES + 1, G).check_state(),
            Err(Error::LimitExceeded {
                field: "shared_buffer.num_bytes",
                value: 1 << 31,
                limit: (1 << 31) - 1,
            })
        );
        assert_eq!(
            check_field(shared_buffer(u64::MAX, G)),
            Some("shared_buffer.num_bytes")
        );
        assert_eq!(
            check_field(shared_buffer(4096, Guid { high: 0, low: 0 })),
            Some("shared_buffer.guid")
        );
        // Either half non-zero is a valid token.
        assert_eq!(
            check_field(shared_buffer(4096, Guid { high: 0, low: 1 })),
            None
        );
        assert_eq!(
            check_field(shared_buffer(4096, Guid { high: 1, low: 0 })),
            None
        );
    }

    #[test]
    fn data_pipe_checks() {
        let both = |s: DataPipeState| {
            let p = check_field(Dispatcher::DataPipeProducer(s));
            assert_eq!(p, check_field(Dispatcher::DataPipeConsumer(s)));
            p
        };
        // Boundaries Chromium accepts.
        assert_eq!(both(data_pipe(1, 1, 0, 1)), None);
        assert_eq!(both(data_pipe(1, 65_536, 65_535, 65_536)), None);
        assert_eq!(both(data_pipe(4, 4, 0, 0)), None);
        // Not checked by Chromium: capacity not a multiple of the element
        // size, struct_size, options.flags, state flags.
        assert_eq!(both(data_pipe(4, 10, 9, 10)), None);
        let mut odd = data_pipe(1, 8, 0, 0);
        odd.options.struct_size = 0;
        odd.options.flags = 0xffff_ffff;
        odd.flags = 0xff;
        assert_eq!(both(odd), None);
        let cap = MAX_RECEIVED_SHARED_MEMORY_NUM_BYTES as u32;
        assert_eq!(both(data_pipe(1, cap, cap - 1, cap)), None);
        // Rejected.
        assert_eq!(
            both(data_pipe(1, 0, 0, 0)),
            Some("data_pipe.options.capacity_num_bytes")
        );
        assert_eq!(
            both(data_pipe(0, 16, 0, 0)),
            Some("data_pipe.options.element_num_bytes")
        );
        assert_eq!(
            data_pipe(8, 4, 0, 0).check(),
            Err(Error::Mismatch {
                field: "data_pipe.options.capacity_num_bytes",
                expected: 8,
                actual: 4,
            })
        );
        assert_eq!(both(data_pipe(1, 16, 16, 0)), Some("data_pipe.offset"));
        assert_eq!(both(data_pipe(1, 16, 0, 17)), Some("data_pipe.available"));
        let mut no_guid = data_pipe(1, 16, 0, 0);
        no_guid.buffer_guid = Guid::default();
        assert_eq!(both(no_guid), Some("data_pipe.buffer_guid"));
        assert_eq!(
            data_pipe(1, cap + 1, 0, 0).check(),
            Err(Error::LimitExceeded {
                field: "data_pipe.options.capacity_num_bytes",
                value: u64::from(cap) + 1,
                limit: u64::from(cap),
            })
        );
    }

    #[test]
    fn other_dispatcher_checks() {
        let pipe = Dispatcher::MessagePipe(MessagePipeState {
            pipe_id: u64::MAX,
            endpoint: -7,
        });
        assert_eq!(pipe.check_state(), Ok(()));
        assert_eq!(Dispatcher::PlatformHandle.check_state(), Ok(()));
        for t in [
            DispatcherType::WATCHER,
            DispatcherType::INVITATION,
            DispatcherType(-2),
        ] {
            let d = Dispatcher::Unknown {
                dispatcher_type: t,
                num_ports: 0,
                num_platform_handles: 0,
                state: &[],
            };
            assert_eq!(check_field(d), Some("dispatcher.type"));
        }
    }

    #[test]
    fn check_dispatchers_reports_the_first_bad_one() {
        let mut m = UserMessage {
            dispatchers: vec![Dispatcher::PlatformHandle, shared_buffer(4096, G)],
            payload: b"p",
        };
        assert_eq!(m.check_dispatchers(), Ok(()));
        assert_eq!(UserMessage::plain(b"").check_dispatchers(), Ok(()));
        m.dispatchers.push(shared_buffer(0, G));
        m.dispatchers
            .push(Dispatcher::DataPipeConsumer(data_pipe(0, 1, 0, 0)));
        assert_eq!(
            m.check_dispatchers().unwrap_err().field(),
            "shared_buffer.num_bytes"
        );
        // decode still accepts it: it is a handle failure, not a framing one.
        let mut b = Vec::new();
        m.encode(&mut b).unwrap();
        assert_eq!(UserMessage::decode_exact(&b), Ok(m));
        let many = UserMessage {
            dispatchers: vec![Dispatcher::PlatformHandle; MAX_DECODABLE_DISPATCHERS as usize + 1],
            payload: &[],
        };
        assert_eq!(
            many.check_dispatchers().unwrap_err().field(),
            "message_header.num_dispatchers"
        );
    }
}
