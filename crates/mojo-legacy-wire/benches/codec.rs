//! Parse and encode timings for a typical legacy frame: a libchrome-profile
//! `EVENT_MESSAGE` carrying a `UserMessage` event with one attached port,
//! one message-pipe dispatcher and a 64-byte payload (the shape most frames
//! in the recorded transcripts have). A hand-rolled loop, no dependencies:
//! `cargo bench -p mojo-legacy-wire --bench codec`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::event::{AttachedPort, Event, EventData, PortDescriptor};
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage};
use mojo_legacy_wire::user_message::{
    Dispatcher, MessagePipeState, UserMessage, encode_user_message_frame,
};
use mojo_legacy_wire::{EventHeaderForm, NodeName, PortName, Profile};

const PAYLOAD: [u8; 64] = [0x5a; 64];

fn ports() -> Vec<AttachedPort> {
    vec![AttachedPort {
        descriptor: PortDescriptor {
            peer_node_name: NodeName::new(0x1111, 0x2222),
            peer_port_name: PortName::new(0x3333, 0x4444),
            referring_node_name: NodeName::new(0x5555, 0x6666),
            referring_port_name: PortName::new(0x7777, 0x8888),
            next_sequence_num_to_send: 1,
            next_sequence_num_to_receive: 1,
            last_sequence_num_to_receive: 0,
            peer_closed: false,
        },
        name: PortName::new(0x9999, 0xaaaa),
    }]
}

fn message() -> UserMessage<'static> {
    UserMessage {
        dispatchers: vec![Dispatcher::MessagePipe(MessagePipeState {
            pipe_id: 0,
            endpoint: 1,
        })],
        payload: &PAYLOAD,
    }
}

fn encode(out: &mut Vec<u8>, ports: &[AttachedPort], message: &UserMessage<'_>) -> usize {
    encode_user_message_frame(
        out,
        Profile::Libchrome,
        PortName::new(0xbbbb, 0xcccc),
        None,
        7,
        ports,
        message,
    )
    .unwrap()
}

/// Decodes the frame down to the user message; returns a value depending on
/// every layer so nothing is optimized away.
fn parse(bytes: &[u8]) -> usize {
    let (frame, used) = Frame::decode(bytes).unwrap();
    let node = NodeFrame::from_frame(&frame).unwrap();
    let NodeChannelContent::Message(NodeMessage::EventMessage(body)) = node.content else {
        panic!("not an event")
    };
    let event = Event::decode(body, EventHeaderForm::Compact).unwrap();
    let EventData::UserMessage(m) = &event.data else {
        panic!("not a user message")
    };
    let user = UserMessage::decode(m.message).unwrap();
    used + m.ports.len() + user.dispatchers.len() + user.payload.len()
}

/// With `BENCH_CASE=<case>` and `BENCH_ITERATIONS=<n>` in the environment,
/// runs only the case named (`legacy/parse` or `legacy/encode`) exactly `n`
/// times and prints nothing, so an instruction counter (callgrind) can
/// measure it on a busy machine.
fn time(label: &str, case: &str, iterations: u32, mut f: impl FnMut() -> usize) {
    if let (Ok(only), Ok(n)) = (
        std::env::var("BENCH_CASE"),
        std::env::var("BENCH_ITERATIONS"),
    ) {
        if only == case {
            for _ in 0..n.parse::<u64>().expect("BENCH_ITERATIONS is a number") {
                black_box(f());
            }
        }
        return;
    }
    // Warm up, then take the best of five runs (least disturbed by the
    // other builds sharing the machine).
    for _ in 0..iterations / 10 {
        black_box(f());
    }
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(f());
        }
        best = best.min(start.elapsed());
    }
    let ns = best.as_nanos() as f64 / f64::from(iterations);
    println!("{label}: {ns:.1} ns/frame (best of 5 x {iterations})");
}

fn main() {
    let ports = ports();
    let message = message();
    let mut frame = Vec::new();
    let len = encode(&mut frame, &ports, &message);
    assert_eq!(parse(&frame), len + 1 + 1 + PAYLOAD.len());
    if std::env::var_os("BENCH_CASE").is_none() {
        println!("typical legacy frame: {len} bytes");
    }
    let iterations = 200_000;
    time(
        "legacy parse (channel+node+event+user message)",
        "legacy/parse",
        iterations,
        || parse(black_box(&frame)),
    );
    let mut out = Vec::with_capacity(len);
    time(
        "legacy encode (fresh user-message frame)",
        "legacy/encode",
        iterations,
        || {
            out.clear();
            encode(&mut out, black_box(&ports), black_box(&message))
        },
    );
}
