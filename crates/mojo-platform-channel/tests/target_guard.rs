//! The crate refuses to build outside Linux and Android (issue 14, defect
//! 6: elsewhere its Linux control-message parser would leak received fds).
//!
//! No foreign standard library is installed, so the guard file is compiled
//! alone as a `no_core` crate (needs `RUSTC_BOOTSTRAP=1`, set here for this
//! one rustc call) for several targets: it must fail with the guard's
//! message for non-Linux targets and compile for Linux and Android.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

const WRAPPER: &str = r#"#![feature(no_core, rustc_attrs, decl_macro)]
#![allow(internal_features)]
#![no_core]
#[rustc_builtin_macro]
macro compile_error($($t:tt)*) { /* built in */ }
#[rustc_builtin_macro]
macro include($($t:tt)*) { /* built in */ }
include!(GUARD);
"#;

fn compile_guard_for(target: &str, dir: &Path) -> (bool, String) {
    let guard = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/target_guard.rs");
    let root = dir.join(format!("guard-{target}.rs"));
    let text = WRAPPER.replace("GUARD", &format!("{:?}", guard.display().to_string()));
    std::fs::write(&root, text).unwrap();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["--crate-type=lib", "--edition=2024", "--emit=metadata"])
        .arg(format!("--target={target}"))
        .arg("-o")
        .arg(dir.join(format!("guard-{target}.rmeta")))
        .arg(&root)
        .output()
        .expect("run rustc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn non_linux_targets_are_refused_with_a_message() {
    let dir: PathBuf = std::env::temp_dir().join(format!("mpc-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for target in [
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-unknown-freebsd",
        "x86_64-pc-windows-msvc",
    ] {
        let (ok, stderr) = compile_guard_for(target, &dir);
        assert!(!ok, "{target} compiled");
        assert!(
            stderr.contains("mojo-platform-channel supports only Linux and Android"),
            "{target}: {stderr}"
        );
    }
    for target in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "armv7-linux-androideabi",
        "aarch64-linux-android",
    ] {
        let (ok, stderr) = compile_guard_for(target, &dir);
        assert!(ok, "{target}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
