//! `mojo-test-client`: accepts an invitation on an inherited socket and
//! serves the test-peers.md application protocol on every attached pipe.
//!
//! Until a real Mojo system over the protocol nodes exists, it parses its
//! command line (exit 2 with one line if that is wrong) and then exits 1
//! with one line naming the missing system layer.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use mojo_test_peers::cli::ClientArgs;
use mojo_test_peers::run;

fn main() -> ExitCode {
    run::main_without_system(
        "mojo-test-client",
        ClientArgs::parse,
        run::missing_client_system,
    )
}
