//! The view, `--summary` and `--pipes` of a few small public vectors, both protocols
//! and both legacy profiles, against checked-in golden files under
//! `tests/golden/`. `MOJO_DUMP_BLESS=1` rewrites them after a reviewed change.

use std::path::PathBuf;
use std::process::Command;

use mojo_transcript::testing::vectors;

/// (golden file, mojo-dump arguments, vector files).
const CASES: &[(&str, &[&str], &[&str])] = &[
    (
        "connect_only-cros-legacy.txt",
        &["--protocol=legacy"],
        &["cros/connect_only-proxy_client.jsonl"],
    ),
    (
        "connect_only-desktop-legacy.txt",
        &["--protocol=legacy", "--legacy-profile=desktop"],
        &["desktop/connect_only-proxy_client.jsonl"],
    ),
    (
        "shmem-cros-ipcz-v.txt",
        &["-v"],
        &["cros/shmem-host_proxy.jsonl"],
    ),
    (
        "summary-connect_only-shmem.txt",
        &["--summary"],
        &[
            "cros/connect_only-proxy_client.jsonl",
            "desktop/connect_only-proxy_client.jsonl",
            "cros/shmem-host_proxy.jsonl",
            "cros/shmem-proxy_client.jsonl",
        ],
    ),
    (
        "pipes-connect_only-cros.txt",
        &["--pipes"],
        &[
            "cros/connect_only-host_proxy.jsonl",
            "cros/connect_only-proxy_client.jsonl",
        ],
    ),
    (
        "pipes-subpipe-cros.txt",
        &["--pipes"],
        &[
            "cros/subpipe-host_proxy.jsonl",
            "cros/subpipe-proxy_client.jsonl",
        ],
    ),
    (
        "pipes-subpipe-desktop-legacy-v.txt",
        &["--pipes", "-v"],
        &["desktop/subpipe-proxy_client.jsonl"],
    ),
];

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn run(args: &[&str], files: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mojo-dump"))
        .current_dir(vectors())
        .args(args)
        .args(files)
        .output()
        .expect("run mojo-dump");
    assert!(
        output.status.success(),
        "{args:?} {files:?}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn the_view_matches_the_golden_files() {
    let bless = std::env::var_os("MOJO_DUMP_BLESS").is_some();
    for (name, args, files) in CASES {
        let got = run(args, files);
        let path = golden(name);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (MOJO_DUMP_BLESS=1 writes it)", path.display()));
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(g, w)| g != w)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            panic!(
                "{name}: differs from the golden file at line {}:\n got: {:?}\nwant: {:?}",
                line + 1,
                got.lines().nth(line),
                want.lines().nth(line)
            );
        }
    }
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn the_view_is_in_time_order_across_streams() {
    let out = run(
        &["--protocol=ipcz"],
        &["cros/pipe_roundtrip-host_proxy.jsonl"],
    );
    let mut last = 0.0;
    let mut directions = Vec::new();
    for line in out.lines().filter(|l| l.starts_with(' ')) {
        let time: f64 = line.split_whitespace().next().unwrap().parse().unwrap();
        assert!(time >= last, "{line} after {last}");
        last = time;
        directions.push(line.split_whitespace().nth(2).unwrap().to_string());
    }
    // Both directions appear, and interleave (not one stream after the other).
    let changes = directions.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(changes > 2, "{directions:?}");
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn two_files_of_one_session_share_aliases() {
    // One alias table per run, across protocols: the SharedBuffer the host
    // sends the proxy over ipcz is the one the proxy sends the client.
    let out = run(
        &["-v"],
        &[
            "cros/shmem-host_proxy.jsonl",
            "cros/shmem-proxy_client.jsonl",
        ],
    );
    let halves: Vec<&str> = out.split("== ").filter(|s| !s.is_empty()).collect();
    assert_eq!(halves.len(), 2);
    assert!(halves[0].contains("(detected: ipcz)"), "{}", halves[0]);
    assert!(halves[1].contains("(detected: legacy, libchrome profile)"));
    let writable = |s: &str| -> String {
        let line = s
            .lines()
            .find(|l| l.contains("SharedBuffer(") && l.to_lowercase().contains("writable"))
            .unwrap_or_else(|| panic!("no writable SharedBuffer in {s}"));
        let at = line.find("guid=").unwrap() + 5;
        line[at..].split([',', ')']).next().unwrap().to_string()
    };
    let alias = writable(halves[0]);
    assert!(alias.starts_with('B'), "{alias}");
    assert_eq!(writable(halves[1]), alias);
    // Introduced once, in the first file's detail block.
    assert_eq!(out.matches(&format!("{alias}=")).count(), 1, "{out}");
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn a_wrong_profile_is_named_and_inapplicable_flags_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_mojo-dump"))
        .current_dir(vectors())
        .args([
            "--protocol=legacy",
            "desktop/connect_only-proxy_client.jsonl",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("the bytes read as legacy, desktop profile"),
        "{stdout}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_mojo-dump"))
        .current_dir(vectors())
        .args([
            "--protocol=ipcz",
            "--legacy-profile=desktop",
            "cros/shmem-host_proxy.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--legacy-profile"));
    assert!(output.stdout.is_empty());
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn json_has_one_object_per_shown_frame_and_filters_apply() {
    let all = run(&["--json"], &["cros/shmem-proxy_client.jsonl"]);
    let objects: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(objects.len() > 10);
    assert!(
        objects
            .iter()
            .all(|o| o["failure"].is_null() && o["t"].is_f64())
    );
    let users = run(
        &["--json", "--type=usermessage", "--dir=a2b", "--channel=1"],
        &["cros/shmem-proxy_client.jsonl"],
    );
    let users: Vec<serde_json::Value> = users
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want = objects
        .iter()
        .filter(|o| o["type"] == "UserMessage" && o["dir"] == "a2b" && o["chan"] == 1)
        .count();
    assert!(want > 0);
    assert_eq!(users.len(), want);
    // A full name finds the same frames as its alias.
    let buffer = users
        .iter()
        .find_map(|o| {
            let text = o["text"].as_str()?;
            let at = text.find("guid=")? + 5;
            Some(text[at..].split([',', ')']).next()?.to_string())
        })
        .expect("a SharedBuffer");
    let by_alias = run(
        &["--json", &format!("--name={buffer}")],
        &["cros/shmem-proxy_client.jsonl"],
    );
    let full = serde_json::from_str::<serde_json::Value>(by_alias.lines().next().unwrap()).unwrap()
        ["full"]
        .as_str()
        .unwrap()
        .to_string();
    let at = full.find("guid=").unwrap() + 5;
    let guid = full[at..].split([',', ')']).next().unwrap();
    let by_full = run(
        &["--json", &format!("--name={guid}")],
        &["cros/shmem-proxy_client.jsonl"],
    );
    assert_eq!(by_alias, by_full);
    assert_eq!(by_alias.lines().count(), 1);
}
