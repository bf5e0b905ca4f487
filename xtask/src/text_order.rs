//! The order of the deployed hops' code: the functions that run, packed at
//! the front of `.text` (docs/PERFORMANCE.md, "Idle RSS: ordering the text
//! by what runs").
//!
//! Why: the hops' idle resident set is mostly code pages, and the kernel maps
//! a 64 KiB window round each page a process touches. Spread over the whole
//! text, the few hundred functions that start-up, the handshake and the
//! message path run map nearly all of it; packed together they map a third.
//! The linker (rust-lld, the toolchain's default on this target) takes that
//! order as a `--symbol-ordering-file`, `xtask/dist/text-order.txt`.
//!
//! The list is made by `cargo xtask dist --refresh-text-order`: each hop
//! (the proxy, its `bench-alloc` build and the relay) runs under
//! `valgrind --tool=callgrind` through our test host, first for start-up and
//! one echo, then for the default scenarios; the names of the functions that
//! ran, start-up's first, are the list. Names are mangled (with their
//! hashes), so code changes make some of them stale: a stale name is ignored
//! by the linker and costs nothing but its place. `cargo xtask dist` says how
//! many of the listed names each binary still has.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The ordering file, relative to the workspace root.
pub(crate) const ORDER_FILE: &str = "xtask/dist/text-order.txt";

/// Set to `0` to build the hops without the ordering file (a linker other
/// than lld does not take it).
const DISABLE_ENV: &str = "MOJO_DIST_TEXT_ORDER";

/// Seconds the test host may take for one profiled run (valgrind runs the
/// hop some 50 times slower).
const PROFILED_HOST_TIMEOUT_S: u32 = 600;

/// The profiling runs, in the order their functions are laid out: what runs
/// before the first message first, so an idle hop maps as little as it can.
const PHASES: [(&str, &[&str]); 2] = [
    ("start-up and one echo", &["--scenarios=echo_small"]),
    ("the default scenarios", &["--quick"]),
];

/// The `RUSTFLAGS` that make the linker follow the ordering file under
/// `root`, or `None` when the file is absent or ordering is disabled.
///
/// The linker is handed a copy named by the list's hash, under `scratch`:
/// cargo relinks when `RUSTFLAGS` change, not when a file a flag names does,
/// so a refreshed list must change the flags.
pub(crate) fn rustflags(root: &Path, scratch: &Path) -> Result<Option<String>, String> {
    if std::env::var(DISABLE_ENV).is_ok_and(|v| v == "0") {
        return Ok(None);
    }
    let Ok(text) = std::fs::read_to_string(root.join(ORDER_FILE)) else {
        return Ok(None);
    };
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&text, &mut hasher);
    let copy = scratch.join(format!(
        "text-order-{:016x}.txt",
        std::hash::Hasher::finish(&hasher)
    ));
    if copy.display().to_string().contains(char::is_whitespace) {
        // RUSTFLAGS splits on spaces.
        return Err(format!(
            "{}: a path with spaces cannot be passed in RUSTFLAGS",
            copy.display()
        ));
    }
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    std::fs::write(&copy, text).map_err(|e| format!("{}: {e}", copy.display()))?;
    Ok(Some(format!(
        "-C link-arg=-Wl,--symbol-ordering-file={} -C link-arg=-Wl,--no-warn-symbol-ordering",
        copy.display()
    )))
}

/// The function names of a callgrind profile (`--compress-strings=no`)
/// that belong to the object `object`, in order of first appearance,
/// without recursion-depth suffixes (`'2`) and unnamed code (`0x...`).
pub(crate) fn profiled_functions(profile: &str, object: &str) -> Vec<String> {
    let mut in_object = false;
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for line in profile.lines() {
        if let Some(ob) = line.strip_prefix("ob=") {
            in_object = ob == object;
        } else if let Some(name) = line.strip_prefix("fn=") {
            let name = name.split('\'').next().unwrap_or(name).trim();
            if in_object
                && !name.is_empty()
                && !name.starts_with("0x")
                && !name.contains(char::is_whitespace)
                && seen.insert(name.to_string())
            {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// The lists one after the other, each name kept at its first place.
pub(crate) fn merge(lists: &[Vec<String>]) -> Vec<String> {
    let mut seen = HashSet::new();
    lists
        .iter()
        .flatten()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}

/// The names of an ordering file: its lines, without blank ones and `#`
/// comments.
pub(crate) fn listed_names(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// How many of the listed names `binary`'s symbol table has (by `nm`), or
/// `None` when `nm` cannot be run.
pub(crate) fn names_found(binary: &Path, listed: &[&str]) -> Option<usize> {
    let out = Command::new("nm")
        .arg(binary)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let symbols: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    Some(listed.iter().filter(|n| symbols.contains(*n)).count())
}

/// Prints how much of the ordering file each of `binaries` still has.
pub(crate) fn report(root: &Path, binaries: &[PathBuf]) {
    let Ok(text) = std::fs::read_to_string(root.join(ORDER_FILE)) else {
        return;
    };
    let listed = listed_names(&text);
    for bin in binaries {
        if let Some(found) = names_found(bin, &listed) {
            eprintln!(
                "==> text order: {found} of the {} listed functions are in {}",
                listed.len(),
                bin.display()
            );
        }
    }
}

/// One hop run under callgrind through the test host; the functions of the
/// hop that ran.
fn profile_run(
    scratch: &Path,
    host: &Path,
    client: &Path,
    hop: &Path,
    hop_flag: &str,
    host_args: &[&str],
) -> Result<Vec<String>, String> {
    let out = scratch.join("callgrind.out");
    let _ = std::fs::remove_file(&out);
    // The host runs its hop as a program with the hop's command line, so a
    // wrapper script puts valgrind in front of it.
    let wrapper = scratch.join("hop-under-callgrind");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec valgrind --tool=callgrind --demangle=no --compress-strings=no \
             --compress-pos=no --callgrind-out-file={} {} \"$@\"\n",
            out.display(),
            hop.display()
        ),
    )
    .map_err(|e| format!("{}: {e}", wrapper.display()))?;
    let mut chmod = Command::new("chmod");
    chmod.arg("+x").arg(&wrapper);
    crate::run("chmod", chmod)?;
    let mut cmd = Command::new(host);
    cmd.arg(format!("--client={}", client.display()))
        .arg(format!("{hop_flag}={}", wrapper.display()))
        .arg(format!("--timeout={PROFILED_HOST_TIMEOUT_S}"))
        .args(host_args)
        .stdout(Stdio::null());
    crate::run(&format!("profiled run of {}", hop.display()), cmd)?;
    let profile = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let object = hop
        .canonicalize()
        .map_err(|e| format!("{}: {e}", hop.display()))?;
    let names = profiled_functions(&profile, &object.display().to_string());
    if names.is_empty() {
        return Err(format!(
            "{}: the profile names no function of {}",
            out.display(),
            object.display()
        ));
    }
    Ok(names)
}

/// `cargo xtask dist --refresh-text-order`: profiles the hops and rewrites
/// the ordering file.
pub(crate) fn refresh() -> Result<(), String> {
    let root = crate::workspace_root();
    let target = crate::target_dir();
    let mut peers = crate::cargo();
    peers.args(["build", "--release", "-p", "mojo-test-peers"]);
    crate::run("release build of the test peers", peers)?;
    let release = target.join("release");
    let (host, client) = (
        release.join("mojo-test-host"),
        release.join("mojo-test-client"),
    );
    let hops = crate::dist::build(&crate::dist::HOPS, &[], &target)?;
    let alloc = crate::dist::build(
        &["mojo_proxy"],
        &["bench-alloc"],
        &target.join("bench-alloc"),
    )?;
    let profiled = [
        (hops.join("mojo_proxy"), "--proxy"),
        (alloc.join("mojo_proxy"), "--proxy"),
        (hops.join("mojo-relay"), "--relay"),
    ];
    let scratch = target.join("text-order");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let mut lists = Vec::new();
    for (phase, args) in PHASES {
        for (hop, flag) in &profiled {
            eprintln!("==> text order: {phase}, {}", hop.display());
            lists.push(profile_run(&scratch, &host, &client, hop, flag, args)?);
        }
    }
    let names = merge(&lists);
    let mut text = String::from(
        "# The functions the deployed hops run, start-up's first: the linker lays\n\
         # them out in this order (xtask/src/text_order.rs). Written by\n\
         # `cargo xtask dist --refresh-text-order`; do not edit.\n",
    );
    for n in &names {
        text.push_str(n);
        text.push('\n');
    }
    let file = root.join(ORDER_FILE);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    eprintln!(
        "==> text order: {} functions written to {}",
        names.len(),
        file.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_gives_the_objects_named_functions_once_in_order() {
        let profile = "version: 1\ncmd: /bin/p\n\
            ob=/bin/p\nfl=a.rs\nfn=_ZN1a4main17h0123456789abcdefE\n1 5\n\
            cob=/bin/p\ncfn=_ZN1b3run17hfedcba9876543210E\ncalls=1 0\n1 3\n\
            fn=0x0000000000401000\n1 1\n\
            ob=/lib/other.so\nfn=other_function\n1 1\n\
            ob=/bin/p\nfn=_ZN1b3run17hfedcba9876543210E'2\n1 1\n\
            fn=_ZN1b3run17hfedcba9876543210E\n1 1\nfn=memcpy\n1 1\n";
        assert_eq!(
            profiled_functions(profile, "/bin/p"),
            [
                "_ZN1a4main17h0123456789abcdefE",
                "_ZN1b3run17hfedcba9876543210E",
                "memcpy"
            ]
        );
        assert!(profiled_functions(profile, "/bin/q").is_empty());
    }

    #[test]
    fn merged_lists_keep_each_name_at_its_first_place() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            merge(&[l(&["a", "b"]), l(&["c", "a"]), l(&["b", "d"])]),
            l(&["a", "b", "c", "d"])
        );
        assert!(merge(&[]).is_empty());
    }

    #[test]
    fn the_listed_names_skip_comments_and_blank_lines() {
        assert_eq!(listed_names("# head\n\n a \nb\n#c\n"), ["a", "b"]);
    }

    #[test]
    fn the_committed_ordering_file_lists_distinct_symbol_names() {
        let text = std::fs::read_to_string(crate::workspace_root().join(ORDER_FILE))
            .expect("the ordering file is committed");
        let names = listed_names(&text);
        assert!(names.len() >= 100, "only {} names", names.len());
        let distinct: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(distinct.len(), names.len(), "a name is listed twice");
        assert!(names.iter().all(|n| !n.contains(char::is_whitespace)));
        // Most of the list is our own Rust code, by mangled name.
        let mangled = names.iter().filter(|n| n.starts_with("_ZN")).count();
        assert!(mangled * 2 > names.len(), "{mangled} of {}", names.len());
    }

    #[test]
    fn ordering_flags_name_a_copy_by_content_and_silence_stale_names() {
        let root = crate::workspace_root();
        let scratch = std::env::temp_dir().join(format!("text-order-test-{}", std::process::id()));
        let result = rustflags(&root, &scratch);
        if std::env::var(DISABLE_ENV).is_ok_and(|v| v == "0") {
            assert_eq!(result, Ok(None));
            return;
        }
        let flags = result.unwrap().expect("the ordering file is committed");
        let copy = flags
            .split_whitespace()
            .find_map(|f| f.strip_prefix("link-arg=-Wl,--symbol-ordering-file="))
            .expect("the flag names the file");
        assert_eq!(
            std::fs::read_to_string(copy).unwrap(),
            std::fs::read_to_string(root.join(ORDER_FILE)).unwrap()
        );
        assert!(flags.contains("--no-warn-symbol-ordering"));
        // The same list, the same flags: no relink for nothing.
        assert_eq!(
            rustflags(&root, &scratch).unwrap().as_deref(),
            Some(flags.as_str())
        );
        assert_eq!(rustflags(Path::new("/nonexistent"), &scratch), Ok(None));
        std::fs::remove_dir_all(&scratch).unwrap();
    }
}
