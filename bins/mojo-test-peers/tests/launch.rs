//! `run::run_host` end to end with real child processes (shell scripts that
//! check their command line and inherited sockets) and a connector that
//! puts the in-process fake behind the Mojo connection.

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use mojo_test_peers::cli::{CommandLine, HostArgs, HostCommand};
use mojo_test_peers::client;
use mojo_test_peers::fake::FakeSystem;
use mojo_test_peers::run::{self, HostConnector};
use mojo_test_peers::system::{MessagePipe, MojoSystem};
use serde_json::Value;

/// Serves the attached pipes with the client on a thread.
struct FakeConnector;

impl HostConnector for FakeConnector {
    type System = Arc<FakeSystem>;
    fn connect(
        &self,
        args: &HostArgs,
        host_fd: OwnedFd,
        _broker_fd: Option<OwnedFd>,
    ) -> Result<(Arc<FakeSystem>, Vec<MessagePipe>), String> {
        drop(host_fd); // the scripts wait for EOF on their end
        let sys = Arc::new(FakeSystem::new());
        let mut host_ends = Vec::new();
        let mut client_ends = Vec::new();
        for _ in args.attachments.names() {
            let (h, c) = sys.create_message_pipe().map_err(|e| e.to_string())?;
            host_ends.push(h);
            client_ends.push(c);
        }
        let s = sys.clone();
        std::thread::spawn(move || client::serve_all(&s, client_ends, false));
        Ok((sys, host_ends))
    }
}

/// Held by every test for its whole body. A script written while another
/// test forks would be open for writing in that child until it execs, and
/// exec'ing the script then fails with ETXTBSY; so writing and launching
/// never overlap between tests.
static LAUNCH_LOCK: Mutex<()> = Mutex::new(());

fn serialized() -> MutexGuard<'static, ()> {
    LAUNCH_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A script that logs its argv, checks every fd switch names an inherited
/// socket, and exits 0.
fn script(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let log = dir.join(format!("{name}.args"));
    let text = format!(
        "#!/bin/sh\necho \"$@\" > '{}'\nfor a in \"$@\"; do case \"$a\" in\n\
         --fd=*|--legacy-client-fd=*|--host-ipcz-transport-fd=*) n=${{a#*=}}; [ -S /proc/$$/fd/$n ] || exit 9;;\n\
         esac; done\nexit 0\n",
        log.display()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mojo-test-peers-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn host_args(argv: &[String]) -> HostArgs {
    match HostCommand::parse(&CommandLine::parse(argv)).unwrap() {
        HostCommand::Host(h) => *h,
        HostCommand::Broker(_) => panic!(),
    }
}

/// Runs the host with `argv`, asserts it exits 0 and returns its lines.
fn run_host_ok(argv: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    assert_eq!(run::run_host(&host_args(argv), &FakeConnector, &mut out), 0);
    lines(&out)
}

/// The words a script logged as its argv.
fn logged_args(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.args"))).unwrap()
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn through_a_proxy_process() {
    let _serial = serialized();
    let dir = tempdir("proxy");
    let proxy = script(&dir, "proxy");
    let client = script(&dir, "client");
    let argv: Vec<String> = vec![
        "mojo-test-host".into(),
        format!("--proxy={}", proxy.display()),
        format!("--client={}", client.display()),
        "--scenarios=echo_small,subpipe,many_pipes".into(),
        "--vector".into(),
        "--proxy-extra-args=--x=1 --y".into(),
        "--client-verbose".into(),
    ];
    let lines = run_host_ok(&argv);
    assert_eq!(lines[0]["proxy"], proxy.display().to_string());
    for l in &lines {
        assert_eq!(l["pass"], true, "{l}");
        assert_eq!(l["label"], "proxy");
    }
    let shutdown = lines.last().unwrap();
    assert_eq!(shutdown["scenario"], "shutdown");
    assert_eq!(shutdown["client_exit"], 0);
    assert_eq!(shutdown["proxy_exit"], 0);
    let pargs = logged_args(&dir, "proxy");
    let words: Vec<&str> = pargs.split_whitespace().collect();
    assert!(words[0].starts_with("--legacy-client-fd="), "{pargs}");
    assert!(words[1].starts_with("--host-ipcz-transport-fd="), "{pargs}");
    assert_eq!(words[2..], ["--attachment-name=pipe!", "--x=1", "--y"]);
    let cargs = logged_args(&dir, "client");
    let words: Vec<&str> = cargs.split_whitespace().collect();
    assert!(words[0].starts_with("--fd="), "{cargs}");
    assert_eq!(words[1..], ["--attachment-name=pipe!", "--verbose"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn through_a_relay_with_an_ipcz_client() {
    let _serial = serialized();
    let dir = tempdir("relay");
    let relay = script(&dir, "relay");
    let client = script(&dir, "client");
    let argv: Vec<String> = vec![
        "mojo-test-host".into(),
        format!("--relay={}", relay.display()),
        format!("--client={}", client.display()),
        "--scenarios=echo_small".into(),
        "--vector".into(),
    ];
    let lines = run_host_ok(&argv);
    assert_eq!(lines[0]["proxy"], relay.display().to_string());
    for l in &lines {
        assert_eq!(l["pass"], true, "{l}");
        assert_eq!(l["label"], "relay");
    }
    assert_eq!(lines.last().unwrap()["proxy_exit"], 0);
    // The relay gets the proxy's command line; the client speaks ipcz.
    let rargs = logged_args(&dir, "relay");
    let words: Vec<&str> = rargs.split_whitespace().collect();
    assert!(words[0].starts_with("--legacy-client-fd="), "{rargs}");
    assert!(words[1].starts_with("--host-ipcz-transport-fd="), "{rargs}");
    assert_eq!(words[2..], ["--attachment-name=pipe!"]);
    let cargs = logged_args(&dir, "client");
    let words: Vec<&str> = cargs.split_whitespace().collect();
    assert_eq!(words[1..], ["--attachment-name=pipe!", "--ipcz"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inherit_mode_with_three_pipes_launches_a_broker_copy() {
    let _serial = serialized();
    let dir = tempdir("inherit");
    let proxy = script(&dir, "proxy");
    let client = script(&dir, "client");
    let broker = script(&dir, "host-copy");
    let argv: Vec<String> = vec![
        broker.display().to_string(), // argv[0]: the broker copy runs it
        format!("--proxy={}", proxy.display()),
        format!("--client={}", client.display()),
        "--mode=inherit".into(),
        "--num-attachments=3".into(),
        "--scenarios=pipe_roundtrip".into(),
        "--vector".into(),
    ];
    let lines = run_host_ok(&argv);
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config",
            "connect",
            "multi_attach",
            "pipe_roundtrip",
            "pipe_roundtrip_5hop",
            "shutdown"
        ]
    );
    assert!(lines.iter().all(|l| l["pass"] == true), "{lines:?}");
    assert_eq!(lines[0]["direct"], "");
    assert_eq!(lines[0]["inherit_broker"], true);
    assert_eq!(lines[0]["num_attachments"], 3);
    let pargs = logged_args(&dir, "proxy");
    assert!(
        pargs
            .trim_end()
            .ends_with("--num-attachments=3 --inherit-ipcz-broker"),
        "{pargs}"
    );
    let cargs = logged_args(&dir, "client");
    assert!(cargs.trim_end().ends_with("--num-attachments=3"), "{cargs}");
    let bargs = logged_args(&dir, "host-copy");
    assert!(bargs.starts_with("--role=broker --fd="), "{bargs}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_that_cannot_start_is_an_error() {
    let _serial = serialized();
    let argv: Vec<String> = vec![
        "mojo-test-host".into(),
        "--client=/nonexistent/mojo-test-client".into(),
        "--direct=ipcz".into(),
    ];
    let mut out = Vec::new();
    assert_eq!(
        run::run_host(&host_args(&argv), &FakeConnector, &mut out),
        1
    );
    assert!(out.is_empty());
}
