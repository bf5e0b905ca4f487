//! `mojo-test-host`: runs the test-peers.md scenarios against a proxy and a
//! client and prints one JSON line per result.
//!
//! `--direct=legacy` runs over the real legacy node (the host is the
//! legacy broker, [`mojo_test_peers::real::legacy`]); `--direct=ipcz` over
//! the real ipcz node (the host is the ipcz broker,
//! [`mojo_test_peers::real::ipcz`]); through a proxy (no `--direct`) the
//! host is the same ipcz broker, with the proxy on the other end of its
//! socket. `--mode=inherit` makes the host an ipcz non-broker that joins
//! its broker copy (`--role=broker`, [`mojo_test_peers::real::ipcz::run_broker`])
//! and refers the proxy to it. A wrong command line is one line and exit
//! status 2.
//!
//! The one `unsafe` of the binary is the broker copy's adoption of its
//! `--fd` socket.

#![deny(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use mojo_test_peers::cli::{CommandLine, Direct, HostArgs, HostCommand};
use mojo_test_peers::real::ipcz::{IpczHostConnector, run_broker};
use mojo_test_peers::real::legacy::LegacyHostConnector;
use mojo_test_peers::run;

/// Adopts the socket the host passed to its broker copy as fd number `fd`.
#[allow(unsafe_code)]
fn adopt_inherited_socket(
    fd: i32,
) -> Result<mojo_platform_channel::Endpoint, mojo_platform_channel::InheritError> {
    // SAFETY: `fd` comes from our own command line, where the launching
    // host names the socket it left open for its broker copy; `main` calls
    // this once, right after parsing, before any other thread exists or any
    // file is opened, so nothing else owns or closes that number.
    unsafe { mojo_platform_channel::from_inherited_fd(fd) }
}

/// Stdout, which with `--stop-after-each-line` stops the host (SIGSTOP)
/// after each result line until it gets SIGCONT.
fn host_output(args: &HostArgs) -> Box<dyn Write> {
    if args.stop_after_each_line {
        Box::new(run::StopAfterEachLine::new(std::io::stdout(), || {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
        }))
    } else {
        Box::new(std::io::stdout())
    }
}

fn main() -> ExitCode {
    let cl = CommandLine::parse(std::env::args_os());
    match HostCommand::parse(&cl) {
        Err(e) => {
            eprintln!("mojo-test-host: {e}");
            ExitCode::from(2)
        }
        Ok(HostCommand::Broker(args)) => {
            let socket = match adopt_inherited_socket(args.fd) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("mojo-test-host --role=broker: --fd={}: {e}", args.fd);
                    return ExitCode::from(1);
                }
            };
            match run_broker(socket) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mojo-test-host --role=broker: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Ok(HostCommand::Host(args)) if args.direct == Direct::Legacy => {
            let mut out = host_output(&args);
            ExitCode::from(run::run_host(&args, &LegacyHostConnector, &mut out))
        }
        // Through a proxy the host is the ipcz broker too; the proxy is
        // launched on the other end of its socket.
        Ok(HostCommand::Host(args)) if args.direct == Direct::Ipcz || args.direct == Direct::No => {
            let mut out = host_output(&args);
            ExitCode::from(run::run_host(&args, &IpczHostConnector, &mut out))
        }
        Ok(HostCommand::Host(args)) => {
            eprintln!("{}", run::missing_host_system(&args));
            ExitCode::from(1)
        }
    }
}
