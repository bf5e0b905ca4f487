//! One proxy run: the sockets adopted, the driver set up, the loop run to
//! its end, and the end turned into an exit status.

use std::time::Instant;

use mojo_bridge::Attachments as BridgeAttachments;
use mojo_bridge::proxy::{Proxy, ProxyConfig};
use mojo_driver::{Driver, DriverError, Exit, Signals};
use mojo_legacy_node::ports::names;
use mojo_legacy_wire::Profile;
use mojo_platform_channel::{Endpoint, OsRandom};

use crate::capture::Capture;
use crate::cli::{Attachments, Config, LegacyProfile};
use crate::core::{ProxyCore, ProxyRings};
use crate::state;

/// Exit status of a run that ended normally: every pairing closed, a peer
/// hung up, or a shutdown signal.
pub const EXIT_OK: u8 = 0;
/// Exit status when a peer broke its protocol or the proxy could not start.
pub const EXIT_FAILURE: u8 = 1;

/// The bridge's view of the command line's attachments.
pub fn bridge_attachments(attachments: &Attachments) -> BridgeAttachments {
    match attachments {
        Attachments::Named(name) => BridgeAttachments::Named(name.as_bytes().to_vec()),
        Attachments::Numeric(numbers) if numbers.iter().copied().eq(0..numbers.len() as u64) => {
            BridgeAttachments::Numbered(numbers.len())
        }
        Attachments::Numeric(_) => BridgeAttachments::Listed(attachments.names()),
    }
}

/// Runs the proxy for `config` over the adopted sockets until its work is
/// over; returns the exit status. `signals` (blocked before any thread was
/// made) end the run cleanly; `SIGUSR1`, if among them, logs the live
/// state ([`state`]). The totals are logged at the end, whatever it is. `inherited` are the fds open when the process
/// started ([`open_fds_beyond_stdio`]): whatever else is open at the end
/// is reported as leaked.
pub fn run(
    config: &Config,
    host: Endpoint,
    legacy_client: Endpoint,
    signals: Signals,
    inherited: &[(i32, String)],
) -> u8 {
    let status = match try_run(config, host, legacy_client, signals) {
        Ok(status) => status,
        Err(e) => {
            log::error!("{e}");
            EXIT_FAILURE
        }
    };
    // Everything the run made is dropped by now: any fd still open beyond
    // the standard streams is a leak, worth a line (the end-to-end tests
    // look for it).
    let leaked: Vec<(i32, String)> = open_fds_beyond_stdio()
        .into_iter()
        .filter(|fd| !inherited.contains(fd))
        .collect();
    if !leaked.is_empty() {
        log::warn!("{} fds still open at exit: {leaked:?}", leaked.len());
    }
    status
}

/// This process's open fds above 2, with what each names (the directory
/// handle of the listing itself left out).
pub fn open_fds_beyond_stdio() -> Vec<(i32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let own_dir = format!("/proc/{}/fd", std::process::id());
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let target = target.to_string_lossy().into_owned();
            (fd > 2 && target != own_dir).then_some((fd, target))
        })
        .collect()
}

fn try_run(
    config: &Config,
    host: Endpoint,
    legacy_client: Endpoint,
    signals: Signals,
) -> Result<u8, String> {
    let mut random = OsRandom::new().map_err(|e| format!("no OS random source: {e}"))?;
    let mut driver = Driver::new().map_err(|e| format!("epoll: {e}"))?;
    driver
        .watch_signals(signals)
        .map_err(|e| format!("signalfd: {e}"))?;
    let host = driver
        .add_link(host)
        .map_err(|e| format!("host socket: {e}"))?;
    let bootstrap = driver
        .add_link(legacy_client)
        .map_err(|e| format!("legacy client socket: {e}"))?;
    if let Some(dir) = &config.capture_dir {
        let capture = Capture::create(dir, config.capture_max_bytes, host, bootstrap)
            .map_err(|e| format!("--capture-dir={}: {e}", dir.display()))?;
        driver.set_tap(Box::new(capture));
    }
    let (node_channel, client_end) = driver
        .new_link_pair()
        .map_err(|e| format!("node channel: {e}"))?;
    let proxy_config = ProxyConfig {
        attachments: bridge_attachments(&config.attachments),
        legacy_profile: match config.legacy_profile {
            LegacyProfile::Libchrome => Profile::Libchrome,
            LegacyProfile::Desktop => Profile::Desktop,
        },
        legacy_name: names::random_node_name(&mut random),
        inherit_broker: config.inherit_ipcz_broker,
    };
    // The legacy node names two ports per new pipe: buffered, one
    // getrandom(2) per 4 KiB instead of one per name.
    let node_random = OsRandom::buffered().map_err(|e| format!("no OS random source: {e}"))?;
    let mut proxy =
        Proxy::new(&proxy_config, client_end, node_random).map_err(|e| e.to_string())?;
    let ring_random = OsRandom::new().map_err(|e| format!("no OS random source: {e}"))?;
    proxy.set_ring_memory(Box::new(ProxyRings::new(ring_random)));
    let mut core = ProxyCore::new(proxy, host, bootstrap, node_channel, random);
    let started = Instant::now();
    let mut signalled = false;
    let ended = loop {
        match driver.run(&mut core) {
            Ok(Exit::Status) => state::log_live_state(&driver, &core, started.elapsed()),
            Ok(Exit::Signal(signal)) if !signalled => {
                log::info!("{signal}: closing every pairing");
                signalled = true;
                core.close_all();
            }
            Ok(exit) => {
                log::info!("done: {exit}");
                break Ok(());
            }
            Err(DriverError::Core { link, error }) => {
                break Err(format!("{link}: {error}; giving up"));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    // Whatever the end, the totals go to the log.
    state::log_exit_totals(&core.proxy().totals(), started.elapsed());
    ended?;
    if let Some(e) = core.error() {
        return Err(e.to_string());
    }
    Ok(EXIT_OK)
}
