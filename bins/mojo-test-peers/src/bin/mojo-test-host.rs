//! `mojo-test-host`: runs the test-peers.md scenarios against a proxy and a
//! client and prints one JSON line per result.
//!
//! `--direct=legacy` runs over the real legacy node (the host is the
//! legacy broker, [`mojo_test_peers::real::legacy`]); `--direct=ipcz` over
//! the real ipcz node (the host is the ipcz broker,
//! [`mojo_test_peers::real::ipcz`]); through a proxy (no `--direct`) the
//! host is the same ipcz broker, with the proxy on the other end of its
//! socket. `--mode=inherit` still exits 1 with one line naming the missing
//! system layer. A wrong
//! command line is one line and exit status 2.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use mojo_test_peers::cli::{CommandLine, Direct, HostCommand};
use mojo_test_peers::real::ipcz::IpczHostConnector;
use mojo_test_peers::real::legacy::LegacyHostConnector;
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
        Ok(HostCommand::Host(args)) if args.direct == Direct::Legacy => {
            let mut out = std::io::stdout();
            ExitCode::from(run::run_host(&args, &LegacyHostConnector, &mut out))
        }
        // Through a proxy the host is the ipcz broker too; the proxy is
        // launched on the other end of its socket.
        Ok(HostCommand::Host(args))
            if args.direct == Direct::Ipcz || (args.direct == Direct::No && !args.inherit) =>
        {
            let mut out = std::io::stdout();
            ExitCode::from(run::run_host(&args, &IpczHostConnector, &mut out))
        }
        Ok(HostCommand::Host(args)) => {
            eprintln!("{}", run::missing_host_system(&args));
            ExitCode::from(1)
        }
    }
}
