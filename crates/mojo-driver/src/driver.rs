//! The link table and the event loop turn.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::{Events, Interest, Poll, Token};
use mojo_platform_channel::{
    ChannelError, DEFAULT_MAX_QUEUED_FDS, Endpoint, MAX_READ_BATCH_BYTES, ReadOutcome,
    WriteOutcome, socketpair_fds,
};

use crate::core::{
    Backlog, CloseReason, Core, CoreRequest, LinkId, NewLinkError, ReceivedFds, Transmit,
};
use crate::signals::{ReceivedSignal, ShutdownSignal, SignalError, Signals};
use crate::tap::{LinkOrigin, Tap};

/// Most bytes read from one link in one turn before the other links get
/// their turn (four of the platform crate's read batches), so one busy peer
/// cannot starve another. A link with more waiting is read on the next
/// turn, which then does not wait in `poll`.
pub const READ_BUDGET_PER_TURN: usize = 4 * MAX_READ_BATCH_BYTES;

/// Queued output of one link above which the core hears [`Backlog::High`].
pub const OUTPUT_HIGH_WATER: usize = 8 * 1024 * 1024;

/// Queued output of one link below which the core hears [`Backlog::Low`]
/// after a [`Backlog::High`].
pub const OUTPUT_LOW_WATER: usize = 2 * 1024 * 1024;

/// How long a link closed by the core may keep sending its queued output.
pub const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// Most received fds one link may hold that the core has not taken
/// (the platform crate's own bound on queued fds).
pub const MAX_RECEIVED_FDS_PER_LINK: usize = DEFAULT_MAX_QUEUED_FDS;

/// Readiness events taken from one `poll` call.
pub const EVENTS_PER_POLL: usize = 256;

/// The mio token of the signal fd; link tokens are link ids, which count up
/// from 0 and never get near it.
const SIGNAL_TOKEN: Token = Token(usize::MAX);

/// Tunables of a [`Driver`], all defaulting to the named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// [`READ_BUDGET_PER_TURN`].
    pub read_budget_per_turn: usize,
    /// [`OUTPUT_HIGH_WATER`].
    pub output_high_water: usize,
    /// [`OUTPUT_LOW_WATER`] (kept at most `output_high_water`).
    pub output_low_water: usize,
    /// [`CLOSE_LINGER`].
    pub close_linger: Duration,
    /// [`MAX_RECEIVED_FDS_PER_LINK`].
    pub max_received_fds: usize,
    /// [`EVENTS_PER_POLL`].
    pub events_per_poll: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            read_budget_per_turn: READ_BUDGET_PER_TURN,
            output_high_water: OUTPUT_HIGH_WATER,
            output_low_water: OUTPUT_LOW_WATER,
            close_linger: CLOSE_LINGER,
            max_received_fds: MAX_RECEIVED_FDS_PER_LINK,
            events_per_poll: EVENTS_PER_POLL,
        }
    }
}

/// Why a run ended normally (or, for [`Exit::Status`], paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every link is gone (hung up, failed or closed by the core).
    AllLinksClosed,
    /// A shutdown signal arrived ([`Driver::watch_signals`]).
    Signal(ShutdownSignal),
    /// `SIGUSR1` arrived ([`Signals::block_shutdown_and_status_signals`]):
    /// nothing ended; report the state and run again.
    Status,
    /// The core asked for [`CoreRequest::Shutdown`] and every link is closed.
    CoreFinished,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllLinksClosed => f.write_str("all links closed"),
            Self::Signal(s) => write!(f, "received {s}"),
            Self::Status => f.write_str("received SIGUSR1"),
            Self::CoreFinished => f.write_str("core finished"),
        }
    }
}

/// Why a run failed.
#[derive(Debug)]
pub enum DriverError<E> {
    /// The core rejected the input of a link ([`Core::handle_input`]).
    Core {
        /// The link the input came from.
        link: LinkId,
        /// The core's error.
        error: E,
    },
    /// The core said it consumed more bytes than it was given (a core bug).
    Overconsumed {
        /// The link.
        link: LinkId,
        /// What the core returned.
        consumed: usize,
        /// What it was given.
        available: usize,
    },
    /// `epoll` failed.
    Poll(std::io::Error),
    /// Reading the signal fd failed.
    Signal(SignalError),
}

impl<E: fmt::Display> fmt::Display for DriverError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Core { link, error } => write!(f, "{link}: {error}"),
            Self::Overconsumed {
                link,
                consumed,
                available,
            } => write!(
                f,
                "{link}: the core consumed {consumed} bytes of {available} (core bug)"
            ),
            Self::Poll(e) => write!(f, "epoll_wait failed: {e}"),
            Self::Signal(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for DriverError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Core { error, .. } => Some(error),
            Self::Poll(e) => Some(e),
            Self::Signal(e) => Some(e),
            Self::Overconsumed { .. } => None,
        }
    }
}

/// A snapshot of one link's queues ([`Driver::link_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes queued for sending and not yet written.
    pub pending_output_bytes: usize,
    /// Fds queued for sending.
    pub pending_output_fds: usize,
    /// Received bytes the core has not consumed.
    pub buffered_input_bytes: usize,
    /// Received fds the core has not taken.
    pub received_fds: usize,
    /// Reading is paused.
    pub paused: bool,
    /// Write interest is registered (output is pending).
    pub write_interest: bool,
    /// The link is closing (sending its last output).
    pub closing: bool,
}

/// Counters over the driver's life, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Turns run.
    pub turns: u64,
    /// Bytes read from all links.
    pub bytes_read: u64,
    /// Frames queued for sending.
    pub transmits: u64,
    /// Frames dropped because their link was already gone.
    pub transmits_dropped: u64,
    /// Times write interest was turned on (output left pending).
    pub write_interest_on: u64,
    /// Times it was turned off again (output all written).
    pub write_interest_off: u64,
    /// Links added, adopted ones included.
    pub links_added: u64,
    /// Links removed.
    pub links_removed: u64,
}

struct Link {
    ep: Endpoint,
    fds: ReceivedFds,
    /// Readable edge seen and not yet read to `WouldBlock`.
    read_ready: bool,
    /// Reading paused by the core.
    paused: bool,
    /// The peer closed its end (or the socket failed): nothing more can
    /// arrive than the kernel already holds, so the link is read to its
    /// end even while paused, and its loss reaches the core.
    hung_up: bool,
    /// Offer buffered input to the core even if nothing new arrives (after
    /// a resume).
    reoffer: bool,
    write_interest: bool,
    backlog_high: bool,
    /// On the flush list.
    dirty: bool,
    /// Closing: the deadline for the last output.
    linger_until: Option<Instant>,
}

impl Link {
    fn interest(&self) -> Interest {
        if self.write_interest {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    fn wants_read(&self) -> bool {
        self.read_ready && self.reading() && self.linger_until.is_none()
    }

    /// Not paused, or paused with a peer that hung up (what is left is
    /// bounded by the socket's receive buffer).
    fn reading(&self) -> bool {
        !self.paused || self.hung_up
    }
}

/// The event loop: one `mio::Poll`, a table of links, an optional signal fd.
///
/// Each link is registered edge-triggered and read to `WouldBlock`, at most
/// [`Config::read_budget_per_turn`] bytes per turn; write interest is
/// registered only while the link has output pending. Use [`run`](Self::run)
/// or write a loop around [`turn`](Self::turn).
pub struct Driver {
    poll: Poll,
    events: Events,
    links: HashMap<u64, Link>,
    next_id: u64,
    signals: Option<Signals>,
    /// The signalfd may hold more than the signal last read: read it again.
    signal_ready: bool,
    config: Config,
    stats: DriverStats,
    /// Links with output to flush (reused).
    dirty: Vec<LinkId>,
    /// Links to read this turn (reused).
    to_read: Vec<LinkId>,
    /// Backlog crossings to report (reused).
    backlog: Vec<(LinkId, Backlog)>,
    /// Closures not yet reported to the core.
    closed: VecDeque<(LinkId, CloseReason)>,
    /// The core asked for [`CoreRequest::Shutdown`].
    finishing: bool,
    /// Sees every chunk read and sent ([`Driver::set_tap`]).
    tap: Option<Box<dyn Tap + Send>>,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("links", &self.links.len())
            .field("signals", &self.signals.is_some())
            .field("tap", &self.tap.is_some())
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver with the default [`Config`].
    pub fn new() -> Result<Self, std::io::Error> {
        Self::with_config(Config::default())
    }

    /// A driver with the given tunables.
    pub fn with_config(mut config: Config) -> Result<Self, std::io::Error> {
        config.output_low_water = config.output_low_water.min(config.output_high_water);
        config.read_budget_per_turn = config.read_budget_per_turn.max(1);
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(config.events_per_poll.max(1)),
            links: HashMap::new(),
            next_id: 0,
            signals: None,
            signal_ready: false,
            config,
            stats: DriverStats::default(),
            dirty: Vec::new(),
            to_read: Vec::new(),
            backlog: Vec::new(),
            closed: VecDeque::new(),
            finishing: false,
            tap: None,
        })
    }

    /// Installs a [`Tap`] (`Send`, so a driver can still move to its own
    /// thread) that sees every chunk read and sent from now on
    /// (replacing any earlier one). Links then read one `recvmsg` at a
    /// time, so each reported read is one kernel read.
    pub fn set_tap(&mut self, tap: Box<dyn Tap + Send>) {
        for link in self.links.values_mut() {
            link.ep.set_one_recvmsg_per_read(true);
        }
        self.tap = Some(tap);
    }

    /// Removes the tap and gives it back; reads batch again.
    pub fn take_tap(&mut self) -> Option<Box<dyn Tap + Send>> {
        for link in self.links.values_mut() {
            link.ep.set_one_recvmsg_per_read(false);
        }
        self.tap.take()
    }

    /// The tunables in force.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The counters.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// Ends runs with [`Exit::Signal`] when `SIGTERM` or `SIGINT` arrives
    /// (and with [`Exit::Status`] on `SIGUSR1`, if `signals` has it).
    pub fn watch_signals(&mut self, mut signals: Signals) -> Result<(), std::io::Error> {
        self.poll
            .registry()
            .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Adds a link; it is read from the next turn on.
    pub fn add_link(&mut self, ep: Endpoint) -> Result<LinkId, std::io::Error> {
        let id = self.insert_link(ep)?;
        if let Some(tap) = self.tap.as_mut() {
            tap.link_added(id, LinkOrigin::Added);
        }
        Ok(id)
    }

    fn insert_link(&mut self, mut ep: Endpoint) -> Result<LinkId, std::io::Error> {
        if self.tap.is_some() {
            ep.set_one_recvmsg_per_read(true);
        }
        let id = LinkId(self.next_id);
        let token = Token(usize::try_from(id.0).unwrap_or(usize::MAX - 1));
        self.poll
            .registry()
            .register(&mut ep, token, Interest::READABLE)?;
        self.next_id += 1;
        self.stats.links_added += 1;
        // Bytes may already wait (a socket that arrived in a message, or one
        // the caller used before); an edge for them may never come.
        let link = Link {
            ep,
            fds: ReceivedFds::default(),
            read_ready: true,
            paused: false,
            hung_up: false,
            reoffer: false,
            write_interest: false,
            backlog_high: false,
            dirty: false,
            linger_until: None,
        };
        self.links.insert(id.0, link);
        debug!("{id}: added");
        Ok(id)
    }

    /// Adds a link made of a socket fd (checked to be a unix stream socket;
    /// closed on failure).
    pub fn adopt_fd(&mut self, fd: OwnedFd) -> Result<LinkId, NewLinkError> {
        let ep = Endpoint::from_owned_fd(fd).map_err(NewLinkError::NotASocket)?;
        let id = self.insert_link(ep).map_err(NewLinkError::Register)?;
        if let (Some(tap), Some(link)) = (self.tap.as_mut(), self.links.get(&id.0)) {
            tap.link_added(id, LinkOrigin::Adopted(link.ep.as_fd()));
        }
        Ok(id)
    }

    /// Makes a socket pair (both ends non-blocking and close-on-exec), adds
    /// one end as a link and returns the other (see
    /// [`CoreRequest::NewLinkPair`]).
    pub fn new_link_pair(&mut self) -> Result<(LinkId, OwnedFd), NewLinkError> {
        let (ours, theirs) = socketpair_fds(true, true).map_err(NewLinkError::CreatePair)?;
        let ep = Endpoint::from_owned_fd(ours).map_err(NewLinkError::NotASocket)?;
        let link = self.insert_link(ep).map_err(NewLinkError::Register)?;
        if let Some(tap) = self.tap.as_mut() {
            let other_end = theirs.as_fd();
            tap.link_added(link, LinkOrigin::Pair { other_end });
        }
        Ok((link, theirs))
    }

    /// Ids of the links present.
    pub fn link_ids(&self) -> impl Iterator<Item = LinkId> + '_ {
        self.links.keys().map(|&k| LinkId(k))
    }

    /// Links present.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// The queues of a link, or `None` if it is gone.
    pub fn link_stats(&self, link: LinkId) -> Option<LinkStats> {
        self.links.get(&link.0).map(|l| LinkStats {
            pending_output_bytes: l.ep.pending_output_bytes(),
            pending_output_fds: l.ep.pending_output_fds(),
            buffered_input_bytes: l.ep.buffered().len(),
            received_fds: l.fds.len(),
            paused: l.paused,
            write_interest: l.write_interest,
            closing: l.linger_until.is_some(),
        })
    }

    /// Stops reading a link (see [`CoreRequest::PauseReading`]).
    pub fn pause_reading(&mut self, link: LinkId) {
        if let Some(l) = self.links.get_mut(&link.0) {
            l.paused = true;
        }
    }

    /// Reads a link again and offers its buffered input to the core (see
    /// [`CoreRequest::ResumeReading`]); on a link that is not paused, only
    /// the offer.
    pub fn resume_reading(&mut self, link: LinkId) {
        if let Some(l) = self.links.get_mut(&link.0) {
            l.paused = false;
            // Data that arrived while paused raised no new edge.
            l.read_ready = true;
            l.reoffer = true;
        }
    }

    /// Stops reading a link and closes it once its output is sent (see
    /// [`CoreRequest::Close`]).
    pub fn close_link(&mut self, link: LinkId) {
        let Some(l) = self.links.get_mut(&link.0) else {
            return;
        };
        if !l.ep.has_pending_output() {
            self.remove(link, CloseReason::Requested);
        } else if l.linger_until.is_none() {
            l.linger_until = Some(Instant::now() + self.config.close_linger);
        }
    }

    /// Closes a link now, dropping its queued output.
    pub fn abort_link(&mut self, link: LinkId) {
        self.remove(link, CloseReason::Requested);
    }

    /// Closes every link now, without telling the core (for the end of a
    /// program; dropping the driver does the same).
    pub fn close_all(&mut self) {
        let registry = self.poll.registry();
        for (_, mut l) in self.links.drain() {
            let _ = registry.deregister(&mut l.ep);
        }
        self.closed.clear();
    }

    /// Runs turns until the run ends.
    pub fn run<C: Core>(&mut self, core: &mut C) -> Result<Exit, DriverError<C::Error>> {
        loop {
            if let Some(exit) = self.turn(core, None)? {
                return Ok(exit);
            }
        }
    }

    /// One turn: serve the core, wait for readiness (at most `max_wait`,
    /// and not past the core's deadline), fire due timers, write what can be
    /// written, read each ready link within its budget. Returns the reason
    /// when the run is over.
    pub fn turn<C: Core>(
        &mut self,
        core: &mut C,
        max_wait: Option<Duration>,
    ) -> Result<Option<Exit>, DriverError<C::Error>> {
        self.stats.turns += 1;
        if let Some(exit) = self.take_signal()? {
            return Ok(Some(exit));
        }
        self.serve(core)?;
        if let Some(exit) = self.finished() {
            return Ok(Some(exit));
        }

        let deadline = core.poll_timeout();
        let wait = self.wait_time(deadline, max_wait);
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.events.clear(),
            Err(e) => return Err(DriverError::Poll(e)),
        }
        let mut signalled = false;
        for ev in self.events.iter() {
            if ev.token() == SIGNAL_TOKEN {
                signalled = true;
                continue;
            }
            let Some(link) = self.links.get_mut(&(ev.token().0 as u64)) else {
                continue;
            };
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                link.read_ready = true;
            }
            if ev.is_read_closed() || ev.is_error() {
                link.hung_up = true;
            }
            if (ev.is_writable() || ev.is_write_closed() || ev.is_error()) && !link.dirty {
                link.dirty = true;
                self.dirty.push(LinkId(ev.token().0 as u64));
            }
        }
        self.signal_ready |= signalled;
        if let Some(exit) = self.take_signal()? {
            return Ok(Some(exit));
        }

        let now = Instant::now();
        if deadline.is_some_and(|d| d <= now) {
            core.handle_timeout(now);
        }
        self.expire_lingers(now);
        self.serve(core)?;

        self.to_read.clear();
        self.to_read.extend(
            self.links
                .iter()
                .filter(|(_, l)| l.wants_read())
                .map(|(&k, _)| LinkId(k)),
        );
        // Sorted so that runs are reproducible (the map's order is random).
        self.to_read.sort_unstable();
        let mut i = 0;
        while let Some(&link) = self.to_read.get(i) {
            i += 1;
            self.read_link(core, link)?;
        }
        self.serve(core)?;
        Ok(self.finished())
    }

    /// The next signal read, if the signalfd may hold one.
    fn take_signal<E>(&mut self) -> Result<Option<Exit>, DriverError<E>> {
        let Some(signals) = self.signals.as_mut().filter(|_| self.signal_ready) else {
            return Ok(None);
        };
        match signals.read().map_err(DriverError::Signal)? {
            Some(ReceivedSignal::Shutdown(sig)) => {
                info!("{sig} received: shutting down");
                Ok(Some(Exit::Signal(sig)))
            }
            Some(ReceivedSignal::Status) => Ok(Some(Exit::Status)),
            None => {
                self.signal_ready = false;
                Ok(None)
            }
        }
    }

    fn finished(&self) -> Option<Exit> {
        if !self.links.is_empty() {
            return None;
        }
        Some(if self.finishing {
            Exit::CoreFinished
        } else {
            Exit::AllLinksClosed
        })
    }

    fn wait_time(&self, deadline: Option<Instant>, max_wait: Option<Duration>) -> Option<Duration> {
        if self.links.values().any(Link::wants_read) {
            return Some(Duration::ZERO);
        }
        let linger = self.links.values().filter_map(|l| l.linger_until).min();
        let nearest = match (deadline, linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let now = Instant::now();
        let until = nearest.map(|d| d.saturating_duration_since(now));
        match (until, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn expire_lingers(&mut self, now: Instant) {
        let expired: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.linger_until.is_some_and(|t| t <= now))
            .map(|(&k, _)| LinkId(k))
            .collect();
        for link in expired {
            let unsent_bytes = self
                .links
                .get(&link.0)
                .map_or(0, |l| l.ep.pending_output_bytes());
            warn!("{link}: closing, {unsent_bytes} bytes not taken by the peer in time");
            self.remove(link, CloseReason::LingerExpired { unsent_bytes });
        }
    }

    /// Reads one link until `WouldBlock`, its budget, a pause or its end,
    /// handing each batch to the core.
    fn read_link<C: Core>(
        &mut self,
        core: &mut C,
        id: LinkId,
    ) -> Result<(), DriverError<C::Error>> {
        let mut used = 0usize;
        loop {
            let max_fds = self.config.max_received_fds;
            let Some(link) = self.links.get_mut(&id.0) else {
                return Ok(());
            };
            if !link.reading() || link.linger_until.is_some() {
                return Ok(());
            }
            if !link.read_ready && !link.reoffer {
                return Ok(());
            }
            if used >= self.config.read_budget_per_turn {
                // `read_ready` stays set: the next turn does not wait.
                return Ok(());
            }
            let mut fresh = false;
            let mut fresh_bytes = 0;
            let mut eof = false;
            if link.read_ready {
                match link.ep.read_available() {
                    Ok(ReadOutcome::Data { bytes, .. }) => {
                        fresh_bytes = bytes;
                        used = used.saturating_add(bytes);
                        self.stats.bytes_read += bytes as u64;
                        fresh = true;
                        // Nothing more is there: the next edge says when it
                        // is (a hung-up link is read on to its end).
                        if link.ep.drained() && !link.hung_up {
                            link.read_ready = false;
                        }
                    }
                    Ok(ReadOutcome::WouldBlock) => link.read_ready = false,
                    Ok(ReadOutcome::Eof) => {
                        link.read_ready = false;
                        eof = true;
                        if let Some(tap) = self.tap.as_mut() {
                            tap.end_of_stream(id);
                        }
                    }
                    Err(e) => {
                        let reason = channel_close_reason(e, link_leftovers(link));
                        self.remove(id, reason);
                        return Ok(());
                    }
                }
            }
            let arrived = link.ep.queued_fds();
            if arrived > 0 {
                let queued = link.fds.len();
                if queued.saturating_add(arrived) > max_fds {
                    let e = ChannelError::TooManyFds {
                        limit: max_fds,
                        queued,
                        received: arrived,
                    };
                    self.remove(id, CloseReason::Channel(e));
                    return Ok(());
                }
                let fds = link.ep.take_fds(arrived).unwrap_or_default();
                if let Some(tap) = self.tap.as_mut() {
                    tap.received(id, new_input(&link.ep, fresh_bytes), &fds);
                }
                link.fds.extend(fds);
            } else if let Some(tap) = self.tap.as_mut() {
                if fresh_bytes > 0 {
                    tap.received(id, new_input(&link.ep, fresh_bytes), &[]);
                }
            }
            if (fresh || link.reoffer) && !link.ep.buffered().is_empty() {
                link.reoffer = false;
                let available = link.ep.buffered().len();
                let consumed = core
                    .handle_input(id, link.ep.buffered(), &mut link.fds)
                    .map_err(|error| DriverError::Core { link: id, error })?;
                if consumed > available || link.ep.consume(consumed).is_err() {
                    return Err(DriverError::Overconsumed {
                        link: id,
                        consumed,
                        available,
                    });
                }
                self.serve(core)?;
            } else if let Some(link) = self.links.get_mut(&id.0) {
                link.reoffer = false;
            }
            if eof {
                let leftovers = self.links.get(&id.0).map_or((0, 0), link_leftovers);
                self.remove(
                    id,
                    CloseReason::HangUp {
                        unconsumed_bytes: leftovers.0,
                        untaken_fds: leftovers.1,
                    },
                );
                return Ok(());
            }
            if !fresh {
                return Ok(());
            }
        }
    }

    /// Delivers closures, applies the core's requests, queues its transmits,
    /// flushes and reports backlog crossings, until the core has nothing
    /// more to say.
    fn serve<C: Core>(&mut self, core: &mut C) -> Result<(), DriverError<C::Error>> {
        loop {
            let mut progressed = false;
            while let Some((link, reason)) = self.closed.pop_front() {
                progressed = true;
                core.handle_link_closed(link, reason);
            }
            // Transmits first, so that a frame made before a close request
            // is sent before the close.
            while let Some(t) = core.poll_transmit() {
                progressed = true;
                let link = t.link;
                self.queue_transmit(t);
                // A frame copied into a chunk behind others gives its buffer
                // back at once, for the core's next frames.
                if let Some(l) = self.links.get_mut(&link.0) {
                    hand_back_sent(core, link, &mut l.ep);
                }
            }
            while let Some(req) = core.poll_request() {
                progressed = true;
                self.apply(core, req);
            }
            self.flush_dirty(core);
            for (link, backlog) in self.backlog.drain(..) {
                progressed = true;
                debug!("{link}: output backlog {backlog:?}");
                core.handle_backlog(link, backlog);
            }
            if !progressed && self.closed.is_empty() {
                return Ok(());
            }
        }
    }

    fn apply<C: Core>(&mut self, core: &mut C, req: CoreRequest) {
        match req {
            CoreRequest::Adopt { fd, tag } => {
                let result = self.adopt_fd(fd);
                match &result {
                    Ok(link) => debug!("{link}: adopted (request {tag})"),
                    Err(e) => warn!("adoption request {tag} failed: {e}"),
                }
                core.handle_link_adopted(tag, result);
            }
            CoreRequest::NewLinkPair { tag } => {
                let result = self.new_link_pair();
                match &result {
                    Ok((link, _)) => debug!("{link}: created (request {tag})"),
                    Err(e) => warn!("new link pair request {tag} failed: {e}"),
                }
                core.handle_link_pair(tag, result);
            }
            CoreRequest::Close(link) => self.close_link(link),
            CoreRequest::Abort(link) => self.abort_link(link),
            CoreRequest::PauseReading(link) => self.pause_reading(link),
            CoreRequest::ResumeReading(link) => self.resume_reading(link),
            CoreRequest::Shutdown => {
                self.finishing = true;
                let ids: Vec<LinkId> = self.link_ids().collect();
                for link in ids {
                    self.close_link(link);
                }
            }
        }
    }

    fn queue_transmit(&mut self, t: Transmit) {
        let Some(link) = self.links.get_mut(&t.link.0) else {
            // Its closure is reported (or about to be); the fds close here.
            self.stats.transmits_dropped += 1;
            debug!("{}: gone, dropping a {}-byte frame", t.link, t.bytes.len());
            return;
        };
        self.stats.transmits += 1;
        if let Some(tap) = self.tap.as_mut() {
            tap.sent(t.link, &t.bytes, &t.fds);
        }
        match link.ep.queue(t.bytes, t.fds) {
            Ok(()) => {
                if !link.dirty {
                    link.dirty = true;
                    self.dirty.push(t.link);
                }
            }
            Err(e) => {
                warn!("{}: cannot queue output: {e}", t.link);
                self.remove(t.link, CloseReason::Channel(e));
            }
        }
    }

    /// Writes every link with new output or a writable edge, toggles write
    /// interest, records backlog crossings and finishes lingering closes.
    fn flush_dirty<C: Core>(&mut self, core: &mut C) {
        let mut i = 0;
        while let Some(&id) = self.dirty.get(i) {
            i += 1;
            let Some(link) = self.links.get_mut(&id.0) else {
                continue;
            };
            link.dirty = false;
            let pending = match link.ep.flush() {
                Ok(WriteOutcome::Flushed) => false,
                Ok(WriteOutcome::WouldBlock) => true,
                Err(e) => {
                    let reason = channel_close_reason(e, link_leftovers(link));
                    self.remove(id, reason);
                    continue;
                }
            };
            if pending != link.write_interest {
                link.write_interest = pending;
                if pending {
                    self.stats.write_interest_on += 1;
                } else {
                    self.stats.write_interest_off += 1;
                }
                let interest = link.interest();
                let token = Token(id.0 as usize);
                if let Err(e) = self
                    .poll
                    .registry()
                    .reregister(&mut link.ep, token, interest)
                {
                    let errno = e.raw_os_error().unwrap_or(0);
                    self.remove(id, CloseReason::Epoll { errno });
                    continue;
                }
            }
            hand_back_sent(core, id, &mut link.ep);
            let queued = link.ep.pending_output_bytes();
            if !link.backlog_high && queued > self.config.output_high_water {
                link.backlog_high = true;
                self.backlog.push((id, Backlog::High));
            } else if link.backlog_high && queued <= self.config.output_low_water {
                link.backlog_high = false;
                self.backlog.push((id, Backlog::Low));
            }
            if link.linger_until.is_some() && !pending {
                self.remove(id, CloseReason::Requested);
            }
        }
        self.dirty.clear();
    }

    /// Deregisters and drops a link (closing its socket and every fd it
    /// holds), and queues the news for the core.
    fn remove(&mut self, link: LinkId, reason: CloseReason) {
        let Some(mut l) = self.links.remove(&link.0) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut l.ep);
        drop(l);
        if let Some(tap) = self.tap.as_mut() {
            tap.link_removed(link, &reason);
        }
        self.stats.links_removed += 1;
        match &reason {
            CloseReason::Channel(e) => warn!("{link}: closed: {e}"),
            other => debug!("{link}: closed: {other}"),
        }
        self.closed.push_back((link, reason));
    }
}

/// The last `fresh` bytes of the endpoint's receive buffer: what the read
/// just appended.
/// Gives the core back the buffers of `link`'s frames that are out of the
/// endpoint's hands (written, or copied into a chunk).
fn hand_back_sent<C: Core>(core: &mut C, link: LinkId, ep: &mut Endpoint) {
    while let Some(buffer) = ep.take_sent_buffer() {
        core.recycle(link, buffer);
    }
}

fn new_input(ep: &Endpoint, fresh: usize) -> &[u8] {
    let buffered = ep.buffered();
    buffered
        .get(buffered.len().saturating_sub(fresh)..)
        .unwrap_or_default()
}

/// Unconsumed bytes and untaken fds of a link (for [`CloseReason::HangUp`]).
fn link_leftovers(link: &Link) -> (usize, usize) {
    (
        link.ep.buffered().len(),
        link.fds.len() + link.ep.queued_fds(),
    )
}

/// A peer that went away is a hang-up; anything else is a channel failure.
fn channel_close_reason(e: ChannelError, leftovers: (usize, usize)) -> CloseReason {
    if e.is_disconnect() {
        CloseReason::HangUp {
            unconsumed_bytes: leftovers.0,
            untaken_fds: leftovers.1,
        }
    } else {
        CloseReason::Channel(e)
    }
}

#[cfg(test)]
mod tests;
