//! The `mojo-relay` binary's start-up over a real process: a bad command
//! line or an unusable fd is a usage error (exit 2) with one line on
//! stderr, as `mojo_proxy`'s are. (Being an integration test also makes
//! `cargo test --workspace` build the binary, which the test peers'
//! `proxy_scale` runs as the bench's floor.)

use std::process::Command;

const RELAY: &str = env!("CARGO_BIN_EXE_mojo-relay");

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(RELAY).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_fd_is_a_usage_error() {
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("mojo-relay: "), "{stderr}");
}

#[test]
fn an_fd_that_is_not_a_socket_is_a_usage_error() {
    // Fds 0-2 of the child are pipes or /dev/null, never a Unix stream
    // socket; 999 is not open.
    for (host, client) in [("1", "2"), ("999", "998")] {
        let (code, stderr) = run(&[
            &format!("--host-ipcz-transport-fd={host}"),
            &format!("--legacy-client-fd={client}"),
        ]);
        assert_eq!(code, Some(2), "{host},{client}: {stderr}");
        assert!(stderr.contains("fd "), "{stderr}");
    }
}
