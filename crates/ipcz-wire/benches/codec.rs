//! Decode and encode speed of typical ipcz frames: `cargo bench -p ipcz-wire
//! --bench codec`. A plain `Instant` loop (no bench framework): each case
//! runs for about half a second and prints the best of five rounds in
//! nanoseconds per frame.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::frame::{Frame, FrameHeader};
use ipcz_wire::message::Message;
use ipcz_wire::messages::{AcceptParcel, Body, ConnectFromBrokerToNonBroker};
use ipcz_wire::types::{HandleType, NodeName};
use mojo_wire_kit::{Guid, RegionMode};

/// An AcceptParcel with 64 bytes of inline data and no handles: the frame
/// the proxy forwards most.
fn parcel_frame() -> Vec<u8> {
    let data = [0x5a_u8; 64];
    let message = Message::new(
        7,
        AcceptParcel::inline(1, 3, &data, Vec::<HandleType>::new(), vec![]).into(),
    );
    let mut out = Vec::new();
    FrameHeader::new(0, 0x0102_0304)
        .encode_frame(&[], &message, &mut out)
        .expect("encode");
    out
}

/// The broker's handshake: node names, a features array and a SharedBuffer.
fn greeting_frame() -> Vec<u8> {
    let mut message = Message::new(0, Body::from(ConnectFromBrokerToNonBroker::default()));
    let buffer = message.push_object(DriverObject::SharedBuffer(SharedBuffer {
        buffer_size: 131072,
        mode: RegionMode::Unsafe,
        guid: Guid {
            low: 0x953c_2a32_4a12_95b3,
            high: 0x1234_5678_9abc_def0,
        },
    }));
    message.body = ConnectFromBrokerToNonBroker {
        broker_name: NodeName {
            high: 0x6e64_b65e_bbe2_f1b3,
            low: 7,
        },
        receiver_name: NodeName { high: 9, low: 10 },
        protocol_version: 0,
        num_initial_portals: 2,
        buffer,
        padding: 0,
        features: Some(vec![0]),
    }
    .into();
    let mut out = Vec::new();
    FrameHeader::new(1, 0x0102_0304)
        .encode_frame(&[], &message, &mut out)
        .expect("encode");
    out
}

fn decode(frame: &[u8]) -> usize {
    let (f, _) = Frame::decode(frame).expect("frame");
    let m = Message::decode(f.payload, f.header.num_handles.into()).expect("message");
    m.driver_objects.len() + m.id().0 as usize
}

fn decode_exact(frame: &[u8]) -> usize {
    let (f, _) = Frame::decode(frame).expect("frame");
    let m = Message::decode_exact(f.payload, f.header.num_handles.into()).expect("message");
    m.driver_objects.len() + m.id().0 as usize
}

/// Best of five rounds of about 100 ms each, in ns per call. With
/// `BENCH_CASE=<case>` and `BENCH_ITERATIONS=<n>` in the environment, runs
/// only the case named (e.g. `parcel/encode`) exactly `n` times and reports
/// nothing, so `perf stat -e instructions` can count it on a busy machine.
fn measure(case: &str, mut call: impl FnMut() -> usize) -> f64 {
    if let (Ok(only), Ok(n)) = (
        std::env::var("BENCH_CASE"),
        std::env::var("BENCH_ITERATIONS"),
    ) {
        if only == case {
            for _ in 0..n.parse::<u64>().expect("BENCH_ITERATIONS is a number") {
                black_box(call());
            }
        }
        return 0.0;
    }
    let mut iterations = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(call());
        }
        if start.elapsed() > Duration::from_millis(100) {
            break;
        }
        iterations *= 2;
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(call());
            }
            start.elapsed().as_nanos() as f64 / iterations as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    for (key, name, frame) in [
        ("parcel", "AcceptParcel 64 B inline", parcel_frame()),
        ("greeting", "ConnectFromBrokerToNonBroker", greeting_frame()),
    ] {
        let frame = black_box(frame);
        let decode_ns = measure(&format!("{key}/decode"), || decode(black_box(&frame)));
        let exact_ns = measure(&format!("{key}/decode_exact"), || {
            decode_exact(black_box(&frame))
        });
        let (f, _) = Frame::decode(&frame).expect("frame");
        let m = Message::decode(f.payload, f.header.num_handles.into()).expect("message");
        let mut out = Vec::with_capacity(frame.len());
        let encode_ns = measure(&format!("{key}/encode"), || {
            out.clear();
            f.header
                .encode_frame(f.header_extension, black_box(&m), &mut out)
                .expect("encode");
            out.len()
        });
        if std::env::var_os("BENCH_CASE").is_some() {
            continue;
        }
        println!(
            "{name} ({} B): decode {decode_ns:.0} ns, decode_exact {exact_ns:.0} ns, encode {encode_ns:.0} ns",
            frame.len()
        );
    }
}
