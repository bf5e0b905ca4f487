//! `mojo-relay --legacy-client-fd=N --host-ipcz-transport-fd=N`: the
//! benchmark floor ([`mojo_relay`]): relays bytes and fds between the two
//! inherited sockets with no protocol work.
//!
//! The one `unsafe` is the adoption of the two command-line sockets, as in
//! `mojo_proxy`'s `main`.

#![deny(unsafe_code)]

use std::process::ExitCode;

/// Exit status for a bad command line or unusable inherited fd.
const EXIT_USAGE: u8 = 2;

/// Adopts the socket the parent passed as fd number `fd`.
#[allow(unsafe_code)]
fn adopt(fd: i32) -> Result<mojo_platform_channel::Endpoint, String> {
    // SAFETY: `fd` comes from our own command line, where the launching
    // process names the sockets it left open for us; `main` calls this once
    // per socket while the process is single-threaded and has opened nothing
    // else, so nothing else owns these numbers. `parse_args` refuses one
    // number for both, and the platform crate refuses a second adoption of
    // the same socket anyway.
    unsafe { mojo_platform_channel::from_inherited_fd(fd) }.map_err(|e| format!("fd {fd}: {e}"))
}

fn main() -> ExitCode {
    let args = match mojo_relay::parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("mojo-relay: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (host, client) = match (adopt(args.host_fd), adopt(args.client_fd)) {
        (Ok(host), Ok(client)) => (host, client),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("mojo-relay: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match mojo_relay::relay(host, client) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mojo-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
