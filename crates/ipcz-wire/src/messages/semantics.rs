//! Stateless handler checks (spec §3, §6.4, §6.5.1).

use crate::driver_object::{DriverObject, ObjectType};
use crate::error::{MessageError, SemanticError};
use crate::limits::{MAX_SUBPARCELS_PER_PARCEL, PRIMARY_BUFFER_SIZE};
use crate::memory::{block, is_valid_link_state_fragment};
use crate::message::Message;
use crate::messages::{AcceptParcel, Body};
use crate::types::{BufferId, DriverObjectIndex, FragmentDescriptor, HandleType};

fn fail(message: &'static str, field: &'static str, reason: SemanticError) -> MessageError {
    MessageError::Semantic {
        message,
        field,
        reason,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Transport,
    /// A SharedBuffer, optionally of at least this size.
    Buffer(u32),
}

fn object(
    m: &Message<'_>,
    name: &'static str,
    field: &'static str,
    index: DriverObjectIndex,
    want: Want,
) -> Result<(), MessageError> {
    match (m.object(index), want) {
        (Some(DriverObject::Transport(_)), Want::Transport) => Ok(()),
        (Some(DriverObject::SharedBuffer(b)), Want::Buffer(min)) if b.buffer_size >= min => Ok(()),
        (Some(DriverObject::SharedBuffer(b)), Want::Buffer(min)) => Err(fail(
            name,
            field,
            SemanticError::BufferTooSmall {
                size: b.buffer_size,
                min,
            },
        )),
        (Some(other), _) => Err(fail(
            name,
            field,
            SemanticError::WrongObjectType {
                found: other.object_type(),
                wanted: wanted_type(want),
            },
        )),
        (None, _) => Err(fail(
            name,
            field,
            SemanticError::MissingObject {
                wanted: wanted_type(want),
            },
        )),
    }
}

fn wanted_type(want: Want) -> ObjectType {
    match want {
        Want::Transport => ObjectType::TRANSPORT,
        Want::Buffer(_) => ObjectType::SHARED_BUFFER,
    }
}

fn link_state(
    name: &'static str,
    field: &'static str,
    f: FragmentDescriptor,
) -> Result<(), MessageError> {
    if is_valid_link_state_fragment(f) {
        Ok(())
    } else {
        Err(fail(
            name,
            field,
            SemanticError::InvalidLinkStateFragment(f),
        ))
    }
}

pub(super) fn check(m: &Message<'_>) -> Result<(), MessageError> {
    let name = m.body.name();
    let primary = Want::Buffer(PRIMARY_BUFFER_SIZE as u32);
    match &m.body {
        Body::ConnectFromBrokerToNonBroker(c) => object(m, name, "buffer", c.buffer, primary),
        Body::ConnectFromBrokerToBroker(c) => object(m, name, "buffer", c.buffer, primary),
        Body::ReferNonBroker(c) => object(m, name, "transport", c.transport, Want::Transport),
        Body::ConnectToReferredNonBroker(c) => {
            object(m, name, "broker_link_buffer", c.broker_link_buffer, primary)?;
            object(
                m,
                name,
                "referrer_link_transport",
                c.referrer_link_transport,
                Want::Transport,
            )?;
            object(
                m,
                name,
                "referrer_link_buffer",
                c.referrer_link_buffer,
                primary,
            )
        }
        Body::NonBrokerReferralAccepted(c) => {
            object(m, name, "transport", c.transport, Want::Transport)?;
            object(m, name, "buffer", c.buffer, primary)
        }
        Body::AcceptIntroduction(c) => {
            object(m, name, "transport", c.transport, Want::Transport)?;
            object(m, name, "memory", c.memory, primary)
        }
        Body::AddBlockBuffer(c) => {
            if c.id == BufferId::INVALID {
                return Err(fail(name, "id", SemanticError::InvalidBufferId));
            }
            object(m, name, "buffer", c.buffer, Want::Buffer(0))?;
            let size = match m.object(c.buffer) {
                Some(DriverObject::SharedBuffer(b)) => b.buffer_size,
                _ => 0,
            };
            block::check_added_buffer(c.block_size, size)
                .map_err(|e| fail(name, "block_size", SemanticError::BlockGeometry(e)))
        }
        Body::ProvideMemory(c) => object(m, name, "buffer", c.buffer, Want::Buffer(0)),
        Body::RequestMemory(c) if c.size == 0 => Err(fail(name, "size", SemanticError::ZeroSize)),
        Body::BypassPeerWithLink(c) => {
            link_state(name, "new_link_state_fragment", c.new_link_state_fragment)
        }
        Body::AcceptBypassLink(c) => {
            link_state(name, "new_link_state_fragment", c.new_link_state_fragment)
        }
        Body::AcceptParcel(p) => check_parcel(m, p),
        _ => Ok(()),
    }
}

/// `NodeLink::OnAcceptParcel` up to (not including) fragment resolution.
fn check_parcel(m: &Message<'_>, p: &AcceptParcel<'_>) -> Result<(), MessageError> {
    const NAME: &str = "AcceptParcel";
    let mut routers = p.new_routers.iter();
    // Chrome hands out the message's driver objects in order, whatever the
    // `driver_objects` field says.
    let mut objects = m.driver_objects.len();
    for (i, handle) in p.handle_types.iter().enumerate() {
        match *handle {
            HandleType::PORTAL => {
                let Some(d) = routers.next() else {
                    return Err(fail(
                        NAME,
                        "new_routers",
                        SemanticError::PortalWithoutDescriptor { handle: i },
                    ));
                };
                d.validate(p.sublink).map_err(|error| {
                    fail(
                        NAME,
                        "new_routers",
                        SemanticError::Descriptor { handle: i, error },
                    )
                })?;
            }
            HandleType::BOXED_DRIVER_OBJECT => {
                if objects == 0 {
                    return Err(fail(
                        NAME,
                        "driver_objects",
                        SemanticError::BoxWithoutObject { handle: i },
                    ));
                }
                objects -= 1;
            }
            HandleType::RELAYED_BOXED_DRIVER_OBJECT | HandleType::BOXED_SUBPARCEL => {}
            other => {
                return Err(fail(
                    NAME,
                    "handle_types",
                    SemanticError::UnknownHandleType {
                        handle: i,
                        handle_type: other,
                    },
                ));
            }
        }
    }
    if routers.next().is_some() {
        return Err(fail(
            NAME,
            "new_routers",
            SemanticError::UnclaimedDescriptors,
        ));
    }
    if objects != 0 {
        return Err(fail(
            NAME,
            "driver_objects",
            SemanticError::UnclaimedObjects { count: objects },
        ));
    }
    if p.num_subparcels > MAX_SUBPARCELS_PER_PARCEL || p.subparcel_index >= p.num_subparcels {
        return Err(fail(
            NAME,
            "num_subparcels",
            SemanticError::Subparcel {
                index: p.subparcel_index,
                count: p.num_subparcels,
            },
        ));
    }
    Ok(())
}
