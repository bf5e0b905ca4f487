//! `mojo-test-host`: runs the test-peers.md scenarios against a proxy and a
//! client and prints one JSON line per result.
//!
//! Until a real Mojo system over the protocol nodes exists, it parses its
//! command line (exit 2 with one line if that is wrong) and then exits 1
//! with one line naming the missing system layer.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use mojo_test_peers::cli::{CommandLine, HostCommand};
use mojo_test_peers::run;

fn main() -> ExitCode {
    let cl = CommandLine::parse(std::env::args_os());
    match HostCommand::parse(&cl) {
        Err(e) => {
            eprintln!("mojo-test-host: {e}");
            ExitCode::from(2)
        }
        Ok(HostCommand::Broker(_)) => {
            eprintln!("{}", run::missing_broker_system());
            ExitCode::from(1)
        }
        Ok(HostCommand::Host(args)) => {
            eprintln!("{}", run::missing_host_system(&args));
            ExitCode::from(1)
        }
    }
}
