//! The event loop shared by `mojo_proxy` and the test peers: it drives a
//! sans-IO protocol [`Core`] over [`mojo_platform_channel::Endpoint`]s with
//! one `mio::Poll`. Besides the platform crate, this is the only crate that
//! knows about mio or waits for anything.
//!
//! * **Links** ([`LinkId`] → endpoint): registered edge-triggered and read
//!   to `WouldBlock`, at most [`READ_BUDGET_PER_TURN`] bytes per link per
//!   turn so one busy peer cannot starve the others; write interest only
//!   while output is pending. Links are added at run time
//!   ([`CoreRequest::Adopt`] for a socket that arrived in a message,
//!   [`CoreRequest::NewLinkPair`] for a socket to send in one, as the legacy
//!   broker's `INIT` does) and removed on hang-up, channel failure or
//!   request, closing every fd.
//! * **Input in place**: [`Core::handle_input`] gets the endpoint's receive
//!   buffer itself and the link's [`ReceivedFds`], and returns how many bytes
//!   it consumed; the driver copies nothing and allocates nothing per frame.
//!   [`Transmit`] bytes are moved into the endpoint's queue as they are.
//! * **Back-pressure**: the core hears [`Backlog::High`] when a link's
//!   queued output passes [`OUTPUT_HIGH_WATER`] and [`Backlog::Low`] below
//!   [`OUTPUT_LOW_WATER`], and answers with [`CoreRequest::PauseReading`] /
//!   [`CoreRequest::ResumeReading`] for the links that feed it.
//! * **Timers**: the wait in `poll` ends at [`Core::poll_timeout`]; then
//!   [`Core::handle_timeout`] gets the time.
//! * **Signals**: [`Signals`] blocks `SIGTERM`/`SIGINT` and reads them from a
//!   `signalfd` registered with the same poll (no handler, no `unsafe`);
//!   a run then ends with [`Exit::Signal`]. Optionally `SIGUSR1` too, which
//!   returns [`Exit::Status`] (a request to report state; run again).
//!
//! * **Tap** (optional, [`Driver::set_tap`]): a [`Tap`] sees each chunk
//!   read (one `recvmsg`) and each frame sent, with its fds, and how each
//!   link came to be, so a program can record its links; without one, one
//!   branch per chunk.
//!
//! [`Driver::run`] runs to the end; a program that wants its own loop calls
//! [`Driver::turn`]. A run ends with an [`Exit`] (all links gone, a signal,
//! the core finished) or a [`DriverError`] (the core rejected a link's
//! input, naming the link; `epoll` failed).
//!
//! ```
//! use mojo_driver::{CloseReason, Core, Driver, Exit, LinkId, ReceivedFds, Transmit};
//! use mojo_platform_channel::{ReadOutcome, socketpair};
//! use std::collections::VecDeque;
//!
//! /// Echoes every line back on the link it came from.
//! #[derive(Default)]
//! struct LineEcho {
//!     out: VecDeque<Transmit>,
//! }
//!
//! impl Core for LineEcho {
//!     type Error = std::convert::Infallible;
//!
//!     fn handle_input(
//!         &mut self,
//!         link: LinkId,
//!         input: &[u8],
//!         _fds: &mut ReceivedFds,
//!     ) -> Result<usize, Self::Error> {
//!         let mut consumed = 0;
//!         while let Some(end) = input[consumed..].iter().position(|&b| b == b'\n') {
//!             let line = &input[consumed..consumed + end + 1];
//!             self.out.push_back(Transmit { link, bytes: line.to_vec(), fds: vec![] });
//!             consumed += end + 1;
//!         }
//!         Ok(consumed)
//!     }
//!
//!     fn poll_transmit(&mut self) -> Option<Transmit> {
//!         self.out.pop_front()
//!     }
//!
//!     fn handle_link_closed(&mut self, _link: LinkId, _reason: CloseReason) {}
//! }
//!
//! let (ours, mut peer) = socketpair()?;
//! let mut driver = Driver::new()?;
//! driver.add_link(ours)?;
//! let mut core = LineEcho::default();
//!
//! peer.send(b"hello\n".to_vec(), vec![])?;
//! while peer.buffered() != b"hello\n" {
//!     driver.turn(&mut core, Some(std::time::Duration::from_millis(10)))?;
//!     peer.read_available()?;
//! }
//! drop(peer); // the peer hangs up: the run is over
//! assert_eq!(driver.run(&mut core)?, Exit::AllLinksClosed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A program's whole loop (the shape `mojo_proxy` and the test peers use);
//! the exit status follows from the [`Exit`] or the [`DriverError`]:
//!
//! ```no_run
//! # use mojo_driver::{CloseReason, Core, LinkId, ReceivedFds, Transmit};
//! # struct Bridge;
//! # impl Bridge { fn new(_: LinkId, _: LinkId) -> Self { Bridge } }
//! # impl Core for Bridge {
//! #     type Error = std::io::Error;
//! #     fn handle_input(&mut self, _: LinkId, _: &[u8], _: &mut ReceivedFds)
//! #         -> Result<usize, Self::Error> { Ok(0) }
//! #     fn poll_transmit(&mut self) -> Option<Transmit> { None }
//! #     fn handle_link_closed(&mut self, _: LinkId, _: CloseReason) {}
//! # }
//! # fn inherited_sockets() -> (mojo_platform_channel::Endpoint, mojo_platform_channel::Endpoint) {
//! #     mojo_platform_channel::socketpair().unwrap()
//! # }
//! use mojo_driver::{Driver, Signals};
//! use std::process::ExitCode;
//!
//! fn main() -> ExitCode {
//!     // First of all, before any other thread exists.
//!     let signals = Signals::block_shutdown_signals().expect("signalfd");
//!     let (host, client) = inherited_sockets();
//!     let mut driver = Driver::new().expect("epoll");
//!     driver.watch_signals(signals).expect("epoll_ctl");
//!     let host = driver.add_link(host).expect("epoll_ctl");
//!     let client = driver.add_link(client).expect("epoll_ctl");
//!     let mut core = Bridge::new(host, client);
//!     match driver.run(&mut core) {
//!         Ok(exit) => {
//!             eprintln!("done: {exit}");
//!             ExitCode::SUCCESS
//!         }
//!         Err(e) => {
//!             eprintln!("error: {e}"); // e.g. "link 1: <what the peer got wrong>"
//!             ExitCode::FAILURE
//!         }
//!     }
//! }
//! ```

#![forbid(unsafe_code)]

mod core;
mod driver;
mod signals;
mod tap;

pub use crate::core::{
    Backlog, CloseReason, Core, CoreRequest, LinkId, NewLinkError, ReceivedFds, Transmit,
};
pub use crate::driver::{
    CLOSE_LINGER, Config, Driver, DriverError, DriverStats, EVENTS_PER_POLL, Exit, LinkStats,
    MAX_RECEIVED_FDS_PER_LINK, OUTPUT_HIGH_WATER, OUTPUT_LOW_WATER, READ_BUDGET_PER_TURN,
};
pub use crate::signals::{ReceivedSignal, ShutdownSignal, SignalError, Signals};
pub use crate::tap::{LinkOrigin, Tap};
