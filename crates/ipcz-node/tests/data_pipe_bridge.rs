//! A legacy data pipe joined to a MojoIpcz data pipe the way the bridge will
//! join them, all in memory: a legacy end on the client, its peer end and
//! an ipcz end held by the "proxy", and the ipcz peer end on the host. The
//! proxy moves bytes from the consumer it holds into the producer it holds,
//! never more than the producer has room for, and closes its producer once
//! its consumer is drained. 1 MiB crosses each way through small rings, and
//! the far consumer sees closure only after the last byte.

mod memory_support;

use ipcz_node::data_pipe as ipcz;
use ipcz_wire::driver_object::SharedBuffer;
use memory_support::Shared;
use mojo_legacy_node::data_pipe as legacy;
use mojo_legacy_wire::user_message::DataPipeOptions;
use mojo_wire_kit::{Guid, HeapMemory, RegionMode};

const TOTAL: usize = 1 << 20;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(5).wrapping_add(1).wrapping_add(i >> 12) % 256) as u8
}

fn legacy_pair(
    capacity: u32,
) -> (
    legacy::DataPipeProducer<Shared>,
    legacy::DataPipeConsumer<Shared>,
) {
    let options = DataPipeOptions {
        struct_size: 16,
        flags: 0,
        element_num_bytes: 1,
        capacity_num_bytes: capacity,
    };
    let (p, c) = legacy::new_pipe_states(options, 0, Guid::new(1, 1)).unwrap();
    let ring = Shared::new(HeapMemory::new(capacity as usize));
    (
        legacy::DataPipeProducer::new(&p, ring.clone()).unwrap(),
        legacy::DataPipeConsumer::new(&c, ring).unwrap(),
    )
}

fn ipcz_pair(
    capacity: u32,
) -> (
    ipcz::DataPipeProducer<Shared>,
    ipcz::DataPipeConsumer<Shared>,
) {
    let buffer = SharedBuffer {
        buffer_size: capacity,
        mode: RegionMode::Unsafe,
        guid: Guid::new(2, 2),
    };
    let (p, c) = ipcz::new_pipe_objects(1, buffer).unwrap();
    let ring = Shared::new(HeapMemory::new(capacity as usize));
    (
        ipcz::DataPipeProducer::new(&p, ring.clone()).unwrap(),
        ipcz::DataPipeConsumer::new(&c, ring).unwrap(),
    )
}

/// Where each end of the chain stands; `None` once an end is closed.
struct Chain<SrcP, SrcC, DstP, DstC> {
    source: Option<SrcP>,
    proxy_in: SrcC,
    proxy_out: Option<DstP>,
    sink: DstC,
}

/// client legacy producer → proxy legacy consumer → proxy ipcz producer →
/// host ipcz consumer.
#[test]
fn legacy_to_ipcz_moves_every_byte_then_closes() {
    let (source, proxy_in) = legacy_pair(3000);
    let (proxy_out, sink) = ipcz_pair(4096);
    let mut chain = Chain {
        source: Some(source),
        proxy_in,
        proxy_out: Some(proxy_out),
        sink,
    };
    let (mut sent, mut received) = (0usize, Vec::with_capacity(TOTAL));
    let mut scratch = vec![0; 1024];
    let mut host_buf = vec![0; 1500];
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100_000, "stuck");
        let mut moved = false;
        // The client writes and, when done, closes its producer.
        if let Some(source) = chain.source.as_mut() {
            let end = (sent + 2000).min(TOTAL);
            let data: Vec<u8> = (sent..end).map(pattern).collect();
            let n = source.write(&data).unwrap();
            sent += n;
            moved |= n > 0;
            if let Some(m) = source.poll_control_payload() {
                chain.proxy_in.handle_control(&m).unwrap();
                moved = true;
            }
            if sent == TOTAL {
                chain.source = None;
                // The control port delivers closure after its messages.
                chain.proxy_in.handle_peer_closed();
                moved = true;
            }
        }
        // The proxy forwards what its producer has room for.
        if let Some(out) = chain.proxy_out.as_mut() {
            let n = (chain.proxy_in.bytes_available() as usize)
                .min(out.available_capacity() as usize)
                .min(scratch.len());
            let k = chain.proxy_in.read(&mut scratch[..n]).unwrap();
            assert_eq!(out.write(&scratch[..k]).unwrap(), k);
            moved |= k > 0;
            if let Some(parcel) = out.poll_control_parcel() {
                chain.sink.handle_control(&parcel, 0).unwrap();
                moved = true;
            }
            if chain.proxy_in.is_drained() {
                chain.proxy_out = None;
                chain.sink.handle_peer_closed();
                moved = true;
            }
        }
        if let Some(m) = chain.proxy_in.poll_control_payload() {
            if let Some(source) = chain.source.as_mut() {
                source.handle_control(&m).unwrap();
            }
            moved = true;
        }
        // The host reads.
        assert!(!chain.sink.is_drained() || received.len() == TOTAL);
        let k = chain.sink.read(&mut host_buf).unwrap();
        received.extend_from_slice(&host_buf[..k]);
        moved |= k > 0;
        if let Some(parcel) = chain.sink.poll_control_parcel() {
            if let Some(out) = chain.proxy_out.as_mut() {
                out.handle_control(&parcel, 0).unwrap();
            }
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert_eq!(received.len(), TOTAL);
    assert!(received.iter().enumerate().all(|(i, b)| *b == pattern(i)));
    assert!(chain.sink.is_drained());
    assert!(chain.source.is_none() && chain.proxy_out.is_none());
    assert!(chain.proxy_in.is_drained());
}

/// host ipcz producer → proxy ipcz consumer → proxy legacy producer →
/// client legacy consumer.
#[test]
fn ipcz_to_legacy_moves_every_byte_then_closes() {
    let (source, proxy_in) = ipcz_pair(2048);
    let (proxy_out, sink) = legacy_pair(5000);
    let mut chain = Chain {
        source: Some(source),
        proxy_in,
        proxy_out: Some(proxy_out),
        sink,
    };
    let (mut sent, mut received) = (0usize, Vec::with_capacity(TOTAL));
    let mut scratch = vec![0; 700];
    let mut client_buf = vec![0; 3333];
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100_000, "stuck");
        let mut moved = false;
        if let Some(source) = chain.source.as_mut() {
            let end = (sent + 999).min(TOTAL);
            let data: Vec<u8> = (sent..end).map(pattern).collect();
            let n = source.write(&data).unwrap();
            sent += n;
            moved |= n > 0;
            if let Some(parcel) = source.poll_control_parcel() {
                chain.proxy_in.handle_control(&parcel, 0).unwrap();
                moved = true;
            }
            if sent == TOTAL {
                chain.source = None;
                chain.proxy_in.handle_peer_closed();
                moved = true;
            }
        }
        if let Some(out) = chain.proxy_out.as_mut() {
            let n = (chain.proxy_in.bytes_available() as usize)
                .min(out.available_capacity() as usize)
                .min(scratch.len());
            let k = chain.proxy_in.read(&mut scratch[..n]).unwrap();
            assert_eq!(out.write(&scratch[..k]).unwrap(), k);
            moved |= k > 0;
            if let Some(m) = out.poll_control_payload() {
                chain.sink.handle_control(&m).unwrap();
                moved = true;
            }
            if chain.proxy_in.is_drained() {
                chain.proxy_out = None;
                chain.sink.handle_peer_closed();
                moved = true;
            }
        }
        if let Some(parcel) = chain.proxy_in.poll_control_parcel() {
            if let Some(source) = chain.source.as_mut() {
                source.handle_control(&parcel, 0).unwrap();
            }
            moved = true;
        }
        assert!(!chain.sink.is_drained() || received.len() == TOTAL);
        let k = chain.sink.read(&mut client_buf).unwrap();
        received.extend_from_slice(&client_buf[..k]);
        moved |= k > 0;
        if let Some(m) = chain.sink.poll_control_payload() {
            if let Some(out) = chain.proxy_out.as_mut() {
                out.handle_control(&m).unwrap();
            }
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert_eq!(received.len(), TOTAL);
    assert!(received.iter().enumerate().all(|(i, b)| *b == pattern(i)));
    assert!(chain.sink.is_drained());
    assert!(chain.source.is_none() && chain.proxy_out.is_none());
    assert!(chain.proxy_in.is_drained());
}
