//! Tidy checks as tests (in the style of rust-analyzer's `tidy.rs`): rules of
//! `docs/ARCHITECTURE.md` that neither rustc nor clippy enforces. `cargo xtask
//! ci` runs them with every other test (`cargo test --workspace`).
//!
//! Each check is a small function over file text, unit-tested at the bottom
//! on strings that must pass and strings that must fail; the workspace tests
//! apply them to every file below the root found from `CARGO_MANIFEST_DIR`.

use std::path::{Path, PathBuf};

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap_or(manifest).to_path_buf();
    assert!(
        root.join("Cargo.toml").is_file() && root.join("crates").is_dir(),
        "{} is not the workspace root",
        root.display()
    );
    root
}

/// Every file below `dir` (relative to `root`), skipping build output and
/// hidden folders, sorted.
fn files_below(root: &Path, dir: &str) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &root.join(dir), &mut out);
    out.sort();
    out
}

/// The Rust sources the rules apply to.
fn rust_sources(root: &Path) -> Vec<(PathBuf, String)> {
    ["crates", "bins", "xtask", "fuzz/fuzz_targets"]
        .iter()
        .flat_map(|dir| files_below(root, dir))
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let text = std::fs::read_to_string(root.join(&p))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, text)
        })
        .collect()
}

/// `path` with `/` separators, for messages and allowlists.
fn slash(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

// ---------------------------------------------------------------------------
// Checkers: pure functions over text.

/// Whether the first non-blank line is a `//!` module doc line.
fn starts_with_module_doc(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with("//!"))
}

/// The code of a line: without a trailing `//` comment and with the contents
/// of one-line string literals blanked, so that words inside strings and
/// comments are not mistaken for code.
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// 1-based lines with an `unsafe` block, impl or extern block that no
/// `// SAFETY:` comment explains: on the line itself or in the comment lines
/// (and attributes) directly above it.
fn unsafe_without_safety_comment(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let code = code_of(line);
        let is_unsafe = ["unsafe {", "unsafe impl", "unsafe extern"]
            .iter()
            .any(|w| code.contains(w));
        if !is_unsafe || line.contains("SAFETY:") {
            continue;
        }
        let explained = lines[..index]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("//") || l.starts_with("#["))
            .any(|l| l.contains("SAFETY:"));
        if !explained {
            bad.push(index + 1);
        }
    }
    bad
}

/// 1-based lines with an `#[ignore]` (or `cfg_attr(..., ignore)`) that gives
/// no reason string.
fn ignores_without_reason(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code: String = code_of(line).split_whitespace().collect();
            code.contains("#[ignore]") || code.contains(",ignore)")
        })
        .map(|(index, _)| index + 1)
        .collect()
}

/// The lints the wire crates deny outside tests.
const PANIC_LINTS: [&str; 4] = [
    "clippy::unwrap_used",
    "clippy::expect_used",
    "clippy::panic",
    "clippy::indexing_slicing",
];

/// The [`PANIC_LINTS`] that `lib_rs` does not deny in a
/// `#![cfg_attr(not(test), deny(...))]` crate attribute.
fn missing_panic_lints(lib_rs: &str) -> Vec<&'static str> {
    let code: String = lib_rs
        .lines()
        .map(code_of)
        .collect::<String>()
        .split_whitespace()
        .collect();
    let attribute = code
        .find("#![cfg_attr(not(test),deny(")
        .and_then(|start| {
            let rest = &code[start..];
            rest.find(")]").map(|end| &rest[..end])
        })
        .unwrap_or_default();
    PANIC_LINTS
        .into_iter()
        .filter(|lint| !attribute.split(['(', ',', ')']).any(|item| item == *lint))
        .collect()
}

/// Longest a source file may be.
const MAX_LINES: usize = 1000;

/// Files allowed to be longer than [`MAX_LINES`], each with the reason.
/// Keep it small: split a file rather than add it here.
const LONG_FILE_ALLOWLIST: &[(&str, &str)] = &[
    (
        "crates/mojo-legacy-node/src/ports/node.rs",
        "the ports Node state machine, one `impl Node` whose event handlers share private helpers; \
         other branches are adding to this crate now, so the split into per-event modules waits \
         for them to land",
    ),
    (
        "crates/mojo-legacy-node/src/ports/tests.rs",
        "the unit tests of ports::node, kept next to it; split together with node.rs",
    ),
];

/// Files exempt from the `//!` rule, each with the reason.
const MODULE_DOC_EXEMPT: &[(&str, &str)] = &[(
    "crates/mojo-platform-channel/src/target_guard.rs",
    "spliced with include! into lib.rs and, alone, into a no_core crate by tests/target_guard.rs, \
     where an inner doc line is not allowed; it opens with a plain comment saying what it is for",
)];

/// Top-level folders of the repository: a path starting with one is checked
/// from the root.
const TOP_LEVEL: [&str; 6] = ["crates/", "bins/", "xtask/", "fuzz/", "docs/", ".ci/"];

/// Folders of a crate: a path starting with one is relative to some crate.
const CRATE_LEVEL: [&str; 4] = ["src/", "tests/", "benches/", "examples/"];

/// Repository paths that a Markdown or `//!` text mentions: tokens starting
/// with a [`TOP_LEVEL`] or [`CRATE_LEVEL`] folder, or bare `*.rs` names, minus
/// placeholders (`<target>`, `*`) and `::item` suffixes. Prose like
/// `parser/encoder` and paths outside the repository (`../shared`,
/// `shared/spec/...`, Chromium's `mojo/core/...`) are not candidates.
fn mentioned_paths(text: &str) -> Vec<String> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_./-<>*{}:".contains(c);
    let mut out = Vec::new();
    for raw in text.split(|c: char| !is_path_char(c)) {
        let token = raw.split("::").next().unwrap_or_default();
        let token = token
            .trim_end_matches(['.', ',', ':'])
            .trim_start_matches(':');
        let candidate = TOP_LEVEL
            .iter()
            .chain(&CRATE_LEVEL)
            .any(|d| token.starts_with(d))
            || (!token.contains('/') && token.len() > 3 && token.ends_with(".rs"));
        let placeholder = token.contains(['<', '>', '*', '{', '}', ':']) || token.contains("...");
        if candidate && !placeholder {
            out.push(token.to_string());
        }
    }
    out
}

/// Whether a mentioned path names a repository file or folder: from the
/// root when it starts with a top-level folder, else (relative to a crate,
/// like `src/queue.rs` or `ports/sim.rs`, or a bare `queue.rs`) as the
/// trailing part of some repository path.
fn path_exists(mentioned: &str, root: &Path, all_paths: &[String]) -> bool {
    let trimmed = mentioned.trim_end_matches('/');
    if TOP_LEVEL.iter().any(|t| mentioned.starts_with(t)) {
        return root.join(trimmed).exists();
    }
    all_paths.iter().any(|p| {
        p == trimmed
            || p.ends_with(&format!("/{trimmed}"))
            || p.contains(&format!("/{trimmed}/"))
            || p.starts_with(&format!("{trimmed}/"))
    })
}

/// The `[[bin]]` targets of a cargo-fuzz manifest: (name, path) in order.
fn fuzz_bins(manifest: &str) -> Vec<(String, String)> {
    let value = |line: &str, key: &str| -> Option<String> {
        let rest = line
            .trim()
            .strip_prefix(key)?
            .trim_start()
            .strip_prefix('=')?;
        Some(rest.trim().trim_matches('"').to_string())
    };
    let mut bins = Vec::new();
    let mut current: Option<(Option<String>, Option<String>)> = None;
    for line in manifest.lines().chain(["[end]"]) {
        if line.trim_start().starts_with('[') {
            if let Some((Some(name), Some(path))) = current.take() {
                bins.push((name, path));
            }
            current = (line.trim() == "[[bin]]").then_some((None, None));
        } else if let Some((name, path)) = current.as_mut() {
            if let Some(v) = value(line, "name") {
                *name = Some(v);
            } else if let Some(v) = value(line, "path") {
                *path = Some(v);
            }
        }
    }
    bins
}

/// The targets (file stems of `fuzz/fuzz_targets/*.rs`) that no `[[bin]]`
/// of `bins` builds from their own file.
fn unregistered_fuzz_targets(targets: &[String], bins: &[(String, String)]) -> Vec<String> {
    targets
        .iter()
        .filter(|t| {
            !bins
                .iter()
                .any(|(name, path)| name == *t && *path == format!("fuzz_targets/{t}.rs"))
        })
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------
// The rules, over the workspace.

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let root = workspace_root();
    let sources = rust_sources(&root);
    assert!(sources.len() > 100, "only {} sources found", sources.len());
    let missing: Vec<String> = sources
        .iter()
        .map(|(path, text)| (slash(path), text))
        .filter(|(path, _)| !MODULE_DOC_EXEMPT.iter().any(|(p, _)| p == path))
        .filter(|(_, text)| !starts_with_module_doc(text))
        .map(|(path, _)| path)
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` line saying what they are for:\n{}",
        missing.join("\n")
    );
    for (path, _) in MODULE_DOC_EXEMPT {
        assert!(root.join(path).is_file(), "exempt file {path} is gone");
    }
}

#[test]
fn wire_crates_deny_panics_outside_tests() {
    let root = workspace_root();
    for krate in ["mojo-legacy-wire", "ipcz-wire", "mojo-wire-kit"] {
        let path = root.join("crates").join(krate).join("src/lib.rs");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{krate}: {e}"));
        let missing = missing_panic_lints(&text);
        assert!(
            missing.is_empty(),
            "{krate}: lib.rs lacks #![cfg_attr(not(test), deny({}))]",
            missing.join(", ")
        );
    }
}

/// Fails with `what` and the `path:line` of every source line `check` flags.
fn assert_no_line_flagged(check: fn(&str) -> Vec<usize>, what: &str) {
    let flagged: Vec<String> = rust_sources(&workspace_root())
        .iter()
        .flat_map(|(path, text)| {
            check(text)
                .into_iter()
                .map(move |line| format!("{}:{line}", slash(path)))
        })
        .collect();
    assert!(flagged.is_empty(), "{what}:\n{}", flagged.join("\n"));
}

#[test]
fn every_unsafe_block_has_a_safety_comment() {
    assert_no_line_flagged(
        unsafe_without_safety_comment,
        "`unsafe` without a `// SAFETY:` comment",
    );
}

#[test]
fn every_ignore_has_a_reason() {
    assert_no_line_flagged(
        ignores_without_reason,
        "#[ignore] without a reason (write #[ignore = \"why\"])",
    );
}

#[test]
fn no_source_file_is_over_1000_lines() {
    let root = workspace_root();
    let mut bad = Vec::new();
    for (path, text) in rust_sources(&root) {
        let path = slash(&path);
        let lines = text.lines().count();
        let allowed = LONG_FILE_ALLOWLIST.iter().any(|(p, _)| *p == path);
        if lines > MAX_LINES && !allowed {
            bad.push(format!("{path}: {lines} lines"));
        }
    }
    assert!(
        bad.is_empty(),
        "files over {MAX_LINES} lines (split them into modules):\n{}",
        bad.join("\n")
    );
    // An entry whose file shrank or went away is removed, so the list stays honest.
    for (path, reason) in LONG_FILE_ALLOWLIST {
        assert!(!reason.is_empty());
        let text = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        assert!(
            text.lines().count() > MAX_LINES,
            "{path} is allowlisted but no longer over {MAX_LINES} lines: drop the entry"
        );
    }
}

#[test]
fn docs_mention_only_existing_files() {
    let root = workspace_root();
    let all_paths: Vec<String> = ["crates", "bins", "xtask", "fuzz", "docs", ".ci"]
        .iter()
        .flat_map(|dir| files_below(&root, dir))
        .map(|p| slash(&p))
        .chain(std::iter::once(".ci/run".to_string()))
        .collect();
    let mut docs: Vec<(String, String)> = Vec::new();
    let mut read = |path: String| {
        let text =
            std::fs::read_to_string(root.join(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        docs.push((path, text));
    };
    read("README.md".into());
    for path in files_below(&root, "docs") {
        if path.extension().is_some_and(|e| e == "md") {
            read(slash(&path));
        }
    }
    // Crate front pages: the `//!` text of each crate root.
    for path in all_paths.iter().filter(|p| {
        p.ends_with("/src/lib.rs") || (p.ends_with("/src/main.rs") && !p.starts_with("crates/"))
    }) {
        let text = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        let front: String = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("//!"))
            .map(|l| format!("{l}\n"))
            .collect();
        docs.push((path.clone(), front));
    }
    let mut bad = Vec::new();
    let mut checked = 0;
    for (doc, text) in &docs {
        for mentioned in mentioned_paths(text) {
            checked += 1;
            if !path_exists(&mentioned, &root, &all_paths) {
                bad.push(format!("{doc}: `{mentioned}`"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "docs mention files that do not exist:\n{}",
        bad.join("\n")
    );
    assert!(checked > 30, "only {checked} paths found in the docs");
}

/// Every fuzz target is built by `fuzz/Cargo.toml` and has a seed corpus;
/// that the corpus is what `cargo xtask corpus` writes (and that it writes
/// one for every target) is `cargo xtask corpus --check`'s part, which
/// needs the vectors.
#[test]
fn every_fuzz_target_is_registered_and_has_a_corpus() {
    let root = workspace_root();
    let targets: Vec<String> = files_below(&root, "fuzz/fuzz_targets")
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    assert!(
        targets.len() > 10,
        "only {} fuzz targets found",
        targets.len()
    );
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    let bins = fuzz_bins(&manifest);
    let unregistered = unregistered_fuzz_targets(&targets, &bins);
    assert!(
        unregistered.is_empty(),
        "fuzz targets without a [[bin]] in fuzz/Cargo.toml: {}",
        unregistered.join(", ")
    );
    for (name, path) in &bins {
        assert!(
            root.join("fuzz").join(path).is_file(),
            "[[bin]] {name}: {path} is gone"
        );
    }
    let without_corpus: Vec<&String> = targets
        .iter()
        .filter(|t| {
            std::fs::read_dir(root.join("fuzz/corpus").join(t.as_str()))
                .map_or(true, |mut entries| entries.next().is_none())
        })
        .collect();
    assert!(
        without_corpus.is_empty(),
        "fuzz targets without seeds in fuzz/corpus/<target>/ (add them to `cargo xtask corpus`): {without_corpus:?}"
    );
}

// ---------------------------------------------------------------------------
// The checkers can fail.

#[test]
fn module_doc_checker() {
    assert!(starts_with_module_doc("//! What it is for.\nfn f() {}\n"));
    assert!(starts_with_module_doc("\n//! After a blank line.\n"));
    assert!(!starts_with_module_doc(
        "// A plain comment.\n//! Too late.\n"
    ));
    assert!(!starts_with_module_doc("/// An item doc.\nfn f() {}\n"));
    assert!(!starts_with_module_doc(""));
}

#[test]
fn safety_comment_checker() {
    let explained = "fn f() {\n    // SAFETY: the pointer is valid.\n    unsafe { g() }\n}\n";
    assert_eq!(
        unsafe_without_safety_comment(explained),
        Vec::<usize>::new()
    );
    let multi = "// SAFETY: one\n// more line\n#[allow(unused)]\nunsafe impl Send for X {}\n";
    assert_eq!(unsafe_without_safety_comment(multi), Vec::<usize>::new());
    let same_line = "let x = unsafe { g() }; // SAFETY: fine\n";
    assert_eq!(
        unsafe_without_safety_comment(same_line),
        Vec::<usize>::new()
    );
    let bare = "fn f() {\n    let x = 1;\n    unsafe { g() }\n}\n";
    assert_eq!(unsafe_without_safety_comment(bare), vec![3]);
    let separated = "// SAFETY: about something else\nlet y = 2;\nunsafe impl Sync for X {}\n";
    assert_eq!(unsafe_without_safety_comment(separated), vec![3]);
    // Words in strings and comments are not code.
    let quoted = "let s = \"unsafe { }\"; // unsafe { }\n";
    assert_eq!(unsafe_without_safety_comment(quoted), Vec::<usize>::new());
}

#[test]
fn ignore_checker() {
    let with_reason = "#[test]\n#[ignore = \"slow\"]\nfn t() {}\n";
    assert_eq!(ignores_without_reason(with_reason), Vec::<usize>::new());
    let cfg_reason = "#[cfg_attr(x, ignore = \"no vectors\")]\n";
    assert_eq!(ignores_without_reason(cfg_reason), Vec::<usize>::new());
    assert_eq!(
        ignores_without_reason("#[test]\n#[ignore]\nfn t() {}\n"),
        vec![2]
    );
    assert_eq!(ignores_without_reason("#[cfg_attr(x, ignore)]\n"), vec![1]);
    assert_eq!(
        ignores_without_reason("let s = \"#[ignore]\";\n"),
        Vec::<usize>::new()
    );
}

#[test]
fn panic_lint_checker() {
    let full = "//! Doc.\n#![cfg_attr(\n    not(test),\n    deny(\n        clippy::unwrap_used,\n        \
                clippy::expect_used,\n        clippy::panic,\n        clippy::indexing_slicing\n    )\n)]\n";
    assert_eq!(missing_panic_lints(full), Vec::<&str>::new());
    let partial = "#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]\n";
    assert_eq!(
        missing_panic_lints(partial),
        vec!["clippy::expect_used", "clippy::indexing_slicing"]
    );
    let warned = "#![cfg_attr(not(test), warn(clippy::unwrap_used))]\n";
    assert_eq!(missing_panic_lints(warned).len(), 4);
    let commented = "// #![cfg_attr(not(test), deny(clippy::unwrap_used))]\n";
    assert_eq!(missing_panic_lints(commented).len(), 4);
}

#[test]
fn doc_path_checker() {
    let text = "See `crates/a/src/lib.rs`, `docs/X.md`. The queue (`queue.rs`) and \
                `fuzz/corpus/<target>/`, `../shared/vectors`, https://example.invalid/x/y, \
                `mojo_wire_kit::Reader`, `tests/t.rs::a_test`, the parser/encoder, \
                mojo/core/ipcz_driver and shared/spec/ipcz.md; run `.ci/run`.";
    assert_eq!(
        mentioned_paths(text),
        [
            "crates/a/src/lib.rs",
            "docs/X.md",
            "queue.rs",
            "tests/t.rs",
            ".ci/run"
        ]
    );
    let root = Path::new("/nonexistent-root");
    let all = [
        "crates/a/src/queue.rs".to_string(),
        "crates/a/tests/t.rs".into(),
    ];
    assert!(path_exists("queue.rs", root, &all));
    assert!(path_exists("tests/t.rs", root, &all));
    assert!(path_exists("src/", root, &all));
    assert!(!path_exists("gone.rs", root, &all));
    assert!(!path_exists("src/gone.rs", root, &all));
    assert!(
        !path_exists("crates/a/src/queue.rs", root, &all),
        "top-level paths are checked on disk"
    );
}

#[test]
fn fuzz_manifest_checker() {
    let manifest = "[package]\nname = \"fuzz\"\n\n[[bin]]\nname = \"a\"\npath = \"fuzz_targets/a.rs\"\n\
                    test = false\n\n[[bin]]\nname = \"b\"\npath = \"fuzz_targets/other.rs\"\n\n\
                    [profile.release]\ndebug = 1\n";
    let bins = fuzz_bins(manifest);
    assert_eq!(
        bins,
        [
            ("a".to_string(), "fuzz_targets/a.rs".to_string()),
            ("b".to_string(), "fuzz_targets/other.rs".to_string())
        ]
    );
    let targets = ["a".to_string(), "b".to_string(), "c".to_string()];
    assert_eq!(unregistered_fuzz_targets(&targets, &bins), ["b", "c"]);
    assert_eq!(fuzz_bins("[package]\nname = \"x\"\n"), []);
}
