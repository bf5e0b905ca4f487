//! The command line, parsed the way Chromium's `base::CommandLine` does it so
//! that a launcher written for Chromium's `mojo_proxy` works unchanged.
//!
//! Chromium's rules, which we keep:
//! - every argument is first trimmed of ASCII whitespace (`\t \n \v \f \r`
//!   and space) at both ends;
//! - a switch is `--name=value`, `--name`, or the same with a single `-`;
//!   names are case-sensitive and the value runs from the first `=`;
//! - a bare `--` ends switch parsing; everything else is a positional argument;
//! - unknown switches and positional arguments are ignored (launchers pass
//!   extra Chromium switches);
//! - a repeated switch takes its last value;
//! - numbers are read as `base::StringToInt` / `StringToUint64` read them
//!   (optional leading `+`, digits only);
//! - `--attachment-name` wins over numeric attachment names.
//!
//! Where we differ: a value that is not UTF-8 is refused (Chromium's
//! `GetSwitchValueASCII` would silently read it, like any non-ASCII value, as
//! empty); a non-ASCII UTF-8 attachment name is used as its UTF-8 bytes.
//!
//! We first pick out the switches we know (in `=` form, last one wins) and
//! then let clap parse that list, which gives typed values and `--help`. The
//! checks Chromium does with `CHECK` (and crashes on) become [`CliError`]s.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::capture::{DEFAULT_CAPTURE_MAX_BYTES, MIN_CAPTURE_MAX_BYTES};

/// Where Chromium's proxy addresses attachments: initial portals 1..=7.
pub const MAX_HOST_ADDRESSABLE_ATTACHMENTS: usize = 7;

/// Upper bound on the number of attachments we accept at all; far above any
/// real use, it only keeps a typo from allocating without bound.
pub const MAX_ATTACHMENTS: u64 = 1024;

/// Drop-in replacement for Chromium's `mojo_proxy`: bridges a Mojo+ipcz host
/// and a legacy Mojo Core client.
///
/// The host fork+execs the proxy with two inherited Unix stream sockets, sends
/// its invitation to the proxy over one, and the proxy re-sends it, as a
/// legacy broker, to the legacy client over the other. Switches are parsed like
/// Chromium's: `--name=value`, unknown switches ignored, last value wins.
#[derive(Debug, Parser)]
#[command(name = "mojo_proxy", version, about, long_about)]
struct Switches {
    /// Inherited fd of the Unix socket connected to the legacy client. Required.
    #[arg(long = "legacy-client-fd", value_name = "N")]
    legacy_client_fd: Option<String>,

    /// Inherited fd of the Unix socket connected to the Mojo+ipcz host. Required.
    #[arg(long = "host-ipcz-transport-fd", value_name = "N")]
    host_ipcz_transport_fd: Option<String>,

    /// Name of the single invitation attachment (free-form string, e.g. `pipe!`).
    /// Wins over `--num-attachments` and `--numeric-attachment-names`.
    #[arg(long = "attachment-name", value_name = "NAME")]
    attachment_name: Option<String>,

    /// Number of attachments named by the integers 0..N-1 (each name is the
    /// 8 little-endian bytes of the integer).
    #[arg(long = "num-attachments", value_name = "N")]
    num_attachments: Option<String>,

    /// Numeric attachment names, listed: `0,1,2` (the spelling of Chromium's
    /// README). Used when neither of the other attachment switches is given.
    #[arg(long = "numeric-attachment-names", value_name = "LIST")]
    numeric_attachment_names: Option<String>,

    /// The host is an ipcz non-broker that shares its broker with the proxy
    /// (rather than being the broker itself).
    #[arg(long = "inherit-ipcz-broker", value_name = "IGNORED", num_args = 0..=1,
          default_missing_value = "")]
    inherit_ipcz_broker: Option<String>,

    /// Legacy wire profile the client was built with: `libchrome` (Chrome OS
    /// daemons: 8-byte channel header, compact event header) or `desktop`
    /// (Chromium desktop: 16-byte header, extended event header). It cannot
    /// be detected before the broker must speak, so it is configured.
    #[arg(
        long = "legacy-profile",
        value_enum,
        value_name = "PROFILE",
        default_value = "libchrome"
    )]
    legacy_profile: LegacyProfile,

    /// Record both links into this directory, in the transcript format of
    /// `shared/vectors` (`host_proxy.jsonl`, `proxy_client.jsonl`; created
    /// if missing, files overwritten). Off unless given.
    #[arg(long = "capture-dir", value_name = "DIR")]
    capture_dir: Option<String>,

    /// Most bytes each capture file may take; at the bound it ends with one
    /// line marked truncated. Default 64 MiB.
    #[arg(long = "capture-max-bytes", value_name = "N")]
    capture_max_bytes: Option<String>,
}

/// The legacy Mojo Core wire profile spoken to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LegacyProfile {
    /// libchrome / Chrome OS: 8-byte legacy channel header, 24-byte event header.
    Libchrome,
    /// Chromium desktop Linux: 16-byte channel header, 48-byte event header.
    Desktop,
}

/// How the invitation's attachments are named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attachments {
    /// One attachment with a free-form name.
    Named(String),
    /// Attachments named by integers, in this order.
    Numeric(Vec<u64>),
}

impl Attachments {
    /// The attachment names as the bytes the legacy invitation carries.
    pub fn names(&self) -> Vec<Vec<u8>> {
        match self {
            Self::Named(name) => vec![name.as_bytes().to_vec()],
            Self::Numeric(numbers) => numbers.iter().map(|n| n.to_le_bytes().to_vec()).collect(),
        }
    }

    /// Number of attachments.
    pub fn len(&self) -> usize {
        match self {
            Self::Named(_) => 1,
            Self::Numeric(numbers) => numbers.len(),
        }
    }

    /// Always false: a configuration has at least one attachment.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A validated proxy configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Inherited socket to the legacy client.
    pub legacy_client_fd: i32,
    /// Inherited socket to the Mojo+ipcz host.
    pub host_ipcz_transport_fd: i32,
    /// The invitation's attachments.
    pub attachments: Attachments,
    /// Whether the host shares its broker instead of being one.
    pub inherit_ipcz_broker: bool,
    /// Legacy wire profile.
    pub legacy_profile: LegacyProfile,
    /// Where to record both links (`--capture-dir`), if anywhere.
    pub capture_dir: Option<PathBuf>,
    /// The bound of each capture file (`--capture-max-bytes`).
    pub capture_max_bytes: u64,
    /// Things worth a warning that do not stop the proxy.
    pub warnings: Vec<String>,
}

/// What parsing produced when it did not produce a [`Config`].
#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    /// `--help` or `--version`: print this text to stdout and exit 0.
    Info(String),
    /// A usage error: print this one line to stderr and exit 2.
    Usage(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Info(text) | Self::Usage(text) => f.write_str(text),
        }
    }
}

/// The switches clap is told about; everything else is dropped as Chromium ignores it.
const KNOWN_SWITCHES: [&str; 9] = [
    "legacy-client-fd",
    "host-ipcz-transport-fd",
    "attachment-name",
    "num-attachments",
    "numeric-attachment-names",
    "inherit-ipcz-broker",
    "legacy-profile",
    "capture-dir",
    "capture-max-bytes",
];

/// Chromium's `kWhitespaceASCII`, which `base::CommandLine` trims from both
/// ends of every argument (`TrimWhitespaceASCII(arg, TRIM_ALL)`).
const ASCII_WHITESPACE: [u8; 6] = [b'\t', b'\n', 0x0b, 0x0c, b'\r', b' '];

/// `arg` without leading and trailing [`ASCII_WHITESPACE`].
fn trim_ascii_whitespace(arg: &[u8]) -> &[u8] {
    let keep = |b: &u8| !ASCII_WHITESPACE.contains(b);
    let start = arg.iter().position(keep).unwrap_or(arg.len());
    let end = arg.iter().rposition(keep).map_or(start, |i| i + 1);
    arg.get(start..end).unwrap_or_default()
}

/// Splits one (trimmed) argument into a switch name and optional value,
/// Chromium style: prefix `--` or `-`, then a non-empty rest, split at the
/// first `=`.
fn split_switch(arg: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let body = arg.strip_prefix(b"--").or_else(|| arg.strip_prefix(b"-"))?;
    if body.is_empty() {
        return None;
    }
    Some(match body.iter().position(|&b| b == b'=') {
        Some(i) => {
            let (name, rest) = body.split_at(i);
            (name, rest.get(1..))
        }
        None => (body, None),
    })
}

/// Reduces `argv` (without the program name) to the known switches, each once
/// with its last value, in `--name=value` form, after trimming every argument
/// as Chromium does. Help and version requests are kept so clap can answer
/// them. Also returns the dropped arguments, for logging.
///
/// Values are bytes on the command line; the last value of a known switch
/// must be UTF-8 (an earlier, overridden one may be anything, as may unknown
/// switches), otherwise it is a usage error naming the switch rather than a
/// silently altered value.
fn select_known_switches(args: &[OsString]) -> Result<(Vec<String>, Vec<String>), CliError> {
    let mut last_value: Vec<(&str, Option<&[u8]>)> = Vec::new();
    let mut passthrough = Vec::new();
    let mut ignored = Vec::new();
    let mut switches_done = false;
    for arg in args {
        let arg = trim_ascii_whitespace(arg.as_bytes());
        if switches_done {
            ignored.push(String::from_utf8_lossy(arg).into_owned());
            continue;
        }
        if arg == b"--" {
            switches_done = true;
            continue;
        }
        if matches!(arg, b"--help" | b"-h" | b"--version" | b"-V") {
            passthrough.push(String::from_utf8_lossy(arg).into_owned());
            continue;
        }
        let known = split_switch(arg).and_then(|(name, value)| {
            KNOWN_SWITCHES
                .iter()
                .find(|k| k.as_bytes() == name)
                .map(|known| (*known, value))
        });
        match known {
            Some((known, value)) => {
                last_value.retain(|(n, _)| *n != known);
                last_value.push((known, value));
            }
            None => ignored.push(String::from_utf8_lossy(arg).into_owned()),
        }
    }
    let mut selected = passthrough;
    for (name, value) in last_value {
        selected.push(match value {
            Some(value) => {
                let value = std::str::from_utf8(value).map_err(|_| {
                    CliError::Usage(format!("--{name}: the value is not valid UTF-8"))
                })?;
                format!("--{name}={value}")
            }
            None if name == "inherit-ipcz-broker" => format!("--{name}"),
            // Chromium gives a valueless switch the empty value.
            None => format!("--{name}="),
        });
    }
    Ok((selected, ignored))
}

/// Parses an unsigned decimal integer as `base::StringToUint64` does: an
/// optional `+`, then one or more ASCII digits, nothing else, no overflow.
/// (Rust's `u64::from_str` has exactly this grammar.)
fn parse_uint64(text: &str) -> Option<u64> {
    text.parse().ok()
}

fn parse_fd(switch: &str, value: Option<String>) -> Result<i32, CliError> {
    let value = value.ok_or_else(|| {
        CliError::Usage(format!(
            "missing --{switch}=N (the inherited socket's fd number)"
        ))
    })?;
    // `base::StringToInt`: optional sign, digits, in range (`i32::from_str`
    // has exactly this grammar). Chromium would go on with a negative
    // number and fail later; we refuse it here.
    value
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--{switch}={value:?} is not a file descriptor number"
            ))
        })
}

fn parse_attachments(
    switches: &Switches,
    warnings: &mut Vec<String>,
) -> Result<Attachments, CliError> {
    if let Some(name) = &switches.attachment_name {
        if switches.num_attachments.is_some() || switches.numeric_attachment_names.is_some() {
            warnings.push(
                "--attachment-name given with numeric attachment names: using --attachment-name"
                    .into(),
            );
        }
        return Ok(Attachments::Named(name.clone()));
    }
    let numbers = if let Some(count) = &switches.num_attachments {
        let n = parse_uint64(count).ok_or_else(|| {
            CliError::Usage(format!("--num-attachments={count:?} is not a whole number"))
        })?;
        if n == 0 {
            return Err(CliError::Usage(
                "--num-attachments=0: at least one attachment is needed".into(),
            ));
        }
        if n > MAX_ATTACHMENTS {
            return Err(CliError::Usage(format!(
                "--num-attachments={n} exceeds the limit of {MAX_ATTACHMENTS}"
            )));
        }
        (0..n).collect::<Vec<u64>>()
    } else if let Some(list) = &switches.numeric_attachment_names {
        let numbers = list
            .split(',')
            .map(|item| {
                parse_uint64(item.trim()).ok_or_else(|| {
                    CliError::Usage(format!(
                        "--numeric-attachment-names={list:?}: {item:?} is not a whole number"
                    ))
                })
            })
            .collect::<Result<Vec<u64>, CliError>>()?;
        if numbers.len() as u64 > MAX_ATTACHMENTS {
            return Err(CliError::Usage(format!(
                "--numeric-attachment-names lists {} names, more than the limit of {MAX_ATTACHMENTS}",
                numbers.len()
            )));
        }
        if numbers.iter().enumerate().any(|(i, n)| *n != i as u64) {
            warnings.push(format!(
                "--numeric-attachment-names={list}: a Mojo+ipcz host sends attachments named 0..N-1 in order; \
                 these names are paired with its attachments by position"
            ));
        }
        numbers
    } else {
        return Err(CliError::Usage(
            "no attachment given: pass --attachment-name=NAME or --num-attachments=N".into(),
        ));
    };
    if numbers.len() > MAX_HOST_ADDRESSABLE_ATTACHMENTS {
        warnings.push(format!(
            "{} numeric attachments: a Mojo+ipcz host addresses at most {MAX_HOST_ADDRESSABLE_ATTACHMENTS}; \
             the rest will never be connected",
            numbers.len()
        ));
    }
    Ok(Attachments::Numeric(numbers))
}

/// Parses the proxy's arguments (without the program name).
pub fn parse<I, T>(args: I) -> Result<Config, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let (selected, ignored) = select_known_switches(&args)?;
    for arg in &ignored {
        log::debug!("ignoring argument {arg:?}");
    }
    let switches =
        Switches::try_parse_from(std::iter::once("mojo_proxy".to_string()).chain(selected))
            .map_err(|e| match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    CliError::Info(e.render().to_string())
                }
                _ => CliError::Usage(first_line(&e.render().to_string())),
            })?;
    let legacy_client_fd = parse_fd("legacy-client-fd", switches.legacy_client_fd.clone())?;
    let host_ipcz_transport_fd = parse_fd(
        "host-ipcz-transport-fd",
        switches.host_ipcz_transport_fd.clone(),
    )?;
    if legacy_client_fd == host_ipcz_transport_fd {
        return Err(CliError::Usage(format!(
            "--legacy-client-fd and --host-ipcz-transport-fd are both {legacy_client_fd}: they must be two different sockets"
        )));
    }
    let mut warnings = Vec::new();
    let attachments = parse_attachments(&switches, &mut warnings)?;
    let (capture_dir, capture_max_bytes) = parse_capture(&switches, &mut warnings)?;
    Ok(Config {
        legacy_client_fd,
        host_ipcz_transport_fd,
        attachments,
        inherit_ipcz_broker: switches.inherit_ipcz_broker.is_some(),
        legacy_profile: switches.legacy_profile,
        capture_dir,
        capture_max_bytes,
        warnings,
    })
}

fn parse_capture(
    switches: &Switches,
    warnings: &mut Vec<String>,
) -> Result<(Option<PathBuf>, u64), CliError> {
    let max_bytes = match &switches.capture_max_bytes {
        None => DEFAULT_CAPTURE_MAX_BYTES,
        Some(text) => parse_uint64(text)
            .filter(|n| *n >= MIN_CAPTURE_MAX_BYTES)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--capture-max-bytes={text:?} is not a whole number of at least {MIN_CAPTURE_MAX_BYTES}"
                ))
            })?,
    };
    let dir = match switches.capture_dir.as_deref() {
        None => {
            if switches.capture_max_bytes.is_some() {
                warnings
                    .push("--capture-max-bytes without --capture-dir: nothing is recorded".into());
            }
            None
        }
        Some("") => {
            return Err(CliError::Usage(
                "--capture-dir needs a directory: --capture-dir=DIR".into(),
            ));
        }
        Some(dir) => Some(PathBuf::from(dir)),
    };
    Ok((dir, max_bytes))
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(args: &[&str]) -> Config {
        parse(args.iter().copied()).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn usage(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(CliError::Usage(text)) => text,
            other => panic!("{args:?}: expected a usage error, got {other:?}"),
        }
    }

    const FDS: [&str; 2] = ["--legacy-client-fd=3", "--host-ipcz-transport-fd=4"];

    fn with_fds(rest: &[&'static str]) -> Vec<&'static str> {
        FDS.iter().copied().chain(rest.iter().copied()).collect()
    }

    #[test]
    fn named_attachment() {
        let config = ok(&with_fds(&["--attachment-name=pipe!"]));
        assert_eq!(config.legacy_client_fd, 3);
        assert_eq!(config.host_ipcz_transport_fd, 4);
        assert_eq!(config.attachments, Attachments::Named("pipe!".into()));
        assert_eq!(config.attachments.names(), vec![b"pipe!".to_vec()]);
        assert!(!config.inherit_ipcz_broker);
        assert_eq!(config.legacy_profile, LegacyProfile::Libchrome);
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn numeric_attachments_are_little_endian_u64_names() {
        let config = ok(&with_fds(&["--num-attachments=3"]));
        assert_eq!(config.attachments, Attachments::Numeric(vec![0, 1, 2]));
        assert_eq!(config.attachments.names()[1], vec![1, 0, 0, 0, 0, 0, 0, 0]);
        let listed = ok(&with_fds(&["--numeric-attachment-names=0,1,2"]));
        assert_eq!(listed.attachments, config.attachments);
        assert!(listed.warnings.is_empty());
    }

    #[test]
    fn attachment_name_wins_over_numeric_names() {
        let config = ok(&with_fds(&["--num-attachments=2", "--attachment-name=x"]));
        assert_eq!(config.attachments, Attachments::Named("x".into()));
    }

    #[test]
    fn num_attachments_wins_over_the_listed_form() {
        let config = ok(&with_fds(&[
            "--numeric-attachment-names=0",
            "--num-attachments=2",
        ]));
        assert_eq!(config.attachments, Attachments::Numeric(vec![0, 1]));
    }

    #[test]
    fn last_value_wins_and_single_dash_works() {
        let config = ok(&[
            "--legacy-client-fd=9",
            "-legacy-client-fd=3",
            "--host-ipcz-transport-fd=4",
            "--attachment-name=a",
            "--attachment-name=b",
        ]);
        assert_eq!(config.legacy_client_fd, 3);
        assert_eq!(config.attachments, Attachments::Named("b".into()));
    }

    #[test]
    fn unknown_switches_and_positionals_are_ignored() {
        let config = ok(&with_fds(&[
            "--enable-features=Foo",
            "--v=1",
            "positional",
            "--attachment-name=pipe!",
            "--",
            "--num-attachments=zzz",
        ]));
        assert_eq!(config.attachments, Attachments::Named("pipe!".into()));
    }

    #[test]
    fn arguments_are_trimmed_of_ascii_whitespace_like_chromium() {
        // base::CommandLine trims \t \n \v \f \r and space from both ends
        // of every argument before looking at it.
        let config = ok(&[
            " --legacy-client-fd=3\t",
            "\x0b--host-ipcz-transport-fd=4\x0c",
            "--num-attachments=2\r\n",
            " -- ",
            "--attachment-name=ignored-after-terminator",
        ]);
        assert_eq!(
            (config.legacy_client_fd, config.host_ipcz_transport_fd),
            (3, 4)
        );
        assert_eq!(config.attachments, Attachments::Numeric(vec![0, 1]));
        // Whitespace inside the value stays (and is not a number).
        assert!(usage(&with_fds(&["--num-attachments= 2"])).contains("--num-attachments"));
    }

    #[test]
    fn numbers_take_a_plus_sign_like_string_to_int() {
        // base::StringToInt / StringToUint64 accept one leading '+'.
        let config = ok(&[
            "--legacy-client-fd=+3",
            "--host-ipcz-transport-fd=4",
            "--num-attachments=+2",
        ]);
        assert_eq!(config.legacy_client_fd, 3);
        assert_eq!(config.attachments, Attachments::Numeric(vec![0, 1]));
        for bad in ["++2", "+-2", "-+2", "+", "2+", "0x2"] {
            let arg = format!("--num-attachments={bad}");
            let text = match parse(with_fds(&[]).into_iter().map(String::from).chain([arg])) {
                Err(CliError::Usage(text)) => text,
                other => panic!("{bad}: expected a usage error, got {other:?}"),
            };
            assert!(text.contains("--num-attachments"), "{bad}: {text}");
        }
    }

    #[test]
    fn non_utf8_values_are_refused_not_mangled() {
        use std::os::unix::ffi::OsStringExt;
        let mut args: Vec<OsString> = FDS.iter().map(OsString::from).collect();
        args.push(OsString::from_vec(b"--attachment-name=pipe\xff".to_vec()));
        match parse(args.clone()) {
            Err(CliError::Usage(text)) => assert!(text.contains("--attachment-name"), "{text}"),
            other => panic!("expected a usage error, got {other:?}"),
        }
        // Last value wins: an earlier bad value that is overridden is harmless,
        // and so is a non-UTF-8 unknown switch.
        args.push("--attachment-name=pipe!".into());
        args.push(OsString::from_vec(b"--unknown=\xfe".to_vec()));
        assert_eq!(
            parse(args).unwrap().attachments,
            Attachments::Named("pipe!".into())
        );
    }

    #[test]
    fn inherit_broker_and_profile() {
        let config = ok(&with_fds(&[
            "--attachment-name=p",
            "--inherit-ipcz-broker",
            "--legacy-profile=desktop",
        ]));
        assert!(config.inherit_ipcz_broker);
        assert_eq!(config.legacy_profile, LegacyProfile::Desktop);
        // Chromium only asks whether the switch is present.
        assert!(
            ok(&with_fds(&[
                "--attachment-name=p",
                "--inherit-ipcz-broker=0"
            ]))
            .inherit_ipcz_broker
        );
    }

    #[test]
    fn capture_is_off_by_default_and_bounded() {
        let config = ok(&with_fds(&["--attachment-name=p"]));
        assert_eq!(config.capture_dir, None);
        assert_eq!(config.capture_max_bytes, DEFAULT_CAPTURE_MAX_BYTES);
        let config = ok(&with_fds(&[
            "--attachment-name=p",
            "--capture-dir=/tmp/x",
            "--capture-max-bytes=+5000",
        ]));
        assert_eq!(config.capture_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(config.capture_max_bytes, 5000);
        assert!(config.warnings.is_empty());
        let alone = ok(&with_fds(&[
            "--attachment-name=p",
            "--capture-max-bytes=5000",
        ]));
        assert!(
            alone
                .warnings
                .iter()
                .any(|w| w.contains("without --capture-dir"))
        );
        for bad in [
            "--capture-max-bytes=4095",
            "--capture-max-bytes=1k",
            "--capture-max-bytes=",
        ] {
            let text = usage(&with_fds(&["--attachment-name=p", "--capture-dir=d", bad]));
            assert!(text.contains("--capture-max-bytes"), "{bad}: {text}");
        }
        assert!(
            usage(&with_fds(&["--attachment-name=p", "--capture-dir"])).contains("--capture-dir")
        );
    }

    #[test]
    fn many_numeric_attachments_warn() {
        let config = ok(&with_fds(&["--num-attachments=9"]));
        assert_eq!(config.attachments.len(), 9);
        assert!(config.warnings.iter().any(|w| w.contains("at most 7")));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(
            usage(&["--host-ipcz-transport-fd=4", "--attachment-name=p"])
                .contains("--legacy-client-fd")
        );
        assert!(
            usage(&["--legacy-client-fd=3", "--attachment-name=p"])
                .contains("--host-ipcz-transport-fd")
        );
        assert!(usage(&with_fds(&[])).contains("no attachment"));
        assert!(
            usage(&[
                "--legacy-client-fd=x",
                "--host-ipcz-transport-fd=4",
                "--attachment-name=p"
            ])
            .contains("not a file descriptor")
        );
        assert!(
            usage(&[
                "--legacy-client-fd=-1",
                "--host-ipcz-transport-fd=4",
                "--attachment-name=p"
            ])
            .contains("not a file descriptor")
        );
        assert!(
            usage(&[
                "--legacy-client-fd",
                "--host-ipcz-transport-fd=4",
                "--attachment-name=p"
            ])
            .contains("not a file descriptor")
        );
        assert!(
            usage(&[
                "--legacy-client-fd=4",
                "--host-ipcz-transport-fd=4",
                "--attachment-name=p"
            ])
            .contains("different")
        );
        assert!(usage(&with_fds(&["--num-attachments=two"])).contains("--num-attachments"));
        assert!(usage(&with_fds(&["--num-attachments=0"])).contains("at least one"));
        assert!(usage(&with_fds(&["--num-attachments=-3"])).contains("--num-attachments"));
        assert!(usage(&with_fds(&["--numeric-attachment-names=0,x"])).contains("\"x\""));
        assert!(
            usage(&with_fds(&["--attachment-name=p", "--legacy-profile=cros"]))
                .contains("legacy-profile")
        );
    }

    #[test]
    fn help_lists_every_switch() {
        let Err(CliError::Info(help)) = parse(["--help"]) else {
            panic!("--help must produce help text");
        };
        for switch in KNOWN_SWITCHES {
            assert!(
                help.contains(&format!("--{switch}")),
                "help lacks --{switch}"
            );
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn arg() -> impl Strategy<Value = String> {
            prop_oneof![
                ".{0,20}",
                (proptest::sample::select(KNOWN_SWITCHES.to_vec()), ".{0,12}")
                    .prop_map(|(name, value)| format!("--{name}={value}")),
            ]
        }

        proptest! {
            #[test]
            fn any_command_line_is_a_config_or_one_line_error(
                args in proptest::collection::vec(arg(), 0..8)
            ) {
                match parse(args) {
                    Ok(config) => prop_assert!(!config.attachments.is_empty()),
                    Err(CliError::Usage(line)) => {
                        prop_assert!(!line.is_empty());
                        prop_assert!(!line.contains('\n'), "{:?}", line);
                    }
                    Err(CliError::Info(_)) => {}
                }
            }
        }
    }
}
