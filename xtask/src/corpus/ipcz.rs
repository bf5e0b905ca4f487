//! The ipcz seed corpora (`fuzz/corpus/ipcz_*/`), following the input
//! conventions of `ipcz_wire::fuzzing`: frames as they are; deframer inputs
//! are a split seed byte plus a few consecutive frames; message and driver
//! object inputs start with their fd count. Besides the vectors: every
//! message of the catalog zero-filled, driver objects and shared-memory
//! snapshots the recordings lack, and the regression seeds of past crashes.

use std::collections::BTreeMap;

use ipcz_wire::driver_object::{DataPipe, DataPipeEndpointType, DriverObject, SharedBuffer};
use ipcz_wire::frame::{Deframer, Frame};
use ipcz_wire::fuzzing::deframe_pieces;
use ipcz_wire::memory::{self, fragment, primary};
use ipcz_wire::message::{FieldKind, Message};
use ipcz_wire::messages::Body;
use ipcz_wire::messages::MessageId;
use ipcz_wire::router_descriptor::LegacyRouterDescriptor;
use ipcz_wire::types::{FragmentDescriptor, LinkSide};
use mojo_transcript::LinkProtocol;
use mojo_transcript::Transcript;
use mojo_transcript::testing::{unhex, vector_files_of};
use mojo_wire_kit::{Guid, RegionMode, WireLayout};

use super::Seeds;

/// `fuzz/artifacts/ipcz_message/crash-88f2af4d...`: fd count 0, then a
/// message with unknown id 0x4a whose `driver_object_data_array` is 5, so
/// the table's ArrayHeader is read from `reserved0` and the sequence number
/// (num_bytes 32, no elements). Chrome's `IsArrayValid` accepts that. The
/// encoder used to zero `reserved0`, so the re-encoding's table had
/// num_bytes 0 and no longer decoded; an unknown message's header is now
/// written back verbatim. `ipcz-wire`'s `tests/fuzz_oracles.rs` checks it.
pub(crate) const UNKNOWN_ID_TABLE_IN_HEADER: (&str, &str) = (
    "unknown-id-doda-table-in-header-reserved0",
    "0018004a00002000000000000000000000050000000000000000000000000000
     0028000018001f00000000000000000000000000000000000000000040000000
     00000000000000000000000000bd000000000000000000000000000000000000
     000b000000000000000000000000000000000000000000000000000000000000
     000000000000000000000000000000bfff000000000000000000000000000000
     000000000000000000000000000000000000ffffffffffffffffffffffffffff
     ffffffffffffff000000000000",
);

/// Adds the ipcz seeds to `seeds`.
pub(crate) fn add_seeds(seeds: &mut Seeds) {
    let mut targets: [BTreeMap<String, Vec<u8>>; 6] = Default::default();
    let [f, d, m, o, r, g] = &mut targets;
    let mut frames = Corpus::new(f, 60, 2);
    let mut deframer = Corpus::new(d, 30, 2);
    let mut messages = Corpus::new(m, 80, 2);
    let mut objects = Corpus::new(o, 30, 4);
    let mut descriptors = Corpus::new(r, 24, 8);
    let mut fragments = Corpus::new(g, 40, 40);

    for file in vector_files_of(LinkProtocol::Ipcz) {
        let transcript = Transcript::from_path(&file.path).expect("transcript");
        for stream in transcript.streams().values() {
            let deframed = deframe_pieces(Deframer::new(), [&stream.bytes[..]]);
            let mut starts = Vec::new();
            for copy in &deframed.frames {
                let offset = copy.offset as usize;
                starts.push(offset);
                let bytes = &copy.bytes[..];
                let (frame, len) = Frame::decode(bytes).expect("a deframed frame decodes");
                let fds = frame.header.num_handles;
                if let Ok(msg) = Message::decode(frame.payload, fds.into()) {
                    let key = format!("{}-{}", msg.body.name(), len);
                    frames.add(&key, bytes);
                    let mut m = vec![u8::try_from(fds).unwrap_or(0)];
                    m.extend_from_slice(frame.payload);
                    messages.add(&key, &m);
                    for o in &msg.driver_objects {
                        let mut b = vec![u8::try_from(o.fds.count).unwrap_or(0)];
                        o.object.encode(&mut b).expect("encode");
                        objects.add(&format!("{:?}", o.object.object_type()), &b);
                    }
                    if let Body::AcceptParcel(p) = &msg.body {
                        for d in &p.new_routers {
                            descriptors.add("current", d.to_wire().wire_bytes());
                            descriptors.add(
                                "legacy",
                                LegacyRouterDescriptor::from(*d).to_wire().wire_bytes(),
                            );
                        }
                        if !p.parcel_fragment.is_null() {
                            // A descriptor and a plausible fragment snapshot.
                            let d = FragmentDescriptor::new(0, 0, p.parcel_fragment.size);
                            let mut input = d.to_wire().wire_bytes().to_vec();
                            let mut bytes = vec![0u8; p.parcel_fragment.size as usize];
                            let len = (p.parcel_fragment.size as usize - 8).min(31);
                            let _ = fragment::write_parcel_data(&mut bytes, &vec![0x42; len]);
                            input.extend(bytes);
                            fragments.add(&format!("parcel-{}", p.parcel_fragment.size), &input);
                        }
                    }
                }
            }
            for (i, w) in starts.windows(4).enumerate().step_by(5) {
                let end = starts.get(i + 4).copied().unwrap_or(stream.bytes.len());
                if end - w[0] > 2048 {
                    continue;
                }
                let mut input = vec![(i * 37) as u8];
                input.extend_from_slice(&stream.bytes[w[0]..end]);
                deframer.add(&format!("run-{}", end - w[0]), &input);
            }
        }
    }

    // Every message of the catalog, all fields zero and no objects, in both
    // its full and its V0-only form (messages the recordings lack).
    for &id in MessageId::ALL {
        let layout = id.layout().expect("layout");
        for &(_, end) in layout.versions {
            let mut m = vec![0u8; end];
            m[0] = 24;
            m[2] = id.0;
            m[24..28].copy_from_slice(&((end - 24) as u32).to_le_bytes());
            for f in layout.fields.iter().filter(|f| f.offset < end) {
                if f.kind == FieldKind::DriverObject {
                    m[f.offset..f.offset + 4].copy_from_slice(&u32::MAX.to_le_bytes());
                }
            }
            let mut input = vec![0u8];
            input.extend(&m);
            messages.add(&format!("{}-v{}", layout.name, end), &input);
        }
    }

    // Driver objects the recordings lack.
    let buffer = SharedBuffer {
        buffer_size: 65536,
        mode: RegionMode::Unsafe,
        guid: Guid { low: 7, high: 9 },
    };
    for (key, object, fds) in [
        (
            "TransmissiblePlatformHandle",
            DriverObject::TransmissiblePlatformHandle,
            1u8,
        ),
        (
            "DataPipe",
            DriverObject::DataPipe(DataPipe {
                endpoint_type: DataPipeEndpointType::CONSUMER,
                element_size: 4,
                ring_offset: 16,
                ring_size: 64,
                buffer,
            }),
            1,
        ),
        (
            "SharedBuffer-read-only",
            DriverObject::SharedBuffer(SharedBuffer {
                mode: RegionMode::ReadOnly,
                ..buffer
            }),
            1,
        ),
    ] {
        let mut b = vec![fds];
        object.encode(&mut b).expect("encode");
        objects.add(key, &b);
    }
    for flags in 0u8..8 {
        let t = ipcz_wire::driver_object::Transport {
            destination_type: ipcz_wire::driver_object::TransportEndpointType(u32::from(flags & 1)),
            is_same_remote_process: flags & 2 != 0,
            is_peer_trusted: flags & 4 != 0,
            is_trusted_by_peer: flags & 1 != 0,
        };
        let mut b = vec![1 + (flags & 1)];
        DriverObject::Transport(t).encode(&mut b).expect("encode");
        objects.add(&format!("Transport-flags{flags}"), &b);
    }

    // Shared-memory snapshots: link states in each status, an allocator region.
    for status in [0u32, 0x01, 0x03, 0x07, 0x13, 0x2b, 0x3f] {
        let mut input = FragmentDescriptor::new(0, status, 64)
            .to_wire()
            .wire_bytes()
            .to_vec();
        let mut state = vec![0u8; 64];
        memory::RouterLinkState::initialize(&mut state, 2).expect("init");
        state[4..8].copy_from_slice(&status.to_le_bytes());
        input.extend(state);
        fragments.add(&format!("link-state-{status:02x}"), &input);
    }
    let mut region = vec![0u8; 64 * 16];
    memory::block::initialize_region(&mut region, 64).expect("init region");
    let mut input = FragmentDescriptor::new(0, 1088, 64)
        .to_wire()
        .wire_bytes()
        .to_vec();
    input.extend(&region);
    fragments.add("block-region", &input);
    let mut input = FragmentDescriptor::new(0, 256, 64)
        .to_wire()
        .wire_bytes()
        .to_vec();
    let mut state = vec![0u8; 64];
    memory::RouterLinkState::initialize(&mut state, 0).expect("init");
    let stable = memory::LinkStatus::empty().set_side_stable(LinkSide::B);
    state[4..8].copy_from_slice(&stable.bits().to_le_bytes());
    input.extend(state);
    input.truncate(16 + primary::INITIAL_LINK_STATES.len().min(64));
    fragments.add("initial-link-state", &input);

    drop((frames, deframer, messages, objects, descriptors, fragments));
    let names = [
        "frame",
        "deframer",
        "message",
        "driver_object",
        "router_descriptor",
        "fragment",
    ];
    for (name, files) in names.into_iter().zip(targets) {
        seeds.target(&format!("ipcz_{name}")).extend(files);
    }
    let (name, hex) = UNKNOWN_ID_TABLE_IN_HEADER;
    seeds
        .target("ipcz_message")
        .insert(name.to_string(), unhex(hex));
}

/// The ipcz selection rule: at most `per_key` inputs per key (e.g. message
/// id and size), at most `max` in total, none over 8 KiB; files are named
/// `<n>-<key>` in the order added.
struct Corpus<'s> {
    files: &'s mut BTreeMap<String, Vec<u8>>,
    seen: BTreeMap<String, usize>,
    count: usize,
    max: usize,
    per_key: usize,
}

impl<'s> Corpus<'s> {
    fn new(files: &'s mut BTreeMap<String, Vec<u8>>, max: usize, per_key: usize) -> Self {
        Self {
            files,
            seen: BTreeMap::new(),
            count: 0,
            max,
            per_key,
        }
    }

    fn add(&mut self, key: &str, bytes: &[u8]) {
        let n = self.seen.entry(key.to_string()).or_default();
        if *n >= self.per_key || self.count >= self.max || bytes.len() > 8192 {
            return;
        }
        *n += 1;
        self.count += 1;
        let name = format!("{:03}-{}", self.count, key.replace([' ', '/'], "_"));
        self.files.insert(name, bytes.to_vec());
    }
}
