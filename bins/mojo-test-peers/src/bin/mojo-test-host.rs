//! `mojo-test-host`: runs the test-peers.md scenarios against a proxy and a
//! client and prints one JSON line per result.
//!
//! Until a real Mojo system over the protocol nodes exists, it parses its
//! command line (exit 2 with one line if that is wrong) and then exits 1
//! with one line naming the missing system layer.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use mojo_test_peers::cli::HostCommand;
use mojo_test_peers::run;

fn main() -> ExitCode {
    run::main_without_system(
        "mojo-test-host",
        HostCommand::parse,
        |command| match command {
            HostCommand::Broker(_) => run::missing_broker_system(),
            HostCommand::Host(args) => run::missing_host_system(args),
        },
    )
}
