//! Decoder for legacy Mojo Core transcripts: channel 0 is the broker bootstrap
//! socket (broker messages), every other channel a node channel (NodeChannel
//! messages, ports events, user messages). Built on `mojo-legacy-wire`.

use std::fmt::Write as _;

use mojo_legacy_wire::broker::BrokerMessage;
use mojo_legacy_wire::channel::{ChannelHeader, ControlMessage, Frame};
use mojo_legacy_wire::event::{Event, EventData, PortDescriptor};
use mojo_legacy_wire::node::NodeMessage;
use mojo_legacy_wire::user_message::{Dispatcher, UserMessage};
use mojo_legacy_wire::verify::{ChannelRole, Checked, Content, Fault, check_frame, decode_frame};
use mojo_legacy_wire::{Deframer, EventHeaderForm, NodeName, PortName, Token};
use mojo_transcript::{Stream, StreamKey};
use mojo_wire_kit::Guid;

use crate::names::{Kind, Spelling, mark};
use crate::{DecodeOptions, FrameReport, LegacyProfile, StreamReport};
use crate::{payload, pipes};

/// Deframes and describes one reassembled legacy stream.
pub(crate) fn decode_stream(
    key: StreamKey,
    stream: &Stream,
    options: DecodeOptions,
) -> StreamReport {
    let role = if key.channel == 0 {
        ChannelRole::Broker
    } else {
        ChannelRole::Node
    };
    let form = match options.legacy_profile {
        LegacyProfile::Libchrome => EventHeaderForm::Compact,
        LegacyProfile::Desktop => EventHeaderForm::Extended,
    };
    let mut report = StreamReport::default();
    let mut deframer = Deframer::new();
    if let Err(e) = deframer.push(&stream.bytes) {
        report.stopped = Some((0, format!("channel: {e}")));
        return report;
    }
    loop {
        match deframer.next_frame() {
            Ok(Some(f)) => {
                let result = if options.verify {
                    check_frame(f.bytes, role, form)
                } else {
                    decode_frame(f.bytes, role, form)
                };
                let style = Style {
                    labels: !options.verify,
                };
                let (described, failure, pipe) = match result {
                    Ok(checked) => (
                        describe(&checked, style),
                        None,
                        pipes::extract::legacy(&checked.content),
                    ),
                    Err(fault) => {
                        let why = explain(&fault);
                        let pipe = pipes::extract::legacy_failed(f.bytes, role, form, &why);
                        (
                            describe_partial(f.bytes, role, form, style),
                            Some(why),
                            pipe,
                        )
                    }
                };
                let pipe = pipe.filter(|_| !options.verify).map(Box::new);
                let (description, detail) = if options.verify {
                    (
                        format!("{}{}", described.header, described.body),
                        Vec::new(),
                    )
                } else {
                    let mut detail = vec![format!("channel header: {}", described.header)];
                    detail.extend(described.detail);
                    (described.body.trim_start_matches(" | ").to_string(), detail)
                };
                report.frames.push(FrameReport {
                    offset: f.offset as usize,
                    len: f.bytes.len(),
                    claimed_fds: usize::from(f.frame.header.num_handles()),
                    description,
                    detail,
                    failure,
                    pipe,
                });
            }
            Ok(None) => break,
            Err(e) => {
                report.stopped = Some((deframer.stream_offset() as usize, format!("channel: {e}")));
                return report;
            }
        }
    }
    if deframer.buffered() > 0 {
        let missing = deframer
            .missing()
            .map_or(String::new(), |m| format!(", {m} bytes missing"));
        report.stopped = Some((
            deframer.stream_offset() as usize,
            format!(
                "stream ends inside a frame ({} bytes buffered{missing})",
                deframer.buffered()
            ),
        ));
        report.partial_tail = true;
    }
    report
}

fn explain(fault: &Fault) -> String {
    match fault {
        Fault::Differs { .. } => fault.to_string(),
        _ => {
            let text = fault.to_string();
            if text.contains(fault.field()) {
                text
            } else {
                format!("{text} [field {}]", fault.field())
            }
        }
    }
}

/// Whether descriptions name the parts of tuples (the view) or keep the
/// terse form `--verify` has always printed.
#[derive(Clone, Copy)]
struct Style {
    labels: bool,
}

/// One frame's description in parts.
#[derive(Default)]
struct Described {
    /// The channel header.
    header: String,
    /// The rest, each part starting with ` | `.
    body: String,
    /// `-v` detail lines (payload excerpt).
    detail: Vec<String>,
}

fn node_name(n: NodeName) -> String {
    mark(Kind::Node, Spelling::Legacy, n.high, n.low)
}

fn port_name(p: PortName) -> String {
    mark(Kind::Port, Spelling::Legacy, p.high, p.low)
}

fn token(t: Token) -> String {
    mark(Kind::Token, Spelling::Legacy, t.high, t.low)
}

fn guid(g: Guid) -> String {
    mark(Kind::Buffer, Spelling::Guid, g.high, g.low)
}

fn header(h: &ChannelHeader<'_>) -> String {
    match h {
        ChannelHeader::Legacy { num_handles } => format!("NORMAL_LEGACY nh={num_handles}"),
        ChannelHeader::Full {
            message_type,
            num_handles,
            extra_header,
        } => format!(
            "{message_type} hb={} nh={num_handles}",
            16 + extra_header.len()
        ),
    }
}

fn describe(c: &Checked<'_>, style: Style) -> Described {
    let mut d = Described {
        header: header(&c.header),
        ..Described::default()
    };
    let s = &mut d.body;
    match &c.content {
        Content::Broker(m) => {
            let _ = write!(s, " | Broker {}", broker(m));
        }
        Content::Control(m) => {
            let _ = write!(s, " | Control {}", control(m));
        }
        Content::Node(m) => {
            let _ = write!(s, " | NodeChannel {}", node(m, style));
        }
        Content::Event {
            event,
            user_message,
        } => {
            let _ = write!(
                s,
                " | NodeChannel EVENT_MESSAGE | {}",
                self::event(event, style)
            );
            if let Some(m) = user_message {
                let (text, detail) = user(m, style);
                s.push_str(&text);
                d.detail.extend(detail);
            }
        }
        Content::Broadcast { event, .. } => {
            let _ = write!(
                s,
                " | NodeChannel BROADCAST_EVENT | {}",
                self::event(event, style)
            );
        }
    }
    d
}

/// As much of a frame as decodes, for frames that failed.
fn describe_partial(
    bytes: &[u8],
    role: ChannelRole,
    form: EventHeaderForm,
    style: Style,
) -> Described {
    let Ok(frame) = Frame::decode_whole(bytes) else {
        return Described {
            header: format!("undecodable channel message of {} bytes", bytes.len()),
            ..Described::default()
        };
    };
    let mut d = Described {
        header: header(&frame.header),
        ..Described::default()
    };
    let s = &mut d.body;
    let t = frame.header.message_type();
    if t.is_control() {
        let _ = write!(s, " | Control {t}");
        return d;
    }
    match role {
        ChannelRole::Broker => match BrokerMessage::decode(frame.payload) {
            Ok(m) => {
                let _ = write!(s, " | Broker {}", broker(&m));
            }
            Err(_) => s.push_str(" | Broker ?"),
        },
        ChannelRole::Node => match NodeMessage::decode(frame.payload) {
            Ok(NodeMessage::EventMessage(body)) => {
                s.push_str(" | NodeChannel EVENT_MESSAGE");
                match Event::decode(body, form) {
                    Ok(e) => {
                        let _ = write!(s, " | {}", event(&e, style));
                        if let EventData::UserMessage(u) = &e.data {
                            match UserMessage::decode(u.message) {
                                Ok(m) => {
                                    let (text, detail) = user(&m, style);
                                    s.push_str(&text);
                                    d.detail.extend(detail);
                                }
                                Err(_) => {
                                    let _ = write!(s, " | user message {} bytes", u.message.len());
                                }
                            }
                        }
                    }
                    Err(_) => {
                        let _ = write!(s, " | event {} bytes", body.len());
                    }
                }
            }
            Ok(m) => {
                let _ = write!(s, " | NodeChannel {}", node(&m, style));
            }
            Err(_) => {
                let _ = write!(s, " | NodeChannel payload {} bytes", frame.payload.len());
            }
        },
    }
    d
}

fn broker(m: &BrokerMessage<'_>) -> String {
    match m {
        BrokerMessage::Init { .. } => "INIT".into(),
        BrokerMessage::BufferRequest { size, .. } => format!("BUFFER_REQUEST size={size}"),
        BrokerMessage::BufferResponse { guid: g, .. } if g.is_valid() => {
            format!("BUFFER_RESPONSE guid={}", guid(*g))
        }
        BrokerMessage::BufferResponse { .. } => "BUFFER_RESPONSE failure (guid 0)".into(),
        BrokerMessage::Unknown { message_type, body } => {
            format!("{message_type} body {} bytes", body.len())
        }
    }
}

fn control(m: &ControlMessage<'_>) -> String {
    match m {
        ControlMessage::UpgradeOffer(o) => format!(
            "UPGRADE_OFFER version={} num_pages={}",
            o.version, o.num_pages
        ),
        other => format!("{}", other.message_type()),
    }
}

fn caps<T: std::fmt::Debug>(c: &Option<T>) -> String {
    match c {
        Some(c) => format!("{c:?}"),
        None => "none (V0 body)".into(),
    }
}

fn node(m: &NodeMessage<'_>, style: Style) -> String {
    let t = m.message_type();
    match m {
        NodeMessage::AcceptInvitee(a) => format!(
            "{t} inviter={} token={} capabilities={}",
            node_name(a.inviter_name),
            token(a.token),
            caps(&a.capabilities.map(|c| c.bits()))
        ),
        NodeMessage::AcceptInvitation(a) => format!(
            "{t} token={} invitee={} capabilities={}",
            token(a.token),
            node_name(a.invitee_name),
            caps(&a.capabilities.map(|c| c.bits()))
        ),
        NodeMessage::AddBrokerClient(a) => format!("{t} client={}", node_name(a.client_name)),
        NodeMessage::BrokerClientAdded(a) => format!("{t} client={}", node_name(a.client_name)),
        NodeMessage::AcceptBrokerClient(a) => match (&a.capabilities, style.labels) {
            (Some(c), true) => format!(
                "{t} broker={} capabilities={} broker_capabilities={}",
                node_name(a.broker_name),
                c.capabilities.bits(),
                c.broker_capabilities.bits()
            ),
            _ => format!(
                "{t} broker={} capabilities={}",
                node_name(a.broker_name),
                caps(
                    &a.capabilities
                        .map(|c| (c.capabilities.bits(), c.broker_capabilities.bits()))
                )
            ),
        },
        NodeMessage::RequestPortMerge(r) => format!(
            "{t} connector={} name={}",
            port_name(r.connector_port_name),
            attachment_name(r.token)
        ),
        NodeMessage::RequestIntroduction(i) | NodeMessage::Introduce(i) => {
            format!("{t} name={}", node_name(i.name))
        }
        NodeMessage::AcceptPeer(a) => format!(
            "{t} token={} peer={} port={}",
            token(a.token),
            node_name(a.peer_name),
            port_name(a.port_name)
        ),
        NodeMessage::EventMessage(b) | NodeMessage::BroadcastEvent(b) => {
            format!("{t} {} bytes", b.len())
        }
        NodeMessage::BindBrokerHost(_) => t.to_string(),
        NodeMessage::Unknown { body, .. } => format!("{t} body {} bytes", body.len()),
    }
}

fn attachment_name(token: &[u8]) -> String {
    if token.len() == 8 && token.iter().any(|b| !b.is_ascii_graphic()) {
        let mut a = [0u8; 8];
        a.copy_from_slice(token);
        return format!("#{}", u64::from_le_bytes(a));
    }
    match std::str::from_utf8(token) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => format!("{} bytes", token.len()),
    }
}

fn at(node: NodeName, port: PortName) -> String {
    format!("{}:{}", node_name(node), port_name(port))
}

fn descriptor(d: &PortDescriptor, style: Style) -> String {
    let (send, receive, last) = (
        d.next_sequence_num_to_send,
        d.next_sequence_num_to_receive,
        d.last_sequence_num_to_receive,
    );
    let seq = if style.labels {
        format!("seq next_send={send} next_recv={receive} last_recv={last}")
    } else {
        format!("seq {send}/{receive}/{last}")
    };
    format!(
        "peer {} ref {} {seq}{}",
        at(d.peer_node_name, d.peer_port_name),
        at(d.referring_node_name, d.referring_port_name),
        if d.peer_closed { " peer-closed" } else { "" }
    )
}

fn event(e: &Event<'_>, style: Style) -> String {
    let mut s = format!("{} port={}", e.event_type(), port_name(e.port_name));
    if let Some(sender) = e.sender {
        let _ = write!(
            s,
            " from={} csn={}",
            port_name(sender.from_port),
            if sender.control_sequence_num == u64::MAX {
                "MAX".to_string()
            } else {
                sender.control_sequence_num.to_string()
            }
        );
    }
    let seq = |n: u64| {
        if n == u64::MAX {
            "MAX (retry)".to_string()
        } else {
            n.to_string()
        }
    };
    match &e.data {
        EventData::UserMessage(u) => {
            let _ = write!(s, " seq={} ports={}", u.sequence_num, u.ports.len());
            for p in &u.ports {
                let _ = write!(
                    s,
                    " [{} <- {}]",
                    port_name(p.name),
                    descriptor(&p.descriptor, style)
                );
            }
        }
        EventData::PortAccepted => {}
        EventData::ObserveProxy(o) => {
            let _ = write!(
                s,
                " proxy={} target={}",
                at(o.proxy_node_name, o.proxy_port_name),
                at(o.proxy_target_node_name, o.proxy_target_port_name)
            );
        }
        EventData::ObserveProxyAck { last_sequence_num }
        | EventData::ObserveClosure { last_sequence_num } => {
            let _ = write!(s, " last={}", seq(*last_sequence_num));
        }
        EventData::MergePort(m) => {
            let _ = write!(
                s,
                " new={} [{}]",
                port_name(m.new_port_name),
                descriptor(&m.new_port_descriptor, style)
            );
        }
        EventData::UserMessageReadAckRequest {
            sequence_num_to_acknowledge: n,
        }
        | EventData::UserMessageReadAck {
            sequence_num_acknowledged: n,
        } => {
            let _ = write!(s, " seq={n}");
        }
        EventData::UpdatePreviousPeer {
            new_node_name,
            new_port_name,
        } => {
            let _ = write!(s, " new_peer={}", at(*new_node_name, *new_port_name));
        }
        EventData::Unknown { data, .. } => {
            let _ = write!(s, " data {} bytes", data.len());
        }
    }
    if !e.trailing.is_empty() {
        let _ = write!(s, " (+{} trailing bytes)", e.trailing.len());
    }
    s
}

/// A dispatcher as the frame line prints it (names marked).
pub(crate) fn dispatcher(d: &Dispatcher<'_>) -> String {
    match d {
        Dispatcher::MessagePipe(m) => {
            format!(
                "MessagePipe(pipe_id={:#x}, endpoint={})",
                m.pipe_id, m.endpoint
            )
        }
        Dispatcher::DataPipeProducer(p) | Dispatcher::DataPipeConsumer(p) => format!(
            "{}(capacity={}, element={}, offset={}, available={}, flags={:#x}, guid={})",
            if matches!(d, Dispatcher::DataPipeProducer(_)) {
                "DataPipeProducer"
            } else {
                "DataPipeConsumer"
            },
            p.options.capacity_num_bytes,
            p.options.element_num_bytes,
            p.offset,
            p.available,
            p.flags,
            guid(p.buffer_guid)
        ),
        Dispatcher::SharedBuffer(b) => format!(
            "SharedBuffer({} bytes, {:?}, guid={}, {} fds)",
            b.num_bytes,
            b.access_mode,
            guid(b.guid),
            b.access_mode.num_fds()
        ),
        Dispatcher::PlatformHandle => "PlatformHandle(1 fd)".into(),
        Dispatcher::Unknown {
            dispatcher_type,
            state,
            ..
        } => format!("{dispatcher_type}({} state bytes)", state.len()),
    }
}

fn user(m: &UserMessage<'_>, style: Style) -> (String, Vec<String>) {
    let mut s = String::new();
    if !m.dispatchers.is_empty() {
        let list: Vec<String> = m.dispatchers.iter().map(dispatcher).collect();
        let _ = write!(s, " | dispatchers: {}", list.join(", "));
    }
    let _ = write!(s, " | payload {} bytes", m.payload.len());
    let mut detail = Vec::new();
    if style.labels {
        if let Some(op) = payload::opcode(m.payload) {
            let _ = write!(s, " op={op}");
        }
        detail.push(format!("payload: {}", payload::excerpt(m.payload)));
    }
    (s, detail)
}
