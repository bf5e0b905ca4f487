//! Runs the crate's examples as a user would (`cargo test` builds them
//! next to the test binaries; a filtered run builds them first): each
//! example over each protocol it offers, two real processes, must exit 0
//! with both processes' success lines within the time limit.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest an example may run.
const LIMIT: Duration = Duration::from_secs(60);

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        // A filtered run (`--test examples`) does not build the examples.
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "mojo-system", "--example", name])
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example {name}: {status}");
    }
    assert!(path.exists(), "{} is not built", path.display());
    path
}

fn run(name: &str, args: &[&str]) -> String {
    let mut child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
            assert!(status.success(), "{name} {args:?}: {status}, output {out}");
            return out;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} ran over {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn data_pipe_between_two_processes_over_legacy() {
    let out = run("data_pipe", &[]);
    assert!(out.contains("ok: 1048576 bytes"), "{out}");
    assert!(out.contains("child: read 1048576 bytes"), "{out}");
}

#[test]
fn data_pipe_between_two_processes_over_ipcz() {
    let out = run("data_pipe", &["--ipcz"]);
    assert!(out.contains("ok: 1048576 bytes"), "{out}");
    assert!(out.contains("child: read 1048576 bytes"), "{out}");
}

#[test]
fn a_launched_legacy_client_accepts_the_invitation() {
    for args in [&[][..], &["--desktop"][..]] {
        let out = run("launch_legacy_client", args);
        let greeting = "read 40 bytes: hello from the process that launched you";
        assert!(out.contains(&format!("child: {greeting}")), "{out}");
        assert!(
            out.contains(&format!("ok: the launched legacy client {greeting}")),
            "{out}"
        );
    }
}

#[test]
fn a_shared_buffer_makes_a_round_trip() {
    for args in [&[][..], &["--ipcz"][..]] {
        let out = run("shared_buffer", args);
        assert!(out.contains("child: read 262144 read-only bytes"), "{out}");
        assert!(out.contains("ok: the child read 262144 bytes"), "{out}");
    }
}
