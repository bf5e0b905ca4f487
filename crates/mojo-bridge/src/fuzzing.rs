//! Oracle for the cargo-fuzz target `fuzz/fuzz_targets/proxy_streams.rs`
//! (and for the tests that run it under stable): the whole sans-IO
//! [`Proxy`] fed arbitrary stream bytes and fds on its three links, as the
//! driver would feed it, so both sessions' deframing (the ipcz non-broker
//! session, the legacy broker invitation and bootstrap link) and the nodes
//! behind them see hostile input.
//!
//! The contract checked:
//! * nothing panics; bad input is a [`ProxyError`](crate::proxy::ProxyError),
//!   after which the oracle stops feeding (the driver would exit 1);
//! * the proxy never consumes more than it was given;
//! * every frame it emits is non-empty (the driver refuses empty frames).
//!
//! The oracle answers the proxy's requests as a driver would, with heap
//! memory for the host's primary buffer and introduced links' buffers
//! (those links adopted, though nothing is fed on them) and refusals for
//! everything else (block buffers, the client's regions), so those paths
//! run too.
//!
//! Input layout: byte 0 picks the legacy profile (bit 0), the number of
//! numeric attachments (bits 1..=3: 0 means a string attachment, else 1 to
//! 7) and the ipcz mode (bit 4: `--inherit-ipcz-broker`); then records of
//! one link byte (`% 5`: 0 host, 1 client bootstrap, 2 client node channel,
//! 3 the host referrer link (inherit mode, once the proxy asked to adopt
//! it), 4 closes the link named by the record's first data byte), a `u16`
//! LE length, that many bytes, and one byte giving the number of fds (at
//! most [`MAX_FDS_PER_RECORD`]) that arrive with them.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_node::node::NodeEvent;
use ipcz_node::sim::SharedHeap;
use mojo_legacy_wire::Profile;
use mojo_wire_kit::SeededRandom;

use crate::Attachments;
use crate::proxy::{Proxy, ProxyConfig, ProxyEvent, ProxyLink};

/// Most fds the oracle passes with one record.
pub const MAX_FDS_PER_RECORD: usize = 8;

/// The largest primary buffer the oracle maps (a bigger claim stays
/// unmapped, and the session waits).
pub const MAX_MAPPED_PRIMARY_BYTES: usize = 1 << 20;

/// Most bytes the oracle keeps unconsumed per link before it stops (a
/// driver's receive buffer is bounded too).
pub const MAX_PENDING_BYTES: usize = 1 << 20;

const LINKS: [ProxyLink; 4] = [
    ProxyLink::Host,
    ProxyLink::ClientBootstrap,
    ProxyLink::ClientNodeChannel,
    ProxyLink::Referrer,
];

struct LinkInput {
    bytes: Vec<u8>,
    fds: VecDeque<OwnedFd>,
    open: bool,
}

/// Runs `data` (see the module docs) against a fresh proxy; `make_fd` makes
/// the fds (the fuzz target opens `/dev/null`). Returns whether a peer was
/// found to break its protocol.
pub fn proxy_streams(data: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> bool {
    let Some((&mode, mut rest)) = data.split_first() else {
        return false;
    };
    let attachments = match (mode >> 1) & 7 {
        0 => Attachments::Named(b"pipe!".to_vec()),
        n => Attachments::Numbered(usize::from(n)),
    };
    let config = ProxyConfig {
        attachments,
        legacy_profile: if mode & 1 == 0 {
            Profile::Libchrome
        } else {
            Profile::Desktop
        },
        legacy_name: mojo_legacy_node::ports::names::node_name(0x5EED, 1),
        inherit_broker: mode & 0x10 != 0,
    };
    let Ok(mut proxy) = Proxy::<SharedHeap>::new(&config, make_fd(), SeededRandom::new(9)) else {
        return false;
    };
    let mut links: Vec<LinkInput> = LINKS
        .iter()
        .map(|_| LinkInput {
            bytes: Vec::new(),
            fds: VecDeque::new(),
            open: true,
        })
        .collect();
    // The referrer link exists only once the proxy asked for it.
    if let Some(referrer) = links.get_mut(3) {
        referrer.open = false;
    }
    drain(&mut proxy);
    while let Some((&selector, after)) = rest.split_first() {
        let Some((len, after)) = after.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(after.len());
        let (bytes, after) = after.split_at(len);
        let (fds, after) = match after.split_first() {
            Some((&n, after)) => (usize::from(n).min(MAX_FDS_PER_RECORD), after),
            None => (0, after),
        };
        rest = after;
        let which = usize::from(selector % 5);
        let index = if which == 4 {
            usize::from(bytes.first().copied().unwrap_or(0) % 4)
        } else {
            which
        };
        let (Some(link), Some(&name)) = (links.get_mut(index), LINKS.get(index)) else {
            continue;
        };
        let result = if which == 4 {
            link.open = false;
            link.bytes.clear();
            link.fds.clear();
            proxy.handle_link_closed(name)
        } else {
            if !link.open {
                continue;
            }
            link.bytes.extend_from_slice(bytes);
            link.fds.extend((0..fds).map(|_| make_fd()));
            feed(&mut proxy, name, link)
        };
        if let Err(e) = result {
            log::debug!("proxy_streams: {e}");
            drain(&mut proxy);
            return true;
        }
        let (mapped, adopt) = drain(&mut proxy);
        if adopt {
            if let Some(referrer) = links.get_mut(3) {
                referrer.open = true;
            }
        }
        if mapped {
            // The primary buffer was just mapped: the host's rest is offered again.
            if let Some(link) = links.first_mut() {
                if link.open && feed(&mut proxy, ProxyLink::Host, link).is_err() {
                    drain(&mut proxy);
                    return true;
                }
            }
            drain(&mut proxy);
        }
        if links.iter().any(|l| l.bytes.len() > MAX_PENDING_BYTES) {
            break;
        }
    }
    proxy.close_all();
    drain(&mut proxy);
    false
}

fn feed(
    proxy: &mut Proxy<SharedHeap>,
    which: ProxyLink,
    link: &mut LinkInput,
) -> Result<(), crate::proxy::ProxyError> {
    let used = proxy.handle_stream(which, &link.bytes, &mut link.fds)?;
    assert!(used <= link.bytes.len(), "consumed more than given");
    link.bytes.drain(..used.min(link.bytes.len()));
    Ok(())
}

/// Answers every event and writes every frame; returns whether a primary
/// buffer was mapped and whether the referrer link was adopted.
fn drain(proxy: &mut Proxy<SharedHeap>) -> (bool, bool) {
    let mut mapped = false;
    let mut adopted = false;
    loop {
        let mut moved = false;
        while let Some(t) = proxy.poll_transmit() {
            assert!(!t.bytes.is_empty(), "an empty frame for {}", t.link);
            moved = true;
        }
        while let Some(event) = proxy.poll_event() {
            moved = true;
            match event {
                ProxyEvent::MapPrimaryBuffer { buffer, .. } => {
                    let size = buffer.buffer_size as usize;
                    if size <= MAX_MAPPED_PRIMARY_BYTES
                        && proxy.primary_buffer_mapped(SharedHeap::new(size)).is_ok()
                    {
                        mapped = true;
                    }
                }
                ProxyEvent::Memory(NodeEvent::CreateBlockBuffer {
                    link, block_size, ..
                }) => {
                    if let Some(node) = proxy.ipcz_mut() {
                        node.block_buffer_failed(link, block_size);
                    }
                }
                ProxyEvent::Memory(NodeEvent::MapBlockBuffer { link, id, .. }) => {
                    if let Some(node) = proxy.ipcz_mut() {
                        node.block_buffer_unmappable(link, id);
                    }
                }
                ProxyEvent::AdoptReferrer { .. } => {
                    proxy.referrer_adopted();
                    adopted = true;
                }
                ProxyEvent::AdoptIntroduced { link, buffer, .. } => {
                    // Mapped and adopted as a driver would (its socket and
                    // the buffer's fds close here); a refusal is the host's
                    // error, which ends a real run but not the oracle.
                    let size = buffer.buffer_size as usize;
                    let mapped = if size <= MAX_MAPPED_PRIMARY_BYTES {
                        proxy.introduction_mapped(link, SharedHeap::new(size))
                    } else {
                        proxy.introduction_unusable(link)
                    };
                    if mapped.is_ok() {
                        proxy.introduced_adopted(link);
                    }
                }
                ProxyEvent::RegionRequest(request) => {
                    let _ = proxy.fail_region(request.id);
                }
                _ => {}
            }
        }
        if !moved {
            return (mapped, adopted);
        }
    }
}

/// One record of the input layout: `bytes` with `fds` fds on `link`
/// (0 host, 1 client bootstrap, 2 client node channel, 3 host referrer).
pub fn record(out: &mut Vec<u8>, link: u8, bytes: &[u8], fds: u8) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.push(link);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
    out.push(fds);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dev_null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn empty_and_tiny_inputs_do_nothing_harmful() {
        for data in [&[][..], &[0], &[0xff, 3, 0], &[0, 3, 1, 0, 1, 0]] {
            proxy_streams(data, &mut dev_null);
        }
    }

    #[test]
    fn garbage_on_the_host_link_is_a_protocol_error() {
        let mut data = vec![0];
        record(&mut data, 0, &[8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 0);
        assert!(proxy_streams(&data, &mut dev_null));
    }

    #[test]
    fn garbage_on_the_client_link_is_a_protocol_error() {
        let mut data = vec![2];
        record(&mut data, 2, &[4, 0, 0, 0, 0, 0, 0, 0], 0);
        assert!(proxy_streams(&data, &mut dev_null));
    }

    #[test]
    fn closing_links_before_anything_arrived_is_handled() {
        let mut data = vec![0];
        record(&mut data, 4, &[1], 0);
        record(&mut data, 4, &[2], 0);
        assert!(!proxy_streams(&data, &mut dev_null));
        let mut data = vec![0];
        record(&mut data, 4, &[0], 0);
        assert!(proxy_streams(&data, &mut dev_null), "host gone early");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_streams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            proxy_streams(&data, &mut dev_null);
        }
    }
}
