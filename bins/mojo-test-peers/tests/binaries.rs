//! The two binaries: command-line errors exit 2 with one line; a host that
//! cannot launch its proxy exits 1 saying so; the client (legacy or
//! `--ipcz`) and the host's broker copy refuse an `--fd` that is no socket
//! with one line.
//! (`legacy_direct.rs` and `ipcz_direct.rs` run the direct modes for real.)

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(out.stdout.is_empty(), "nothing on stdout");
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const HOST: &str = env!("CARGO_BIN_EXE_mojo-test-host");
const CLIENT: &str = env!("CARGO_BIN_EXE_mojo-test-client");

fn one_line(s: &str) -> &str {
    assert_eq!(s.lines().count(), 1, "one stderr line: {s:?}");
    s.trim_end()
}

#[test]
fn host_refuses_what_it_cannot_run_with_one_line() {
    // Every mode has its system now: a proxy that does not exist cannot be
    // launched (in inherit mode after the broker copy, which then sees its
    // socket close and exits).
    for mode in [&[][..], &["--mode=inherit"]] {
        let mut args = vec!["--proxy=/nonexistent/mojo_proxy", "--scenarios=echo_small"];
        args.extend_from_slice(mode);
        let out = Command::new(HOST).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{mode:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.lines()
                .any(|l| l.starts_with("mojo-test-host: cannot launch the children")),
            "{err}"
        );
    }
    // The broker copy refuses an fd that is no socket.
    let (code, err) = run(HOST, &["--role=broker", "--fd=999"]);
    assert_eq!(code, 1);
    assert!(
        one_line(&err).starts_with("mojo-test-host --role=broker: --fd=999: "),
        "{err}"
    );
}

#[test]
fn host_usage_errors() {
    for bad in [
        &["--direct=tcp"][..],
        &["--num-attachments=two"],
        &["--legacy-profile=cros"],
        &["--role=broker"],
    ] {
        let (code, err) = run(HOST, bad);
        assert_eq!(code, 2, "{bad:?}");
        assert!(one_line(&err).starts_with("mojo-test-host: "), "{err}");
    }
}

#[test]
fn client_refuses_an_fd_that_is_no_socket() {
    let (code, err) = run(CLIENT, &["--fd=999", "--num-attachments=2", "--whatever"]);
    assert_eq!(code, 1);
    assert!(
        one_line(&err).starts_with("mojo-test-client: --fd=999: "),
        "{err}"
    );
    // The ipcz client runs for real too (`ipcz_direct.rs`): the same refusal.
    let (code, err) = run(CLIENT, &["--fd=999", "--ipcz"]);
    assert_eq!(code, 1);
    assert!(
        one_line(&err).starts_with("mojo-test-client: --fd=999: "),
        "{err}"
    );
    for bad in [&[][..], &["--fd=x"], &["--fd=3", "--legacy-profile=x"]] {
        let (code, err) = run(CLIENT, bad);
        assert_eq!(code, 2, "{bad:?}");
        assert!(one_line(&err).starts_with("mojo-test-client: "), "{err}");
    }
}
