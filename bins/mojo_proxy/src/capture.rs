//! `--capture-dir`: the proxy records both of its links as transcripts in
//! the format of `shared/vectors` (one JSON line per chunk read or sent, fd
//! kinds included), through the driver's [`Tap`].
//!
//! - `host_proxy.jsonl`: the ipcz link; side A is the host, so what we read
//!   is `a2b` and what we send `b2a`.
//! - `proxy_client.jsonl`: the legacy link; side A is the proxy. Channel 0
//!   is the bootstrap socket, and the node-channel socket we send in `INIT`
//!   becomes channel 1 (its fd is written `socket->chan1`, and `a2b` runs
//!   from us, the side that sent it), as the vectors record a legacy session.
//!
//! Sockets are followed by inode: the other end of a pair the driver made is
//! matched when it leaves in a message, and a socket that arrives becomes the
//! file's next channel, matched when the core adopts it. Chunks of a link
//! whose place is not known yet (our end of a pair before its other end is
//! sent) wait, at most [`MAX_PENDING_BYTES`], and are written once it is.
//!
//! Each file is bounded by `--capture-max-bytes` (the transcript writer ends
//! it with one line marked truncated); a file that cannot be written is
//! reported once and left alone, and the proxy runs on.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use mojo_driver::{CloseReason, LinkId, LinkOrigin, Tap};
use mojo_transcript::{ChunkLine, Direction, Recorded, TranscriptWriter};

/// `--capture-max-bytes` when not given: the most bytes each file may take.
pub const DEFAULT_CAPTURE_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The smallest `--capture-max-bytes` accepted.
pub const MIN_CAPTURE_MAX_BYTES: u64 = 4096;

/// Most bytes held for links whose file is not known yet; past it their
/// chunks are dropped (with a warning).
pub const MAX_PENDING_BYTES: usize = 1 << 20;

/// Most received sockets remembered until the core adopts them; a peer
/// passing more (as platform handles, say) gets them written as plain
/// `socket`, and the map does not grow.
pub const MAX_TRACKED_SOCKETS: usize = 1024;

/// The file of the ipcz link.
pub const HOST_PROXY_FILE: &str = "host_proxy.jsonl";

/// The file of the legacy link.
pub const PROXY_CLIENT_FILE: &str = "proxy_client.jsonl";

const HOST_PROXY: usize = 0;
const PROXY_CLIENT: usize = 1;

/// Where one link's chunks go.
#[derive(Debug, Clone, Copy)]
struct Place {
    file: usize,
    channel: u32,
    /// We are side A of this channel: what we send is `a2b`.
    we_are_a: bool,
}

impl Place {
    fn direction(self, sent: bool) -> Direction {
        if sent == self.we_are_a {
            Direction::AToB
        } else {
            Direction::BToA
        }
    }
}

struct CaptureFile {
    name: &'static str,
    writer: Option<TranscriptWriter<BufWriter<File>>>,
    /// The number the next socket passed on this link gets.
    next_channel: u32,
}

impl CaptureFile {
    fn create(dir: &Path, name: &'static str, max_bytes: u64) -> io::Result<Self> {
        let file = File::create(dir.join(name))?;
        Ok(Self {
            name,
            writer: Some(TranscriptWriter::new(BufWriter::new(file), max_bytes)),
            next_channel: 1,
        })
    }

    fn is_open(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| !w.is_truncated())
    }

    fn write(&mut self, chunk: &ChunkLine<'_>) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        match writer.write_chunk(chunk) {
            Ok(Recorded::Truncated) => {
                log::warn!(
                    "capture {}: size bound reached, later chunks not recorded",
                    self.name
                );
                self.flush();
            }
            Ok(Recorded::Written | Recorded::Stopped) => {}
            Err(e) => self.fail(&e),
        }
    }

    fn flush(&mut self) {
        if let Some(Err(e)) = self.writer.as_mut().map(TranscriptWriter::flush) {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &io::Error) {
        log::warn!(
            "capture {}: cannot write ({e}); recording stopped",
            self.name
        );
        self.writer = None;
    }
}

/// A chunk waiting for its link's place.
struct Pending {
    time: f64,
    sent: bool,
    bytes: Vec<u8>,
    fd_kinds: Vec<String>,
}

/// What `/proc/self/fd` says an fd is.
enum FdKind {
    Socket(u64),
    Other(String),
}

/// Describes `fd` as the vectors do: `memfd:NAME`, `file:PATH`, `pipe`,
/// `socket` (with its inode, to follow it).
fn fd_kind(fd: BorrowedFd<'_>) -> FdKind {
    let target = match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        Ok(target) => target.to_string_lossy().into_owned(),
        Err(e) => return FdKind::Other(format!("unknown ({e})")),
    };
    if let Some(inode) = target
        .strip_prefix("socket:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
    {
        return FdKind::Socket(inode);
    }
    if target.starts_with("pipe:") {
        return FdKind::Other("pipe".into());
    }
    if let Some(name) = target.strip_prefix("/memfd:") {
        return FdKind::Other(format!(
            "memfd:{}",
            name.strip_suffix(" (deleted)").unwrap_or(name)
        ));
    }
    if target.starts_with('/') {
        return FdKind::Other(format!("file:{target}"));
    }
    FdKind::Other(target)
}

fn socket_inode(fd: BorrowedFd<'_>) -> Option<u64> {
    match fd_kind(fd) {
        FdKind::Socket(inode) => Some(inode),
        FdKind::Other(_) => None,
    }
}

/// The recorder: a [`Tap`] writing the two files (see the module docs).
pub struct Capture {
    start: Instant,
    files: [CaptureFile; 2],
    places: HashMap<LinkId, Place>,
    /// Our ends of pairs whose other end has not left yet, by that end's inode.
    unsent_ends: HashMap<u64, LinkId>,
    /// Sockets that arrived and are not adopted yet, by inode.
    arrived: HashMap<u64, Place>,
    pending: HashMap<LinkId, Vec<Pending>>,
    pending_bytes: usize,
    dropped_pending: bool,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("links", &self.places.len())
            .field("pending_bytes", &self.pending_bytes)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Creates `dir` (if needed) and both files in it, each bounded by
    /// `max_bytes`, for the host's link and the client's bootstrap link.
    pub fn create(dir: &Path, max_bytes: u64, host: LinkId, bootstrap: LinkId) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let files = [
            CaptureFile::create(dir, HOST_PROXY_FILE, max_bytes)?,
            CaptureFile::create(dir, PROXY_CLIENT_FILE, max_bytes)?,
        ];
        let mut places = HashMap::new();
        let host_place = Place {
            file: HOST_PROXY,
            channel: 0,
            we_are_a: false,
        };
        let client_place = Place {
            file: PROXY_CLIENT,
            channel: 0,
            we_are_a: true,
        };
        places.insert(host, host_place);
        places.insert(bootstrap, client_place);
        Ok(Self {
            start: Instant::now(),
            files,
            places,
            unsent_ends: HashMap::new(),
            arrived: HashMap::new(),
            pending: HashMap::new(),
            pending_bytes: 0,
            dropped_pending: false,
        })
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Kinds of fds leaving on a link in `file` (or of unknown file): a pair
    /// end we made gets its channel here.
    fn sent_kinds(&mut self, file: Option<usize>, fds: &[OwnedFd]) -> Vec<String> {
        let mut kinds = Vec::with_capacity(fds.len());
        for fd in fds {
            kinds.push(match fd_kind(fd.as_fd()) {
                FdKind::Socket(inode) => match (file, self.unsent_ends.remove(&inode)) {
                    (Some(file), Some(link)) => {
                        let channel = self.files[file].next_channel;
                        self.files[file].next_channel += 1;
                        let place = Place {
                            file,
                            channel,
                            we_are_a: true,
                        };
                        self.places.insert(link, place);
                        self.write_pending(link, place);
                        format!("socket->chan{channel}")
                    }
                    _ => "socket".into(),
                },
                FdKind::Other(kind) => kind,
            });
        }
        kinds
    }

    /// Kinds of fds arriving on a link in `file`: a socket becomes the
    /// file's next channel (as the vectors' relay numbered every socket it
    /// saw pass), remembered until adopted.
    fn received_kinds(&mut self, file: Option<usize>, fds: &[OwnedFd]) -> Vec<String> {
        let mut kinds = Vec::with_capacity(fds.len());
        for fd in fds {
            kinds.push(match (fd_kind(fd.as_fd()), file) {
                (FdKind::Socket(inode), Some(file)) if self.arrived.len() < MAX_TRACKED_SOCKETS => {
                    let channel = self.files[file].next_channel;
                    self.files[file].next_channel += 1;
                    let place = Place {
                        file,
                        channel,
                        we_are_a: false,
                    };
                    self.arrived.insert(inode, place);
                    format!("socket->chan{channel}")
                }
                (FdKind::Socket(_), _) => "socket".into(),
                (FdKind::Other(kind), _) => kind,
            });
        }
        kinds
    }

    fn write_pending(&mut self, link: LinkId, place: Place) {
        for chunk in self.pending.remove(&link).unwrap_or_default() {
            self.pending_bytes = self.pending_bytes.saturating_sub(chunk.bytes.len());
            self.files[place.file].write(&ChunkLine {
                time: chunk.time,
                channel: place.channel,
                direction: place.direction(chunk.sent),
                bytes: &chunk.bytes,
                fd_kinds: &chunk.fd_kinds,
            });
        }
    }

    fn record(&mut self, link: LinkId, sent: bool, bytes: &[u8], fds: &[OwnedFd]) {
        let place = self.places.get(&link).copied();
        if let Some(place) = place {
            if !self.files[place.file].is_open() {
                return;
            }
        }
        let time = self.now();
        let file = place.map(|p| p.file);
        let fd_kinds = if sent {
            self.sent_kinds(file, fds)
        } else {
            self.received_kinds(file, fds)
        };
        match place {
            Some(place) => self.files[place.file].write(&ChunkLine {
                time,
                channel: place.channel,
                direction: place.direction(sent),
                bytes,
                fd_kinds: &fd_kinds,
            }),
            None => self.hold(link, time, sent, bytes, fd_kinds),
        }
    }

    fn hold(&mut self, link: LinkId, time: f64, sent: bool, bytes: &[u8], fd_kinds: Vec<String>) {
        if self.pending_bytes.saturating_add(bytes.len()) > MAX_PENDING_BYTES {
            if !self.dropped_pending {
                self.dropped_pending = true;
                log::warn!("capture: chunks of {link} before its socket was sent are not recorded");
            }
            return;
        }
        self.pending_bytes += bytes.len();
        self.pending.entry(link).or_default().push(Pending {
            time,
            sent,
            bytes: bytes.to_vec(),
            fd_kinds,
        });
    }

    fn end(&mut self, link: LinkId, sent: bool) {
        let time = self.now();
        if let Some(place) = self.places.get(&link).copied() {
            let file = &mut self.files[place.file];
            if let Some(writer) = file.writer.as_mut() {
                if let Err(e) =
                    writer.write_end_of_stream(time, place.channel, place.direction(sent))
                {
                    file.fail(&e);
                }
            }
        }
    }
}

impl Tap for Capture {
    fn link_added(&mut self, link: LinkId, origin: LinkOrigin<'_>) {
        match origin {
            LinkOrigin::Added => {}
            LinkOrigin::Pair { other_end } => {
                if let Some(inode) = socket_inode(other_end) {
                    self.unsent_ends.insert(inode, link);
                }
            }
            LinkOrigin::Adopted(fd) => {
                if let Some(place) = socket_inode(fd).and_then(|i| self.arrived.remove(&i)) {
                    self.places.insert(link, place);
                }
            }
        }
    }

    fn received(&mut self, link: LinkId, bytes: &[u8], fds: &[OwnedFd]) {
        self.record(link, false, bytes, fds);
    }

    fn sent(&mut self, link: LinkId, bytes: &[u8], fds: &[OwnedFd]) {
        self.record(link, true, bytes, fds);
    }

    fn end_of_stream(&mut self, link: LinkId) {
        self.end(link, false);
    }

    fn link_removed(&mut self, link: LinkId, _reason: &CloseReason) {
        // We close our end: the peer reads the end of our stream.
        self.end(link, true);
        if let Some(place) = self.places.remove(&link) {
            self.files[place.file].flush();
        }
        if let Some(chunks) = self.pending.remove(&link) {
            let held: usize = chunks.iter().map(|c| c.bytes.len()).sum();
            self.pending_bytes = self.pending_bytes.saturating_sub(held);
        }
        self.unsent_ends.retain(|_, l| *l != link);
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        for file in &mut self.files {
            file.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mojo_driver::Driver;
    use mojo_platform_channel::{socketpair, socketpair_fds};
    use mojo_transcript::{Chunk, Transcript};

    /// A fresh directory, removed at the end.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "mojo-proxy-capture-unit-{tag}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn kind(fd: BorrowedFd<'_>) -> String {
        match fd_kind(fd) {
            FdKind::Socket(inode) => format!("socket {inode}"),
            FdKind::Other(kind) => kind,
        }
    }

    fn memfd(name: &str) -> OwnedFd {
        nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::empty()).unwrap()
    }

    #[test]
    fn fds_are_described_as_the_vectors_describe_them() {
        let dir = TempDir::new("kinds");
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join("plain");
        let file = File::create(&path).unwrap();
        assert_eq!(kind(file.as_fd()), format!("file:{}", path.display()));
        assert_eq!(kind(memfd("rm_host_memfd").as_fd()), "memfd:rm_host_memfd");
        let (read, _write) = nix::unistd::pipe().unwrap();
        assert_eq!(kind(read.as_fd()), "pipe");
        let (a, b) = socketpair_fds(true, true).unwrap();
        let (ia, ib) = (socket_inode(a.as_fd()), socket_inode(b.as_fd()));
        assert!(ia.is_some() && ib.is_some() && ia != ib, "{ia:?} {ib:?}");
        assert_eq!(socket_inode(a.try_clone().unwrap().as_fd()), ia);
    }

    fn chunks(path: &Path) -> Vec<Chunk> {
        Transcript::from_path(path).unwrap().chunks
    }

    fn line(chunk: &Chunk) -> (u32, Direction, &[u8], Vec<&str>) {
        let kinds = chunk.fd_kinds.iter().map(String::as_str).collect();
        (chunk.channel, chunk.direction, &chunk.bytes[..], kinds)
    }

    #[test]
    fn sockets_become_channels_and_early_chunks_wait_for_theirs() {
        let dir = TempDir::new("channels");
        let mut driver = Driver::new().unwrap();
        let (host_end, _host_peer) = socketpair().unwrap();
        let (bootstrap_end, _client_peer) = socketpair().unwrap();
        let host = driver.add_link(host_end).unwrap();
        let bootstrap = driver.add_link(bootstrap_end).unwrap();
        let (node, client_end) = driver.new_link_pair().unwrap();
        let mut capture = Capture::create(&dir.0, 1 << 20, host, bootstrap).unwrap();
        capture.link_added(
            node,
            LinkOrigin::Pair {
                other_end: client_end.as_fd(),
            },
        );
        // The node channel speaks before INIT has left: that chunk waits.
        capture.sent(node, b"hello", &[]);
        capture.received(host, b"greeting", &[memfd("primary")]);
        capture.sent(bootstrap, b"INIT", std::slice::from_ref(&client_end));
        capture.received(node, b"reply", &[]);
        // The host passes a socket, which the core adopts.
        let (passed, _other) = socketpair_fds(true, true).unwrap();
        capture.received(host, b"intro", std::slice::from_ref(&passed));
        let adopted = driver.adopt_fd(passed.try_clone().unwrap()).unwrap();
        capture.link_added(adopted, LinkOrigin::Adopted(passed.as_fd()));
        capture.received(adopted, b"on chan1", &[]);
        capture.sent(adopted, b"back", &[]);
        capture.end_of_stream(node);
        capture.link_removed(bootstrap, &CloseReason::Requested);
        drop(capture);

        let client = chunks(&dir.0.join(PROXY_CLIENT_FILE));
        let client: Vec<_> = client.iter().map(line).collect();
        use Direction::{AToB, BToA};
        assert_eq!(
            client,
            [
                (1, AToB, &b"hello"[..], vec![]),
                (0, AToB, b"INIT", vec!["socket->chan1"]),
                (1, BToA, b"reply", vec![]),
                (1, BToA, b"", vec![]),
                (0, AToB, b"", vec![]),
            ]
        );
        let host = chunks(&dir.0.join(HOST_PROXY_FILE));
        let host: Vec<_> = host.iter().map(line).collect();
        assert_eq!(
            host,
            [
                (0, AToB, &b"greeting"[..], vec!["memfd:primary"]),
                (0, AToB, b"intro", vec!["socket->chan1"]),
                (1, AToB, b"on chan1", vec![]),
                (1, BToA, b"back", vec![]),
            ]
        );
    }
}
