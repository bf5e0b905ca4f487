//! Project automation, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: everything CI checks, in order: formatting, clippy with
//!   warnings denied on all targets, every test (with them the tidy checks of
//!   `xtask/tests/tidy.rs`: module docs, `// SAFETY:` comments, ignore
//!   reasons, file lengths, the wire crates' panic lints, paths in the docs),
//!   `corpus --check` (when the vectors are there), the docs with warnings denied, and the fuzz targets' own workspace
//!   (built and its logic tested).
//! - `cargo xtask corpus [--check]`: writes the fuzz seed corpora
//!   `fuzz/corpus/<target>/` of both wire crates from the golden vectors,
//!   deterministically (`--check`: only compares, failing if they differ).
//! - `cargo xtask fuzz --smoke [--seconds N] [--runs N [--seed N]]`: runs every cargo-fuzz target for a
//!   few seconds from its seed corpus (needs `cargo-fuzz` and a toolchain that
//!   accepts `-Z` flags; `RUSTC_BOOTSTRAP=1` is set so a stable toolchain works).
//! - `cargo xtask fuzz --list`: prints the fuzz target names.
//! - `cargo xtask sanitize`: the platform crate's tests (the only crate with
//!   `unsafe`) under ThreadSanitizer, then AddressSanitizer (stable toolchain
//!   with `RUSTC_BOOTSTRAP=1`; std is not instrumented, see
//!   `docs/ARCHITECTURE.md`, Testing).
//! - `cargo xtask demo`: the README's main job. Until the bridge is built it
//!   says so and decodes a session recorded between a real Mojo+ipcz host,
//!   Chromium's own proxy and a legacy client, with `mojo-dump`.

#![forbid(unsafe_code)]

mod corpus;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("corpus") => corpus::run(&workspace_root(), args.iter().any(|a| a == "--check")),
        Some("demo") => demo(),
        Some("sanitize") => sanitize(),
        _ => {
            eprintln!(
                "usage: cargo xtask ci\n       cargo xtask corpus [--check]\n       cargo xtask demo\n       cargo xtask sanitize\n       cargo xtask fuzz --smoke [--seconds N] [--runs N [--seed N]] | --list"
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

fn fuzz_targets() -> Result<Vec<String>, String> {
    let dir = workspace_root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    Ok(names)
}

fn fuzz(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--list") {
        for name in fuzz_targets()? {
            println!("{name}");
        }
        return Ok(());
    }
    if !args.iter().any(|a| a == "--smoke") {
        return Err("fuzz: pass --smoke (run each target briefly) or --list".into());
    }
    let number = |flag: &str| -> Result<Option<u64>, String> {
        match args.iter().position(|a| a == flag) {
            Some(i) => args
                .get(i + 1)
                .and_then(|s| s.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| format!("{flag} needs a whole number")),
            None => Ok(None),
        }
    };
    let seconds = number("--seconds")?.unwrap_or(5);
    // `--runs N` (with `--seed`, default 1) makes a run deterministic: CI uses it
    // so that a smoke run cannot pass or fail by chance.
    let runs = number("--runs")?;
    let seed = number("--seed")?.unwrap_or(1);
    let have_cargo_fuzz = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_cargo_fuzz {
        return Err("cargo-fuzz is not installed (cargo install cargo-fuzz)".into());
    }
    let root = workspace_root();
    for target in fuzz_targets()? {
        // New inputs go to the first corpus directory: a scratch one under
        // target/, so a smoke run never dirties the checked-in seeds.
        let scratch = root.join("target/fuzz-smoke").join(&target);
        let seeds = root.join("fuzz/corpus").join(&target);
        for dir in [&scratch, &seeds] {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut cmd = cargo();
        cmd.env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--fuzz-dir", "fuzz", &target])
            .arg(&scratch)
            .arg(&seeds)
            .args(["--", &format!("-max_total_time={seconds}")]);
        if let Some(runs) = runs {
            cmd.arg(format!("-runs={runs}"))
                .arg(format!("-seed={seed}"));
        }
        run(&format!("fuzz {target}"), cmd)?;
    }
    Ok(())
}

fn demo() -> Result<(), String> {
    let vectors = workspace_root().join("../shared/vectors/cros");
    if !vectors.is_dir() {
        return Err(format!(
            "{} not found: the demo needs ../shared beside the checkout",
            vectors.display()
        ));
    }
    eprintln!(
        "mojo_proxy does not bridge yet (the bridge engine is not wired into it), so there is\n\
         no live proxy to run. Instead: first a session recorded between a real Mojo+ipcz host,\n\
         Chromium's own C++ mojo_proxy and a legacy client (scenario `shmem`, libchrome profile),\n\
         decoded frame by frame and verified; then our test host and client running every\n\
         scenario over our own protocol stacks, without a proxy (legacy, then Mojo+ipcz).\n"
    );
    for (link, protocol) in [("host_proxy", "ipcz"), ("proxy_client", "legacy")] {
        let file = vectors.join(format!("shmem-{link}.jsonl"));
        eprintln!("==> {link} link ({protocol})");
        let mut cmd = cargo();
        cmd.args(["run", "--quiet", "--package", "mojo-dump", "--", "--verify"])
            .arg(format!("--protocol={protocol}"))
            .arg(&file);
        run(&format!("mojo-dump {link}"), cmd)?;
    }
    let mut build = cargo();
    build.args(["build", "--quiet", "--package", "mojo-test-peers", "--bins"]);
    run("build the test peers", build)?;
    let bins = target_dir().join("debug");
    let client = bins.join("mojo-test-client");
    for direct in ["legacy", "ipcz"] {
        let mut host = Command::new(bins.join("mojo-test-host"));
        host.arg(format!("--direct={direct}"))
            .arg(format!("--client={}", client.display()))
            .arg("--quick");
        run(&format!("mojo-test-host --direct={direct}"), host)?;
    }
    Ok(())
}

/// Where cargo puts build output (`CARGO_TARGET_DIR` if set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
