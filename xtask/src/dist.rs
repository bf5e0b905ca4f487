//! The hops as they are deployed: release builds of `mojo_proxy` and
//! `mojo-relay` linked statically (`-C target-feature=+crt-static`) and
//! built with `panic = "abort"`, which
//! `cargo xtask dist` writes and `cargo xtask bench` and `soak` measure.
//!
//! Their text is laid out in the order of `xtask/dist/text-order.txt`, the
//! functions that run first (`text_order.rs`).
//!
//! Why static: the proxy's idle resident set is mostly code pages (the
//! kernel maps whole 64 KiB windows around each page touched), and a
//! dynamic build maps `ld.so`, `libgcc_s` and all of `libc.so` besides its
//! own text (docs/PERFORMANCE.md, "Where the idle RSS is"). The flag must
//! reach the final link only: set for the whole workspace it breaks the
//! proc-macro crates, which are host dylibs. Building with an explicit
//! `--target` (the host's own triple) keeps `RUSTFLAGS` away from them and
//! puts the static build in `<target dir>/<triple>/release`, beside the
//! normal one.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages whose binaries are built statically.
pub(crate) const HOPS: [&str; 2] = ["mojo_proxy", "mojo-relay"];

/// The triple `rustc` builds for by default (`host:` of `rustc -vV`).
pub(crate) fn host_triple() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    parse_host_triple(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "rustc -vV printed no host line".to_string())
}

/// The `host:` line of `rustc -vV`'s output.
fn parse_host_triple(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// `RUSTFLAGS` for a static build: the caller's, plus `crt-static`.
fn static_rustflags(existing: Option<&str>) -> String {
    let ours = "-C target-feature=+crt-static";
    match existing.map(str::trim).filter(|s| !s.is_empty()) {
        Some(flags) => format!("{flags} {ours}"),
        None => ours.to_string(),
    }
}

/// Builds `packages` statically in release (with `features`, if any) under
/// `target_dir`; the directory holding the binaries.
pub(crate) fn build(
    packages: &[&str],
    features: &[&str],
    target_dir: &Path,
) -> Result<PathBuf, String> {
    let triple = host_triple()?;
    let mut cmd = crate::cargo();
    cmd.args(["build", "--release", "--target", &triple]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let mut flags = static_rustflags(std::env::var("RUSTFLAGS").ok().as_deref());
    if let Some(order) =
        crate::text_order::rustflags(&crate::workspace_root(), &target_dir.join("text-order"))?
    {
        flags = format!("{flags} {order}");
    }
    // No unwinding in the deployed hops: a panic is a defect that ends the
    // process either way, and the landing pads are 0.2 MB of code pages.
    cmd.env("RUSTFLAGS", flags)
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_TARGET_DIR", target_dir);
    crate::run("static release build", cmd)?;
    let dir = target_dir.join(triple).join("release");
    let bins: Vec<PathBuf> = packages
        .iter()
        .filter(|&p| HOPS.contains(p))
        .map(|p| dir.join(p))
        .collect();
    crate::text_order::report(&crate::workspace_root(), &bins);
    Ok(dir)
}

/// `cargo xtask dist [--refresh-text-order]`: the static proxy and relay;
/// prints their paths. With the flag, first profiles the hops and rewrites
/// the ordering of their text (`text_order.rs`).
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    match args {
        [] => {}
        [flag] if flag == "--refresh-text-order" => crate::text_order::refresh()?,
        _ => return Err(format!("dist: unknown arguments {args:?}")),
    }
    let dir = build(&HOPS, &[], &crate::target_dir())?;
    for bin in ["mojo_proxy", "mojo-relay"] {
        println!("{}", dir.join(bin).display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_triple_is_read_from_rustc() {
        let text = "rustc 1.95.0\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
        assert_eq!(
            parse_host_triple(text).as_deref(),
            Some("x86_64-unknown-linux-gnu")
        );
        assert_eq!(parse_host_triple("rustc 1.95.0\n"), None);
        assert_eq!(parse_host_triple("host: \n"), None);
        // This machine's rustc answers.
        assert!(host_triple().is_ok_and(|t| t.contains('-')));
    }

    #[test]
    fn rustflags_keep_the_callers_and_add_crt_static() {
        assert_eq!(static_rustflags(None), "-C target-feature=+crt-static");
        assert_eq!(
            static_rustflags(Some("  ")),
            "-C target-feature=+crt-static"
        );
        assert_eq!(
            static_rustflags(Some("-C force-frame-pointers=yes")),
            "-C force-frame-pointers=yes -C target-feature=+crt-static"
        );
    }
}
