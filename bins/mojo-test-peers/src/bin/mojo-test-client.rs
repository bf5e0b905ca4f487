//! `mojo-test-client`: accepts an invitation on an inherited socket and
//! serves the test-peers.md application protocol on every attached pipe.
//!
//! Legacy mode (the default) runs over the real legacy node
//! ([`mojo_test_peers::real::legacy`]); `--ipcz` still exits 1 with one
//! line naming the missing Mojo+ipcz system layer. A wrong command line is
//! one line and exit status 2.
//!
//! The one `unsafe` of the binary is the adoption of the `--fd` socket.

#![deny(unsafe_code)]

use std::process::ExitCode;

use mojo_test_peers::cli::{ClientArgs, CommandLine};
use mojo_test_peers::real::legacy::LegacyClientConnector;
use mojo_test_peers::run;

/// Adopts the socket the parent passed as fd number `fd`.
#[allow(unsafe_code)]
fn adopt_inherited_socket(
    fd: i32,
) -> Result<mojo_platform_channel::Endpoint, mojo_platform_channel::InheritError> {
    // SAFETY: `fd` comes from our own command line, where the launching
    // host names the socket it left open for us; `main` calls this once,
    // right after parsing, before any other thread exists or any file is
    // opened, so nothing else owns or closes that number.
    unsafe { mojo_platform_channel::from_inherited_fd(fd) }
}

fn main() -> ExitCode {
    let cl = CommandLine::parse(std::env::args_os());
    let args = match ClientArgs::parse(&cl) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mojo-test-client: {e}");
            return ExitCode::from(2);
        }
    };
    if args.ipcz {
        eprintln!("{}", run::missing_client_system(&args));
        return ExitCode::from(1);
    }
    let socket = match adopt_inherited_socket(args.fd) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mojo-test-client: --fd={}: {e}", args.fd);
            return ExitCode::from(1);
        }
    };
    ExitCode::from(run::run_client(&args, &LegacyClientConnector::new(socket)))
}
