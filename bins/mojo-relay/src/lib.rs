//! `mojo-relay`: the floor of `cargo xtask bench`, a process that moves the
//! bytes and fds of one socket to another and back, with no protocol work.
//!
//! It takes `mojo_proxy`'s command line (`--legacy-client-fd=N
//! --host-ipcz-transport-fd=N`, every other switch ignored) so the test host
//! can launch it in the proxy's place (`mojo-test-host --relay=PATH`). The
//! relay does not translate, so both peers must speak the same protocol: the
//! host pairs it with an ipcz client. What a proxy hop costs beyond this
//! relay is the price of its protocol work.
//!
//! One `mio` loop, edge-triggered, over two [`Endpoint`]s: whatever one side
//! delivers (bytes and the fds that came with them, one kernel read at a
//! time, in order) is queued on
//! the other and flushed at once. A side whose peer has more than
//! [`MAX_PENDING_BYTES`] unsent is not read until the peer drains, so memory
//! stays bounded. EOF on one side is passed on as a write shutdown once
//! everything before it is written; the relay exits when both directions
//! are closed.

#![forbid(unsafe_code)]

use std::net::Shutdown;
use std::os::fd::OwnedFd;

use mio::{Events, Interest, Poll, Token};
use mojo_platform_channel::{ChannelError, Endpoint, MAX_FDS_PER_SENDMSG, ReadOutcome};

/// Unsent bytes queued towards one side above which the other side is not
/// read (backpressure: the relay never buffers without bound).
pub const MAX_PENDING_BYTES: usize = 8 << 20;

/// Events taken from one `epoll_wait`.
const EVENTS_PER_POLL: usize = 16;

/// The two sockets of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Args {
    /// `--legacy-client-fd=N`: the client's socket.
    pub client_fd: i32,
    /// `--host-ipcz-transport-fd=N`: the host's socket.
    pub host_fd: i32,
}

/// Reads `--legacy-client-fd=N` and `--host-ipcz-transport-fd=N` (either
/// `-` or `--` prefix); other switches (attachments, extra proxy flags) are
/// accepted and ignored, since the relay does nothing with them.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
    let (mut client_fd, mut host_fd) = (None, None);
    for arg in args {
        let switch = arg.trim_start_matches('-');
        let Some((name, value)) = switch.split_once('=') else {
            continue;
        };
        let slot = match name {
            "legacy-client-fd" => &mut client_fd,
            "host-ipcz-transport-fd" => &mut host_fd,
            _ => continue,
        };
        let fd: i32 = value
            .parse()
            .ok()
            .filter(|fd| *fd >= 0)
            .ok_or_else(|| format!("--{name}={value}: expected an fd number"))?;
        *slot = Some(fd);
    }
    match (client_fd, host_fd) {
        (Some(client_fd), Some(host_fd)) if client_fd != host_fd => Ok(Args { client_fd, host_fd }),
        (Some(_), Some(_)) => Err("the two sockets must be different fds".into()),
        (None, _) => Err("missing --legacy-client-fd=N".into()),
        (_, None) => Err("missing --host-ipcz-transport-fd=N".into()),
    }
}

/// One side of the relay and what is known about it.
struct Side {
    endpoint: Endpoint,
    /// Its peer closed writing and everything it sent was read.
    read_closed: bool,
    /// We shut down writing towards it.
    write_closed: bool,
    /// Its peer's hang-up was reported: read on to the end of the stream.
    hung_up: bool,
}

impl Side {
    fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            read_closed: false,
            hung_up: false,
            write_closed: false,
        }
    }
}

/// Moves what `from` has buffered (bytes and the fds received with them) to
/// `to`'s queue. Fds wait for bytes to ride with (a `sendmsg` needs one byte
/// per [`MAX_FDS_PER_SENDMSG`] fds).
fn move_buffered(from: &mut Endpoint, to: &mut Endpoint) -> Result<(), ChannelError> {
    let len = from.buffered().len();
    if len == 0 {
        return Ok(());
    }
    let bytes = from.buffered().to_vec();
    from.consume(len)?;
    let fds_allowed = len.saturating_mul(MAX_FDS_PER_SENDMSG);
    let n = from.queued_fds().min(fds_allowed);
    let fds: Vec<OwnedFd> = from.take_fds(n).unwrap_or_default();
    to.queue(bytes, fds)
}

/// Reads `from` until it would block (or `to` has too much queued),
/// forwarding everything to `to`, then flushes `to`.
fn pump(from: &mut Side, to: &mut Side) -> Result<(), ChannelError> {
    while !from.read_closed && to.endpoint.pending_output_bytes() < MAX_PENDING_BYTES {
        match from.endpoint.read_available()? {
            ReadOutcome::Data { .. } => {
                move_buffered(&mut from.endpoint, &mut to.endpoint)?;
                to.endpoint.flush()?;
                // As the proxy's driver does: no recvmsg only to hear EAGAIN.
                if from.endpoint.drained() && !from.hung_up {
                    break;
                }
            }
            ReadOutcome::WouldBlock => break,
            ReadOutcome::Eof => from.read_closed = true,
        }
    }
    to.endpoint.flush()?;
    if from.read_closed && !to.write_closed && !to.endpoint.has_pending_output() {
        to.write_closed = true;
        // The peer may be gone already; the relay's job ends either way.
        let _ = to.endpoint.shutdown(Shutdown::Write);
    }
    Ok(())
}

const HOST: Token = Token(0);
const CLIENT: Token = Token(1);

/// Relays between `host` and `client` until both directions are closed.
/// A socket error (other than a peer that vanished) is returned.
pub fn relay(mut host: Endpoint, mut client: Endpoint) -> Result<(), String> {
    // One `recvmsg` per read, so each chunk forwarded is one kernel read
    // with its own fds: the kernel ends a read after a message that carried
    // fds, so they belong to a frame that starts in that read and reach the
    // peer with the chunk's first `sendmsg`. A batch of reads forwarded as
    // one chunk would carry more than `MAX_FDS_PER_SENDMSG` fds when many
    // small fd-carrying messages queue up, and the queue would send the
    // rest with the chunk's last bytes, after the frames they belong to
    // (an ipcz peer then drops the link: "frame announces 1 fds, 0
    // received").
    host.set_one_recvmsg_per_read(true);
    client.set_one_recvmsg_per_read(true);
    let mut poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let (mut host, mut client) = (Side::new(host), Side::new(client));
    let both = Interest::READABLE | Interest::WRITABLE;
    for (side, token) in [(&mut host, HOST), (&mut client, CLIENT)] {
        poll.registry()
            .register(&mut side.endpoint, token, both)
            .map_err(|e| format!("epoll register: {e}"))?;
    }
    let mut events = Events::with_capacity(EVENTS_PER_POLL);
    // Both directions once (data may have arrived before registration), then
    // only what the events ask: readable `X` drains X into its peer;
    // writable `X` flushes X and resumes reading its peer if it was held
    // back. Edge-triggered, so each is drained to `EAGAIN`.
    let (mut host_to_client, mut client_to_host) = (true, true);
    loop {
        let mut step = Ok(());
        if host_to_client {
            step = pump(&mut host, &mut client);
        }
        if client_to_host && step.is_ok() {
            step = pump(&mut client, &mut host);
        }
        match step {
            Ok(()) => {}
            Err(e) if e.is_disconnect() => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        if host.write_closed && client.write_closed {
            return Ok(());
        }
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        (host_to_client, client_to_host) = (false, false);
        for event in &events {
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable() || event.is_write_closed();
            if event.is_read_closed() || event.is_error() {
                match event.token() {
                    HOST => host.hung_up = true,
                    _ => client.hung_up = true,
                }
            }
            match event.token() {
                HOST => {
                    host_to_client |= readable;
                    client_to_host |= writable;
                }
                _ => {
                    client_to_host |= readable;
                    host_to_client |= writable;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_proxy_command_line() {
        let got = parse_args(args(&[
            "--legacy-client-fd=4",
            "--host-ipcz-transport-fd=5",
            "--attachment-name=x",
            "--inherit-ipcz-broker",
        ]));
        assert_eq!(
            got,
            Ok(Args {
                client_fd: 4,
                host_fd: 5
            })
        );
        assert!(parse_args(args(&["--legacy-client-fd=4"])).is_err());
        assert!(
            parse_args(args(&[
                "--legacy-client-fd=x",
                "--host-ipcz-transport-fd=5"
            ]))
            .is_err()
        );
        assert!(
            parse_args(args(&[
                "--legacy-client-fd=5",
                "--host-ipcz-transport-fd=5"
            ]))
            .is_err()
        );
    }

    /// Reads from `e` until `want` bytes arrived (the test's side of a pair).
    fn read_exactly(e: &mut Endpoint, want: usize) -> Vec<u8> {
        let end = Instant::now() + Duration::from_secs(10);
        while e.buffered().len() < want {
            assert!(Instant::now() < end, "timed out");
            match e.read_available().unwrap() {
                ReadOutcome::Eof => panic!("early EOF"),
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let got = e.buffered()[..want].to_vec();
        e.consume(want).unwrap();
        got
    }

    /// Many small messages with one fd each, queued before the relay reads
    /// any: every message's fd must have arrived once its last byte has
    /// (what a Chromium or ipcz receiver demands), however the relay
    /// batches its reads.
    #[test]
    fn each_fd_arrives_no_later_than_the_message_it_belongs_to() {
        const MESSAGES: usize = 3 * MAX_FDS_PER_SENDMSG;
        const LEN: usize = 8;
        let (mut host, host_relay) = mojo_platform_channel::socketpair().unwrap();
        let (client_relay, mut client) = mojo_platform_channel::socketpair().unwrap();
        for k in 0..MESSAGES {
            let (r, _w) = nix::unistd::pipe().unwrap();
            host.queue(vec![k as u8; LEN], vec![r]).unwrap();
        }
        let _ = host.flush().unwrap();
        let worker = std::thread::spawn(move || relay(host_relay, client_relay));
        // Each check after one kernel read, as a receiver that parses what
        // each read brings sees the stream.
        client.set_one_recvmsg_per_read(true);
        let (mut bytes, mut fds) = (0usize, 0usize);
        let end = Instant::now() + Duration::from_secs(20);
        while bytes < MESSAGES * LEN {
            assert!(Instant::now() < end, "timed out at {bytes} bytes");
            let _ = host.flush().unwrap();
            match client.read_available().unwrap() {
                ReadOutcome::Eof => panic!("early EOF"),
                ReadOutcome::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                ReadOutcome::Data { .. } => {}
            }
            let n = client.buffered().len();
            client.consume(n).unwrap();
            bytes += n;
            let got = client.queued_fds();
            fds += client.take_fds(got).unwrap().len();
            let whole = bytes / LEN;
            assert!(fds >= whole, "{whole} messages whole but {fds} fds arrived");
        }
        assert_eq!(fds, MESSAGES);
        drop(host);
        drop(client);
        assert_eq!(worker.join().unwrap(), Ok(()));
    }

    #[test]
    fn relays_bytes_and_fds_both_ways_then_closes() {
        let (mut host, host_relay) = mojo_platform_channel::socketpair().unwrap();
        let (client_relay, mut client) = mojo_platform_channel::socketpair().unwrap();
        let worker = std::thread::spawn(move || relay(host_relay, client_relay));

        // An OS pipe travels host → client with its message.
        let (r, w) = nix::unistd::pipe().unwrap();
        host.send(b"hello".to_vec(), vec![r]).unwrap();
        assert_eq!(read_exactly(&mut client, 5), b"hello");
        let end = Instant::now() + Duration::from_secs(10);
        while client.queued_fds() < 1 {
            assert!(Instant::now() < end);
            let _ = client.read_available().unwrap();
        }
        let got = client.take_fds(1).unwrap().pop().unwrap();
        std::fs::File::from(w).write_all(b"through").unwrap();
        let mut s = [0u8; 7];
        std::fs::File::from(got).read_exact(&mut s).unwrap();
        assert_eq!(&s, b"through");

        // A large message the other way crosses in many reads.
        let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        client.queue(big.clone(), Vec::new()).unwrap();
        let mut received = Vec::new();
        let end = Instant::now() + Duration::from_secs(20);
        while received.len() < big.len() {
            assert!(Instant::now() < end, "timed out");
            let _ = client.flush().unwrap();
            let _ = host.read_available().unwrap();
            let n = host.buffered().len();
            received.extend_from_slice(host.buffered());
            host.consume(n).unwrap();
        }
        assert!(received == big);

        drop(host);
        drop(client);
        assert_eq!(worker.join().unwrap(), Ok(()));
    }
}
