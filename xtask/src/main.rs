//! Project automation, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: everything CI checks, in order: formatting, clippy with
//!   warnings denied on all targets, every test (with them the tidy checks of
//!   `xtask/tests/tidy.rs`: module docs, `// SAFETY:` comments, ignore
//!   reasons, file lengths, the wire crates' panic lints, paths in the docs),
//!   `corpus --check` (when the vectors are there), the docs with warnings denied, and the fuzz targets' own workspace
//!   (built, and every seed and past crash input of `fuzz/regressions/`
//!   replayed through the targets' bodies in its library).
//! - `cargo xtask corpus [--check]`: writes the fuzz seed corpora
//!   `fuzz/corpus/<target>/` of both wire crates from the golden vectors,
//!   deterministically (`--check`: only compares, failing if they differ).
//! - `cargo xtask fuzz --smoke | --campaign | --list` (`fuzz.rs`): CI's
//!   short fixed-count run of every cargo-fuzz target, a campaign that runs
//!   each target until its coverage plateaus, or the target names (needs
//!   `cargo-fuzz`; `RUSTC_BOOTSTRAP=1` is set so a stable toolchain works).
//! - `cargo xtask sanitize`: the platform crate's tests (the only crate with
//!   `unsafe`) under ThreadSanitizer, then AddressSanitizer (stable toolchain
//!   with `RUSTC_BOOTSTRAP=1`; std is not instrumented, see
//!   `docs/ARCHITECTURE.md`, Testing).
//! - `cargo xtask demo`: the README's main job, with nothing but cargo: a
//!   session recorded between a real Mojo+ipcz host, Chromium's own proxy
//!   and a legacy client decoded with `mojo-dump` (when the vectors are
//!   there), our test host and client over both direct stacks, then our host
//!   through `mojo_proxy` to our client: every scenario's result and timing,
//!   the first frames of both links from the proxy's `--capture-dir`, and
//!   the pipes `mojo-dump --pipes` pairs across the proxy.
//! - `cargo xtask bench [--quick] [--json PATH] [--proxy=PATH]...`: the
//!   benchmark harness (`bench.rs`, docs/PERFORMANCE.md): the proxy against
//!   the floor of a byte+fd relay and the direct connections, in one run.
//! - `cargo xtask soak [--messages N] [--json PATH] [--proxy=PATH]`: the
//!   soak (`soak.rs`, docs/RELIABILITY.md): a million messages with handles
//!   through the release proxy, whose fd count and RSS must stay flat.
//! - `cargo xtask dist [--refresh-text-order]` (`dist.rs`): `mojo_proxy`
//!   and `mojo-relay` as they are deployed and measured, release builds
//!   linked statically with their text in the order of the functions that
//!   run (`text_order.rs`; the flag profiles them again under callgrind and
//!   rewrites that order); prints their paths.

#![forbid(unsafe_code)]

mod bench;
mod corpus;
mod demo;
mod dist;
mod flags;
mod fuzz;
mod procfs;
mod soak;
mod text_order;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fuzz") => fuzz::main(&args[1..]),
        Some("corpus") => corpus::run(&workspace_root(), args.iter().any(|a| a == "--check")),
        Some("demo") => demo(),
        Some("bench") => bench::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
        Some("sanitize") => sanitize(),
        _ => {
            eprintln!(
                "usage: cargo xtask ci\n       cargo xtask corpus [--check]\n       cargo xtask demo\n       cargo xtask bench [--quick] [--json PATH] [--proxy=PATH]... [--runs N] [--taskset=CPUS] [--capture] [--scale[=N,...]]\n       cargo xtask soak [--messages N] [--json PATH] [--proxy=PATH]\n       cargo xtask sanitize\n       cargo xtask dist [--refresh-text-order]\n       cargo xtask fuzz --smoke [--seconds CAP] [--runs N] [--seed N] | --campaign [--seconds N] [--plateau S] [TARGET]... | --list"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("==> {step}: {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("format check", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run("clippy", clippy)?;

    let mut test = cargo();
    test.args(["test", "--workspace", "--locked"]);
    run("tests", test)?;

    // The checked-in seed corpus is what the generator writes (needs the vectors).
    match mojo_transcript::locate_vectors() {
        mojo_transcript::VectorsLocation::Found(_) => {
            eprintln!("==> fuzz corpus check: cargo xtask corpus --check");
            corpus::run(&workspace_root(), true)?;
        }
        mojo_transcript::VectorsLocation::Missing(dir) => eprintln!(
            "note: fuzz corpus check skipped: no vectors at {}",
            dir.display()
        ),
        mojo_transcript::VectorsLocation::EnvNotADirectory(dir) => {
            return Err(format!(
                "MOJO_VECTORS_DIR={} is not a directory",
                dir.display()
            ));
        }
    }

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run("docs", doc)?;

    // The fuzz workspace is separate (cargo-fuzz expects that); check that its
    // targets still compile against the libraries, without needing nightly.
    let mut fuzz_check = cargo();
    fuzz_check.args(["check", "--manifest-path", "fuzz/Cargo.toml", "--bins"]);
    run("fuzz targets build", fuzz_check)?;
    // The targets' bodies live in its library: replay every seed and past
    // crash input through them (stable toolchain, no libFuzzer run).
    let mut fuzz_replay = cargo();
    fuzz_replay.args(["test", "--manifest-path", "fuzz/Cargo.toml", "--lib"]);
    run("fuzz seeds and past crashes replayed", fuzz_replay)?;
    Ok(())
}

/// Runs the platform crate's unit and integration tests under each sanitizer.
/// std is not rebuilt with instrumentation (that needs `rust-src`), so the
/// thread sanitizer runs one test thread and suppresses only std's and the
/// harness's own synchronisation (`tsan-suppressions.txt`).
fn sanitize() -> Result<(), String> {
    let root = workspace_root();
    let target = std::env::var("MOJO_SANITIZE_TARGET")
        .unwrap_or_else(|_| format!("{}-unknown-linux-gnu", std::env::consts::ARCH));
    let suppressions = root.join("crates/mojo-platform-channel/tsan-suppressions.txt");
    for (name, flag) in [("thread", "thread"), ("address", "address")] {
        let mut cmd = cargo();
        cmd.env("RUSTC_BOOTSTRAP", "1")
            .env(
                "RUSTFLAGS",
                format!("-Zsanitizer={flag} -Cunsafe-allow-abi-mismatch=sanitizer"),
            )
            .env(
                "TSAN_OPTIONS",
                format!("suppressions={} halt_on_error=1", suppressions.display()),
            )
            .env("ASAN_OPTIONS", "detect_leaks=1")
            .args([
                "test",
                "-p",
                "mojo-platform-channel",
                "--lib",
                "--tests",
                "--locked",
            ])
            .args(["--target", &target, "--target-dir"])
            .arg(root.join(format!("target/sanitize-{name}")))
            .args(["--", "--test-threads=1"]);
        run(&format!("{name} sanitizer"), cmd)?;
    }
    Ok(())
}

/// The packages whose binaries the demo runs.
const DEMO_PACKAGES: [&str; 3] = ["mojo-test-peers", "mojo_proxy", "mojo-dump"];

/// Bytes each capture file of the demo's proxy run may take: enough for the
/// first scenarios, small enough to write quickly (the rest is cut cleanly).
const DEMO_CAPTURE_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Frames of each direction shown from the demo's capture.
const DEMO_FRAMES_SHOWN: usize = 6;

/// The README's main job, on a machine with nothing but cargo: a recorded
/// Chromium session decoded (when `shared/vectors` is there), our host and
/// client over both direct stacks, then our host -> mojo_proxy -> our client
/// with every scenario's result and timing, the first frames of both links
/// from the proxy's own capture and its pipes paired across the proxy.
fn demo() -> Result<(), String> {
    let mut build = cargo();
    build.args(["build", "--quiet", "--bins"]);
    for package in DEMO_PACKAGES {
        build.args(["--package", package]);
    }
    run("build the test peers, mojo_proxy and mojo-dump", build)?;
    let bins = target_dir().join("debug");
    let dump = bins.join("mojo-dump");

    eprintln!("\n=== 1. A session recorded between real Chromium peers, decoded and verified ===");
    match mojo_transcript::locate_vectors() {
        mojo_transcript::VectorsLocation::Found(dir) => {
            eprintln!(
                "(a Mojo+ipcz host, Chromium's own C++ mojo_proxy and a legacy client; scenario `shmem`, libchrome profile)"
            );
            for (link, protocol) in [("host_proxy", "ipcz"), ("proxy_client", "legacy")] {
                let mut cmd = Command::new(&dump);
                cmd.arg("--verify")
                    .arg(format!("--protocol={protocol}"))
                    .arg(dir.join(format!("cros/shmem-{link}.jsonl")));
                run(&format!("mojo-dump {link} ({protocol})"), cmd)?;
            }
        }
        mojo_transcript::VectorsLocation::Missing(dir)
        | mojo_transcript::VectorsLocation::EnvNotADirectory(dir) => eprintln!(
            "skipped: no recorded vectors at {} (set MOJO_VECTORS_DIR to show them)",
            dir.display()
        ),
    }

    eprintln!("\n=== 2. Our test host and client over each protocol stack, no proxy ===");
    let client = bins.join("mojo-test-client");
    for direct in ["legacy", "ipcz"] {
        let mut host = Command::new(bins.join("mojo-test-host"));
        host.arg(format!("--direct={direct}"))
            .arg(format!("--client={}", client.display()))
            .arg("--quick");
        demo::run_scenarios(host)?;
    }

    eprintln!("\n=== 3. Our test host (Mojo+ipcz) -> mojo_proxy -> our legacy test client ===");
    let capture = demo_capture_dir()?;
    let mut host = Command::new(bins.join("mojo-test-host"));
    host.arg(format!("--proxy={}", bins.join("mojo_proxy").display()))
        .arg(format!("--client={}", client.display()))
        .arg("--quick")
        .arg(format!(
            "--proxy-extra-args=--capture-dir={} --capture-max-bytes={DEMO_CAPTURE_MAX_BYTES}",
            capture.display()
        ));
    demo::run_scenarios(host)?;

    eprintln!(
        "\n=== 4. The first frames on both links, from the proxy's capture ({}) ===",
        capture.display()
    );
    for (file, protocol) in [
        ("host_proxy.jsonl", "ipcz"),
        ("proxy_client.jsonl", "legacy"),
    ] {
        demo::show_capture(&dump, &capture.join(file), protocol, DEMO_FRAMES_SHOWN)?;
    }
    eprintln!("\n=== 5. The same capture per message pipe (`mojo-dump --pipes`) ===");
    demo::show_pipes(&dump, &capture)?;
    eprintln!(
        "(docs/DEBUGGING.md walks through these views: mojo-dump [--summary | --pipes] {}/*.jsonl)",
        capture.display()
    );
    Ok(())
}

/// A fresh directory for the demo's capture: under the target directory,
/// unless its path has a space (the host splits `--proxy-extra-args` on
/// spaces), then under the system's temporary directory.
fn demo_capture_dir() -> Result<PathBuf, String> {
    let mut dir = target_dir().join("demo-capture");
    if dir.to_string_lossy().contains(char::is_whitespace) {
        dir = std::env::temp_dir().join(format!("mojo-proxy-demo-{}", std::process::id()));
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// Where cargo puts build output (`CARGO_TARGET_DIR` if set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
