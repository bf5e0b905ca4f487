//! What each decoded frame means for the pipe view: the end it addresses,
//! the message or closure there, what it carries, and which ends it shows
//! to be one pipe. Legacy frames from `mojo-legacy-wire`'s checked content,
//! ipcz frames from `ipcz-wire`'s messages.

use ipcz_wire::message::Message as IpczMessage;
use ipcz_wire::messages::Body;
use ipcz_wire::types::HandleType;
use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::event::{Event, EventData};
use mojo_legacy_wire::node::NodeMessage;
use mojo_legacy_wire::user_message::{Dispatcher, UserMessage};
use mojo_legacy_wire::verify::{ChannelRole, Content};
use mojo_legacy_wire::{EventHeaderForm, PortName};

use super::{Attached, End, Happened, Item, Message};

fn port(p: PortName) -> End {
    End::Port {
        high: p.high,
        low: p.low,
    }
}

/// The pipe item of a legacy frame that decoded.
pub(crate) fn legacy(content: &Content<'_>) -> Option<Item> {
    match content {
        Content::Node(NodeMessage::RequestPortMerge(r)) => {
            let index = match r.token {
                // The proxy names attachment `i` by its number (8 bytes LE).
                t if t.len() == 8 && t.iter().any(|b| !b.is_ascii_graphic()) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(t);
                    Some(u64::from_le_bytes(a))
                }
                _ => None,
            };
            Some(Item {
                end: port(r.connector_port_name),
                what: Happened::Attachment {
                    index,
                    name: String::from_utf8_lossy(r.token).into_owned(),
                },
                joins: Vec::new(),
            })
        }
        Content::Event {
            event,
            user_message,
        } => Some(event_item(event, user_message.as_ref())),
        Content::Broadcast { event, .. } => {
            let mut item = event_item(event, None);
            item.what = Happened::Routing(format!("broadcast {}", event.event_type()));
            Some(item)
        }
        _ => None,
    }
}

/// The end a legacy frame that failed addresses, if its event header
/// decodes: the failure is shown on that pipe.
pub(crate) fn legacy_failed(
    bytes: &[u8],
    role: ChannelRole,
    form: EventHeaderForm,
    why: &str,
) -> Option<Item> {
    if role == ChannelRole::Broker {
        return None;
    }
    let frame = Frame::decode_whole(bytes).ok()?;
    let NodeMessage::EventMessage(body) = NodeMessage::decode(frame.payload).ok()? else {
        return None;
    };
    let event = Event::decode(body, form).ok()?;
    Some(Item {
        end: port(event.port_name),
        what: Happened::Failed(format!("{} {why}", event.event_type())),
        joins: Vec::new(),
    })
}

/// Ports a dispatcher takes from the event's list, in order: a message
/// pipe's and a data pipe's control port.
fn takes_port(d: &Dispatcher<'_>) -> Option<&'static str> {
    match d {
        Dispatcher::MessagePipe(_) => Some("MessagePipe"),
        Dispatcher::DataPipeProducer(_) => Some("DataPipeProducer"),
        Dispatcher::DataPipeConsumer(_) => Some("DataPipeConsumer"),
        _ => None,
    }
}

fn event_item(event: &Event<'_>, user: Option<&UserMessage<'_>>) -> Item {
    let end = port(event.port_name);
    let mut joins = Vec::new();
    // The sending port (desktop profile) is the receiver's peer.
    if let Some(sender) = event.sender {
        joins.push((end, port(sender.from_port)));
    }
    let what = match &event.data {
        EventData::UserMessage(u) => {
            for p in &u.ports {
                // The new port, its peer and the sender's proxy for it.
                joins.push((port(p.name), port(p.descriptor.peer_port_name)));
                joins.push((port(p.name), port(p.descriptor.referring_port_name)));
            }
            let mut ports = u.ports.iter();
            let mut attached = Vec::new();
            if let Some(m) = user {
                for d in &m.dispatchers {
                    match takes_port(d).and_then(|kind| ports.next().map(|p| (kind, p))) {
                        Some((kind, p)) => attached.push(Attached::Pipe {
                            end: port(p.name),
                            kind: kind.into(),
                        }),
                        None => attached.push(Attached::Object(crate::legacy::dispatcher(d))),
                    }
                }
            }
            for p in ports {
                attached.push(Attached::Pipe {
                    end: port(p.name),
                    kind: "port".into(),
                });
            }
            let (data, size) = match user {
                Some(m) => (Some(m.payload.to_vec()), m.payload.len()),
                None => (None, u.message.len()),
            };
            Happened::Message(Message {
                seq: u.sequence_num,
                data,
                size,
                attached,
            })
        }
        EventData::ObserveClosure { last_sequence_num } => Happened::Closed {
            last: *last_sequence_num,
        },
        EventData::ObserveProxy(o) => {
            joins.push((end, port(o.proxy_port_name)));
            joins.push((port(o.proxy_port_name), port(o.proxy_target_port_name)));
            Happened::Routing("ObserveProxy".into())
        }
        EventData::MergePort(m) => {
            // The two pipes become one.
            joins.push((end, port(m.new_port_name)));
            joins.push((
                port(m.new_port_name),
                port(m.new_port_descriptor.peer_port_name),
            ));
            joins.push((
                port(m.new_port_name),
                port(m.new_port_descriptor.referring_port_name),
            ));
            Happened::Routing("MergePort".into())
        }
        EventData::UpdatePreviousPeer { new_port_name, .. } => {
            joins.push((end, port(*new_port_name)));
            Happened::Routing("UpdatePreviousPeer".into())
        }
        _ => Happened::Routing(event.event_type().to_string()),
    };
    // The null name (`from=none`) is no port: it joins nothing.
    let null = End::Port { high: 0, low: 0 };
    joins.retain(|&(a, b)| a != null && b != null);
    Item { end, what, joins }
}

/// The pipe item of an ipcz message on `channel`.
pub(crate) fn ipcz(channel: u32, message: &IpczMessage<'_>) -> Option<Item> {
    let at = |sublink: u64| End::Sublink { channel, sublink };
    let handshake = |initial_portals: u32| {
        Some(Item {
            end: at(0),
            what: Happened::Handshake {
                initial_portals: u64::from(initial_portals),
            },
            joins: Vec::new(),
        })
    };
    let (end, what, joins) = match &message.body {
        Body::ConnectFromBrokerToNonBroker(m) => return handshake(m.num_initial_portals),
        Body::ConnectFromNonBrokerToBroker(m) => return handshake(m.num_initial_portals),
        Body::ConnectToReferredBroker(m) => return handshake(m.num_initial_portals),
        Body::AcceptParcel(p) => {
            let end = at(p.sublink.0);
            let mut joins = Vec::new();
            let mut routers = p.new_routers.iter();
            let mut objects = p.driver_objects.indices();
            let mut attached = Vec::new();
            for t in &p.handle_types {
                match *t {
                    HandleType::PORTAL => {
                        let Some(r) = routers.next() else {
                            attached.push(Attached::Object("portal without a router".into()));
                            continue;
                        };
                        let new = at(r.new_sublink.0);
                        // A router sent with its proxy already bypassed
                        // first hears over the decaying sublink: one route.
                        if r.proxy_already_bypassed && r.new_decaying_sublink != r.new_sublink {
                            joins.push((new, at(r.new_decaying_sublink.0)));
                        }
                        attached.push(Attached::Pipe {
                            end: new,
                            kind: "portal".into(),
                        });
                    }
                    HandleType::BOXED_DRIVER_OBJECT => {
                        let text = objects
                            .next()
                            .and_then(|i| message.driver_objects.get(i))
                            .map_or("box without an object".into(), |o| {
                                crate::ipcz::object_text(&o.object)
                            });
                        attached.push(Attached::Object(text));
                    }
                    other => attached.push(Attached::Object(other.to_string())),
                }
            }
            let (data, size) = if p.parcel_fragment.is_null() {
                (Some(p.parcel_data.to_vec()), p.parcel_data.len())
            } else {
                (None, p.parcel_fragment.size as usize)
            };
            let what = Happened::Message(Message {
                seq: p.sequence_number.0,
                data,
                size,
                attached,
            });
            (end, what, joins)
        }
        Body::RouteClosed(m) => (
            at(m.sublink.0),
            Happened::Closed {
                last: m.sequence_length.0,
            },
            Vec::new(),
        ),
        Body::BypassPeerWithLink(m) => (
            at(m.sublink.0),
            Happened::Routing(format!("BypassPeerWithLink -> sublink {}", m.new_sublink.0)),
            vec![(at(m.sublink.0), at(m.new_sublink.0))],
        ),
        body => {
            let sublink = body.sublink()?;
            let name = message.to_string();
            let name = name.split_whitespace().next().unwrap_or("?").to_string();
            (at(sublink.0), Happened::Routing(name), Vec::new())
        }
    };
    Some(Item { end, what, joins })
}
