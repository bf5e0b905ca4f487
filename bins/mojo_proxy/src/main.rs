//! `mojo_proxy`: bridges a Mojo+ipcz host and a legacy Mojo Core client.
//!
//! This binary only parses its command line, takes its two inherited sockets
//! and runs the `mio` event loop ([`mojo_proxy::run`]) that moves bytes and
//! fds between them and the sans-IO protocol cores.
//!
//! The one `unsafe` of the binary is the adoption of the two command-line
//! sockets (`adopt_inherited_socket`): only `main` knows that nothing else
//! in the process owns those numbers.

#![deny(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use mojo_proxy::{cli, run};

/// `--features bench-alloc` (cargo xtask bench): every allocation counted;
/// the harness reads the counter through `/proc/PID/mem` at the address
/// `main` prints first.
#[cfg(feature = "bench-alloc")]
#[global_allocator]
static ALLOCATOR: mojo_platform_channel::CountingAlloc =
    mojo_platform_channel::CountingAlloc::new();

/// Exit status for a bad command line or unusable inherited fd.
const EXIT_USAGE: u8 = 2;

/// Writes `text` to stdout, ignoring failure (a closed pipe must not turn
/// `--help` into a panic).
fn print_ignoring_errors(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes one `mojo_proxy: ...` line to stderr, ignoring failure. One
/// `write` call: stderr is unbuffered and shared with the launcher, whose
/// own lines would otherwise land inside ours (`writeln!` writes each piece
/// of the format separately), and a line under `PIPE_BUF` written at once
/// stays whole.
fn error_line(text: &str) {
    let line = format!("mojo_proxy: {text}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Adopts the socket the parent passed as fd number `fd`.
#[allow(unsafe_code)]
fn adopt_inherited_socket(
    fd: i32,
) -> Result<mojo_platform_channel::Endpoint, mojo_platform_channel::InheritError> {
    // SAFETY: `fd` comes from our own command line, where the launching
    // process names the sockets it left open for us. `main` calls this once
    // per switch, right after parsing, while the process is still single-
    // threaded and has opened nothing but the standard streams, so no other
    // code owns or closes these numbers and the endpoint becomes the only
    // owner. A number that is not an open unix stream socket is only
    // inspected, not adopted. `cli::parse` refuses one number for both
    // switches, and the platform crate's registry would refuse a second
    // adoption of the same socket anyway.
    unsafe { mojo_platform_channel::from_inherited_fd(fd) }
}

fn main() -> ExitCode {
    #[cfg(feature = "bench-alloc")]
    error_line(&format!(
        "bench-alloc counter at {:#x}",
        ALLOCATOR.counter_address()
    ));
    // What the launcher left open (our two sockets among them), so that
    // only what the run itself leaves open is reported at exit.
    let mut inherited = run::open_fds_beyond_stdio();
    // Before anything else, while the process has one thread: every later
    // thread inherits the blocked mask, so the signals reach only the
    // loop's signalfd.
    let signals = match mojo_driver::Signals::block_shutdown_and_status_signals() {
        Ok(signals) => signals,
        Err(e) => {
            error_line(&format!("cannot block SIGTERM, SIGINT and SIGUSR1: {e}"));
            return ExitCode::from(run::EXIT_FAILURE);
        }
    };
    // The live state (SIGUSR1) and the exit totals are wanted even when
    // nobody set RUST_LOG: a signal someone sends must answer.
    let default_filter = format!("warn,{}=info", mojo_proxy::state::TARGET);
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
        .format_timestamp_micros()
        .init();
    let config = match cli::parse(std::env::args_os().skip(1)) {
        Ok(config) => config,
        Err(cli::CliError::Info(text)) => {
            print_ignoring_errors(&text);
            return ExitCode::SUCCESS;
        }
        Err(cli::CliError::Usage(text)) => {
            error_line(&text);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Our own two sockets must be closed at exit like everything we made.
    inherited
        .retain(|(fd, _)| *fd != config.legacy_client_fd && *fd != config.host_ipcz_transport_fd);
    let endpoints = [
        ("legacy-client-fd", config.legacy_client_fd),
        ("host-ipcz-transport-fd", config.host_ipcz_transport_fd),
    ]
    .map(|(switch, fd)| adopt_inherited_socket(fd).map_err(|e| format!("--{switch}={fd}: {e}")));
    let [legacy_client, host] = match endpoints {
        [Ok(legacy_client), Ok(host)] => [legacy_client, host],
        [Err(e), _] | [_, Err(e)] => {
            // A refused command line is exactly one line on stderr, so the
            // warnings (which only matter for a proxy that runs) come after.
            error_line(&e);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    log::info!("configuration: {config:?}");
    log::debug!("adopted sockets {legacy_client:?} (legacy client) and {host:?} (host)");
    ExitCode::from(run::run(&config, host, legacy_client, signals, &inherited))
}
