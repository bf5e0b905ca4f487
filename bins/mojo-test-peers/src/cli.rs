//! Both programs' command lines (test-peers.md §1), read the way the
//! reference peers read them: with Chromium's `base::CommandLine`.
//!
//! Chromium's rules, kept: every argument is trimmed of ASCII whitespace; a
//! switch is `--name=value`, `--name` or the same with one `-`; the value
//! runs from the first `=`; a bare `--` ends switch parsing; **unknown
//! switches and positional arguments are ignored**; a repeated switch takes
//! its last value; a non-ASCII value reads as empty (`GetSwitchValueASCII`).
//! Numbers the reference reads with `base::StringToInt` into a default
//! (`--timeout` and the other durations) are read best-effort as it does
//! (`--timeout=abc` is 0, `--timeout=5s` is 5); numbers it `CHECK`s
//! (`--fd`, `--num-attachments`) must be perfect, or we exit with status 2
//! and one line (where the reference crashes).
//!
//! Ours, not the reference's: `--direct` must be `ipcz` or `legacy`, and
//! `--legacy-profile` must be `libchrome` or `desktop` (the reference
//! ignores both kinds of mistake). `--relay=PATH` (the benchmark floor of
//! `cargo xtask bench`) launches PATH in the proxy's place, with the proxy's
//! command line, and the client with `--ipcz`: a relay that only moves bytes
//! and fds between two peers of one protocol; it cannot be combined with
//! `--direct` or `--mode=inherit`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// A command line as `base::CommandLine` sees it.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    program: String,
    switches: HashMap<String, String>,
    order: Vec<String>,
}

impl CommandLine {
    /// Parses `argv` (program name first).
    pub fn parse<I, A>(argv: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<std::ffi::OsString>,
    {
        let mut it = argv
            .into_iter()
            .map(|a| a.into().to_string_lossy().into_owned());
        let mut cl = Self {
            program: it.next().unwrap_or_default(),
            ..Self::default()
        };
        let mut parse_switches = true;
        for arg in it {
            let arg = arg.trim_matches(|c: char| c.is_ascii_whitespace());
            if arg.is_empty() {
                continue;
            }
            if parse_switches && arg == "--" {
                parse_switches = false;
                continue;
            }
            if !parse_switches {
                continue;
            }
            let prefix = if arg.starts_with("--") {
                2
            } else if arg.starts_with('-') {
                1
            } else {
                0
            };
            if prefix == 0 || prefix == arg.len() {
                continue; // a positional argument: ignored
            }
            let body = &arg[prefix..];
            let (name, value) = body.split_once('=').unwrap_or((body, ""));
            cl.order.push(name.to_string());
            cl.switches.insert(name.to_string(), value.to_string());
        }
        cl
    }

    /// The program (`argv[0]`).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// `HasSwitch`.
    pub fn has(&self, name: &str) -> bool {
        self.switches.contains_key(name)
    }

    /// `GetSwitchValueASCII`: the value, "" if absent or not ASCII.
    pub fn value(&self, name: &str) -> &str {
        match self.switches.get(name) {
            Some(v) if v.is_ascii() => v,
            _ => "",
        }
    }

    /// Switch names given but not in `known`, in order (for diagnostics).
    pub fn unknown(&self, known: &[&str]) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.order
            .iter()
            .filter(|n| !known.contains(&n.as_str()) && seen.insert(n.as_str()))
            .cloned()
            .collect()
    }
}

/// `base::StringToInt`'s best effort: leading whitespace skipped, an
/// optional sign, the leading digits (saturating), 0 if there are none.
/// Returns the value and whether the conversion was perfect.
pub fn string_to_int(s: &str) -> (i32, bool) {
    let trimmed = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let mut perfect = trimmed.len() == s.len();
    let (neg, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let n_digits = digits.bytes().take_while(u8::is_ascii_digit).count();
    if n_digits == 0 {
        return (0, false);
    }
    if n_digits != digits.len() {
        perfect = false;
    }
    let mut v: i64 = 0;
    for b in digits[..n_digits].bytes() {
        v = v * 10 + i64::from(b - b'0');
        if v > i64::from(i32::MAX) + 1 {
            perfect = false;
            break;
        }
    }
    let v = if neg { -v } else { v };
    match i32::try_from(v) {
        Ok(x) => (x, perfect),
        Err(_) => (if neg { i32::MIN } else { i32::MAX }, false),
    }
}

/// `base::StringToUint64`, demanding a perfect conversion (the reference
/// `CHECK`s it): digits only, an optional leading `+`.
pub fn string_to_u64_exact(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A bad command line: the message of the one stderr line (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The legacy wire profile (`--legacy-profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyProfile {
    /// `libchrome` (default): Chrome OS's libchrome wire.
    Libchrome,
    /// `desktop`: Chromium desktop's legacy wire.
    Desktop,
}

impl LegacyProfile {
    fn parse(cl: &CommandLine) -> Result<Self, UsageError> {
        match cl.value("legacy-profile") {
            _ if !cl.has("legacy-profile") => Ok(Self::Libchrome),
            "libchrome" => Ok(Self::Libchrome),
            "desktop" => Ok(Self::Desktop),
            other => Err(UsageError(format!(
                "--legacy-profile={other}: expected libchrome or desktop"
            ))),
        }
    }

    /// The `profile` of the host's `config` line ("cros" is what the
    /// reference prints when built with the Chrome OS wire).
    pub fn config_name(self) -> &'static str {
        match self {
            Self::Libchrome => "cros",
            Self::Desktop => "desktop",
        }
    }
}

/// How the invitation's pipes are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachments {
    /// One pipe with this name (default `pipe!`).
    Named(String),
    /// K pipes named 0..K-1 (8 little-endian bytes each).
    Numeric(u64),
}

impl Attachments {
    /// The names as bytes, in order.
    pub fn names(&self) -> Vec<Vec<u8>> {
        match self {
            Self::Named(n) => vec![n.as_bytes().to_vec()],
            Self::Numeric(k) => (0..*k).map(|i| i.to_le_bytes().to_vec()).collect(),
        }
    }

    /// The option passed on to the proxy and the client.
    pub fn arg(&self) -> String {
        match self {
            Self::Named(n) => format!("--attachment-name={n}"),
            Self::Numeric(k) => format!("--num-attachments={k}"),
        }
    }
}

/// Default attachment name.
pub const DEFAULT_ATTACHMENT_NAME: &str = "pipe!";

/// `mojo-test-client`'s command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientArgs {
    /// `--fd=N`: the inherited socket.
    pub fd: i32,
    /// The pipes to extract (`--num-attachments` wins, as in the reference;
    /// `--num-attachments=0` means none).
    pub attachments: Attachments,
    /// `--ipcz`: accept as a Mojo+ipcz non-broker instead of legacy core.
    pub ipcz: bool,
    /// `--legacy-profile`.
    pub legacy_profile: LegacyProfile,
    /// `--verbose`.
    pub verbose: bool,
}

/// Switches `mojo-test-client` reads.
pub const CLIENT_SWITCHES: &[&str] = &[
    "fd",
    "attachment-name",
    "num-attachments",
    "ipcz",
    "legacy-profile",
    "verbose",
];

impl ClientArgs {
    /// Parses the client's command line.
    pub fn parse(cl: &CommandLine) -> Result<Self, UsageError> {
        let (fd, perfect) = string_to_int(cl.value("fd"));
        if !perfect || fd < 0 {
            return Err(UsageError(format!(
                "--fd={}: expected an inherited fd number",
                cl.value("fd")
            )));
        }
        let attachments =
            if cl.has("num-attachments") {
                let v = cl.value("num-attachments");
                Attachments::Numeric(string_to_u64_exact(v).ok_or_else(|| {
                    UsageError(format!("--num-attachments={v}: expected a number"))
                })?)
            } else if cl.has("attachment-name") {
                Attachments::Named(cl.value("attachment-name").to_string())
            } else {
                Attachments::Named(DEFAULT_ATTACHMENT_NAME.to_string())
            };
        Ok(Self {
            fd,
            attachments,
            ipcz: cl.has("ipcz"),
            legacy_profile: LegacyProfile::parse(cl)?,
            verbose: cl.has("verbose"),
        })
    }
}

/// `--direct`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// No `--direct`: through the proxy.
    No,
    /// `--direct=ipcz`.
    Ipcz,
    /// `--direct=legacy`.
    Legacy,
}

impl Direct {
    /// The `direct` of the `config` line.
    pub fn name(self) -> &'static str {
        match self {
            Self::No => "",
            Self::Ipcz => "ipcz",
            Self::Legacy => "legacy",
        }
    }
}

/// `mojo-test-host --role=broker --fd=N` (the `--mode=inherit` broker copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerArgs {
    /// The socket to the host.
    pub fd: i32,
}

/// `mojo-test-host`'s command line.
#[derive(Debug, Clone, PartialEq)]
pub struct HostArgs {
    /// `argv[0]` (the broker copy runs it again).
    pub program: String,
    /// `--proxy` (default `mojo_proxy` next to the host).
    pub proxy: String,
    /// `--client` (default `mojo-test-client` next to the host).
    pub client: String,
    /// `--relay=PATH`: PATH runs in the proxy's place and the client speaks
    /// ipcz (no protocol translation on the way).
    pub relay: Option<String>,
    /// `--direct`.
    pub direct: Direct,
    /// `--mode=inherit`.
    pub inherit: bool,
    /// The attachments (`--num-attachments=K` with K > 0, else the name).
    pub attachments: Attachments,
    /// `--scenarios` (default [`crate::host::DEFAULT_SCENARIOS`]).
    pub scenarios: BTreeSet<String>,
    /// `--quick`.
    pub quick: bool,
    /// `--vector`: the small counts of the recorded transcripts.
    pub vector: bool,
    /// `--label` (default `proxy`, `proxy_inherit` or `direct_<kind>`).
    pub label: String,
    /// `--proxy-extra-args`, split on spaces.
    pub proxy_extra_args: Vec<String>,
    /// `--timeout` (default 120; 0 or less: no watchdog, as `alarm`).
    pub timeout: Option<Duration>,
    /// `--handle-timeout` (default 20).
    pub handle_timeout: Duration,
    /// `--datapipe-timeout` (the reference's, default 10).
    pub datapipe_timeout: Duration,
    /// `--leak-iters` (the reference's, not the spec's: `leak`'s measured
    /// round trips, default [`crate::host::DEFAULT_LEAK_ITERS`]; read as
    /// `base::StringToInt` reads it).
    pub leak_iters: i32,
    /// `--shutdown-wait` (the reference's, default 15).
    pub shutdown_wait: Duration,
    /// `--legacy-profile`.
    pub legacy_profile: LegacyProfile,
    /// `--client-verbose`.
    pub client_verbose: bool,
    /// `--stop-after-each-line` (ours, not the reference's): after printing
    /// each result line the host stops itself with SIGSTOP until someone
    /// sends SIGCONT, so a benchmark harness can sample the other processes
    /// exactly between two scenarios (`cargo xtask bench`).
    pub stop_after_each_line: bool,
    /// `--scale-pipes=N` (ours, not the reference's): the pipes the `scale`
    /// scenario (also ours) opens; default [`crate::host::DEFAULT_SCALE_PIPES`].
    pub scale_pipes: u32,
}

/// Switches `mojo-test-host` reads.
pub const HOST_SWITCHES: &[&str] = &[
    "role",
    "fd",
    "proxy",
    "client",
    "relay",
    "direct",
    "mode",
    "attachment-name",
    "num-attachments",
    "scenarios",
    "quick",
    "vector",
    "label",
    "proxy-extra-args",
    "timeout",
    "handle-timeout",
    "datapipe-timeout",
    "leak-iters",
    "shutdown-wait",
    "legacy-profile",
    "client-verbose",
    "stop-after-each-line",
    "scale-pipes",
];

/// Default proxy file name (next to the host).
pub const DEFAULT_PROXY_NAME: &str = "mojo_proxy";
/// Default client file name (next to the host).
pub const DEFAULT_CLIENT_NAME: &str = "mojo-test-client";

/// What `mojo-test-host` was asked to be.
#[derive(Debug, Clone, PartialEq)]
pub enum HostCommand {
    /// The test host.
    Host(Box<HostArgs>),
    /// `--role=broker`.
    Broker(BrokerArgs),
}

/// An integer switch read as `base::StringToInt` reads it (best effort),
/// or `default` without the switch.
fn int_switch(cl: &CommandLine, name: &str, default: i32) -> i32 {
    if cl.has(name) {
        string_to_int(cl.value(name)).0
    } else {
        default
    }
}

fn non_negative(secs: i32) -> Duration {
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn next_to(program: &str, name: &str) -> String {
    let dir = Path::new(program)
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    let dir = dir.map_or_else(|| ".".to_string(), |d| d.to_string_lossy().into_owned());
    format!("{}/{name}", dir.trim_end_matches('/'))
}

impl HostCommand {
    /// Parses the host's command line.
    pub fn parse(cl: &CommandLine) -> Result<Self, UsageError> {
        if cl.value("role") == "broker" {
            let (fd, perfect) = string_to_int(cl.value("fd"));
            if !perfect || fd < 0 {
                return Err(UsageError(format!(
                    "--fd={}: expected an inherited fd number",
                    cl.value("fd")
                )));
            }
            return Ok(Self::Broker(BrokerArgs { fd }));
        }
        let inherit = cl.value("mode") == "inherit";
        let direct = match cl.value("direct") {
            "" => Direct::No,
            "ipcz" => Direct::Ipcz,
            "legacy" => Direct::Legacy,
            other => {
                return Err(UsageError(format!(
                    "--direct={other}: expected ipcz or legacy"
                )));
            }
        };
        if inherit && direct != Direct::No {
            // A host that only shares its broker needs a peer that inherits
            // it, which only a proxy does (`--inherit-ipcz-broker`): the test
            // client has no such flag, so the pair could never connect.
            return Err(UsageError(
                "--mode=inherit needs a proxy: it cannot be combined with --direct".into(),
            ));
        }
        let relay = cl.has("relay").then(|| cl.value("relay").to_string());
        if relay.is_some() && (direct != Direct::No || inherit) {
            return Err(UsageError(
                "--relay cannot be combined with --direct or --mode=inherit".into(),
            ));
        }
        if relay.as_deref() == Some("") {
            return Err(UsageError("--relay=PATH: expected the relay's path".into()));
        }
        let program = cl.program().to_string();
        let path_or = |name: &str, default: &str| {
            if cl.has(name) {
                cl.value(name).to_string()
            } else {
                next_to(&program, default)
            }
        };
        let num_attach = if cl.has("num-attachments") {
            let v = cl.value("num-attachments");
            string_to_u64_exact(v)
                .ok_or_else(|| UsageError(format!("--num-attachments={v}: expected a number")))?
        } else {
            0
        };
        let attachments = if num_attach > 0 {
            Attachments::Numeric(num_attach)
        } else if cl.has("attachment-name") {
            Attachments::Named(cl.value("attachment-name").to_string())
        } else {
            Attachments::Named(DEFAULT_ATTACHMENT_NAME.to_string())
        };
        let scenarios = if cl.has("scenarios") {
            split_nonempty(cl.value("scenarios"), ',')
        } else {
            crate::host::DEFAULT_SCENARIOS
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        let label = if cl.has("label") {
            cl.value("label").to_string()
        } else {
            match direct {
                Direct::No if relay.is_some() => "relay".to_string(),
                Direct::No if inherit => "proxy_inherit".to_string(),
                Direct::No => "proxy".to_string(),
                d => format!("direct_{}", d.name()),
            }
        };
        let timeout = int_switch(cl, "timeout", 120);
        let scale_pipes = if cl.has("scale-pipes") {
            let v = cl.value("scale-pipes");
            string_to_u64_exact(v)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    UsageError(format!("--scale-pipes={v}: expected a positive number"))
                })?
        } else {
            crate::host::DEFAULT_SCALE_PIPES
        };
        Ok(Self::Host(Box::new(HostArgs {
            proxy: path_or("proxy", DEFAULT_PROXY_NAME),
            client: path_or("client", DEFAULT_CLIENT_NAME),
            relay,
            program,
            direct,
            inherit,
            attachments,
            scenarios: scenarios.into_iter().collect(),
            quick: cl.has("quick"),
            vector: cl.has("vector"),
            label,
            proxy_extra_args: split_nonempty(cl.value("proxy-extra-args"), ' '),
            timeout: (timeout > 0).then(|| non_negative(timeout)),
            handle_timeout: non_negative(int_switch(cl, "handle-timeout", 20)),
            datapipe_timeout: non_negative(int_switch(cl, "datapipe-timeout", 10)),
            leak_iters: int_switch(cl, "leak-iters", crate::host::DEFAULT_LEAK_ITERS),
            shutdown_wait: non_negative(int_switch(cl, "shutdown-wait", 15)),
            legacy_profile: LegacyProfile::parse(cl)?,
            client_verbose: cl.has("client-verbose"),
            stop_after_each_line: cl.has("stop-after-each-line"),
            scale_pipes,
        })))
    }
}

/// `base::SplitString(s, sep, TRIM_WHITESPACE, SPLIT_WANT_NONEMPTY)`.
fn split_nonempty(s: &str, sep: char) -> Vec<String> {
    s.split(sep)
        .map(|p| p.trim_matches(|c: char| c.is_ascii_whitespace()))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

impl HostArgs {
    /// The host's [`crate::host::HostConfig`] for these arguments.
    pub fn host_config(&self) -> crate::host::HostConfig {
        use crate::host::{ConfigLine, Counts, HostConfig};
        HostConfig {
            label: self.label.clone(),
            scenarios: self.scenarios.clone(),
            timeout: self.timeout,
            handle_timeout: self.handle_timeout,
            datapipe_timeout: self.datapipe_timeout,
            shutdown_wait: self.shutdown_wait,
            direct: self.direct != Direct::No,
            counts: Counts {
                scale_pipes: self.scale_pipes,
                leak_iters: self.leak_iters,
                ..Counts::new(self.quick, self.vector)
            },
            config_line: ConfigLine {
                profile: self.legacy_profile.config_name().to_string(),
                host_ipcz: self.direct != Direct::Legacy,
                proxy: if self.direct == Direct::No {
                    self.relay.clone().unwrap_or_else(|| self.proxy.clone())
                } else {
                    String::new()
                },
                client: self.client.clone(),
                direct: self.direct.name().to_string(),
                num_attachments: match self.attachments {
                    Attachments::Numeric(k) => k,
                    Attachments::Named(_) => 0,
                },
                inherit_broker: self.inherit,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cl(args: &[&str]) -> CommandLine {
        CommandLine::parse(std::iter::once("/opt/peers/mojo-test-host").chain(args.iter().copied()))
    }

    fn host(args: &[&str]) -> HostArgs {
        match HostCommand::parse(&cl(args)).unwrap() {
            HostCommand::Host(h) => *h,
            HostCommand::Broker(_) => panic!("broker"),
        }
    }

    #[test]
    fn chromium_switch_rules() {
        let c = cl(&[" --a=1 ", "-b", "--c=x=y", "pos", "--a=2", "--", "--d"]);
        assert_eq!(c.value("a"), "2");
        assert!(c.has("b"));
        assert_eq!(c.value("c"), "x=y");
        assert!(!c.has("d"));
        assert!(!c.has("pos"));
        assert_eq!(c.unknown(&["a"]), ["b", "c"]);
        let c = cl(&["--name=caf\u{e9}"]);
        assert_eq!(c.value("name"), "");
    }

    #[test]
    fn string_to_int_best_effort() {
        assert_eq!(string_to_int("42"), (42, true));
        assert_eq!(string_to_int("+7"), (7, true));
        assert_eq!(string_to_int("-3"), (-3, true));
        assert_eq!(string_to_int("5s"), (5, false));
        assert_eq!(string_to_int(" 9"), (9, false));
        assert_eq!(string_to_int("abc"), (0, false));
        assert_eq!(string_to_int(""), (0, false));
        assert_eq!(string_to_int("99999999999"), (i32::MAX, false));
        assert_eq!(string_to_int("-99999999999"), (i32::MIN, false));
        assert_eq!(string_to_u64_exact("12"), Some(12));
        assert_eq!(string_to_u64_exact("1x"), None);
        assert_eq!(string_to_u64_exact("-1"), None);
    }

    #[test]
    fn host_defaults() {
        let h = host(&[]);
        assert_eq!(h.proxy, "/opt/peers/mojo_proxy");
        assert_eq!(h.client, "/opt/peers/mojo-test-client");
        assert_eq!(h.direct, Direct::No);
        assert_eq!(h.attachments, Attachments::Named("pipe!".into()));
        assert_eq!(h.label, "proxy");
        assert_eq!(h.timeout, Some(Duration::from_secs(120)));
        assert_eq!(h.handle_timeout, Duration::from_secs(20));
        assert_eq!(h.scenarios.len(), crate::host::DEFAULT_SCENARIOS.len());
        assert!(!h.scenarios.contains("datapipe"));
        assert!(!h.scenarios.contains("leak"));
        assert_eq!(h.leak_iters, crate::host::DEFAULT_LEAK_ITERS);
        let c = h.host_config();
        assert_eq!(c.config_line.profile, "cros");
        assert_eq!(c.counts, crate::host::Counts::new(false, false));
    }

    #[test]
    fn host_options() {
        let h = host(&[
            "--direct=ipcz",
            "--num-attachments=3",
            "--attachment-name=x",
            "--scenarios= echo_small,,many_pipes ",
            "--timeout=abc",
            "--handle-timeout=5",
            "--proxy-extra-args= --a  --b=1 ",
            "--quick",
            "--unknown-flag=1",
        ]);
        assert_eq!(h.label, "direct_ipcz");
        assert_eq!(h.attachments, Attachments::Numeric(3));
        assert_eq!(
            h.scenarios.iter().collect::<Vec<_>>(),
            ["echo_small", "many_pipes"]
        );
        assert_eq!(h.timeout, None, "StringToInt(abc) = 0 = alarm(0)");
        assert_eq!(h.handle_timeout, Duration::from_secs(5));
        assert_eq!(h.proxy_extra_args, ["--a", "--b=1"]);
        assert!(!h.stop_after_each_line);
        assert!(host(&["--stop-after-each-line"]).stop_after_each_line);
        assert_eq!(h.scale_pipes, crate::host::DEFAULT_SCALE_PIPES);
        let scaled = host(&["--scale-pipes=10000", "--scenarios=scale"]);
        assert_eq!(scaled.scale_pipes, 10000);
        assert_eq!(scaled.host_config().counts.scale_pipes, 10000);
        for bad in [
            "--scale-pipes=0",
            "--scale-pipes=x",
            "--scale-pipes=4294967296",
        ] {
            assert!(HostCommand::parse(&cl(&[bad])).is_err(), "{bad}");
        }
        let leak = host(&["--scenarios=leak", "--leak-iters=125000"]);
        assert_eq!(leak.host_config().counts.leak_iters, 125_000);
        assert_eq!(
            host(&["--leak-iters=7x"]).leak_iters,
            7,
            "StringToInt's best effort"
        );
        assert!(h.host_config().direct);
        assert_eq!(host(&["--mode=inherit"]).label, "proxy_inherit");
        assert!(
            !host(&["--direct=legacy"])
                .host_config()
                .config_line
                .host_ipcz
        );
        assert_eq!(
            host(&["--num-attachments=0"]).attachments,
            Attachments::Named("pipe!".into())
        );
        assert!(HostCommand::parse(&cl(&["--num-attachments=x"])).is_err());
        assert!(HostCommand::parse(&cl(&["--direct=other"])).is_err());
        assert!(HostCommand::parse(&cl(&["--legacy-profile=x"])).is_err());
        let relay = host(&["--relay=/b/mojo-relay"]);
        assert_eq!(relay.relay.as_deref(), Some("/b/mojo-relay"));
        assert_eq!(relay.label, "relay");
        assert_eq!(relay.direct, Direct::No);
        let config = relay.host_config();
        assert!(!config.direct && config.config_line.host_ipcz);
        assert_eq!(config.config_line.proxy, "/b/mojo-relay");
        for bad in [
            &["--relay=r", "--direct=ipcz"][..],
            &["--relay=r", "--mode=inherit"],
            &["--relay="],
            &["--mode=inherit", "--direct=ipcz"],
            &["--mode=inherit", "--direct=legacy"],
        ] {
            assert!(HostCommand::parse(&cl(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            HostCommand::parse(&cl(&["--role=broker", "--fd=7"])).unwrap(),
            HostCommand::Broker(BrokerArgs { fd: 7 })
        );
        let relative = CommandLine::parse(["mojo-test-host"]);
        let HostCommand::Host(h) = HostCommand::parse(&relative).unwrap() else {
            panic!()
        };
        assert_eq!(h.proxy, "./mojo_proxy");
        assert_eq!(h.relay, None);
    }

    #[test]
    fn client_args() {
        let c = ClientArgs::parse(&cl(&["--fd=5", "--verbose"])).unwrap();
        assert_eq!(c.fd, 5);
        assert_eq!(c.attachments, Attachments::Named("pipe!".into()));
        assert!(c.verbose && !c.ipcz);
        let c = ClientArgs::parse(&cl(&[
            "--fd=5",
            "--attachment-name=a",
            "--num-attachments=0",
            "--ipcz",
        ]))
        .unwrap();
        assert_eq!(c.attachments, Attachments::Numeric(0));
        assert!(c.ipcz);
        assert!(ClientArgs::parse(&cl(&[])).is_err());
        assert!(ClientArgs::parse(&cl(&["--fd=3x"])).is_err());
        assert_eq!(Attachments::Numeric(2).names()[1], 1u64.to_le_bytes());
    }

    proptest! {
        #[test]
        fn any_argv_parses_or_errs(args in proptest::collection::vec(".{0,12}", 0..6)) {
            let c = CommandLine::parse(std::iter::once("p".to_string()).chain(args));
            let _ = HostCommand::parse(&c);
            let _ = ClientArgs::parse(&c);
        }
    }
}
