//! Stateless handler checks (spec §3, §6.4, §6.5.1).

use crate::driver_object::DriverObject;
use crate::error::MessageError;
use crate::limits::{MAX_SUBPARCELS_PER_PARCEL, PRIMARY_BUFFER_SIZE};
use crate::memory::{block, is_valid_link_state_fragment};
use crate::message::Message;
use crate::messages::{AcceptParcel, Body};
use crate::types::{BufferId, DriverObjectIndex, FragmentDescriptor, HandleType};

fn fail(message: &'static str, field: &'static str, reason: String) -> MessageError {
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
            format!("buffer of {} bytes is smaller than {min}", b.buffer_size),
        )),
        (Some(other), _) => Err(fail(
            name,
            field,
            format!(
                "{} where a {} is required",
                other.object_type(),
                describe(want)
            ),
        )),
        (None, _) => Err(fail(name, field, format!("no {} attached", describe(want)))),
    }
}

fn describe(want: Want) -> &'static str {
    match want {
        Want::Transport => "Transport",
        Want::Buffer(_) => "SharedBuffer",
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
            format!("{f} is not a valid RouterLinkState fragment"),
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
                return Err(fail(name, "id", "is the invalid BufferId".into()));
            }
            object(m, name, "buffer", c.buffer, Want::Buffer(0))?;
            let size = match m.object(c.buffer) {
                Some(DriverObject::SharedBuffer(b)) => b.buffer_size,
                _ => 0,
            };
            block::check_added_buffer(c.block_size, size)
                .map_err(|e| fail(name, "block_size", e.to_string()))
        }
        Body::ProvideMemory(c) => object(m, name, "buffer", c.buffer, Want::Buffer(0)),
        Body::RequestMemory(c) if c.size == 0 => Err(fail(name, "size", "is zero".into())),
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
                        format!("handle {i} is a portal but no descriptor is left"),
                    ));
                };
                d.validate(p.sublink)
                    .map_err(|e| fail(NAME, "new_routers", format!("handle {i}: {e}")))?;
            }
            HandleType::BOXED_DRIVER_OBJECT => {
                if objects == 0 {
                    return Err(fail(
                        NAME,
                        "driver_objects",
                        format!("handle {i} is a boxed driver object but none is left"),
                    ));
                }
                objects -= 1;
            }
            HandleType::RELAYED_BOXED_DRIVER_OBJECT | HandleType::BOXED_SUBPARCEL => {}
            other => {
                return Err(fail(
                    NAME,
                    "handle_types",
                    format!("handle {i} has unknown type {}", other.0),
                ));
            }
        }
    }
    if routers.next().is_some() {
        return Err(fail(
            NAME,
            "new_routers",
            "descriptors left unclaimed".into(),
        ));
    }
    if objects != 0 {
        return Err(fail(
            NAME,
            "driver_objects",
            format!("{objects} driver objects left unclaimed"),
        ));
    }
    if p.num_subparcels > MAX_SUBPARCELS_PER_PARCEL || p.subparcel_index >= p.num_subparcels {
        return Err(fail(
            NAME,
            "num_subparcels",
            format!(
                "subparcel {} of {} (at most {MAX_SUBPARCELS_PER_PARCEL})",
                p.subparcel_index, p.num_subparcels
            ),
        ));
    }
    Ok(())
}
