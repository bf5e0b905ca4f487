//! The proxy's live state, logged on `SIGUSR1`, and its totals, logged at
//! exit: one `info` record each under the target `mojo_proxy::state`
//! (`docs/OPERATIONS.md` shows them). The numbers come from the bridge's
//! counters and snapshot, the driver's link queues, and `/proc/self` for
//! fds and mappings; what cannot be observed is said, not guessed.

use std::fmt::Write as _;
use std::time::Duration;

use mojo_bridge::proxy::ProxyLink;
use mojo_bridge::{DirectionTotals, LinkTotals, ProxySnapshot, ProxyTotals};
use mojo_driver::Driver;

use crate::core::ProxyCore;

/// The log target of both records (enabled at `info` by default).
pub const TARGET: &str = "mojo_proxy::state";

/// Most pipes listed one per line in a live-state block; the rest are
/// summed up in one line, so a proxy with thousands of pipes logs a
/// bounded block.
pub const MAX_PIPES_LISTED: usize = 64;

const LINKS: [ProxyLink; 4] = [
    ProxyLink::Host,
    ProxyLink::Referrer,
    ProxyLink::ClientBootstrap,
    ProxyLink::ClientNodeChannel,
];

fn direction(t: &DirectionTotals) -> String {
    format!(
        "{} messages {} bytes {} handles",
        t.messages, t.bytes, t.handles
    )
}

fn wire(t: &LinkTotals) -> String {
    format!(
        "in {} bytes {} fds, out {} bytes {} fds",
        t.bytes_in, t.fds_in, t.bytes_out, t.fds_out
    )
}

/// The one-line totals since start (both records end with it).
pub fn totals_line(t: &ProxyTotals) -> String {
    let b = &t.bridge;
    let mut line = format!(
        "totals: host->client {}; client->host {}; pipes opened {} closed {} ({} collapsed); \
         errors {} ({} forward failures, {} untranslatable)",
        direction(&b.to_legacy),
        direction(&b.to_ipcz),
        b.pairings_opened,
        b.pairings_closed,
        b.pairings_collapsed,
        b.errors(),
        b.forward_failures,
        b.untranslatable,
    );
    for link in LINKS {
        let l = t.link(link);
        if link != ProxyLink::Referrer || l != LinkTotals::default() {
            let _ = write!(line, "; {link} {}", wire(&l));
        }
    }
    if t.introduced != LinkTotals::default() {
        let _ = write!(line, "; introduced links {}", wire(&t.introduced));
    }
    line
}

/// Logs the totals at exit (with the run's length).
pub fn log_exit_totals(t: &ProxyTotals, up: Duration) {
    log::info!(target: TARGET, "at exit after {:.3} s, {}", up.as_secs_f64(), totals_line(t));
}

/// Open fds of this process, by kind: (all, sockets, shared memory).
fn fds_held() -> Option<(usize, usize, usize)> {
    let own = format!("/proc/{}/fd", std::process::id());
    let mut counts = (0, 0, 0);
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if target == own {
            continue;
        }
        counts.0 += 1;
        if target.starts_with("socket:") {
            counts.1 += 1;
        } else if is_shared_memory(&target) {
            counts.2 += 1;
        }
    }
    Some(counts)
}

fn is_shared_memory(path: &str) -> bool {
    path.starts_with("/memfd:") || path.starts_with("/dev/shm/")
}

/// Shared memory mapped into this process: (mappings, bytes).
fn buffers_mapped() -> Option<(usize, u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let mut found = (0, 0);
    for line in maps.lines() {
        // `start-end perms offset dev inode path`
        let mut fields = line.splitn(6, ' ');
        let range = fields.next()?;
        let path = fields.nth(4).unwrap_or("").trim_start();
        if !is_shared_memory(path) {
            continue;
        }
        let (start, end) = range.split_once('-')?;
        let size = u64::from_str_radix(end, 16).ok()? - u64::from_str_radix(start, 16).ok()?;
        found.0 += 1;
        found.1 += size;
    }
    Some(found)
}

/// The live-state block: see the module docs.
pub fn live_state(
    snapshot: &ProxySnapshot,
    driver: &Driver,
    core: &ProxyCore,
    up: Duration,
) -> String {
    let mut out = format!("live state (SIGUSR1) after {:.3} s:", up.as_secs_f64());
    match &snapshot.bridge {
        None => {
            let _ = write!(
                out,
                "\n  pairings open: 0 (the host's link is not up; {} client messages wait for it)",
                snapshot.waiting_for_host
            );
        }
        Some(bridge) => {
            let _ = write!(out, "\n  pairings open: {}", bridge.pipes.len());
            for pipe in bridge.pipes.iter().take(MAX_PIPES_LISTED) {
                let waiting = |n: Option<u64>| n.map_or("gone".to_string(), |n| n.to_string());
                let _ = write!(
                    out,
                    "\n  pipe {} ({:?}, port {}): host->client {}; client->host {}; waiting: {} \
                     parcels on the portal, {} messages on the port{}{}",
                    pipe.pairing.0,
                    pipe.portal,
                    pipe.port.name(),
                    direction(&pipe.to_legacy),
                    direction(&pipe.to_ipcz),
                    waiting(pipe.portal_readable),
                    waiting(pipe.port_queued.map(|n| n as u64)),
                    if pipe.host_closed {
                        "; host closed"
                    } else {
                        ""
                    },
                    if pipe.client_closed {
                        "; client closed"
                    } else {
                        ""
                    },
                );
            }
            if bridge.pipes.len() > MAX_PIPES_LISTED {
                let _ = write!(
                    out,
                    "\n  ... {} more pipes not listed",
                    bridge.pipes.len() - MAX_PIPES_LISTED
                );
            }
            let _ = write!(
                out,
                "\n  queued in the nodes: ipcz {} parcels in routers, {} held on links, {} fds; \
                 legacy {} messages, {} fds (their bytes: not observable); {} reports dropped",
                bridge.ipcz_queued_parcels,
                bridge.ipcz_held_parcels,
                bridge.ipcz_received_fds,
                bridge.legacy_queued_messages,
                bridge.legacy_queued_fds,
                bridge.unreported,
            );
        }
    }
    out.push_str("\n  socket queues (per link; per pipe: not observable):");
    for (link, id) in core.links() {
        if let Some(s) = driver.link_stats(id) {
            let _ = write!(
                out,
                "\n    {link}: out {} bytes {} fds queued, in {} bytes buffered{}{}",
                s.pending_output_bytes,
                s.pending_output_fds,
                s.buffered_input_bytes,
                if s.paused { ", reading paused" } else { "" },
                if s.closing { ", closing" } else { "" },
            );
        }
    }
    match fds_held() {
        Some((all, sockets, shm)) => {
            let _ = write!(
                out,
                "\n  fds held: {all} ({sockets} sockets, {shm} shared memory, {} other); \
                 {} received fds wait for their frame",
                all - sockets - shm,
                core.queued_fds(),
            );
        }
        None => out.push_str("\n  fds held: not observable (no /proc/self/fd)"),
    }
    match buffers_mapped() {
        Some((count, bytes)) => {
            let _ = write!(out, "\n  shared buffers mapped: {count} ({bytes} bytes)");
        }
        None => out.push_str("\n  shared buffers mapped: not observable (no /proc/self/maps)"),
    }
    let _ = write!(out, "\n  {}", totals_line(&snapshot.totals));
    out
}

/// Logs the live-state block.
pub fn log_live_state(driver: &Driver, core: &ProxyCore, up: Duration) {
    let snapshot = core.proxy().snapshot();
    log::info!(target: TARGET, "{}", live_state(&snapshot, driver, core, up));
}
