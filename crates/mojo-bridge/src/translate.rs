//! Handle translation between ipcz parcels and legacy user messages (ipcz
//! §8.2, §8.3, §8.5): message pipes become portals with pairings of their
//! own, shared buffers and platform handles keep their fds, modes and
//! GUIDs; data pipe ends are bridged (`data_pipe`) once ring memory is
//! installed; a message with anything else loses all its handles (closed)
//! and keeps its bytes.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_node::node::{DriverBox, NodeHandle};
use ipcz_node::router::{Handle as IpczHandle, RouterId};
use ipcz_wire::driver_object::{
    DriverObject, ObjectType, SharedBuffer as IpczSharedBuffer, WrappedPlatformHandle, WrapperType,
};
use ipcz_wire::limits::{MAX_FDS_PER_SENDMSG, MAX_SHARED_BUFFER_SIZE};
use mojo_legacy_node::node::{Handle as LegacyHandle, SharedBuffer as LegacySharedBuffer};
use mojo_legacy_wire::limits::MAX_OUTGOING_HANDLES_PER_MESSAGE;
use mojo_wire_kit::SharedMemory;

use crate::data_pipe::is_data_pipe;
use crate::{Bridge, BridgeEvent, Side, Untranslatable};

/// Why an ipcz message's handles cannot all be carried, if so (data pipes
/// only with `data_pipes` on).
fn ipcz_problem(handles: &[NodeHandle], data_pipes_on: bool) -> Option<Untranslatable> {
    let data_pipes = handles.iter().filter(|h| is_data_pipe(h)).count();
    if data_pipes > 0 {
        // §8.3: k data pipe boxes are followed by their k control portals.
        let controls_ok = handles.len() >= 2 * data_pipes
            && handles
                .iter()
                .rev()
                .take(data_pipes)
                .all(|h| matches!(h, IpczHandle::Portal(_)));
        if !controls_ok {
            return Some(Untranslatable::MissingDataPipePortals {
                data_pipes,
                handles: handles.len(),
            });
        }
        if !data_pipes_on {
            return Some(Untranslatable::IpczObject {
                object_type: ObjectType::DATA_PIPE,
            });
        }
    }
    let mut fds = 0;
    for h in handles {
        let IpczHandle::Object(b) = h else { continue };
        fds += b.fds().len();
        match b.object() {
            DriverObject::SharedBuffer(_)
            | DriverObject::TransmissiblePlatformHandle
            | DriverObject::DataPipe(_) => {}
            DriverObject::WrappedPlatformHandle(w)
                if w.wrapper_type == WrapperType::TRANSMISSIBLE => {}
            other => {
                return Some(Untranslatable::IpczObject {
                    object_type: other.object_type(),
                });
            }
        }
    }
    (fds > MAX_OUTGOING_HANDLES_PER_MESSAGE).then_some(Untranslatable::TooManyFds {
        count: fds,
        limit: MAX_OUTGOING_HANDLES_PER_MESSAGE,
    })
}

/// Why a legacy message's handles cannot all be carried, if so.
fn legacy_problem(handles: &[LegacyHandle], data_pipes_on: bool) -> Option<Untranslatable> {
    let mut fds = 0;
    for h in handles {
        fds += h.num_fds();
        match h {
            LegacyHandle::DataPipeProducer(_) if !data_pipes_on => {
                return Some(Untranslatable::LegacyDataPipe { producer: true });
            }
            LegacyHandle::DataPipeConsumer(_) if !data_pipes_on => {
                return Some(Untranslatable::LegacyDataPipe { producer: false });
            }
            LegacyHandle::SharedBuffer(b) if b.size() > u64::from(MAX_SHARED_BUFFER_SIZE) => {
                return Some(Untranslatable::OversizedSharedBuffer { size: b.size() });
            }
            _ => {}
        }
    }
    (fds > MAX_FDS_PER_SENDMSG).then_some(Untranslatable::TooManyFds {
        count: fds,
        limit: MAX_FDS_PER_SENDMSG,
    })
}

impl<M: SharedMemory> Bridge<M> {
    /// The legacy handles for an ipcz parcel's handles, in order; portals
    /// get pairings. On any problem every handle is closed and none given.
    pub(crate) fn ipcz_to_legacy(&mut self, mut handles: Vec<NodeHandle>) -> Vec<LegacyHandle> {
        if handles.is_empty() {
            return Vec::new();
        }
        if let Some(what) = ipcz_problem(&handles, self.translates_data_pipes()) {
            self.discard_ipcz(handles);
            self.report_untranslatable(Side::Ipcz, what);
            return Vec::new();
        }
        // §8.3: the last k handles are the k data pipes' control portals.
        let k = handles.iter().filter(|h| is_data_pipe(h)).count();
        let mut controls: VecDeque<RouterId> = handles
            .split_off(handles.len().saturating_sub(k))
            .into_iter()
            .filter_map(|h| match h {
                IpczHandle::Portal(p) => Some(p),
                IpczHandle::Object(_) => None,
            })
            .collect();
        let mut out = Vec::with_capacity(handles.len());
        let mut rest = handles.into_iter();
        while let Some(h) = rest.next() {
            let translated = match h {
                IpczHandle::Portal(portal) => match self.legacy.create_pipe() {
                    Ok((ours, theirs)) => {
                        self.pair(portal, ours);
                        Ok(LegacyHandle::MessagePipe(theirs))
                    }
                    Err(_) => {
                        let _ = self.ipcz.close(portal);
                        Err(Untranslatable::Refused)
                    }
                },
                IpczHandle::Object(b) => match b.into_parts() {
                    (DriverObject::DataPipe(object), fds) => match controls.pop_front() {
                        Some(control) => self.bridge_ipcz_end(object, fds, control),
                        None => Err(Untranslatable::Refused),
                    },
                    (object, fds) => legacy_object(object, fds).ok_or(Untranslatable::Refused),
                },
            };
            match translated {
                Ok(t) => out.push(t),
                Err(what) => {
                    self.discard_legacy(out);
                    self.discard_ipcz(rest.collect());
                    for control in controls {
                        let _ = self.ipcz.close(control);
                    }
                    self.report_untranslatable(Side::Ipcz, what);
                    return Vec::new();
                }
            }
        }
        out
    }

    /// The ipcz handles for a legacy message's handles, in order; pipe
    /// ends get pairings. On any problem every handle is closed and none
    /// given.
    pub(crate) fn legacy_to_ipcz(&mut self, handles: Vec<LegacyHandle>) -> Vec<NodeHandle> {
        if handles.is_empty() {
            return Vec::new();
        }
        if let Some(what) = legacy_problem(&handles, self.translates_data_pipes()) {
            self.discard_legacy(handles);
            self.report_untranslatable(Side::Legacy, what);
            return Vec::new();
        }
        let mut out = Vec::with_capacity(handles.len());
        let mut controls = Vec::new();
        let mut rest = handles.into_iter();
        while let Some(h) = rest.next() {
            let translated = match h {
                LegacyHandle::MessagePipe(port) => {
                    Ok(IpczHandle::Portal(self.portal_for_port(port)))
                }
                LegacyHandle::SharedBuffer(b) => {
                    let object = DriverObject::SharedBuffer(IpczSharedBuffer {
                        buffer_size: u32::try_from(b.size()).unwrap_or(u32::MAX),
                        mode: b.mode(),
                        guid: b.guid(),
                    });
                    DriverBox::new(object, b.into_fds())
                        .map(IpczHandle::Object)
                        .map_err(|_| Untranslatable::Refused)
                }
                LegacyHandle::PlatformHandle(fd) => {
                    let object = DriverObject::WrappedPlatformHandle(WrappedPlatformHandle {
                        wrapper_type: WrapperType::TRANSMISSIBLE,
                    });
                    DriverBox::new(object, vec![fd])
                        .map(IpczHandle::Object)
                        .map_err(|_| Untranslatable::Refused)
                }
                LegacyHandle::DataPipeProducer(end) => {
                    self.bridge_legacy_end(end, true).map(|(b, control)| {
                        controls.push(control);
                        b
                    })
                }
                LegacyHandle::DataPipeConsumer(end) => {
                    self.bridge_legacy_end(end, false).map(|(b, control)| {
                        controls.push(control);
                        b
                    })
                }
            };
            match translated {
                Ok(t) => out.push(t),
                Err(what) => {
                    self.discard_ipcz(out);
                    self.discard_ipcz(controls.into_iter().map(IpczHandle::Portal).collect());
                    self.discard_legacy(rest.collect());
                    self.report_untranslatable(Side::Legacy, what);
                    return Vec::new();
                }
            }
        }
        // §8.3: the data pipes' control portals follow every other handle.
        out.extend(controls.into_iter().map(IpczHandle::Portal));
        out
    }

    /// Closes ipcz handles the bridge holds: portals closed, boxes dropped
    /// with their fds.
    pub(crate) fn discard_ipcz(&mut self, handles: Vec<NodeHandle>) {
        for h in handles {
            if let IpczHandle::Portal(portal) = h {
                let _ = self.ipcz.close(portal);
            }
        }
    }

    /// Closes legacy handles the bridge holds: pipe ends (data pipe control
    /// ports too) closed, fds dropped.
    pub(crate) fn discard_legacy(&mut self, handles: Vec<LegacyHandle>) {
        for h in handles {
            match h {
                LegacyHandle::MessagePipe(port) => {
                    let _ = self.legacy.close_port(port);
                }
                LegacyHandle::DataPipeProducer(d) | LegacyHandle::DataPipeConsumer(d) => {
                    let _ = self.legacy.close_port(d.control_port);
                }
                LegacyHandle::SharedBuffer(_) | LegacyHandle::PlatformHandle(_) => {}
            }
        }
    }

    fn report_untranslatable(&mut self, from: Side, what: Untranslatable) {
        log::warn!(
            "untranslatable handle from the {from:?} side: {what}; the message's handles were closed"
        );
        self.report(BridgeEvent::Untranslatable { from, what });
    }
}

/// The legacy handle for a checked ipcz box (shared buffer or platform
/// handle); `None` if the legacy node's rules refuse it.
fn legacy_object(object: DriverObject, mut fds: Vec<OwnedFd>) -> Option<LegacyHandle> {
    match object {
        DriverObject::SharedBuffer(s) => {
            LegacySharedBuffer::new(u64::from(s.buffer_size), s.guid, s.mode, fds)
                .ok()
                .map(LegacyHandle::SharedBuffer)
        }
        DriverObject::TransmissiblePlatformHandle | DriverObject::WrappedPlatformHandle(_) => {
            match (fds.pop(), fds.is_empty()) {
                (Some(fd), true) => Some(LegacyHandle::PlatformHandle(fd)),
                _ => None,
            }
        }
        DriverObject::Transport(_) | DriverObject::DataPipe(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcz_node::node::Node;
    use ipcz_node::sim::SharedHeap;
    use ipcz_wire::types::NodeName;

    fn null_fd() -> OwnedFd {
        OwnedFd::from(std::fs::File::open("/dev/null").unwrap())
    }

    fn wrapped(wrapper_type: WrapperType) -> NodeHandle {
        let object = DriverObject::WrappedPlatformHandle(WrappedPlatformHandle { wrapper_type });
        IpczHandle::Object(DriverBox::new(object, vec![null_fd()]).unwrap())
    }

    #[test]
    fn ipcz_problems_are_named() {
        let mut node: Node<SharedHeap> =
            Node::new(NodeName { high: 1, low: 1 }, Default::default());
        let (a, b) = node.create_portal_pair();
        assert_eq!(ipcz_problem(&[], false), None);
        assert_eq!(
            ipcz_problem(
                &[IpczHandle::Portal(a), wrapped(WrapperType::TRANSMISSIBLE)],
                false
            ),
            None
        );
        assert_eq!(
            ipcz_problem(&[wrapped(WrapperType::INDIRECT_FILE_DESCRIPTOR)], false),
            Some(Untranslatable::IpczObject {
                object_type: ObjectType::WRAPPED_PLATFORM_HANDLE
            })
        );
        let many: Vec<NodeHandle> = (0..=MAX_OUTGOING_HANDLES_PER_MESSAGE)
            .map(|_| wrapped(WrapperType::TRANSMISSIBLE))
            .collect();
        assert_eq!(
            ipcz_problem(&many, false),
            Some(Untranslatable::TooManyFds {
                count: MAX_OUTGOING_HANDLES_PER_MESSAGE + 1,
                limit: MAX_OUTGOING_HANDLES_PER_MESSAGE
            })
        );
        // A data pipe box whose trailing handle is not a portal (§8.3).
        let buffer = IpczSharedBuffer {
            buffer_size: 64,
            mode: mojo_wire_kit::RegionMode::Unsafe,
            guid: mojo_wire_kit::Guid::new(1, 1),
        };
        let (p, _) = ipcz_node::data_pipe::new_pipe_objects(1, buffer).unwrap();
        let data_pipe = || {
            IpczHandle::Object(DriverBox::new(DriverObject::DataPipe(p), vec![null_fd()]).unwrap())
        };
        assert_eq!(
            ipcz_problem(&[data_pipe(), wrapped(WrapperType::TRANSMISSIBLE)], false),
            Some(Untranslatable::MissingDataPipePortals {
                data_pipes: 1,
                handles: 2
            })
        );
        assert_eq!(
            ipcz_problem(&[data_pipe(), IpczHandle::Portal(b)], false),
            Some(Untranslatable::IpczObject {
                object_type: ObjectType::DATA_PIPE
            })
        );
    }

    #[test]
    fn legacy_problems_are_named() {
        use mojo_legacy_node::node::SharedBuffer;
        let big = SharedBuffer::new(
            u64::from(MAX_SHARED_BUFFER_SIZE) + 1,
            mojo_wire_kit::Guid::new(1, 2),
            mojo_wire_kit::RegionMode::Unsafe,
            vec![null_fd()],
        )
        .unwrap();
        assert_eq!(
            legacy_problem(&[LegacyHandle::SharedBuffer(big)], false),
            Some(Untranslatable::OversizedSharedBuffer {
                size: u64::from(MAX_SHARED_BUFFER_SIZE) + 1
            })
        );
        let many: Vec<LegacyHandle> = (0..=MAX_FDS_PER_SENDMSG)
            .map(|_| LegacyHandle::PlatformHandle(null_fd()))
            .collect();
        assert!(matches!(
            legacy_problem(&many, false),
            Some(Untranslatable::TooManyFds { .. })
        ));
        assert_eq!(
            legacy_problem(&[LegacyHandle::PlatformHandle(null_fd())], false),
            None
        );
    }
}
